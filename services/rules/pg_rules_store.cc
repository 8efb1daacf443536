#include "services/rules/pg_rules_store.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "pqxx/pqxx"

namespace fleetcore::rules {
namespace {

constexpr char kColumns[] =
    "name, payload::text, topic_pattern, disabled, "
    "(extract(epoch from created_at) * 1000000)::bigint";

StoredRule FromRow(const pqxx::row& r) {
  return StoredRule{.name = r[0].c_str(),
                    .payload_json = r[1].c_str(),
                    .topic_pattern = r[2].c_str(),
                    .disabled = r[3].as<bool>(),
                    .created_at = absl::FromUnixMicros(r[4].as<int64_t>())};
}

// Every change is announced on kRulesChannel ({"rule": name}) so the rules engines reload
// and the gateways fetch the FROM filters again.
void Announce(pqxx::transaction_base& tx, absl::string_view name) {
  db::Notify(tx, kRulesChannel, nlohmann::json{{"rule", name}}.dump());
}

}  // namespace

absl::Status PgRulesStore::Insert(const StoredRule& rule) {
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    tx.exec_params(
        "INSERT INTO rules.topic_rules (name, payload, topic_pattern, disabled, created_at, "
        "updated_at) VALUES ($1, $2::jsonb, $3, $4, to_timestamp($5::double precision / 1e6), "
        "now())",
        rule.name, rule.payload_json, rule.topic_pattern, rule.disabled,
        absl::ToUnixMicros(rule.created_at));
    Announce(tx, rule.name);
    return absl::OkStatus();
  });
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(absl::StrCat("a topic rule named ", rule.name, " exists"));
  }
  return s;
}

absl::Status PgRulesStore::Update(const StoredRule& rule) {
  bool found = false;
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_params(
        "UPDATE rules.topic_rules SET payload = $2::jsonb, topic_pattern = $3, disabled = $4, "
        "updated_at = now() WHERE name = $1",
        rule.name, rule.payload_json, rule.topic_pattern, rule.disabled);
    found = r.affected_rows() == 1;
    if (found) Announce(tx, rule.name);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!found) return absl::NotFoundError(absl::StrCat("no topic rule named ", rule.name));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<StoredRule>> PgRulesStore::Get(absl::string_view name) {
  std::optional<StoredRule> out;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kColumns, " FROM rules.topic_rules WHERE name = $1"),
        std::string(name));
    if (!r.empty()) out = FromRow(r[0]);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<bool> PgRulesStore::Delete(absl::string_view name) {
  bool existed = false;
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r =
        tx.exec_params("DELETE FROM rules.topic_rules WHERE name = $1", std::string(name));
    existed = r.affected_rows() == 1;
    if (existed) Announce(tx, name);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return existed;
}

absl::StatusOr<std::vector<StoredRule>> PgRulesStore::List(absl::string_view after,
                                                           std::optional<std::string> topic,
                                                           std::optional<bool> disabled,
                                                           int limit) {
  std::vector<StoredRule> out;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kColumns,
                     " FROM rules.topic_rules WHERE name > $1 AND ($2::text IS NULL OR "
                     "topic_pattern = $2) AND ($3::boolean IS NULL OR disabled = $3) "
                     "ORDER BY name LIMIT $4"),
        std::string(after), topic, disabled, limit);
    for (const pqxx::row& row : r) out.push_back(FromRow(row));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace fleetcore::rules
