// ShadowStore on Postgres (schema "shadow"). Modify is optimistic: it reads the row,
// applies the change, and writes it only where the row's version and presence are still
// those it read (an insert when there was no row), reading again otherwise; so concurrent
// updates of one shadow lose nothing, and different shadows never wait for each other.
//
// The rows Modify last wrote are kept in memory (at most `cache_size`), so updating a
// shadow again takes one statement: the guarded write checks that the row is still the one
// kept, and when another writer (or replica) changed it, Modify reads it and goes on as
// above. Get always reads Postgres. A kept row is used for an hour at most: a shadow's
// version starts again at 1 only when it is recreated more than 48 hours after a delete, so
// a version and presence that match the kept row's mean the same row.
//
// Guarded writes of different shadows made at the same time share one statement and one
// commit (db::PgBatchWriter): Postgres spends about half the CPU per update that single-row
// writes cost it.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/db/pg_batch_writer.h"
#include "common/db/pg_pool.h"
#include "services/shadow/shadow_store.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace fleetcore::shadow {

class PgShadowStore final : public ShadowStore {
 public:
  // `metrics` (may be null): fleetcore_shadow_row_cache_total{result} (hit: the kept row was
  // current; stale: another writer had changed it; miss: none kept),
  // fleetcore_shadow_row_cache_entries, and fleetcore_db_batch_rows{writer="shadow"}.
  explicit PgShadowStore(db::PgPool* pool, size_t cache_size = 0,
                         prometheus::Registry* metrics = nullptr);

  // Prepares the statements on a new connection (the pool's Prepare hook).
  static void Prepare(pqxx::connection_base& c);

  absl::Status Modify(const ShadowKey& key,
                      absl::FunctionRef<absl::Status(StoredShadow&)> fn) override;
  absl::StatusOr<StoredShadow> Get(const ShadowKey& key) override;
  absl::StatusOr<std::vector<std::string>> ListNamed(absl::string_view thing_name,
                                                     absl::string_view after,
                                                     int limit) override;

 private:
  // A copy of the row kept for `key`, if any.
  std::optional<StoredShadow> Cached(const std::string& key);
  void Keep(const std::string& key, const StoredShadow& row);
  void Forget(const std::string& key);

  void CountLookup(bool kept, bool current);

  db::PgPool* pool_;
  db::PgBatchWriter writes_;
  const size_t cache_size_;
  prometheus::Counter* hits_ = nullptr;
  prometheus::Counter* stale_ = nullptr;
  prometheus::Counter* misses_ = nullptr;
  prometheus::Gauge* entries_ = nullptr;
  absl::Mutex mu_;
  struct Kept {
    StoredShadow row;
    absl::Time at;
  };
  absl::flat_hash_map<std::string, Kept> rows_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleetcore::shadow
