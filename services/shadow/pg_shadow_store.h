// ShadowStore on Postgres (schema "shadow"). Modify is optimistic: it reads the row,
// applies the change, and writes it only where the row's version and presence are still
// those it read (an insert when there was no row), reading again otherwise; so concurrent
// updates of one shadow lose nothing, and different shadows never wait for each other.
#pragma once

#include "common/db/pg_pool.h"
#include "services/shadow/shadow_store.h"

namespace fleetcore::shadow {

class PgShadowStore final : public ShadowStore {
 public:
  explicit PgShadowStore(db::PgPool* pool) : pool_(pool) {}

  // Prepares the statements on a new connection (the pool's Prepare hook).
  static void Prepare(pqxx::connection_base& c);

  absl::Status Modify(const ShadowKey& key,
                      absl::FunctionRef<absl::Status(StoredShadow&)> fn) override;
  absl::StatusOr<StoredShadow> Get(const ShadowKey& key) override;
  absl::StatusOr<std::vector<std::string>> ListNamed(absl::string_view thing_name,
                                                     absl::string_view after,
                                                     int limit) override;

 private:
  db::PgPool* pool_;
};

}  // namespace fleetcore::shadow
