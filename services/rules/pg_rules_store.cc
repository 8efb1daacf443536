#include "services/rules/pg_rules_store.h"

#include "absl/strings/ascii.h"
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

constexpr char kDestinationColumns[] =
    "id::text, confirmation_url, status, status_reason, "
    "(extract(epoch from created_at) * 1000000)::bigint, "
    "(extract(epoch from updated_at) * 1000000)::bigint";

StoredDestination DestinationFromRow(const pqxx::row& r) {
  return StoredDestination{.id = r[0].c_str(),
                           .confirmation_url = r[1].c_str(),
                           .status = r[2].c_str(),
                           .status_reason = r[3].c_str(),
                           .created_at = absl::FromUnixMicros(r[4].as<int64_t>()),
                           .updated_at = absl::FromUnixMicros(r[5].as<int64_t>())};
}

void AnnounceDestination(pqxx::transaction_base& tx, absl::string_view id) {
  db::Notify(tx, kDestinationsChannel, nlohmann::json{{"destination", id}}.dump());
}

// A destination id is a UUID; anything else names none (and must not reach a uuid cast).
bool IsUuid(absl::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (id[i] == '-')) return false;
    if (!dash && !absl::ascii_isxdigit(static_cast<unsigned char>(id[i]))) return false;
  }
  return true;
}

absl::StatusOr<std::optional<StoredDestination>> QueryDestination(db::PgPool* pool,
                                                                  const std::string& where,
                                                                  const std::string& value) {
  std::optional<StoredDestination> out;
  absl::Status s = pool->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kDestinationColumns, " FROM rules.destinations WHERE ", where),
        value);
    if (!r.empty()) out = DestinationFromRow(r[0]);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
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

absl::Status PgRulesStore::InsertDestination(const StoredDestination& d,
                                             const std::string& token_sha256) {
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    tx.exec_params(
        "INSERT INTO rules.destinations (id, confirmation_url, status, status_reason, "
        "token_sha256, created_at, updated_at) VALUES ($1::uuid, $2, $3, $4, NULLIF($5, ''), "
        "to_timestamp($6::double precision / 1e6), to_timestamp($6::double precision / 1e6))",
        d.id, d.confirmation_url, d.status, d.status_reason, token_sha256,
        absl::ToUnixMicros(d.created_at));
    AnnounceDestination(tx, d.id);
    return absl::OkStatus();
  });
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(
        absl::StrCat("a topic rule destination for ", d.confirmation_url, " exists"));
  }
  return s;
}

absl::StatusOr<std::optional<StoredDestination>> PgRulesStore::GetDestination(
    absl::string_view id) {
  if (!IsUuid(id)) return std::optional<StoredDestination>();
  return QueryDestination(pool_, "id = $1::uuid", std::string(id));
}

absl::StatusOr<std::optional<StoredDestination>> PgRulesStore::FindDestination(
    absl::string_view confirmation_url) {
  return QueryDestination(pool_, "confirmation_url = $1", std::string(confirmation_url));
}

absl::StatusOr<std::vector<StoredDestination>> PgRulesStore::ListDestinations(
    absl::string_view after_id, int limit) {
  std::vector<StoredDestination> out;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kDestinationColumns,
                     " FROM rules.destinations WHERE id::text > $1 ORDER BY id::text LIMIT $2"),
        std::string(after_id), limit);
    for (const pqxx::row& row : r) out.push_back(DestinationFromRow(row));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<bool> PgRulesStore::ChangeDestination(absl::string_view id,
                                                     const DestinationChange& change) {
  if (!IsUuid(id)) return false;
  bool changed = false;
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_params(
        "UPDATE rules.destinations SET status = $4, status_reason = $5, "
        "token_sha256 = NULLIF($6, ''), updated_at = now() WHERE id = $1::uuid AND status = $2 "
        "AND ($3::text IS NULL OR token_sha256 = $3) AND ($7::text IS NULL OR status_reason = $7)",
        std::string(id), change.expected_status, change.expected_token_sha256, change.status,
        change.status_reason, change.token_sha256, change.expected_status_reason);
    changed = r.affected_rows() == 1;
    if (changed) AnnounceDestination(tx, id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return changed;
}

absl::StatusOr<std::optional<StoredDestination>> PgRulesStore::ConfirmDestination(
    const std::string& token_sha256) {
  std::optional<StoredDestination> out;
  if (token_sha256.empty()) return out;
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_params(
        absl::StrCat("UPDATE rules.destinations SET status = 'ENABLED', status_reason = '', "
                     "token_sha256 = NULL, updated_at = now() WHERE token_sha256 = $1 AND "
                     "status = 'IN_PROGRESS' RETURNING ",
                     kDestinationColumns),
        token_sha256);
    if (!r.empty()) {
      out = DestinationFromRow(r[0]);
      AnnounceDestination(tx, out->id);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<bool> PgRulesStore::DeleteDestination(absl::string_view id) {
  if (!IsUuid(id)) return false;
  bool existed = false;
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r =
        tx.exec_params("DELETE FROM rules.destinations WHERE id = $1::uuid", std::string(id));
    existed = r.affected_rows() == 1;
    if (existed) AnnounceDestination(tx, id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return existed;
}

}  // namespace fleetcore::rules
