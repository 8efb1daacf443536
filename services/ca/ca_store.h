// Where the CA service keeps its data (schema "ca"). The cores hold every rule; a store reads
// and writes what it is told inside their transactions.
//
// Implementations: PgCaStore and FakeCaStore (in memory, for tests).
// Errors: UNAVAILABLE when the database cannot be reached; ALREADY_EXISTS from an Insert*
// whose key is taken.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "services/ca/ca_types.h"

namespace fleetcore::ca {

enum class Lock { kNone, kUpdate };

class CaTx {
 public:
  virtual ~CaTx() = default;

  virtual absl::StatusOr<std::optional<CertificateRecord>> GetCertificate(absl::string_view id,
                                                                          Lock lock) = 0;
  virtual absl::Status InsertCertificate(const CertificateRecord& cert) = 0;
  // Replaces every column but id, pem and created_at.
  virtual absl::Status UpdateCertificate(const CertificateRecord& cert) = 0;
  virtual absl::Status DeleteCertificate(absl::string_view id) = 0;
  virtual absl::StatusOr<int64_t> CountCertificatesOfCa(absl::string_view ca_id) = 0;
  // Certificates whose rotation grace ended, or whose fleet-provisioning claim expired
  // unused; locked, skipping rows other replicas hold.
  virtual absl::StatusOr<std::vector<CertificateRecord>> DueForDeactivation(absl::Time now,
                                                                            int limit) = 0;
  virtual absl::StatusOr<std::vector<CertificateRecord>> ExpiredClaims(absl::Time now,
                                                                       int limit) = 0;

  virtual absl::Status InsertRevocation(const Revocation& r) = 0;
  // Revocations of `issuer_id` whose certificate has not expired at `now`.
  virtual absl::StatusOr<std::vector<Revocation>> Revocations(absl::string_view issuer_id,
                                                              absl::Time now) = 0;
  // Serializes CRL generation until the transaction ends.
  virtual absl::Status LockCrl() = 0;
  virtual absl::StatusOr<std::optional<CrlRecord>> LatestCrl() = 0;
  virtual absl::Status InsertCrl(const CrlRecord& crl) = 0;

  virtual absl::StatusOr<std::optional<CaCertificateRecord>> GetCaCertificate(absl::string_view id,
                                                                              Lock lock) = 0;
  virtual absl::Status InsertCaCertificate(const CaCertificateRecord& ca) = 0;
  virtual absl::Status UpdateCaCertificate(const CaCertificateRecord& ca) = 0;
  virtual absl::Status DeleteCaCertificate(absl::string_view id) = 0;
  virtual absl::StatusOr<int64_t> CountCaCertificatesWithSubject(absl::string_view subject) = 0;
  virtual absl::StatusOr<int64_t> CountCaCertificatesUsingTemplate(absl::string_view name) = 0;

  virtual absl::StatusOr<std::optional<std::string>> GetRegistrationCode() = 0;
  virtual absl::Status SetRegistrationCode(absl::string_view code) = 0;
  virtual absl::Status DeleteRegistrationCode() = 0;

  virtual absl::StatusOr<std::optional<TemplateRecord>> GetTemplate(absl::string_view name,
                                                                    Lock lock) = 0;
  virtual absl::Status InsertTemplate(const TemplateRecord& t) = 0;
  virtual absl::Status UpdateTemplate(const TemplateRecord& t) = 0;
  // Also its versions.
  virtual absl::Status DeleteTemplate(absl::string_view name) = 0;
  virtual absl::StatusOr<int64_t> CountTemplates() = 0;
  virtual absl::StatusOr<std::vector<TemplateVersionRecord>> TemplateVersions(
      absl::string_view name) = 0;
  virtual absl::Status InsertTemplateVersion(const TemplateVersionRecord& v) = 0;
  virtual absl::Status DeleteTemplateVersion(absl::string_view name, int version) = 0;

  virtual absl::Status InsertToken(const OwnershipToken& token) = 0;
  virtual absl::StatusOr<std::optional<OwnershipToken>> GetToken(absl::string_view hash) = 0;
  // Removes and returns the token; nullopt when there is none.
  virtual absl::StatusOr<std::optional<OwnershipToken>> TakeToken(absl::string_view hash) = 0;
  virtual absl::StatusOr<int64_t> DeleteExpiredTokens(absl::Time now) = 0;

  // Delivered when the transaction commits.
  virtual void Publish(const CaEvent& event) = 0;
};

// Reads outside transactions. Listings page by (created_at, id) or by name.
class CaStore {
 public:
  virtual ~CaStore() = default;

  // The body may run more than once (retry after a serialization failure).
  virtual absl::Status Transact(absl::FunctionRef<absl::Status(CaTx&)> body) = 0;
  // Stores one new certificate on its own, as CaTx::InsertCertificate in a transaction of
  // its own would (ALREADY_EXISTS when its id is taken), in as few round trips as it can.
  virtual absl::Status InsertCertificate(const CertificateRecord& cert) = 0;

  virtual absl::StatusOr<std::optional<CertificateRecord>> GetCertificate(absl::string_view id) = 0;
  // `ca_id` nullopt: all certificates. At most `limit` after `after` in the order asked.
  virtual absl::StatusOr<std::vector<CertificateRecord>> ListCertificates(
      std::optional<std::string> ca_id, std::optional<ListPosition> after, bool ascending,
      int limit) = 0;

  virtual absl::StatusOr<std::optional<CaCertificateRecord>> GetCaCertificate(
      absl::string_view id) = 0;
  virtual absl::StatusOr<std::vector<CaCertificateRecord>> CaCertificatesWithSubject(
      absl::string_view subject) = 0;
  virtual absl::StatusOr<std::vector<CaCertificateRecord>> ListCaCertificates(
      std::optional<ListPosition> after, bool ascending, int limit) = 0;

  virtual absl::StatusOr<std::optional<TemplateRecord>> GetTemplate(absl::string_view name) = 0;
  virtual absl::StatusOr<std::optional<TemplateVersionRecord>> GetTemplateVersion(
      absl::string_view name, int version) = 0;
  virtual absl::StatusOr<std::vector<TemplateVersionRecord>> TemplateVersions(
      absl::string_view name) = 0;
  virtual absl::StatusOr<std::vector<TemplateRecord>> ListTemplates(absl::string_view after,
                                                                    int limit) = 0;

  virtual absl::StatusOr<std::optional<CrlRecord>> LatestCrl() = 0;
};

}  // namespace fleetcore::ca
