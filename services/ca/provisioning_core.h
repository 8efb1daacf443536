// Provisioning templates and what runs them: fleet provisioning (a claim certificate obtains
// a device certificate and an ownership token, then RegisterThing), JITP (a certificate of a
// registered CA provisions itself on first connect), and ProvisionDevice (an operator's
// bulk provisioning).
//
// A template's resources live in other services (things in the registry, policies in the
// policy service), so provisioning is a saga: every step it takes is undone, in reverse,
// when a later one fails, and the certificate's own change commits last. A failure leaves
// no thing, attachment, policy or activated certificate behind.
//
// Fleet-provisioning failures carry AWS's rejection (statusCode, errorCode) as payloads of
// the returned Status; RejectionOf reads them.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/aws/arn.h"
#include "common/http/http_client.h"
#include "common/time/clock.h"
#include "services/ca/ca_store.h"
#include "services/ca/certificate_core.h"
#include "services/ca/peers.h"
#include "services/ca/template_engine.h"

namespace fleetcore::ca {

struct TemplateInput {
  std::string name;
  std::string description;
  std::string body;
  bool enabled = false;
  std::string provisioning_role_arn;
  std::string hook_url;
  std::string hook_payload_version;
  TemplateType type = TemplateType::kFleetProvisioning;
};

struct TemplateUpdate {
  std::string name;
  std::optional<std::string> description;
  std::optional<bool> enabled;
  std::optional<int> default_version;
  std::optional<std::string> provisioning_role_arn;
  std::optional<std::pair<std::string, std::string>> hook;  // url, payload version
  bool remove_hook = false;
};

// AWS's rejected payload of the fleet-provisioning MQTT API.
struct Rejection {
  int status_code = 500;
  std::string error_code = "InternalFailure";
  std::string error_message;
};
Rejection RejectionOf(const absl::Status& status);

struct FleetCertificate {
  IssuedCertificate issued;
  std::string ownership_token;
};

struct ProvisioningResult {
  std::string thing_name;
  std::map<std::string, std::string> device_configuration;
};

struct ProvisionedDevice {
  IssuedCertificate issued;
  ProvisioningResult result;
};

class ProvisioningCore {
 public:
  // Nothing is owned. `hooks` calls pre-provisioning hooks (5 s limit).
  ProvisioningCore(CaStore* store, CertificateCore* certificates, Peers* peers,
                   http::HttpClient* hooks, const aws::Arns* arns, const Clock* clock);

  // ---- templates
  absl::StatusOr<TemplateRecord> CreateTemplate(const TemplateInput& input);
  // The template and its default version.
  absl::StatusOr<std::pair<TemplateRecord, TemplateVersionRecord>> DescribeTemplate(
      absl::string_view name);
  absl::StatusOr<Page<TemplateRecord>> ListTemplates(const PageRequest& page);
  absl::Status UpdateTemplate(const TemplateUpdate& update);
  absl::Status DeleteTemplate(absl::string_view name);
  // The new version and whether it became the default.
  absl::StatusOr<std::pair<TemplateVersionRecord, bool>> CreateTemplateVersion(
      absl::string_view name, absl::string_view body, bool set_as_default);
  absl::StatusOr<std::pair<TemplateRecord, TemplateVersionRecord>> DescribeTemplateVersion(
      absl::string_view name, int version);
  absl::StatusOr<std::pair<TemplateRecord, std::vector<TemplateVersionRecord>>>
  ListTemplateVersions(absl::string_view name);
  absl::Status DeleteTemplateVersion(absl::string_view name, int version);

  // ---- fleet provisioning (the claim certificate's connection asks)
  // A device certificate (new keys when `csr_pem` is empty) in PENDING_ACTIVATION, with an
  // ownership token valid for the claim validity (1 hour).
  absl::StatusOr<FleetCertificate> FleetCreateCertificate(absl::string_view claim_certificate_id,
                                                          absl::string_view csr_pem);
  absl::StatusOr<ProvisioningResult> RegisterThing(
      absl::string_view template_name, absl::string_view ownership_token,
      const std::map<std::string, std::string>& parameters, absl::string_view claim_certificate_id,
      absl::string_view client_id);

  // ---- operators: keys (or a CSR), certificate and the template's resources in one call.
  absl::StatusOr<ProvisionedDevice> ProvisionDevice(
      absl::string_view template_name, const std::map<std::string, std::string>& parameters,
      absl::string_view csr_pem);

  // ---- JITP: runs `ca`'s template for `cert` and stores the certificate.
  absl::StatusOr<CertificateRecord> Jitp(const tls::Certificate& cert,
                                         const CaCertificateRecord& ca);

 private:
  class Saga;
  absl::StatusOr<ProvisioningTemplate> Load(const TemplateRecord& t);
  // Calls the pre-provisioning hook; returns the parameters with its overrides.
  absl::StatusOr<std::map<std::string, std::string>> CallHook(
      const TemplateRecord& t, absl::string_view claim_id, const CertificateRecord& cert,
      absl::string_view client_id, std::map<std::string, std::string> parameters);
  // Creates or updates the thing, attaches the certificate and the policies.
  absl::Status Execute(const ProvisioningPlan& plan, const std::string& cert_arn, Saga& saga);

  CaStore* store_;
  CertificateCore* certificates_;
  Peers* peers_;
  http::HttpClient* hooks_;
  const aws::Arns* arns_;
  const Clock* clock_;
};

absl::Status ValidateTemplateName(absl::string_view name);

// AWS's certificate parameters of a JITP template, from the certificate's subject.
std::map<std::string, std::string> CertificateParameters(const tls::Certificate& cert);

}  // namespace fleetcore::ca
