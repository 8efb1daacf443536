#include "services/registry/pg_registry_store.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/db/pg_pool.h"
#include "common/db/pg_rows.h"
#include "nlohmann/json.hpp"
#include "pqxx/pqxx"
#include "services/registry/registry_events.h"

namespace fleetcore::registry {
namespace {

// Columns and conversions shared by every query of a table.
constexpr char kThingCols[] =
    "name, id::text, coalesce(thing_type, ''), attributes::text, version, "
    "(extract(epoch FROM created_at) * 1000000)::bigint, "
    "(extract(epoch FROM updated_at) * 1000000)::bigint, coalesce(billing_group, '')";
constexpr int kThingColCount = 8;
constexpr char kTypeCols[] =
    "name, id::text, description, searchable_attributes::text, deprecated, "
    "coalesce((extract(epoch FROM deprecated_at) * 1000000)::bigint, 0), "
    "(extract(epoch FROM created_at) * 1000000)::bigint, propagating_attributes::text";
constexpr char kGroupCols[] =
    "g.name, g.id::text, coalesce(g.parent, ''), g.root, g.depth, g.description, "
    "g.attributes::text, g.version, (extract(epoch FROM g.created_at) * 1000000)::bigint, "
    "coalesce(g.query_string, ''), g.query_version";
constexpr int kGroupColCount = 11;
constexpr char kBillingGroupCols[] =
    "name, id::text, description, version, (extract(epoch FROM created_at) * 1000000)::bigint";
using db::FromMicros;
using db::Micros;
using db::TimestampParam;

std::string AttributesJson(const Attributes& a) { return nlohmann::json(a).dump(); }

Attributes ParseAttributes(const std::string& text) {
  return nlohmann::json::parse(text).get<Attributes>();
}

// LIKE pattern matching values that start with `prefix`.
std::string LikePrefix(absl::string_view prefix) {
  return absl::StrCat(absl::StrReplaceAll(prefix, {{"\\", "\\\\"}, {"%", "\\%"}, {"_", "\\_"}}),
                      "%");
}

Thing ThingFromRow(const pqxx::row& r) {
  return Thing{.name = r[0].as<std::string>(),
               .id = r[1].as<std::string>(),
               .type_name = r[2].as<std::string>(),
               .attributes = ParseAttributes(r[3].as<std::string>()),
               .version = r[4].as<int64_t>(),
               .created_at = FromMicros(r[5].as<int64_t>()),
               .updated_at = FromMicros(r[6].as<int64_t>()),
               .billing_group = r[7].as<std::string>()};
}

BillingGroup BillingGroupFromRow(const pqxx::row& r) {
  return BillingGroup{.name = r[0].as<std::string>(),
                      .id = r[1].as<std::string>(),
                      .description = r[2].as<std::string>(),
                      .version = r[3].as<int64_t>(),
                      .created_at = FromMicros(r[4].as<int64_t>())};
}

ThingType TypeFromRow(const pqxx::row& r) {
  ThingType t{.name = r[0].as<std::string>(),
              .id = r[1].as<std::string>(),
              .description = r[2].as<std::string>(),
              .searchable_attributes =
                  nlohmann::json::parse(r[3].as<std::string>()).get<std::vector<std::string>>(),
              .propagating_attributes = ParsePropagatingAttributesJson(r[7].c_str()),
              .deprecated = r[4].as<bool>(),
              .created_at = FromMicros(r[6].as<int64_t>())};
  if (t.deprecated) {
    t.deprecated_at = FromMicros(r[5].as<int64_t>());
  }
  return t;
}

ThingGroup GroupFromRow(const pqxx::row& r) {
  return ThingGroup{.name = r[0].as<std::string>(),
                    .id = r[1].as<std::string>(),
                    .parent = r[2].as<std::string>(),
                    .root = r[3].as<std::string>(),
                    .depth = r[4].as<int>(),
                    .description = r[5].as<std::string>(),
                    .attributes = ParseAttributes(r[6].as<std::string>()),
                    .version = r[7].as<int64_t>(),
                    .created_at = FromMicros(r[8].as<int64_t>()),
                    .query_string = r[9].as<std::string>(),
                    .query_version = r[10].as<std::string>()};
}

const char* LockClause(Lock lock) {
  switch (lock) {
    case Lock::kNone:
      return "";
    case Lock::kShare:
      return " FOR SHARE";
    case Lock::kUpdate:
      return " FOR UPDATE";
  }
  return "";
}

std::string EventJson(const RegistryEvent& e) {
  nlohmann::json j;
  j["type"] = e.type;
  if (!e.thing.empty()) j["thing"] = e.thing;
  if (!e.thing_group.empty()) j["thingGroup"] = e.thing_group;
  if (!e.thing_type.empty()) j["thingType"] = e.thing_type;
  if (!e.principal.empty()) j["principal"] = e.principal;
  return j.dump();
}

std::string S(absl::string_view v) { return std::string(v); }

// An attribute of row `alias` (t or g) as a field (index_query.h): one by its field name
// ("attributes.<name>"), or every attribute value for a term without a field.
SqlFieldSource AttributeSql(absl::string_view alias, absl::string_view field, SqlParams& params) {
  if (field.empty()) {
    return {
        .value = "a.value",
        .from_where = absl::StrCat("FROM jsonb_each_text(", alias, ".attributes) a WHERE true")};
  }
  const absl::string_view name = absl::StripPrefix(field, "attributes.");
  return {.value =
              absl::StrCat("(", alias, ".attributes ->> ", params.Add(std::string(name)), ")")};
}

// How the fields of the two indexes (index_query.h) read in SQL, over `t`
// (registry.things) and `g` (registry.thing_groups).
std::vector<SqlFieldSource> ThingFieldSql(absl::string_view field, SqlParams& params) {
  const SqlFieldSource groups{
      .value = "m.group_name",
      .from_where = "FROM registry.thing_group_members m WHERE m.thing_name = t.name"};
  if (field == kRegistryVersionField) return {{.value = "t.version::text"}};
  if (field == "thingName") return {{.value = "t.name"}};
  if (field == "thingId") return {{.value = "t.id::text"}};
  if (field == "thingTypeName") return {{.value = "t.thing_type"}};
  if (field == "thingGroupNames") return {groups};
  if (!field.empty()) return {AttributeSql("t", field, params)};
  return {{.value = "t.name"},
          {.value = "t.id::text"},
          {.value = "t.thing_type"},
          groups,
          AttributeSql("t", "", params)};
}

// The ancestors of `g`, as rows of up(name).
constexpr char kAncestorsCte[] =
    "WITH RECURSIVE up(name) AS (SELECT g.parent UNION ALL SELECT p.parent "
    "FROM registry.thing_groups p JOIN up ON p.name = up.name) ";

std::vector<SqlFieldSource> GroupFieldSql(absl::string_view field, SqlParams& params) {
  const SqlFieldSource words{
      .value = "w",
      .from_where = "FROM regexp_split_to_table(g.description, '\\s+') w WHERE w <> ''"};
  const SqlFieldSource parents{
      .value = "up.name", .from_where = "FROM up WHERE up.name IS NOT NULL", .with = kAncestorsCte};
  if (field == kRegistryVersionField) return {{.value = "g.version::text"}};
  if (field == "thingGroupName") return {{.value = "g.name"}};
  if (field == "thingGroupId") return {{.value = "g.id::text"}};
  if (field == "thingGroupDescription") return {words};
  if (field == "parentGroupNames") return {parents};
  if (!field.empty()) return {AttributeSql("g", field, params)};
  return {
      {.value = "g.name"}, {.value = "g.id::text"}, words, parents, AttributeSql("g", "", params)};
}

std::string NameFromRow(const pqxx::row& r) { return r[0].as<std::string>(); }

PrincipalAttachment AttachmentFromRow(const pqxx::row& r) {
  return {.thing_name = r[0].as<std::string>(),
          .principal = r[1].as<std::string>(),
          .type = r[2].as<bool>() ? PrincipalType::kExclusive : PrincipalType::kNonExclusive};
}

// The configuration in the rows of registry.indexing_configuration.
IndexingConfiguration IndexingConfigurationOf(const pqxx::result& rows) {
  IndexingConfiguration c;
  for (const pqxx::row& r : rows) {
    IndexingMode(c, r[0].as<std::string>()) = r[1].as<std::string>();
  }
  return c;
}

// The RegistryTx over one pqxx transaction (see db::TxStatements for how exceptions are
// kept from the core).
class PgTx final : public RegistryTx, private db::TxStatements {
 public:
  explicit PgTx(pqxx::transaction_base& tx) : db::TxStatements(tx), tx_(tx) {}

  absl::StatusOr<std::optional<Thing>> GetThing(absl::string_view name, Lock lock) override {
    return One<Thing>(absl::StrCat("SELECT ", kThingCols, " FROM registry.things WHERE name = $1",
                                   LockClause(lock)),
                      ThingFromRow, S(name));
  }

  absl::Status InsertThing(const Thing& t) override {
    return Exec(
        absl::StrCat("INSERT INTO registry.things (name, id, thing_type, attributes, version, "
                     "created_at, updated_at, billing_group) VALUES ($1, $2::uuid, "
                     "nullif($3, ''), $4::jsonb, $5, ",
                     TimestampParam(6), ", ", TimestampParam(7), ", nullif($8, ''))"),
        t.name, t.id, t.type_name, AttributesJson(t.attributes), t.version, Micros(t.created_at),
        Micros(t.updated_at), t.billing_group);
  }

  absl::Status UpdateThing(const Thing& t) override {
    return Exec(absl::StrCat("UPDATE registry.things SET thing_type = nullif($2, ''), "
                             "attributes = $3::jsonb, version = $4, updated_at = ",
                             TimestampParam(5), " WHERE name = $1"),
                t.name, t.type_name, AttributesJson(t.attributes), t.version, Micros(t.updated_at));
  }

  absl::Status DeleteThing(absl::string_view name) override {
    return Exec("DELETE FROM registry.things WHERE name = $1", S(name));
  }

  absl::StatusOr<int64_t> CountThingsOfType(absl::string_view type) override {
    return Guard([&]() -> absl::StatusOr<int64_t> {
      return tx_
          .exec_params1("SELECT count(*) FROM registry.things WHERE thing_type = $1", S(type))[0]
          .as<int64_t>();
    });
  }

  absl::StatusOr<std::optional<ThingType>> GetThingType(absl::string_view name,
                                                        Lock lock) override {
    return One<ThingType>(
        absl::StrCat("SELECT ", kTypeCols, " FROM registry.thing_types WHERE name = $1",
                     LockClause(lock)),
        TypeFromRow, S(name));
  }

  absl::Status InsertThingType(const ThingType& t) override {
    return Exec(
        absl::StrCat("INSERT INTO registry.thing_types (name, id, description, "
                     "searchable_attributes, propagating_attributes, deprecated, created_at) "
                     "VALUES ($1, $2::uuid, $3, $4::jsonb, $5::jsonb, false, ",
                     TimestampParam(6), ")"),
        t.name, t.id, t.description, nlohmann::json(t.searchable_attributes).dump(),
        PropagatingAttributesJson(t.propagating_attributes), Micros(t.created_at));
  }

  absl::Status UpdateThingType(const ThingType& t) override {
    return Exec(absl::StrCat("UPDATE registry.thing_types SET deprecated = $2, deprecated_at = "
                             "CASE WHEN $2 THEN ",
                             TimestampParam(3),
                             " END, description = $4, searchable_attributes = $5::jsonb, "
                             "propagating_attributes = $6::jsonb WHERE name = $1"),
                t.name, t.deprecated, Micros(t.deprecated_at), t.description,
                nlohmann::json(t.searchable_attributes).dump(),
                PropagatingAttributesJson(t.propagating_attributes));
  }

  absl::Status DeleteThingType(absl::string_view name) override {
    return Exec("DELETE FROM registry.thing_types WHERE name = $1", S(name));
  }

  absl::StatusOr<std::optional<ThingGroup>> GetGroup(absl::string_view name, Lock lock) override {
    return One<ThingGroup>(
        absl::StrCat("SELECT ", kGroupCols, " FROM registry.thing_groups g WHERE g.name = $1",
                     LockClause(lock)),
        GroupFromRow, S(name));
  }

  absl::Status InsertGroup(const ThingGroup& g) override {
    return Exec(absl::StrCat("INSERT INTO registry.thing_groups (name, id, parent, root, depth, "
                             "description, attributes, version, created_at, query_string, "
                             "query_version) VALUES ($1, $2::uuid, nullif($3, ''), $4, $5, $6, "
                             "$7::jsonb, $8, ",
                             TimestampParam(9), ", nullif($10, ''), $11)"),
                g.name, g.id, g.parent, g.root, g.depth, g.description,
                AttributesJson(g.attributes), g.version, Micros(g.created_at), g.query_string,
                g.query_version);
  }

  absl::Status UpdateGroup(const ThingGroup& g) override {
    return Exec(
        "UPDATE registry.thing_groups SET description = $2, attributes = $3::jsonb, "
        "version = $4, query_string = nullif($5, ''), query_version = $6 WHERE name = $1",
        g.name, g.description, AttributesJson(g.attributes), g.version, g.query_string,
        g.query_version);
  }

  absl::Status DeleteGroup(absl::string_view name) override {
    return Exec("DELETE FROM registry.thing_groups WHERE name = $1", S(name));
  }

  absl::StatusOr<int64_t> CountChildGroups(absl::string_view name) override {
    return Guard([&]() -> absl::StatusOr<int64_t> {
      return tx_
          .exec_params1("SELECT count(*) FROM registry.thing_groups WHERE parent = $1", S(name))[0]
          .as<int64_t>();
    });
  }

  absl::StatusOr<int64_t> CountDynamicGroups() override {
    return Guard([&]() -> absl::StatusOr<int64_t> {
      return tx_
          .exec1("SELECT count(*) FROM registry.thing_groups WHERE query_string IS NOT NULL")[0]
          .as<int64_t>();
    });
  }

  absl::Status LockCount(absl::string_view what) override {
    return Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 11))", S(what));
  }

  absl::StatusOr<std::vector<ThingGroup>> GroupsOfThing(absl::string_view thing) override {
    return Rows<ThingGroup>(absl::StrCat("SELECT ", kGroupCols,
                                         " FROM registry.thing_groups g JOIN "
                                         "registry.thing_group_members m ON m.group_name = g.name "
                                         "WHERE m.thing_name = $1 ORDER BY g.name"),
                            GroupFromRow, S(thing));
  }

  absl::Status AddMember(absl::string_view group, absl::string_view thing) override {
    return Exec(
        "INSERT INTO registry.thing_group_members (group_name, thing_name) "
        "VALUES ($1, $2) ON CONFLICT DO NOTHING",
        S(group), S(thing));
  }

  absl::Status RemoveMember(absl::string_view group, absl::string_view thing) override {
    return Exec(
        "DELETE FROM registry.thing_group_members WHERE group_name = $1 AND "
        "thing_name = $2",
        S(group), S(thing));
  }

  absl::StatusOr<std::optional<BillingGroup>> GetBillingGroup(absl::string_view name,
                                                              Lock lock) override {
    return One<BillingGroup>(
        absl::StrCat("SELECT ", kBillingGroupCols, " FROM registry.billing_groups WHERE name = $1",
                     LockClause(lock)),
        BillingGroupFromRow, S(name));
  }

  absl::Status InsertBillingGroup(const BillingGroup& g) override {
    return Exec(absl::StrCat("INSERT INTO registry.billing_groups (name, id, description, "
                             "version, created_at) VALUES ($1, $2::uuid, $3, $4, ",
                             TimestampParam(5), ")"),
                g.name, g.id, g.description, g.version, Micros(g.created_at));
  }

  absl::Status UpdateBillingGroup(const BillingGroup& g) override {
    return Exec("UPDATE registry.billing_groups SET description = $2, version = $3 WHERE name = $1",
                g.name, g.description, g.version);
  }

  absl::Status DeleteBillingGroup(absl::string_view name) override {
    return Exec("DELETE FROM registry.billing_groups WHERE name = $1", S(name));
  }

  absl::StatusOr<int64_t> CountBillingGroups() override {
    return Guard([&]() -> absl::StatusOr<int64_t> {
      return tx_.exec1("SELECT count(*) FROM registry.billing_groups")[0].as<int64_t>();
    });
  }

  absl::Status SetThingBillingGroup(absl::string_view thing, absl::string_view group) override {
    return Exec("UPDATE registry.things SET billing_group = nullif($2, '') WHERE name = $1",
                S(thing), S(group));
  }

  absl::StatusOr<std::vector<PrincipalAttachment>> AttachmentsOfThing(
      absl::string_view thing) override {
    return Attachments("thing_name", thing);
  }

  absl::StatusOr<std::vector<PrincipalAttachment>> AttachmentsOfPrincipal(
      absl::string_view principal) override {
    return Attachments("principal", principal);
  }

  absl::Status LockPrincipal(absl::string_view principal) override {
    return Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", S(principal));
  }

  absl::Status PutAttachment(const PrincipalAttachment& a) override {
    return Exec(
        "INSERT INTO registry.thing_principals (thing_name, principal, exclusive) "
        "VALUES ($1, $2, $3) ON CONFLICT (thing_name, principal) DO UPDATE SET "
        "exclusive = EXCLUDED.exclusive",
        a.thing_name, a.principal, a.type == PrincipalType::kExclusive);
  }

  absl::Status DeleteAttachment(absl::string_view thing, absl::string_view principal) override {
    return Exec(
        "DELETE FROM registry.thing_principals WHERE thing_name = $1 AND "
        "principal = $2",
        S(thing), S(principal));
  }

  absl::Status PutEventConfiguration(absl::string_view type, bool enabled,
                                     absl::Time now) override {
    return Exec(absl::StrCat("INSERT INTO registry.event_configurations "
                             "(event_type, enabled, created_at, updated_at) VALUES ($1, $2, ",
                             db::TimestampParam(3), ", ", db::TimestampParam(3),
                             ") ON CONFLICT (event_type) DO UPDATE SET "
                             "enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at"),
                S(type), enabled, db::Micros(now));
  }

  absl::StatusOr<IndexingConfiguration> GetIndexingConfiguration(Lock lock) override {
    return Guard([&]() -> absl::StatusOr<IndexingConfiguration> {
      return IndexingConfigurationOf(tx_.exec(absl::StrCat(
          "SELECT index_name, mode FROM registry.indexing_configuration", LockClause(lock))));
    });
  }

  absl::Status PutIndexingMode(absl::string_view index, absl::string_view mode,
                               absl::Time now) override {
    return Exec(absl::StrCat("UPDATE registry.indexing_configuration SET mode = $2, updated_at = ",
                             TimestampParam(3), " WHERE index_name = $1"),
                S(index), S(mode), Micros(now));
  }

  void Publish(const RegistryEvent& e) override { events_.push_back(e); }

  // After the body: re-throws what the pool must see, then sends the events.
  void Finish(bool body_ok) {
    db::TxStatements::Finish();
    if (body_ok) {
      for (const RegistryEvent& e : events_) {
        db::Notify(tx_, kRegistryChannel, EventJson(e));
      }
    }
  }

 private:
  absl::StatusOr<std::vector<PrincipalAttachment>> Attachments(const char* column,
                                                               absl::string_view value) {
    return Rows<PrincipalAttachment>(
        absl::StrCat("SELECT thing_name, principal, exclusive FROM registry.thing_principals "
                     "WHERE ",
                     column, " = $1 ORDER BY 1, 2"),
        AttachmentFromRow, S(value));
  }

  pqxx::transaction_base& tx_;
  std::vector<RegistryEvent> events_;
};

}  // namespace

std::optional<RegistryEvent> PgRegistryStore::ParseEvent(absl::string_view payload) {
  auto j = nlohmann::json::parse(payload.begin(), payload.end(), nullptr,
                                 /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return std::nullopt;
  }
  auto field = [&](const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  return RegistryEvent{.type = field("type"),
                       .thing = field("thing"),
                       .thing_group = field("thingGroup"),
                       .thing_type = field("thingType"),
                       .principal = field("principal")};
}

void PgRegistryStore::PrepareConnection(pqxx::connection_base& conn) {
  conn.prepare("registry_get_thing",
               absl::StrCat("SELECT ", kThingCols, " FROM registry.things WHERE name = $1"));
}

absl::Status PgRegistryStore::Transact(absl::FunctionRef<absl::Status(RegistryTx&)> body) {
  return pool_->Transact([&](pqxx::transaction_base& t) -> absl::Status {
    PgTx tx(t);
    absl::Status s = body(tx);
    tx.Finish(s.ok());
    return s;
  });
}

absl::StatusOr<std::optional<Thing>> PgRegistryStore::GetThing(absl::string_view name) {
  std::optional<Thing> out;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("registry_get_thing", S(name));
    if (!r.empty()) {
      out = ThingFromRow(r[0]);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<Thing>> PgRegistryStore::ListThings(const ThingQuery& q,
                                                               absl::string_view after, int limit) {
  // Each filter is skipped when its parameter is empty; Postgres plans the statement with
  // the actual values, so the skipped ones cost nothing.
  return db::QueryRows<Thing>(
      *pool_,
      absl::StrCat(
          "SELECT ", kThingCols,
          " FROM registry.things WHERE name > $1 "
          "AND ($2 = '' OR thing_type = $2) "
          "AND ($3 = '' OR ($4 = '' AND attributes ? $3) "
          "     OR ($4 <> '' AND NOT $5 AND attributes @> jsonb_build_object($3::text, $4::text)) "
          "     OR ($4 <> '' AND $5 AND attributes ->> $3 LIKE $6)) "
          "ORDER BY name LIMIT $7"),
      ThingFromRow, S(after), q.type_name, q.attribute_name, q.attribute_value, q.prefix_value,
      LikePrefix(q.attribute_value), limit);
}

absl::StatusOr<std::optional<ThingType>> PgRegistryStore::GetThingType(absl::string_view name) {
  return db::QueryOne<ThingType>(
      *pool_, absl::StrCat("SELECT ", kTypeCols, " FROM registry.thing_types WHERE name = $1"),
      TypeFromRow, S(name));
}

absl::StatusOr<std::vector<ThingType>> PgRegistryStore::ListThingTypes(absl::string_view name,
                                                                       absl::string_view after,
                                                                       int limit) {
  return db::QueryRows<ThingType>(*pool_,
                                  absl::StrCat("SELECT ", kTypeCols,
                                               " FROM registry.thing_types WHERE name > $1 "
                                               "AND ($2 = '' OR name = $2) ORDER BY name LIMIT $3"),
                                  TypeFromRow, S(after), S(name), limit);
}

absl::StatusOr<std::optional<ThingGroup>> PgRegistryStore::GetGroup(absl::string_view name) {
  return db::QueryOne<ThingGroup>(
      *pool_,
      absl::StrCat("SELECT ", kGroupCols, " FROM registry.thing_groups g WHERE g.name = $1"),
      GroupFromRow, S(name));
}

absl::StatusOr<std::vector<ThingGroup>> PgRegistryStore::DynamicGroups() {
  return db::QueryRows<ThingGroup>(
      *pool_,
      absl::StrCat(
          "SELECT ", kGroupCols,
          " FROM registry.thing_groups g WHERE g.query_string IS NOT NULL ORDER BY g.name"),
      GroupFromRow);
}

absl::StatusOr<std::optional<BillingGroup>> PgRegistryStore::GetBillingGroup(
    absl::string_view name) {
  return db::QueryOne<BillingGroup>(
      *pool_,
      absl::StrCat("SELECT ", kBillingGroupCols, " FROM registry.billing_groups WHERE name = $1"),
      BillingGroupFromRow, S(name));
}

absl::StatusOr<std::vector<BillingGroup>> PgRegistryStore::ListBillingGroups(
    absl::string_view name_prefix, absl::string_view after, int limit) {
  return db::QueryRows<BillingGroup>(
      *pool_,
      absl::StrCat("SELECT ", kBillingGroupCols,
                   " FROM registry.billing_groups WHERE name > $1 AND ($2 = '' OR name LIKE $3) "
                   "ORDER BY name LIMIT $4"),
      BillingGroupFromRow, S(after), S(name_prefix), LikePrefix(name_prefix), limit);
}

absl::StatusOr<std::vector<std::string>> PgRegistryStore::ListThingsInBillingGroup(
    absl::string_view group, absl::string_view after, int limit) {
  return db::QueryRows<std::string>(*pool_,
                                    "SELECT name FROM registry.things WHERE billing_group = $1 "
                                    "AND name > $2 ORDER BY name LIMIT $3",
                                    NameFromRow, S(group), S(after), limit);
}

absl::StatusOr<std::vector<ThingGroup>> PgRegistryStore::Ancestors(absl::string_view name) {
  return db::QueryRows<ThingGroup>(
      *pool_,
      absl::StrCat("WITH RECURSIVE up(name) AS ("
                   "  SELECT parent FROM registry.thing_groups WHERE name = $1"
                   "  UNION ALL"
                   "  SELECT g.parent FROM registry.thing_groups g JOIN up ON g.name = up.name)"
                   " SELECT ",
                   kGroupCols,
                   " FROM registry.thing_groups g JOIN up "
                   "ON g.name = up.name ORDER BY g.depth"),
      GroupFromRow, S(name));
}

absl::StatusOr<std::vector<ThingGroup>> PgRegistryStore::ListGroups(absl::string_view parent,
                                                                    bool recursive, bool roots_only,
                                                                    absl::string_view name_prefix,
                                                                    absl::string_view after,
                                                                    int limit) {
  std::string scope;
  if (parent.empty()) {
    scope = roots_only ? "g.parent IS NULL" : "true";
  } else if (!recursive) {
    scope = "g.parent = $1";
  } else {
    scope =
        "g.name IN (WITH RECURSIVE down(name) AS ("
        "  SELECT name FROM registry.thing_groups WHERE parent = $1"
        "  UNION ALL"
        "  SELECT c.name FROM registry.thing_groups c JOIN down ON c.parent = down.name)"
        " SELECT name FROM down)";
  }
  // "$1 = $1" keeps $1 in every variant of the statement, so Postgres can type it.
  return db::QueryRows<ThingGroup>(
      *pool_,
      absl::StrCat("SELECT ", kGroupCols, " FROM registry.thing_groups g WHERE (", scope,
                   ") AND ($1 = $1) AND g.name > $2 AND ($3 = '' OR g.name LIKE $4) "
                   "ORDER BY g.name LIMIT $5"),
      GroupFromRow, S(parent), S(after), S(name_prefix), LikePrefix(name_prefix), limit);
}

absl::StatusOr<std::vector<std::string>> PgRegistryStore::ListThingsInGroup(absl::string_view group,
                                                                            bool recursive,
                                                                            absl::string_view after,
                                                                            int limit) {
  const std::string groups =
      recursive ? "WITH RECURSIVE down(name) AS ("
                  "  SELECT $1::text COLLATE \"C\""
                  "  UNION ALL"
                  "  SELECT c.name FROM registry.thing_groups c JOIN down ON c.parent = down.name)"
                  " SELECT name FROM down"
                : "SELECT $1::text";
  return db::QueryRows<std::string>(
      *pool_,
      absl::StrCat("SELECT DISTINCT thing_name FROM registry.thing_group_members WHERE "
                   "group_name IN (",
                   groups, ") AND thing_name > $2 ORDER BY thing_name LIMIT $3"),
      NameFromRow, S(group), S(after), limit);
}

absl::StatusOr<std::vector<ThingGroup>> PgRegistryStore::ListGroupsForThing(absl::string_view thing,
                                                                            bool include_ancestors,
                                                                            absl::string_view after,
                                                                            int limit) {
  if (!include_ancestors) {
    return db::QueryRows<ThingGroup>(
        *pool_,
        absl::StrCat("SELECT ", kGroupCols,
                     " FROM registry.thing_groups g JOIN "
                     "registry.thing_group_members m ON m.group_name = g.name WHERE "
                     "m.thing_name = $1 AND g.name > $2 ORDER BY g.name LIMIT $3"),
        GroupFromRow, S(thing), S(after), limit);
  }
  return db::QueryRows<ThingGroup>(
      *pool_,
      absl::StrCat("WITH RECURSIVE up(name) AS ("
                   "  SELECT group_name FROM registry.thing_group_members WHERE thing_name = $1"
                   "  UNION"
                   "  SELECT p.parent FROM registry.thing_groups p JOIN up ON p.name = up.name"
                   "  WHERE p.parent IS NOT NULL)"
                   " SELECT ",
                   kGroupCols,
                   " FROM registry.thing_groups g WHERE g.name IN "
                   "(SELECT name FROM up) AND g.name > $2 ORDER BY g.name LIMIT $3"),
      GroupFromRow, S(thing), S(after), limit);
}

absl::StatusOr<std::vector<PrincipalAttachment>> PgRegistryStore::ListThingPrincipals(
    absl::string_view thing, absl::string_view after, int limit) {
  return db::QueryRows<PrincipalAttachment>(
      *pool_,
      "SELECT thing_name, principal, exclusive FROM registry.thing_principals WHERE "
      "thing_name = $1 AND principal > $2 ORDER BY principal LIMIT $3",
      AttachmentFromRow, S(thing), S(after), limit);
}

absl::StatusOr<std::vector<PrincipalAttachment>> PgRegistryStore::ListPrincipalThings(
    absl::string_view principal, absl::string_view after, int limit) {
  return db::QueryRows<PrincipalAttachment>(
      *pool_,
      "SELECT thing_name, principal, exclusive FROM registry.thing_principals WHERE "
      "principal = $1 AND thing_name > $2 ORDER BY thing_name LIMIT $3",
      AttachmentFromRow, S(principal), S(after), limit);
}

absl::StatusOr<std::vector<ThingDocument>> PgRegistryStore::SearchThings(const IndexQuery& query,
                                                                         absl::string_view after,
                                                                         int limit) {
  SqlParams params(3);
  const std::string condition = IndexQueryToSql(query, ThingFieldSql, params);
  return db::QueryRows<ThingDocument>(
      *pool_,
      absl::StrCat("SELECT ", kThingCols,
                   ", (SELECT coalesce(json_agg(m.group_name ORDER BY m.group_name), '[]')::text "
                   "FROM registry.thing_group_members m WHERE m.thing_name = t.name) "
                   "FROM registry.things t WHERE t.name > $1 AND ",
                   condition, " ORDER BY t.name LIMIT $2"),
      [](const pqxx::row& r) {
        return ThingDocument{
            .thing = ThingFromRow(r),
            .group_names =
                nlohmann::json::parse(r[kThingColCount].c_str()).get<std::vector<std::string>>()};
      },
      S(after), limit, pqxx::prepare::make_dynamic_params(params.values()));
}

absl::StatusOr<std::vector<ThingGroupDocument>> PgRegistryStore::SearchThingGroups(
    const IndexQuery& query, absl::string_view after, int limit) {
  SqlParams params(3);
  const std::string condition = IndexQueryToSql(query, GroupFieldSql, params);
  return db::QueryRows<ThingGroupDocument>(
      *pool_,
      absl::StrCat("SELECT ", kGroupCols, ", (", kAncestorsCte,
                   "SELECT coalesce(json_agg(a.name ORDER BY a.depth), '[]')::text "
                   "FROM up JOIN registry.thing_groups a ON a.name = up.name) "
                   "FROM registry.thing_groups g WHERE g.name > $1 AND ",
                   condition, " ORDER BY g.name LIMIT $2"),
      [](const pqxx::row& r) {
        return ThingGroupDocument{
            .group = GroupFromRow(r),
            .parent_names =
                nlohmann::json::parse(r[kGroupColCount].c_str()).get<std::vector<std::string>>()};
      },
      S(after), limit, pqxx::prepare::make_dynamic_params(params.values()));
}

namespace {

// A float8[] as Postgres writes it, "{1,2.5}".
std::vector<double> ParseFloatArray(absl::string_view text) {
  std::vector<double> out;
  text = absl::StripPrefix(absl::StripSuffix(text, "}"), "{");
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    out.push_back(std::strtod(std::string(part).c_str(), nullptr));
  }
  return out;
}

}  // namespace

absl::StatusOr<IndexAggregationResult> PgRegistryStore::Aggregate(absl::string_view index,
                                                                  const IndexQuery& query,
                                                                  const IndexAggregation& a) {
  const bool things = index == kThingIndex;
  const SqlFieldMapper fields = things ? ThingFieldSql : GroupFieldSql;
  const char* table = things ? "registry.things t" : "registry.thing_groups g";
  const char* key = things ? "t.name" : "g.name";
  SqlParams params(1);
  const std::string condition = IndexQueryToSql(query, fields, params);
  const std::vector<std::string> condition_params = params.values();  // for the count alone
  const SqlFieldSource source = fields(a.field, params).front();
  // One row per value of the field in each matching document.
  const std::string values =
      source.many() ? absl::StrCat("SELECT ", key, " AS doc, f.val FROM ", table,
                                   " CROSS JOIN LATERAL (", source.with, "SELECT ", source.value,
                                   " AS val ", source.from_where, ") f WHERE ", condition)
                    : absl::StrCat("SELECT ", key, " AS doc, ", source.value, " AS val FROM ",
                                   table, " WHERE ", condition);
  const std::string rows = absl::StrCat("(", values, ") x WHERE x.val IS NOT NULL");
  const std::string numbers =
      absl::StrCat("(SELECT x.doc, ", SqlIndexNumber("x.val"), " AS num FROM ", rows, ") y");
  IndexAggregationResult result;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    result = IndexAggregationResult{};  // the body may run again on a fresh connection
    auto exec = [&](const std::string& sql) {
      return tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params.values()));
    };
    auto number = [](const pqxx::field& f) {
      return f.is_null() ? std::optional<double>() : std::optional<double>(f.as<double>());
    };
    switch (a.kind) {
      case IndexAggregation::Kind::kStatistics: {
        const pqxx::row r = exec(absl::StrCat(
            "SELECT count(DISTINCT y.doc), count(y.num), coalesce(bool_and(y.num IS NOT NULL), "
            "false), avg(y.num)::float8, sum(y.num)::float8, min(y.num)::float8, "
            "max(y.num)::float8, sum(y.num * y.num)::float8, var_pop(y.num)::float8, "
            "stddev_pop(y.num)::float8 FROM ",
            numbers))[0];
        if (a.numeric && r[2].as<bool>() && r[1].as<int64_t>() > 0) {
          result.statistics = IndexStatistics{.count = r[1].as<int64_t>(),
                                              .average = number(r[3]),
                                              .sum = number(r[4]),
                                              .minimum = number(r[5]),
                                              .maximum = number(r[6]),
                                              .sum_of_squares = number(r[7]),
                                              .variance = number(r[8]),
                                              .std_deviation = number(r[9])};
        } else {
          result.statistics.count = r[0].as<int64_t>();
        }
        break;
      }
      case IndexAggregation::Kind::kCardinality:
        result.cardinality =
            exec(absl::StrCat("SELECT count(DISTINCT x.val) FROM ", rows))[0][0].as<int64_t>();
        break;
      case IndexAggregation::Kind::kPercentiles: {
        std::vector<std::string> fractions;
        for (double p : a.percents) fractions.push_back(absl::StrFormat("%.17g", p / 100));
        const std::string fractions_param =
            params.Add(absl::StrCat("{", absl::StrJoin(fractions, ","), "}"));
        const pqxx::row r =
            exec(absl::StrCat("SELECT (percentile_cont(", fractions_param,
                              "::float8[]) WITHIN GROUP (ORDER BY y.num))::text FROM ", numbers,
                              " WHERE y.num IS NOT NULL"))[0];
        if (!r[0].is_null()) {
          const std::vector<double> v = ParseFloatArray(r[0].c_str());
          for (size_t i = 0; i < v.size() && i < a.percents.size(); ++i) {
            result.percentiles.emplace_back(a.percents[i], v[i]);
          }
        }
        break;
      }
      case IndexAggregation::Kind::kBuckets: {
        const std::string limit = params.Add(std::to_string(a.max_buckets));
        for (const pqxx::row& r : exec(absl::StrCat(
                 "SELECT x.val, count(DISTINCT x.doc) FROM ", rows,
                 " GROUP BY x.val ORDER BY 2 DESC, x.val COLLATE \"C\" LIMIT ", limit, "::int"))) {
          result.buckets.push_back({r[0].as<std::string>(), r[1].as<int64_t>()});
        }
        result.total_count =
            tx.exec_params(absl::StrCat("SELECT count(*) FROM ", table, " WHERE ", condition),
                           pqxx::prepare::make_dynamic_params(condition_params))[0][0]
                .as<int64_t>();
        break;
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<EventConfigurations> PgRegistryStore::GetEventConfigurations() {
  EventConfigurations out;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    for (const pqxx::row& r : tx.exec(absl::StrCat(
             "SELECT event_type, enabled, ", db::MicrosOf("created_at"), ", ",
             db::MicrosOf("updated_at"), " FROM registry.event_configurations"))) {
      out.enabled[r[0].as<std::string>()] = r[1].as<bool>();
      const absl::Time created = db::FromMicros(r[2].as<int64_t>());
      const absl::Time updated = db::FromMicros(r[3].as<int64_t>());
      if (out.created_at == absl::Time() || created < out.created_at) out.created_at = created;
      if (updated > out.updated_at) out.updated_at = updated;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<IndexingConfiguration> PgRegistryStore::GetIndexingConfiguration() {
  IndexingConfiguration out;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    out = IndexingConfigurationOf(
        tx.exec("SELECT index_name, mode FROM registry.indexing_configuration"));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace fleetcore::registry
