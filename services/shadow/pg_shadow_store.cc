#include "services/shadow/pg_shadow_store.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "pqxx/pqxx"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace fleetcore::shadow {
namespace {

StoredShadow FromRow(const pqxx::row& r) {
  StoredShadow s;
  s.version = r[0].as<int64_t>();
  s.state = nlohmann::json::parse(r[1].c_str());
  s.metadata = nlohmann::json::parse(r[2].c_str());
  s.exists = r[3].as<bool>();
  s.deleted_at_s = r[4].as<int64_t>();
  return s;
}

// One row of shadow_store_batch: `next` where the stored row is still `read`.
std::string GuardedWrite(const ShadowKey& key, const StoredShadow& next,
                         const StoredShadow& read) {
  return absl::StrCat(R"({"thing_name":)", nlohmann::json(key.thing_name).dump(),
                      R"(,"shadow_name":)", nlohmann::json(key.shadow_name).dump(),
                      R"(,"version":)", next.version, R"(,"state":)", next.state.dump(),
                      R"(,"metadata":)", next.metadata.dump(),
                      R"(,"present":)", next.exists ? "true" : "false",
                      R"(,"deleted_at_s":)", next.deleted_at_s,
                      R"(,"old_version":)", read.version,
                      R"(,"old_present":)", read.exists ? "true" : "false", "}");
}

}  // namespace

void PgShadowStore::Prepare(pqxx::connection_base& c) {
  c.prepare("shadow_insert",
            "INSERT INTO shadow.shadows (thing_name, shadow_name, version, state, metadata, "
            "present, deleted_at_s) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7) "
            "ON CONFLICT DO NOTHING");
  // The guarded writes of a batch (db::PgBatchWriter): each row is written only where the
  // stored row is still the one its update read; returns the positions of those written.
  c.prepare("shadow_store_batch",
            "UPDATE shadow.shadows s SET version = r.version, state = r.state, "
            "metadata = r.metadata, present = r.present, deleted_at_s = r.deleted_at_s, "
            "updated_at = now() "
            "FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (thing_name text, "
            "shadow_name text, version bigint, state jsonb, metadata jsonb, present boolean, "
            "deleted_at_s bigint, old_version bigint, old_present boolean)) WITH ORDINALITY "
            "AS r(thing_name, shadow_name, version, state, metadata, present, deleted_at_s, "
            "old_version, old_present, i) "
            "WHERE s.thing_name = r.thing_name AND s.shadow_name = r.shadow_name "
            "AND s.version = r.old_version AND s.present = r.old_present RETURNING r.i");
  c.prepare("shadow_get",
            "SELECT version, state, metadata, present, deleted_at_s FROM shadow.shadows "
            "WHERE thing_name = $1 AND shadow_name = $2");
  c.prepare("shadow_list_named",
            "SELECT shadow_name FROM shadow.shadows WHERE thing_name = $1 AND shadow_name > $2 "
            "AND present ORDER BY shadow_name LIMIT $3");
}

PgShadowStore::PgShadowStore(db::PgPool* pool, size_t cache_size, prometheus::Registry* metrics)
    : pool_(pool),
      writes_(pool, {.statement = "shadow_store_batch", .name = "shadow"}, metrics),
      cache_size_(cache_size) {
  if (metrics == nullptr || cache_size == 0) return;
  auto& lookups = prometheus::BuildCounter()
                      .Name("fleetcore_shadow_row_cache_total")
                      .Help("Updates by what they found kept: hit (the row this replica wrote "
                            "last was current: one statement), stale (read again: another "
                            "writer had changed it, or a refused request is judged again on "
                            "the stored row), miss (none kept).")
                      .Register(*metrics);
  hits_ = &lookups.Add({{"result", "hit"}});
  stale_ = &lookups.Add({{"result", "stale"}});
  misses_ = &lookups.Add({{"result", "miss"}});
  entries_ = &prometheus::BuildGauge()
                  .Name("fleetcore_shadow_row_cache_entries")
                  .Help("Shadow rows kept in memory for the next update.")
                  .Register(*metrics)
                  .Add({});
}

void PgShadowStore::CountLookup(bool kept, bool current) {
  if (cache_size_ == 0) return;
  prometheus::Counter* c = !kept ? misses_ : current ? hits_ : stale_;
  if (c != nullptr) c->Increment();
}

std::optional<StoredShadow> PgShadowStore::Cached(const std::string& key) {
  if (cache_size_ == 0) return std::nullopt;
  absl::MutexLock l(&mu_);
  auto it = rows_.find(key);
  if (it == rows_.end() || absl::Now() - it->second.at > absl::Hours(1)) return std::nullopt;
  return it->second.row;
}

void PgShadowStore::Keep(const std::string& key, const StoredShadow& row) {
  if (cache_size_ == 0) return;
  absl::MutexLock l(&mu_);
  if (rows_.size() >= cache_size_ && !rows_.contains(key)) rows_.erase(rows_.begin());
  rows_.insert_or_assign(key, Kept{row, absl::Now()});
  if (entries_ != nullptr) entries_->Set(static_cast<double>(rows_.size()));
}

void PgShadowStore::Forget(const std::string& key) {
  if (cache_size_ == 0) return;
  absl::MutexLock l(&mu_);
  rows_.erase(key);
  if (entries_ != nullptr) entries_->Set(static_cast<double>(rows_.size()));
}

absl::Status PgShadowStore::Modify(const ShadowKey& key,
                                   absl::FunctionRef<absl::Status(StoredShadow&)> fn) {
  // Optimistic: read (or take the row kept from the last write), apply, and write only if
  // the row is still that one (its version and presence); otherwise read again. One or two
  // round trips without BEGIN/COMMIT for the usual update of one shadow by one writer;
  // concurrent writers of one shadow retry, and none of their updates is lost.
  const std::string cache_key = absl::StrCat(key.thing_name, std::string(1, '\0'), key.shadow_name);
  std::optional<StoredShadow> read = Cached(cache_key);  // the row as last known
  bool known = read.has_value();                         // nullopt and known: no row
  bool from_cache = known;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    // The first attempt's outcome says what the kept row was worth.
    auto count = [&](bool current) {
      if (attempt == 0) CountLookup(from_cache, current);
    };
    if (!known) {
      read.reset();
      from_cache = false;
      absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
        pqxx::result r = tx.exec_prepared("shadow_get", key.thing_name, key.shadow_name);
        if (!r.empty()) read = FromRow(r[0]);
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
      known = true;
    }
    StoredShadow next = read.value_or(StoredShadow{});
    if (absl::Status st = fn(next); !st.ok()) {
      // Refused (a version conflict, say) on the kept row: judge again on the stored one.
      if (!from_cache) {
        count(true);
        return st;
      }
      count(false);
      Forget(cache_key);
      known = false;
      continue;
    }
    bool written = false;
    absl::Status s;
    if (read.has_value()) {
      absl::StatusOr<bool> w = writes_.Write(GuardedWrite(key, next, *read));
      s = w.status();
      written = w.ok() && *w;
    } else {
      s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
        pqxx::result r = tx.exec_prepared("shadow_insert", key.thing_name, key.shadow_name,
                                          next.version, next.state.dump(), next.metadata.dump(),
                                          next.exists, next.deleted_at_s);
        written = r.affected_rows() == 1;
        return absl::OkStatus();
      });
    }
    if (!s.ok()) {
      Forget(cache_key);  // the write may have happened
      return s;
    }
    if (written) {
      count(true);
      Keep(cache_key, next);
      return absl::OkStatus();
    }
    count(false);
    Forget(cache_key);
    known = false;
  }
  return absl::AbortedError("too many concurrent updates of this shadow; retry");
}

absl::StatusOr<StoredShadow> PgShadowStore::Get(const ShadowKey& key) {
  StoredShadow out;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("shadow_get", key.thing_name, key.shadow_name);
    if (!r.empty()) out = FromRow(r[0]);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<std::string>> PgShadowStore::ListNamed(absl::string_view thing_name,
                                                                  absl::string_view after,
                                                                  int limit) {
  std::vector<std::string> out;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("shadow_list_named", std::string(thing_name),
                                      std::string(after), limit);
    for (const pqxx::row& row : r) out.push_back(row[0].c_str());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace fleetcore::shadow
