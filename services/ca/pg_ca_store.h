// The CA service's CaStore on Postgres (schema "ca", migrations/0003). Events go out with
// NOTIFY on fleetcore_ca inside the writing transaction.
//
// InsertCertificate, the store of every certificate CreateKeysAndCertificate and
// CreateCertificateFromCsr issue, is group commit (db::PgBatchWriter): certificates issued
// at the same time are stored by one statement in one commit.
#pragma once

#include <memory>

#include "services/ca/ca_store.h"

namespace pqxx {
class connection_base;
}  // namespace pqxx

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace fleetcore::db {
class PgBatchWriter;
class PgPool;
}  // namespace fleetcore::db

namespace fleetcore::ca {

class PgCaStore final : public CaStore {
 public:
  // `pool` must outlive the store. `metrics` may be null; otherwise
  // fleetcore_db_batch_rows{writer="ca_certificates"}.
  explicit PgCaStore(db::PgPool* pool, prometheus::Registry* metrics = nullptr);
  ~PgCaStore() override;

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
  std::unique_ptr<db::PgBatchWriter> inserts_;
};

}  // namespace fleetcore::ca
