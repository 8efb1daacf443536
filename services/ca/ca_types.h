// The CA service's domain types: plain values, no gRPC or Postgres types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/ca/template_engine.h"

namespace fleetcore::ca {

enum class CertStatus {
  kActive,
  kInactive,
  kRevoked,
  kPendingTransfer,
  kRegisterInactive,
  kPendingActivation,
};
// "ACTIVE", "INACTIVE", ...
absl::string_view StatusName(CertStatus status);
std::optional<CertStatus> ParseStatus(absl::string_view name);

enum class CertMode { kDefault, kSniOnly };
absl::string_view ModeName(CertMode mode);
std::optional<CertMode> ParseMode(absl::string_view name);

absl::string_view TemplateTypeName(TemplateType type);
std::optional<TemplateType> ParseTemplateType(absl::string_view name);

struct CertificateRecord {
  std::string id;  // SHA-256 of the DER, hex
  std::string pem;
  CertStatus status = CertStatus::kInactive;
  std::string ca_certificate_id;  // empty: registered without a CA
  bool issued_here = false;       // signed by fleetcore's issuing CA
  std::string serial;             // hex
  std::string subject;            // RFC 2253
  CertMode mode = CertMode::kDefault;
  absl::Time not_before;
  absl::Time not_after;
  int customer_version = 1;
  int64_t generation = 1;
  absl::Time created_at;
  absl::Time updated_at;
  std::optional<absl::Time> revoked_at;
  std::optional<absl::Time> deactivate_at;     // rotation
  std::optional<absl::Time> claim_expires_at;  // fleet provisioning
};

struct RegistrationConfig {
  std::string template_body;
  std::string role_arn;
  std::string template_name;
  bool has_template() const { return !template_body.empty() || !template_name.empty(); }
};

struct CaCertificateRecord {
  std::string id;
  std::string pem;
  std::string subject;  // RFC 2253
  bool active = false;
  bool auto_registration = false;
  std::optional<RegistrationConfig> registration_config;
  CertMode mode = CertMode::kDefault;
  absl::Time not_before;
  absl::Time not_after;
  int customer_version = 1;
  int64_t generation = 1;
  absl::Time created_at;
  absl::Time updated_at;
};

struct TemplateRecord {
  std::string name;
  std::string description;
  bool enabled = false;
  TemplateType type = TemplateType::kFleetProvisioning;
  std::string provisioning_role_arn;
  std::string hook_url;  // empty: no pre-provisioning hook
  std::string hook_payload_version;
  int default_version = 1;
  int next_version = 2;
  absl::Time created_at;
  absl::Time updated_at;
};

struct TemplateVersionRecord {
  std::string template_name;
  int version = 1;
  std::string body;
  absl::Time created_at;
};

struct OwnershipToken {
  std::string token_hash;  // SHA-256 of the token, hex
  std::string certificate_id;
  std::string claim_certificate_id;
  absl::Time expires_at;
};

struct Revocation {
  std::string issuer_id;
  std::string serial;
  std::string certificate_id;
  absl::Time revoked_at;
  absl::Time not_after;
};

struct CrlRecord {
  int64_t number = 0;
  std::string issuer_id;
  std::string der;
  absl::Time this_update;
  absl::Time next_update;
};

// Announced on the fleetcore_ca NOTIFY channel:
//   {"type":"certificate.status_changed","certificate":"<id>","status":"REVOKED"}
//   {"type":"certificate.deleted","certificate":"<id>"}
//   {"type":"ca_certificate.updated","caCertificate":"<id>"}
//   {"type":"template.updated","template":"<name>"}
struct CaEvent {
  std::string type;
  std::string certificate;
  std::string ca_certificate;
  std::string status;
  std::string template_name;
};

inline constexpr char kCaChannel[] = "fleetcore_ca";

// A keyset position in a listing by creation date.
struct ListPosition {
  absl::Time created_at;
  std::string id;
};

struct PageRequest {
  std::string marker;
  int page_size = 0;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_marker;
};

// What the cores report, for metrics; the service wires it to Prometheus. Every method may
// be called concurrently.
class CaObserver {
 public:
  virtual ~CaObserver() = default;
  // how: keys, csr, fleet_keys, fleet_csr, rotation, provision
  virtual void CertificateIssued(absl::string_view how) {}
  // how: with_ca, without_ca, jitr, jitp
  virtual void CertificateRegistered(absl::string_view how) {}
  virtual void CertificateRevoked() {}
  // result: success, rejected, failed
  virtual void Provisioned(absl::string_view template_name, absl::string_view result) {}
  virtual void Signed(absl::Duration took) {}
};

}  // namespace fleetcore::ca
