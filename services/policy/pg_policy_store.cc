#include "services/policy/pg_policy_store.h"

#include "absl/strings/str_cat.h"
#include "common/db/pg_pool.h"
#include "common/db/pg_rows.h"
#include "nlohmann/json.hpp"

namespace fleetcore::policy_service {
namespace {

using db::FromMicros;
using db::Micros;
using db::MicrosOf;
using db::TimestampParam;

std::string S(absl::string_view v) { return std::string(v); }

const std::string kPolicyCols = absl::StrCat("name, default_version, next_version, generation, ",
                                             MicrosOf("created_at"), ", ", MicrosOf("updated_at"));
const std::string kVersionCols =
    absl::StrCat("policy_name, version, document, ", MicrosOf("created_at"));
const std::string kAuthorizerCols = absl::StrCat(
    "name, function_url, token_key_name, public_keys::text, active, "
    "signing_disabled, caching_for_http, is_default, ",
    MicrosOf("created_at"), ", ", MicrosOf("updated_at"));

PolicyInfo PolicyFromRow(const pqxx::row& r) {
  return {.name = r[0].as<std::string>(),
          .default_version = r[1].as<int>(),
          .next_version = r[2].as<int>(),
          .generation = r[3].as<int64_t>(),
          .created_at = FromMicros(r[4].as<int64_t>()),
          .updated_at = FromMicros(r[5].as<int64_t>())};
}

PolicyVersionRecord VersionFromRow(const pqxx::row& r) {
  return {.policy = r[0].as<std::string>(),
          .version = r[1].as<int>(),
          .document = r[2].as<std::string>(),
          .created_at = FromMicros(r[3].as<int64_t>())};
}

AttachedPolicy AttachedFromRow(const pqxx::row& r) {
  return {.policy = r[0].as<std::string>(),
          .version = r[1].as<int>(),
          .document = r[2].as<std::string>(),
          .target = r[3].is_null() ? "" : r[3].as<std::string>()};
}

Authorizer AuthorizerFromRow(const pqxx::row& r) {
  return {
      .name = r[0].as<std::string>(),
      .function_url = r[1].as<std::string>(),
      .token_key_name = r[2].as<std::string>(),
      .public_keys =
          nlohmann::json::parse(r[3].as<std::string>()).get<std::map<std::string, std::string>>(),
      .active = r[4].as<bool>(),
      .signing_disabled = r[5].as<bool>(),
      .caching_for_http = r[6].as<bool>(),
      .is_default = r[7].as<bool>(),
      .created_at = FromMicros(r[8].as<int64_t>()),
      .updated_at = FromMicros(r[9].as<int64_t>())};
}

std::string NameFromRow(const pqxx::row& r) { return r[0].as<std::string>(); }

const std::string kAccessKeyCols =
    absl::StrCat("access_key_id, user_name, sealed_secret, active, ", MicrosOf("created_at"));

AccessKey AccessKeyFromRow(const pqxx::row& r) {
  return {.id = r[0].as<std::string>(),
          .user_name = r[1].as<std::string>(),
          .sealed_secret = r[2].as<std::string>(),
          .active = r[3].as<bool>(),
          .created_at = FromMicros(r[4].as<int64_t>())};
}

const char* LockClause(Lock lock) { return lock == Lock::kUpdate ? " FOR UPDATE" : ""; }

std::string EventJson(const PolicyEvent& e) {
  nlohmann::json j{{"type", e.type}};
  if (!e.policy.empty()) j["policy"] = e.policy;
  if (!e.target.empty()) j["target"] = e.target;
  if (!e.authorizer.empty()) j["authorizer"] = e.authorizer;
  if (!e.access_key.empty()) j["accessKey"] = e.access_key;
  return j.dump();
}

class PgTx final : public PolicyTx, private db::TxStatements {
 public:
  explicit PgTx(pqxx::transaction_base& tx) : db::TxStatements(tx) {}

  absl::StatusOr<std::optional<PolicyInfo>> GetPolicy(absl::string_view name, Lock lock) override {
    return One<PolicyInfo>(absl::StrCat("SELECT ", kPolicyCols,
                                        " FROM policy.policies WHERE name = $1", LockClause(lock)),
                           PolicyFromRow, S(name));
  }
  absl::Status InsertPolicy(const PolicyInfo& p) override {
    return Exec(absl::StrCat("INSERT INTO policy.policies (name, default_version, next_version, "
                             "generation, created_at, updated_at) VALUES ($1, $2, $3, $4, ",
                             TimestampParam(5), ", ", TimestampParam(6), ")"),
                p.name, p.default_version, p.next_version, p.generation, Micros(p.created_at),
                Micros(p.updated_at));
  }
  absl::Status UpdatePolicy(const PolicyInfo& p) override {
    return Exec(absl::StrCat("UPDATE policy.policies SET default_version = $2, next_version = $3, "
                             "generation = $4, updated_at = ",
                             TimestampParam(5), " WHERE name = $1"),
                p.name, p.default_version, p.next_version, p.generation, Micros(p.updated_at));
  }
  absl::Status DeletePolicy(absl::string_view name) override {
    return Exec("DELETE FROM policy.policies WHERE name = $1", S(name));
  }
  absl::StatusOr<std::vector<PolicyVersionRecord>> Versions(absl::string_view name) override {
    return Rows<PolicyVersionRecord>(
        absl::StrCat("SELECT ", kVersionCols,
                     " FROM policy.policy_versions WHERE policy_name = $1 ORDER BY version"),
        VersionFromRow, S(name));
  }
  absl::Status InsertVersion(const PolicyVersionRecord& v) override {
    return Exec(absl::StrCat("INSERT INTO policy.policy_versions (policy_name, version, document, "
                             "created_at) VALUES ($1, $2, $3, ",
                             TimestampParam(4), ")"),
                v.policy, v.version, v.document, Micros(v.created_at));
  }
  absl::Status DeleteVersion(absl::string_view name, int version) override {
    return Exec("DELETE FROM policy.policy_versions WHERE policy_name = $1 AND version = $2",
                S(name), version);
  }
  absl::StatusOr<int64_t> CountTargetsOfPolicy(absl::string_view policy) override {
    return Guard([&]() -> absl::StatusOr<int64_t> {
      return tx()
          .exec_params1("SELECT count(*) FROM policy.attachments WHERE policy_name = $1",
                        S(policy))[0]
          .as<int64_t>();
    });
  }
  absl::StatusOr<std::vector<std::string>> PoliciesOfTarget(absl::string_view target) override {
    return Rows<std::string>(
        "SELECT policy_name FROM policy.attachments WHERE target = $1 ORDER BY 1", NameFromRow,
        S(target));
  }
  absl::Status LockTarget(absl::string_view target) override {
    return Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 11))", S(target));
  }
  absl::Status InsertAttachment(absl::string_view policy, absl::string_view target) override {
    return Exec(
        "INSERT INTO policy.attachments (policy_name, target) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        S(policy), S(target));
  }
  absl::StatusOr<bool> DeleteAttachment(absl::string_view policy,
                                        absl::string_view target) override {
    absl::StatusOr<int64_t> n =
        ExecCount("DELETE FROM policy.attachments WHERE policy_name = $1 AND target = $2",
                  S(policy), S(target));
    if (!n.ok()) return n.status();
    return *n > 0;
  }
  absl::StatusOr<std::optional<Authorizer>> GetAuthorizer(absl::string_view name,
                                                          Lock lock) override {
    return One<Authorizer>(
        absl::StrCat("SELECT ", kAuthorizerCols, " FROM policy.authorizers WHERE name = $1",
                     LockClause(lock)),
        AuthorizerFromRow, S(name));
  }
  absl::Status InsertAuthorizer(const Authorizer& a) override {
    return Exec(absl::StrCat("INSERT INTO policy.authorizers (name, function_url, token_key_name, "
                             "public_keys, active, signing_disabled, caching_for_http, is_default, "
                             "created_at, updated_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, "
                             "false, ",
                             TimestampParam(8), ", ", TimestampParam(9), ")"),
                a.name, a.function_url, a.token_key_name, nlohmann::json(a.public_keys).dump(),
                a.active, a.signing_disabled, a.caching_for_http, Micros(a.created_at),
                Micros(a.updated_at));
  }
  absl::Status UpdateAuthorizer(const Authorizer& a) override {
    return Exec(absl::StrCat("UPDATE policy.authorizers SET function_url = $2, token_key_name = "
                             "$3, public_keys = $4::jsonb, active = $5, caching_for_http = $6, "
                             "updated_at = ",
                             TimestampParam(7), " WHERE name = $1"),
                a.name, a.function_url, a.token_key_name, nlohmann::json(a.public_keys).dump(),
                a.active, a.caching_for_http, Micros(a.updated_at));
  }
  absl::Status DeleteAuthorizer(absl::string_view name) override {
    return Exec("DELETE FROM policy.authorizers WHERE name = $1", S(name));
  }
  absl::StatusOr<int64_t> CountAuthorizers(bool active_only) override {
    return Guard([&]() -> absl::StatusOr<int64_t> {
      return tx()
          .exec_params1("SELECT count(*) FROM policy.authorizers WHERE active OR NOT $1",
                        active_only)[0]
          .as<int64_t>();
    });
  }
  absl::Status SetDefaultAuthorizer(absl::string_view name) override {
    // Concurrent changes of the default queue here; row locks alone would let two of them
    // each clear the old default and collide on the one-default index.
    absl::Status s =
        Exec("SELECT pg_advisory_xact_lock(hashtextextended('default authorizer', 13))");
    if (!s.ok()) return s;
    s = Exec("UPDATE policy.authorizers SET is_default = false WHERE is_default AND name <> $1",
             S(name));
    if (!s.ok()) return s;
    absl::StatusOr<int64_t> n =
        ExecCount("UPDATE policy.authorizers SET is_default = true WHERE name = $1", S(name));
    if (!n.ok()) return n.status();
    if (*n == 0) {
      return absl::NotFoundError(absl::StrCat("authorizer \"", name, "\" does not exist"));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<AccessKey>> GetAccessKey(absl::string_view id,
                                                        Lock lock) override {
    return One<AccessKey>(absl::StrCat("SELECT ", kAccessKeyCols,
                                       " FROM policy.access_keys WHERE access_key_id = $1",
                                       LockClause(lock)),
                          AccessKeyFromRow, S(id));
  }
  absl::Status InsertAccessKey(const AccessKey& k) override {
    return Exec(absl::StrCat("INSERT INTO policy.access_keys (access_key_id, user_name, "
                             "sealed_secret, active, created_at) VALUES ($1, $2, $3, $4, ",
                             TimestampParam(5), ")"),
                k.id, k.user_name, k.sealed_secret, k.active, Micros(k.created_at));
  }
  absl::Status SetAccessKeyActive(absl::string_view id, bool active) override {
    return Exec("UPDATE policy.access_keys SET active = $2 WHERE access_key_id = $1", S(id),
                active);
  }
  absl::Status SetAccessKeySecret(absl::string_view id, absl::string_view sealed) override {
    return Exec("UPDATE policy.access_keys SET sealed_secret = $2 WHERE access_key_id = $1",
                S(id), S(sealed));
  }
  absl::Status DeleteAccessKey(absl::string_view id) override {
    return Exec("DELETE FROM policy.access_keys WHERE access_key_id = $1", S(id));
  }
  absl::StatusOr<int64_t> CountAccessKeysOfUser(absl::string_view user_name) override {
    return Guard([&]() -> absl::StatusOr<int64_t> {
      return tx()
          .exec_params1("SELECT count(*) FROM policy.access_keys WHERE user_name = $1",
                        S(user_name))[0]
          .as<int64_t>();
    });
  }
  void Publish(const PolicyEvent& e) override { events_.push_back(e); }

  void Finish(bool body_ok) {
    db::TxStatements::Finish();
    if (body_ok) {
      for (const PolicyEvent& e : events_) db::Notify(tx(), kPolicyChannel, EventJson(e));
    }
  }

 private:
  std::vector<PolicyEvent> events_;
};

}  // namespace

absl::Status PgPolicyStore::Transact(absl::FunctionRef<absl::Status(PolicyTx&)> body) {
  return pool_->Transact([&](pqxx::transaction_base& t) -> absl::Status {
    PgTx tx(t);
    absl::Status s = body(tx);
    tx.Finish(s.ok());
    return s;
  });
}

absl::StatusOr<std::optional<PolicyInfo>> PgPolicyStore::GetPolicy(absl::string_view name) {
  return db::QueryOne<PolicyInfo>(
      *pool_, absl::StrCat("SELECT ", kPolicyCols, " FROM policy.policies WHERE name = $1"),
      PolicyFromRow, S(name));
}

absl::StatusOr<std::optional<PolicyVersionRecord>> PgPolicyStore::GetVersion(absl::string_view name,
                                                                             int version) {
  return db::QueryOne<PolicyVersionRecord>(
      *pool_,
      absl::StrCat("SELECT ", kVersionCols,
                   " FROM policy.policy_versions WHERE policy_name = $1 AND version = $2"),
      VersionFromRow, S(name), version);
}

absl::StatusOr<std::vector<PolicyVersionRecord>> PgPolicyStore::Versions(absl::string_view name) {
  return db::QueryRows<PolicyVersionRecord>(
      *pool_,
      absl::StrCat("SELECT ", kVersionCols,
                   " FROM policy.policy_versions WHERE policy_name = $1 ORDER BY version"),
      VersionFromRow, S(name));
}

absl::StatusOr<std::vector<std::string>> PgPolicyStore::ListPolicies(absl::string_view after,
                                                                     int limit) {
  return db::QueryRows<std::string>(
      *pool_, "SELECT name FROM policy.policies WHERE name > $1 ORDER BY name LIMIT $2",
      NameFromRow, S(after), limit);
}

absl::StatusOr<std::vector<std::string>> PgPolicyStore::PoliciesOfTargets(
    const std::vector<std::string>& targets, absl::string_view after, int limit) {
  return db::QueryRows<std::string>(
      *pool_,
      "SELECT DISTINCT policy_name FROM policy.attachments WHERE target = ANY($1::text[]) "
      "AND policy_name > $2 ORDER BY policy_name LIMIT $3",
      NameFromRow, db::TextArray(targets), S(after), limit);
}

absl::StatusOr<std::vector<std::string>> PgPolicyStore::TargetsOfPolicy(absl::string_view policy,
                                                                        absl::string_view after,
                                                                        int limit) {
  return db::QueryRows<std::string>(
      *pool_,
      "SELECT target FROM policy.attachments WHERE policy_name = $1 AND target > $2 "
      "ORDER BY target LIMIT $3",
      NameFromRow, S(policy), S(after), limit);
}

absl::StatusOr<std::vector<AttachedPolicy>> PgPolicyStore::AttachedDefaults(
    const std::vector<std::string>& targets) {
  return db::QueryRows<AttachedPolicy>(
      *pool_,
      "SELECT p.name, v.version, v.document, a.target FROM policy.attachments a "
      "JOIN policy.policies p ON p.name = a.policy_name "
      "JOIN policy.policy_versions v ON v.policy_name = p.name AND v.version = p.default_version "
      "WHERE a.target = ANY($1::text[]) ORDER BY p.name, a.target",
      AttachedFromRow, db::TextArray(targets));
}

absl::StatusOr<std::vector<AttachedPolicy>> PgPolicyStore::Defaults(
    const std::vector<std::string>& policies) {
  return db::QueryRows<AttachedPolicy>(
      *pool_,
      "SELECT p.name, v.version, v.document, NULL FROM policy.policies p "
      "JOIN policy.policy_versions v ON v.policy_name = p.name AND v.version = p.default_version "
      "WHERE p.name = ANY($1::text[]) ORDER BY p.name",
      AttachedFromRow, db::TextArray(policies));
}

absl::StatusOr<std::optional<Authorizer>> PgPolicyStore::GetAuthorizer(absl::string_view name) {
  return db::QueryOne<Authorizer>(
      *pool_, absl::StrCat("SELECT ", kAuthorizerCols, " FROM policy.authorizers WHERE name = $1"),
      AuthorizerFromRow, S(name));
}

absl::StatusOr<std::optional<Authorizer>> PgPolicyStore::DefaultAuthorizer() {
  return db::QueryOne<Authorizer>(
      *pool_, absl::StrCat("SELECT ", kAuthorizerCols, " FROM policy.authorizers WHERE is_default"),
      AuthorizerFromRow);
}

absl::StatusOr<std::vector<Authorizer>> PgPolicyStore::ListAuthorizers(std::optional<bool> active,
                                                                       absl::string_view after,
                                                                       int limit) {
  return db::QueryRows<Authorizer>(
      *pool_,
      absl::StrCat("SELECT ", kAuthorizerCols, " FROM policy.authorizers WHERE name > $1 ",
                   "AND ($2 = '' OR active = ($2 = 'active')) ORDER BY name LIMIT $3"),
      AuthorizerFromRow, S(after),
      std::string(active.has_value() ? (*active ? "active" : "inactive") : ""), limit);
}

absl::StatusOr<std::optional<AccessKey>> PgPolicyStore::GetAccessKey(absl::string_view id) {
  return db::QueryOne<AccessKey>(
      *pool_,
      absl::StrCat("SELECT ", kAccessKeyCols, " FROM policy.access_keys WHERE access_key_id = $1"),
      AccessKeyFromRow, S(id));
}

absl::StatusOr<std::vector<AccessKey>> PgPolicyStore::ListAccessKeys(absl::string_view user_name,
                                                                     absl::string_view after,
                                                                     int limit) {
  return db::QueryRows<AccessKey>(
      *pool_,
      absl::StrCat("SELECT ", kAccessKeyCols, " FROM policy.access_keys WHERE ",
                   "($1 = '' OR user_name = $1) AND access_key_id > $2 ",
                   "ORDER BY access_key_id LIMIT $3"),
      AccessKeyFromRow, S(user_name), S(after), limit);
}

std::optional<PolicyEvent> PgPolicyStore::ParseEvent(absl::string_view payload) {
  auto j = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return std::nullopt;
  auto field = [&](const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  return PolicyEvent{.type = field("type"),
                     .policy = field("policy"),
                     .target = field("target"),
                     .authorizer = field("authorizer"),
                     .access_key = field("accessKey")};
}

}  // namespace fleetcore::policy_service
