#include "services/shadow/pg_shadow_store.h"

#include "pqxx/pqxx"

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

}  // namespace

void PgShadowStore::Prepare(pqxx::connection_base& c) {
  c.prepare("shadow_lock",
            "SELECT version, state, metadata, present, deleted_at_s FROM shadow.shadows "
            "WHERE thing_name = $1 AND shadow_name = $2 FOR UPDATE");
  c.prepare("shadow_ensure",
            "INSERT INTO shadow.shadows (thing_name, shadow_name, version, state, metadata, "
            "present) VALUES ($1, $2, 0, '{}', '{}', false) ON CONFLICT DO NOTHING");
  c.prepare("shadow_store",
            "UPDATE shadow.shadows SET version = $3, state = $4::jsonb, metadata = $5::jsonb, "
            "present = $6, deleted_at_s = $7, updated_at = now() "
            "WHERE thing_name = $1 AND shadow_name = $2");
  c.prepare("shadow_get",
            "SELECT version, state, metadata, present, deleted_at_s FROM shadow.shadows "
            "WHERE thing_name = $1 AND shadow_name = $2");
  c.prepare("shadow_list_named",
            "SELECT shadow_name FROM shadow.shadows WHERE thing_name = $1 AND shadow_name > $2 "
            "AND present ORDER BY shadow_name LIMIT $3");
}

absl::Status PgShadowStore::Modify(const ShadowKey& key,
                                   absl::FunctionRef<absl::Status(StoredShadow&)> fn) {
  return pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("shadow_lock", key.thing_name, key.shadow_name);
    if (r.empty()) {
      // The first write of this shadow: make the row to lock. A concurrent first writer
      // makes the same row; ON CONFLICT lets both go on to lock it in turn.
      tx.exec_prepared("shadow_ensure", key.thing_name, key.shadow_name);
      r = tx.exec_prepared("shadow_lock", key.thing_name, key.shadow_name);
    }
    StoredShadow s = FromRow(r[0]);
    if (absl::Status st = fn(s); !st.ok()) return st;
    tx.exec_prepared("shadow_store", key.thing_name, key.shadow_name, s.version, s.state.dump(),
                     s.metadata.dump(), s.exists, s.deleted_at_s);
    return absl::OkStatus();
  });
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
