// The rules of device certificates, registered CA certificates and the CRL, with AWS IoT's
// semantics: issuing (new keys or a CSR, keys on an allowlist), registering (with a
// registered CA, or without), the status machine (REVOKED is final, PENDING_* cannot be
// set), deletion (not ACTIVE, not attached to things; forceDelete detaches policies),
// rotation (beyond AWS), CA registration with proof of possession, and a CRL regenerated
// on every revocation of a certificate fleetcore issued.
//
// Errors: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
// RESOURCE_EXHAUSTED, UNAVAILABLE (Postgres or a peer service).
// Thread safety: all methods may be called concurrently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "common/aws/arn.h"
#include "common/time/clock.h"
#include "common/tls/x509.h"
#include "services/ca/ca_store.h"
#include "services/ca/issuing_ca.h"
#include "services/ca/peers.h"

namespace fleetcore::ca {

struct CaOptions {
  absl::Duration certificate_validity = absl::Hours(24 * 365 * 10);
  tls::KeyType device_key_type = tls::KeyType::kEcP256;
  absl::Duration crl_validity = absl::Hours(24 * 7);
  // Fleet provisioning: how long an ownership token (and an unused certificate) lives.
  absl::Duration claim_validity = absl::Hours(1);
  int max_ca_certificates_per_subject = 10;
};

struct IssuedCertificate {
  CertificateRecord record;
  std::string public_key_pem;
  std::string private_key_pem;  // empty when issued from a CSR
};

struct RotationResult {
  IssuedCertificate issued;
  std::vector<std::string> things;
  std::vector<std::string> policies;
  absl::Time old_deactivation;
};

struct SweepCounts {
  int deactivated = 0;
  int claims_deleted = 0;
  int64_t tokens_deleted = 0;
  bool crl_renewed = false;
};

class CertificateCore {
 public:
  // Nothing is owned; `observer` may be null.
  CertificateCore(CaStore* store, const IssuingCa* issuing, Peers* peers, const aws::Arns* arns,
                  const Clock* clock, CaObserver* observer, CaOptions options = {});

  const IssuingCa& issuing() const { return *issuing_; }
  const aws::Arns& arns() const { return *arns_; }
  const CaOptions& options() const { return options_; }
  CaObserver& observer() { return *observer_; }

  // ---- device certificates
  // Signs a certificate for new keys (`csr_pem` empty) or a CSR; nothing is stored yet.
  absl::StatusOr<IssuedCertificate> Mint(absl::string_view csr_pem, CertStatus status);
  // Stores a minted certificate; `also` runs in the same transaction (e.g. to keep an
  // ownership token).
  absl::Status Store(const CertificateRecord& cert, absl::FunctionRef<absl::Status(CaTx&)> also);
  // Stores a minted certificate on its own (one statement).
  absl::Status Store(const CertificateRecord& cert);
  absl::StatusOr<IssuedCertificate> CreateKeysAndCertificate(bool set_as_active);
  absl::StatusOr<IssuedCertificate> CreateCertificateFromCsr(absl::string_view csr_pem,
                                                             bool set_as_active);
  absl::StatusOr<CertificateRecord> RegisterCertificate(absl::string_view pem,
                                                        absl::string_view ca_pem,
                                                        CertStatus status);
  absl::StatusOr<CertificateRecord> RegisterCertificateWithoutCa(absl::string_view pem,
                                                                 CertStatus status);
  absl::Status UpdateCertificate(absl::string_view id, CertStatus new_status);
  absl::StatusOr<CertificateRecord> DescribeCertificate(absl::string_view id);
  // `ca_id` nullopt: every certificate. Newest first unless `ascending`.
  absl::StatusOr<Page<CertificateRecord>> ListCertificates(std::optional<std::string> ca_id,
                                                           bool ascending, const PageRequest& page);
  absl::Status DeleteCertificate(absl::string_view id, bool force);
  absl::StatusOr<RotationResult> RotateCertificate(absl::string_view id, absl::string_view csr_pem,
                                                   absl::Duration grace);

  // ---- CRL
  // The newest CRL, made anew when there is none or it expires within a day.
  absl::StatusOr<CrlRecord> Crl();

  // ---- registered CA certificates
  absl::StatusOr<std::string> GetRegistrationCode();
  absl::Status DeleteRegistrationCode();
  absl::StatusOr<CaCertificateRecord> RegisterCaCertificate(
      absl::string_view ca_pem, absl::string_view verification_pem, bool active,
      bool auto_registration, std::optional<RegistrationConfig> config, CertMode mode);
  struct CaUpdate {
    std::string id;
    std::optional<bool> active;
    std::optional<bool> auto_registration;
    std::optional<RegistrationConfig> registration_config;
    bool remove_auto_registration = false;
  };
  absl::Status UpdateCaCertificate(const CaUpdate& update);
  absl::StatusOr<CaCertificateRecord> DescribeCaCertificate(absl::string_view id);
  absl::StatusOr<Page<CaCertificateRecord>> ListCaCertificates(bool ascending,
                                                               const PageRequest& page);
  absl::Status DeleteCaCertificate(absl::string_view id);

  // Background work, every few seconds on every replica (rows are locked, so replicas
  // share it): ends rotation grace periods, deletes fleet-provisioning certificates whose
  // claim expired unused, drops expired ownership tokens, renews the CRL before it expires.
  absl::StatusOr<SweepCounts> Sweep();

 private:
  absl::Status CheckRegistrationConfig(const RegistrationConfig& config);
  // In `tx`: makes a CRL from the current revocations. Called for every revocation.
  absl::Status RenewCrl(CaTx& tx, absl::Time now);
  CertificateRecord RecordOf(const tls::Certificate& cert, CertStatus status, std::string ca_id,
                             bool issued_here, CertMode mode) const;

  CaStore* store_;
  const IssuingCa* issuing_;
  Peers* peers_;
  const aws::Arns* arns_;
  const Clock* clock_;
  CaObserver* observer_;
  CaObserver null_observer_;
  CaOptions options_;
};

// AWS certificate ids: 64 hex characters (lowercase is canonical; upper case is accepted).
absl::StatusOr<std::string> NormalizeCertificateId(absl::string_view id);

}  // namespace fleetcore::ca
