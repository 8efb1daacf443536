// The CA service's CaStore on Postgres (schema "ca", migrations/0003). Events go out with
// NOTIFY on fleetcore_ca inside the writing transaction.
#pragma once

#include "services/ca/ca_store.h"

namespace pqxx {
class connection_base;
}  // namespace pqxx

namespace fleetcore::db {
class PgPool;
}  // namespace fleetcore::db

namespace fleetcore::ca {

class PgCaStore final : public CaStore {
 public:
  // `pool` must outlive the store.
  explicit PgCaStore(db::PgPool* pool) : pool_(pool) {}

  // Prepares the statements on a new connection (the pool's Prepare hook; required).
  static void Prepare(pqxx::connection_base& c);

  absl::Status Transact(absl::FunctionRef<absl::Status(CaTx&)> body) override;
  absl::Status InsertCertificate(const CertificateRecord& cert) override;
  absl::StatusOr<std::optional<CertificateRecord>> GetCertificate(absl::string_view id) override;
  absl::StatusOr<std::vector<CertificateRecord>> ListCertificates(std::optional<std::string> ca_id,
                                                                  std::optional<ListPosition> after,
                                                                  bool ascending,
                                                                  int limit) override;
  absl::StatusOr<std::optional<CaCertificateRecord>> GetCaCertificate(
      absl::string_view id) override;
  absl::StatusOr<std::vector<CaCertificateRecord>> CaCertificatesWithSubject(
      absl::string_view subject) override;
  absl::StatusOr<std::vector<CaCertificateRecord>> ListCaCertificates(
      std::optional<ListPosition> after, bool ascending, int limit) override;
  absl::StatusOr<std::optional<TemplateRecord>> GetTemplate(absl::string_view name) override;
  absl::StatusOr<std::optional<TemplateVersionRecord>> GetTemplateVersion(absl::string_view name,
                                                                          int version) override;
  absl::StatusOr<std::vector<TemplateVersionRecord>> TemplateVersions(
      absl::string_view name) override;
  absl::StatusOr<std::vector<TemplateRecord>> ListTemplates(absl::string_view after,
                                                            int limit) override;
  absl::StatusOr<std::optional<CrlRecord>> LatestCrl() override;

  // The event a fleetcore_ca NOTIFY payload carries; nullopt if it is not one.
  static std::optional<CaEvent> ParseEvent(absl::string_view payload);

 private:
  db::PgPool* pool_;
};

}  // namespace fleetcore::ca
