#include "services/registry/registry_core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/pagination/page_token.h"
#include "common/status/quoted.h"
#include "common/status/status_macros.h"
#include "services/registry/validation.h"

namespace fleetcore::registry {
namespace {

using pagination::DecodePageToken;
using pagination::EncodePageToken;
using pagination::ResolveMaxResults;

constexpr int kMaxBuckets = 10000;

// SearchIndex's page sizes: AWS's maximum is 100.
constexpr int kDefaultSearchResults = 50;
constexpr int kMaxSearchResults = 100;

// The attributes a create stores: an empty value means "no such attribute", as on update.
Attributes WithoutEmptyValues(const Attributes& in) {
  return ApplyAttributeUpdate({}, {.attributes = in, .merge = false});
}

absl::Status VersionConflict(absl::string_view what, absl::string_view name, int64_t stored,
                             int64_t expected) {
  return absl::AbortedError(absl::StrCat(what, " ", Quoted(name), " is at version ", stored,
                                         ", not the expected ", expected,
                                         "; read it again and retry"));
}

// The other kind's RPC for a group: static and dynamic groups are changed by their own.
absl::Status WrongKind(const ThingGroup& g, absl::string_view rpc) {
  return absl::InvalidArgumentError(
      absl::StrCat("thing group ", Quoted(g.name), " is ", g.dynamic() ? "dynamic" : "static",
                   "; use ", rpc, g.dynamic() ? "DynamicThingGroup" : "ThingGroup", " for it"));
}

// A dynamic group's index and query: AWS_Things (or unnamed) and a query that parses.
absl::Status ValidateDynamicQuery(absl::string_view index_name, absl::string_view query) {
  if (!index_name.empty() && index_name != kThingIndex) {
    return absl::InvalidArgumentError(absl::StrCat("indexName: a dynamic thing group's index is ",
                                                   kThingIndex, ", not ", Quoted(index_name)));
  }
  return ParseIndexQuery(query, ThingIndexSchema()).status();
}

constexpr char kDefaultQueryVersion[] = "2017-09-30";

// Cuts a list fetched with limit + 1 to a page, with a token when more remain.
template <typename T, typename KeyFn>
Page<T> MakePage(std::vector<T> items, int limit, absl::string_view query, KeyFn key) {
  Page<T> page;
  if (static_cast<int>(items.size()) > limit) {
    items.resize(static_cast<size_t>(limit));
    page.next_token = EncodePageToken(key(items.back()), query);
  }
  page.items = std::move(items);
  return page;
}

struct PageWindow {
  int limit;
  std::string after;
};

absl::StatusOr<PageWindow> Window(const PageRequest& page, absl::string_view query) {
  PageWindow w;
  FLEETCORE_ASSIGN_OR_RETURN(w.limit, ResolveMaxResults(page.max_results));
  FLEETCORE_ASSIGN_OR_RETURN(w.after, DecodePageToken(page.next_token, query));
  return w;
}

// Whether two thing types have the same properties: what CreateThingType asked again must
// find, and what UpdateThingType changes.
bool SameProperties(const ThingType& a, const ThingType& b) {
  return a.description == b.description && a.searchable_attributes == b.searchable_attributes &&
         a.propagating_attributes == b.propagating_attributes;
}

// What a membership change needs, read inside its transaction with the thing's row locked
// (which serializes concurrent membership changes of one thing).
struct Membership {
  Thing thing;
  ThingGroup group;
  std::vector<ThingGroup> current;  // the thing's groups now
  bool member() const {
    return std::any_of(current.begin(), current.end(),
                       [&](const ThingGroup& g) { return g.name == group.name; });
  }
};

absl::StatusOr<Membership> ReadMembership(RegistryTx& tx, absl::string_view group,
                                          absl::string_view thing) {
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> t, tx.GetThing(thing, Lock::kUpdate));
  if (!t.has_value()) {
    return absl::NotFoundError(absl::StrCat("thing ", Quoted(thing), " does not exist"));
  }
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingGroup> g, tx.GetGroup(group, Lock::kShare));
  if (!g.has_value()) {
    return absl::NotFoundError(absl::StrCat("thing group ", Quoted(group), " does not exist"));
  }
  if (g->dynamic()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "thing group ", Quoted(group), " is dynamic: its members are the things its query (",
        g->query_string, ") matches, and cannot be added or removed by hand"));
  }
  Membership m{.thing = *std::move(t), .group = *std::move(g)};
  FLEETCORE_ASSIGN_OR_RETURN(m.current, tx.GroupsOfThing(thing));
  return m;
}

// `group`'s ancestors, root first, read inside the transaction (a hierarchy is at most 7
// deep).
absl::StatusOr<std::vector<ThingGroup>> AncestorsOf(RegistryTx& tx, const ThingGroup& group) {
  std::vector<ThingGroup> up;
  std::string next = group.parent;
  while (!next.empty() && up.size() < static_cast<size_t>(kMaxGroupDepth)) {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingGroup> g, tx.GetGroup(next, Lock::kNone));
    if (!g.has_value()) break;
    next = g->parent;
    up.push_back(*std::move(g));
  }
  std::reverse(up.begin(), up.end());
  return up;
}

}  // namespace

RegistryCore::Events RegistryCore::StartEvents() {
  Events e;
  if (options_.event_publisher == nullptr) return e;
  uint64_t generation;
  {
    absl::MutexLock l(&events_mu_);
    if (enabled_events_.has_value()) {
      e.enabled = *enabled_events_;
      return e;
    }
    generation = events_generation_;
  }
  // A configuration that cannot be read publishes nothing now (the change itself then
  // most likely fails the same way) and is read again next time.
  absl::StatusOr<EventConfigurations> c = store_->GetEventConfigurations();
  if (!c.ok()) return e;
  for (const auto& [name, on] : c->enabled) {
    if (std::optional<EventType> t = ParseEventType(name); t.has_value() && on) {
      e.enabled |= 1u << static_cast<int>(*t);
    }
  }
  absl::MutexLock l(&events_mu_);
  if (events_generation_ == generation) enabled_events_ = e.enabled;
  return e;
}

EventStamp RegistryCore::Stamp() {
  return EventStamp{.event_id = ids_->NewUuid(), .at = clock_->Now(), .arns = arns_};
}

absl::Status RegistryCore::Change(absl::FunctionRef<absl::Status(RegistryTx&, Events&)> body) {
  Events events = StartEvents();
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](RegistryTx& tx) -> absl::Status {
    events.messages.clear();  // a retried body starts again
    return body(tx, events);
  }));
  if (!events.messages.empty()) {
    options_.event_publisher->PublishAll(std::move(events.messages));
  }
  return absl::OkStatus();
}

void RegistryCore::InvalidateEventConfigurations() {
  absl::MutexLock l(&events_mu_);
  enabled_events_.reset();
  ++events_generation_;
}

absl::Status RegistryCore::UpdateEventConfigurations(const std::map<std::string, bool>& changes) {
  std::string known;
  for (EventType t : kEventTypes) {
    absl::StrAppend(&known, known.empty() ? "" : ", ", EventTypeName(t));
  }
  if (changes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("eventConfigurations: name at least one kind of event (", known, ")"));
  }
  bool turns_on = false;
  for (const auto& [name, on] : changes) {
    if (!ParseEventType(name).has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("eventConfigurations: ", Quoted(name),
                       " is not a kind of registry event; fleetcore's "
                       "registry publishes ",
                       known));
    }
    turns_on = turns_on || on;
  }
  if (turns_on && options_.event_publisher == nullptr) {
    return absl::FailedPreconditionError(
        "this registry has no gateway to publish events through; start it with "
        "--gateway-endpoint");
  }
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](RegistryTx& tx) -> absl::Status {
    const absl::Time now = clock_->Now();
    for (const auto& [name, on] : changes) {
      FLEETCORE_RETURN_IF_ERROR(tx.PutEventConfiguration(name, on, now));
    }
    tx.Publish({.type = kEventConfigurationsUpdated});
    return absl::OkStatus();
  }));
  InvalidateEventConfigurations();
  return absl::OkStatus();
}

absl::StatusOr<EventConfigurations> RegistryCore::DescribeEventConfigurations() {
  FLEETCORE_ASSIGN_OR_RETURN(EventConfigurations c, store_->GetEventConfigurations());
  EventConfigurations out{.created_at = c.created_at, .updated_at = c.updated_at};
  for (EventType t : kEventTypes) {
    const std::string name(EventTypeName(t));
    auto it = c.enabled.find(name);
    out.enabled[name] = it != c.enabled.end() && it->second;
  }
  return out;
}

RegistryCore::RegistryCore(RegistryStore* store, const aws::Arns* arns, const Clock* clock,
                           IdGenerator* ids, RegistryOptions options)
    : store_(store), arns_(arns), clock_(clock), ids_(ids), options_(options) {}

absl::Status RegistryCore::RequireThing(absl::string_view name) {
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> t, store_->GetThing(name));
  if (!t.has_value()) {
    return absl::NotFoundError(absl::StrCat("thing ", Quoted(name), " does not exist"));
  }
  return absl::OkStatus();
}

// ---- things

absl::StatusOr<Thing> RegistryCore::CreateThing(const CreateThingInput& in) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", in.name));
  if (!in.type_name.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateName("thingTypeName", in.type_name));
  }
  FLEETCORE_RETURN_IF_ERROR(ValidateAttributes("attributePayload", in.attributes));
  const Attributes attributes = WithoutEmptyValues(in.attributes);
  FLEETCORE_RETURN_IF_ERROR(ValidateThingAttributeCount(attributes, !in.type_name.empty()));
  if (!in.billing_group.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateName("billingGroupName", in.billing_group));
  }

  Thing result;
  FLEETCORE_RETURN_IF_ERROR(Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> existing, tx.GetThing(in.name, Lock::kNone));
    if (existing.has_value()) {
      // AWS: the same name and configuration succeeds; a different configuration conflicts.
      if (existing->type_name == in.type_name && existing->attributes == attributes &&
          existing->billing_group == in.billing_group) {
        result = *existing;
        return absl::OkStatus();
      }
      return absl::AlreadyExistsError(
          absl::StrCat("thing ", Quoted(in.name),
                       " already exists with a different thing type, attributes or billing group"));
    }
    if (!in.billing_group.empty()) {
      FLEETCORE_ASSIGN_OR_RETURN(std::optional<BillingGroup> group,
                                 tx.GetBillingGroup(in.billing_group, Lock::kShare));
      if (!group.has_value()) {
        return absl::NotFoundError(absl::StrCat("billing group ", Quoted(in.billing_group),
                                                " does not exist; create it first"));
      }
    }
    if (!in.type_name.empty()) {
      FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingType> type,
                                 tx.GetThingType(in.type_name, Lock::kShare));
      if (!type.has_value()) {
        return absl::NotFoundError(
            absl::StrCat("thing type ", Quoted(in.type_name), " does not exist; create it first"));
      }
      if (type->deprecated) {
        return absl::FailedPreconditionError(
            absl::StrCat("thing type ", Quoted(in.type_name),
                         " is deprecated, so new things cannot use it "
                         "(DeprecateThingType with undoDeprecate reverses that)"));
      }
    }
    const absl::Time now = clock_->Now();
    result = Thing{.name = in.name,
                   .id = ids_->NewUuid(),
                   .type_name = in.type_name,
                   .attributes = attributes,
                   .version = 1,
                   .created_at = now,
                   .updated_at = now,
                   .billing_group = in.billing_group};
    FLEETCORE_RETURN_IF_ERROR(tx.InsertThing(result));
    tx.Publish({.type = "thing.created", .thing = in.name, .thing_type = in.type_name});
    if (events.On(EventType::kThing)) {
      events.messages.push_back(ThingEvent(Stamp(), Operation::kCreated, result));
    }
    if (events.On(EventType::kThingTypeAssociation) && !in.type_name.empty()) {
      events.messages.push_back(
          ThingTypeAssociationEvent(Stamp(), Change::kAdded, result, in.type_name));
    }
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<Thing> RegistryCore::DescribeThing(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> t, store_->GetThing(name));
  if (!t.has_value()) {
    return absl::NotFoundError(absl::StrCat("thing ", Quoted(name), " does not exist"));
  }
  return *std::move(t);
}

std::optional<Thing> RegistryCore::DescribeThingIfCached(absl::string_view name) {
  if (!ValidateName("thingName", name).ok()) {
    return std::nullopt;  // DescribeThing reports the error
  }
  return store_->Peek(name);
}

absl::Status RegistryCore::UpdateThing(const UpdateThingInput& in) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", in.name));
  if (in.remove_type && !in.type_name.empty()) {
    return absl::InvalidArgumentError(
        "removeThingType and thingTypeName cannot be used together");
  }
  if (!in.type_name.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateName("thingTypeName", in.type_name));
  }
  if (in.attributes.has_value()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateAttributes("attributePayload", in.attributes->attributes));
  }
  if (in.expected_version.has_value() && *in.expected_version < 1) {
    return absl::InvalidArgumentError("expectedVersion must be 1 or more");
  }
  return Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> t, tx.GetThing(in.name, Lock::kUpdate));
    if (!t.has_value()) {
      return absl::NotFoundError(absl::StrCat("thing ", Quoted(in.name), " does not exist"));
    }
    if (in.expected_version.has_value() && *in.expected_version != t->version) {
      return VersionConflict("thing", in.name, t->version, *in.expected_version);
    }
    const std::string old_type = t->type_name;
    std::string type_name = t->type_name;
    if (in.remove_type) {
      type_name.clear();
    } else if (!in.type_name.empty() && in.type_name != t->type_name) {
      FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingType> type,
                                 tx.GetThingType(in.type_name, Lock::kShare));
      if (!type.has_value()) {
        return absl::NotFoundError(
            absl::StrCat("thing type ", Quoted(in.type_name), " does not exist; create it first"));
      }
      if (type->deprecated) {
        return absl::FailedPreconditionError(absl::StrCat(
            "thing type ", Quoted(in.type_name), " is deprecated and cannot be given to a thing"));
      }
      type_name = in.type_name;
    }
    Attributes attributes =
        in.attributes.has_value() ? ApplyAttributeUpdate(t->attributes, *in.attributes)
                                  : t->attributes;
    FLEETCORE_RETURN_IF_ERROR(ValidateThingAttributeCount(attributes, !type_name.empty()));
    FLEETCORE_RETURN_IF_ERROR(ValidateAttributes("attributePayload", attributes));
    t->type_name = std::move(type_name);
    t->attributes = std::move(attributes);
    t->version += 1;
    t->updated_at = clock_->Now();
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateThing(*t));
    tx.Publish({.type = "thing.updated", .thing = in.name, .thing_type = t->type_name});
    if (events.On(EventType::kThing)) {
      events.messages.push_back(ThingEvent(Stamp(), Operation::kUpdated, *t));
    }
    if (events.On(EventType::kThingTypeAssociation) && old_type != t->type_name) {
      if (!old_type.empty()) {
        events.messages.push_back(
            ThingTypeAssociationEvent(Stamp(), Change::kRemoved, *t, old_type));
      }
      if (!t->type_name.empty()) {
        events.messages.push_back(
            ThingTypeAssociationEvent(Stamp(), Change::kAdded, *t, t->type_name));
      }
    }
    return absl::OkStatus();
  });
}

absl::Status RegistryCore::DeleteThing(absl::string_view name,
                                       std::optional<int64_t> expected_version) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", name));
  return Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> t, tx.GetThing(name, Lock::kUpdate));
    if (!t.has_value()) {
      return absl::OkStatus();  // AWS: deleting a thing that does not exist succeeds
    }
    if (expected_version.has_value() && *expected_version != t->version) {
      return VersionConflict("thing", name, t->version, *expected_version);
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<PrincipalAttachment> attached,
                               tx.AttachmentsOfThing(name));
    if (!attached.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("thing ", Quoted(name), " has ", attached.size(),
                       " principal(s) attached (first: ", attached.front().principal,
                       "); detach them with DetachThingPrincipal before deleting the thing"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteThing(name));
    tx.Publish({.type = "thing.deleted", .thing = std::string(name)});
    if (events.On(EventType::kThing)) {
      events.messages.push_back(ThingEvent(Stamp(), Operation::kDeleted, *t));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<Page<Thing>> RegistryCore::ListThings(const ThingQuery& query,
                                                    const PageRequest& page) {
  if (!query.attribute_value.empty() && query.attribute_name.empty()) {
    return absl::InvalidArgumentError("attributeValue needs attributeName");
  }
  if (query.prefix_value && query.attribute_value.empty()) {
    return absl::InvalidArgumentError(
        "usePrefixAttributeValue needs attributeName and attributeValue");
  }
  if (!query.attribute_name.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateAttributes(
        "attributeName/attributeValue", {{query.attribute_name, query.attribute_value}}));
  }
  if (!query.type_name.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateName("thingTypeName", query.type_name));
  }
  const std::string fingerprint =
      absl::StrCat("things|", query.attribute_name, "|", query.attribute_value, "|",
                   query.prefix_value, "|", query.type_name);
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, fingerprint));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<Thing> things,
                             store_->ListThings(query, w.after, w.limit + 1));
  return MakePage(std::move(things), w.limit, fingerprint,
                  [](const Thing& t) { return t.name; });
}

namespace {

// The schema of SearchIndex's and the aggregations' `index_name` (AWS_Things when empty).
absl::StatusOr<const IndexSchema*> IndexNamed(absl::string_view index_name) {
  if (index_name.empty() || index_name == kThingIndex) return &ThingIndexSchema();
  if (index_name == kThingGroupIndex) return &ThingGroupIndexSchema();
  return absl::NotFoundError(absl::StrCat("indexName: no index ", Quoted(index_name), "; use ",
                                          kThingIndex, " or ", kThingGroupIndex));
}

bool IndexOn(const IndexingConfiguration& c, absl::string_view index) {
  return IndexingMode(c, index) != "OFF";
}

}  // namespace

absl::Status RegistryCore::RequireIndexOn(absl::string_view index) {
  FLEETCORE_ASSIGN_OR_RETURN(IndexingConfiguration c, store_->GetIndexingConfiguration());
  if (IndexOn(c, index)) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat(
      "index ", index, " is off; UpdateIndexingConfiguration turns it on (",
      index == kThingIndex ? "thingIndexingMode REGISTRY" : "thingGroupIndexingMode ON", ")"));
}

absl::StatusOr<IndexingConfiguration> RegistryCore::GetIndexingConfiguration() {
  return store_->GetIndexingConfiguration();
}

absl::Status RegistryCore::UpdateIndexingConfiguration(const IndexingConfigurationUpdate& in) {
  if (!in.thing_indexing_mode.has_value() && !in.thing_group_indexing_mode.has_value()) {
    return absl::InvalidArgumentError(
        "name thingIndexingConfiguration or thingGroupIndexingConfiguration");
  }
  if (in.thing_indexing_mode.has_value()) {
    const std::string& mode = *in.thing_indexing_mode;
    if (mode == "REGISTRY_AND_SHADOW") {
      return absl::InvalidArgumentError(
          "thingIndexingConfiguration.thingIndexingMode: fleetcore indexes registry data only "
          "(REGISTRY or OFF); shadows are not indexed");
    }
    if (mode != "REGISTRY" && mode != "OFF") {
      return absl::InvalidArgumentError(absl::StrCat(
          "thingIndexingConfiguration.thingIndexingMode: REGISTRY or OFF, not ", Quoted(mode)));
    }
    for (const auto& [field, value] : in.thing_modes) {
      if (!value.empty() && value != "OFF") {
        return absl::InvalidArgumentError(absl::StrCat("thingIndexingConfiguration.", field,
                                                       ": fleetcore indexes registry data only, "
                                                       "so this can only be OFF, not ",
                                                       Quoted(value)));
      }
    }
  }
  if (in.thing_group_indexing_mode.has_value() && *in.thing_group_indexing_mode != "ON" &&
      *in.thing_group_indexing_mode != "OFF") {
    return absl::InvalidArgumentError(
        absl::StrCat("thingGroupIndexingConfiguration.thingGroupIndexingMode: ON or OFF, not ",
                     Quoted(*in.thing_group_indexing_mode)));
  }
  return store_->Transact([&](RegistryTx& tx) -> absl::Status {
    // Locked: a dynamic group being created waits for this, and the other way round.
    FLEETCORE_ASSIGN_OR_RETURN(IndexingConfiguration now,
                               tx.GetIndexingConfiguration(Lock::kUpdate));
    const absl::Time at = clock_->Now();
    if (in.thing_indexing_mode.has_value()) {
      if (*in.thing_indexing_mode == "OFF" && IndexOn(now, kThingIndex)) {
        FLEETCORE_ASSIGN_OR_RETURN(int64_t dynamic, tx.CountDynamicGroups());
        if (dynamic > 0) {
          return absl::FailedPreconditionError(absl::StrCat(
              dynamic, " dynamic thing group(s) use ", kThingIndex,
              "; delete them (DeleteDynamicThingGroup) before turning thing indexing off"));
        }
      }
      FLEETCORE_RETURN_IF_ERROR(tx.PutIndexingMode(kThingIndex, *in.thing_indexing_mode, at));
    }
    if (in.thing_group_indexing_mode.has_value()) {
      FLEETCORE_RETURN_IF_ERROR(
          tx.PutIndexingMode(kThingGroupIndex, *in.thing_group_indexing_mode, at));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<IndexDescription> RegistryCore::DescribeIndex(absl::string_view index_name) {
  if (index_name.empty()) return absl::InvalidArgumentError("indexName: required");
  FLEETCORE_ASSIGN_OR_RETURN(const IndexSchema* schema, IndexNamed(index_name));
  FLEETCORE_RETURN_IF_ERROR(RequireIndexOn(schema->index_name));
  return IndexDescription{.name = schema->index_name, .status = "ACTIVE", .schema = "REGISTRY"};
}

absl::StatusOr<Page<std::string>> RegistryCore::ListIndices(const PageRequest& page) {
  FLEETCORE_ASSIGN_OR_RETURN(IndexingConfiguration c, store_->GetIndexingConfiguration());
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, "indices"));
  std::vector<std::string> names;
  for (const char* index : {kThingGroupIndex, kThingIndex}) {  // in name order
    if (IndexOn(c, index) && index > w.after) names.push_back(index);
  }
  return MakePage(std::move(names), w.limit, "indices", [](const std::string& n) { return n; });
}

absl::StatusOr<IndexAggregationResult> RegistryCore::Aggregate(absl::string_view index_name,
                                                               absl::string_view query_string,
                                                               IndexAggregation a) {
  using Kind = IndexAggregation::Kind;
  FLEETCORE_ASSIGN_OR_RETURN(const IndexSchema* schema, IndexNamed(index_name));
  FLEETCORE_RETURN_IF_ERROR(RequireIndexOn(schema->index_name));
  FLEETCORE_ASSIGN_OR_RETURN(IndexQuery query, ParseIndexQuery(query_string, *schema));
  if (a.field.empty()) {
    if (a.kind != Kind::kStatistics) {
      return absl::InvalidArgumentError("aggregationField: required");
    }
    a.field = kRegistryVersionField;
  } else if (a.field != kRegistryVersionField) {
    if (absl::Status s = CheckIndexField(*schema, a.field); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("aggregationField: ", s.message()));
    }
  }
  a.numeric = a.field == kRegistryVersionField || absl::StartsWith(a.field, schema->open_prefix);
  if (a.kind == Kind::kPercentiles) {
    if (!a.numeric) {
      return absl::InvalidArgumentError(
          absl::StrCat("aggregationField: percentiles need numbers: ", kRegistryVersionField,
                       " or ", schema->open_prefix, "<name>, not ", a.field));
    }
    if (a.percents.empty()) a.percents = {1, 5, 25, 50, 75, 95, 99};
    for (double p : a.percents) {
      if (!(p >= 0 && p <= 100)) {
        return absl::InvalidArgumentError(
            absl::StrCat("percents: each must be from 0 to 100, got ", p));
      }
    }
  }
  if (a.kind == Kind::kBuckets && (a.max_buckets < 1 || a.max_buckets > kMaxBuckets)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bucketsAggregationType.termsAggregation.maxBuckets: 1 to ", kMaxBuckets,
                     ", got ", a.max_buckets));
  }
  return store_->Aggregate(schema->index_name, query, a);
}

absl::StatusOr<RegistryCore::SearchResult> RegistryCore::SearchIndex(absl::string_view index_name,
                                                                     absl::string_view query_string,
                                                                     const PageRequest& page) {
  FLEETCORE_ASSIGN_OR_RETURN(const IndexSchema* schema, IndexNamed(index_name));
  FLEETCORE_RETURN_IF_ERROR(RequireIndexOn(schema->index_name));
  index_name = schema->index_name;
  const bool things = index_name == kThingIndex;
  FLEETCORE_ASSIGN_OR_RETURN(IndexQuery query, ParseIndexQuery(query_string, *schema));
  const std::string fingerprint = absl::StrCat("search|", index_name, "|", query_string);
  FLEETCORE_ASSIGN_OR_RETURN(
      int limit, ResolveMaxResults(page.max_results, kDefaultSearchResults, kMaxSearchResults));
  FLEETCORE_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page.next_token, fingerprint));
  SearchResult result;
  if (things) {
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<ThingDocument> docs,
                               store_->SearchThings(query, after, limit + 1));
    Page<ThingDocument> p = MakePage(std::move(docs), limit, fingerprint,
                                     [](const ThingDocument& d) { return d.thing.name; });
    result.things = std::move(p.items);
    result.next_token = std::move(p.next_token);
  } else {
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<ThingGroupDocument> docs,
                               store_->SearchThingGroups(query, after, limit + 1));
    Page<ThingGroupDocument> p = MakePage(std::move(docs), limit, fingerprint,
                                          [](const ThingGroupDocument& d) { return d.group.name; });
    result.thing_groups = std::move(p.items);
    result.next_token = std::move(p.next_token);
  }
  return result;
}

// ---- thing types

absl::StatusOr<ThingType> RegistryCore::CreateThingType(const CreateThingTypeInput& in) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingTypeName", in.name));
  FLEETCORE_RETURN_IF_ERROR(ValidateDescription("thingTypeDescription", in.description));
  FLEETCORE_RETURN_IF_ERROR(ValidateSearchableAttributes(in.searchable_attributes));
  FLEETCORE_RETURN_IF_ERROR(ValidatePropagatingAttributes(in.propagating_attributes));
  const ThingType wanted{.name = in.name,
                         .description = in.description,
                         .searchable_attributes = in.searchable_attributes,
                         .propagating_attributes = in.propagating_attributes};
  ThingType result;
  FLEETCORE_RETURN_IF_ERROR(Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingType> existing,
                               tx.GetThingType(in.name, Lock::kNone));
    if (existing.has_value()) {
      if (SameProperties(*existing, wanted)) {
        result = *existing;
        return absl::OkStatus();
      }
      return absl::AlreadyExistsError(
          absl::StrCat("thing type ", Quoted(in.name),
                       " already exists with other properties (UpdateThingType changes them)"));
    }
    result = wanted;
    result.id = ids_->NewUuid();
    result.created_at = clock_->Now();
    FLEETCORE_RETURN_IF_ERROR(tx.InsertThingType(result));
    tx.Publish({.type = "thing_type.created", .thing_type = in.name});
    if (events.On(EventType::kThingType)) {
      events.messages.push_back(ThingTypeEvent(Stamp(), Operation::kCreated, result));
    }
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<ThingType> RegistryCore::DescribeThingType(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingTypeName", name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingType> t, store_->GetThingType(name));
  if (!t.has_value()) {
    return absl::NotFoundError(absl::StrCat("thing type ", Quoted(name), " does not exist"));
  }
  return *std::move(t);
}

absl::Status RegistryCore::UpdateThingType(const UpdateThingTypeInput& in) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingTypeName", in.name));
  if (in.description.has_value()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateDescription("thingTypeDescription", *in.description));
  }
  if (in.searchable_attributes.has_value()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateSearchableAttributes(*in.searchable_attributes));
  }
  if (in.propagating_attributes.has_value()) {
    FLEETCORE_RETURN_IF_ERROR(ValidatePropagatingAttributes(*in.propagating_attributes));
  }
  return Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingType> t, tx.GetThingType(in.name, Lock::kUpdate));
    if (!t.has_value()) {
      return absl::NotFoundError(absl::StrCat("thing type ", Quoted(in.name), " does not exist"));
    }
    ThingType updated = *t;
    if (in.description.has_value()) updated.description = *in.description;
    if (in.searchable_attributes.has_value()) {
      updated.searchable_attributes = *in.searchable_attributes;
    }
    if (in.propagating_attributes.has_value()) {
      updated.propagating_attributes = *in.propagating_attributes;
    }
    if (SameProperties(updated, *t)) return absl::OkStatus();  // nothing changes: no event
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateThingType(updated));
    tx.Publish({.type = "thing_type.updated", .thing_type = in.name});
    if (events.On(EventType::kThingType)) {
      events.messages.push_back(ThingTypeEvent(Stamp(), Operation::kUpdated, updated));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<Page<ThingType>> RegistryCore::ListThingTypes(absl::string_view name,
                                                            const PageRequest& page) {
  if (!name.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateName("thingTypeName", name));
  }
  const std::string fingerprint = absl::StrCat("thing_types|", name);
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, fingerprint));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<ThingType> types,
                             store_->ListThingTypes(name, w.after, w.limit + 1));
  return MakePage(std::move(types), w.limit, fingerprint,
                  [](const ThingType& t) { return t.name; });
}

absl::Status RegistryCore::DeprecateThingType(absl::string_view name, bool undo) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingTypeName", name));
  return Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingType> t, tx.GetThingType(name, Lock::kUpdate));
    if (!t.has_value()) {
      return absl::NotFoundError(absl::StrCat("thing type ", Quoted(name), " does not exist"));
    }
    if (t->deprecated == !undo) {
      return absl::OkStatus();  // already in the asked state; keeps the deprecation time
    }
    t->deprecated = !undo;
    t->deprecated_at = undo ? absl::Time() : clock_->Now();
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateThingType(*t));
    tx.Publish({.type = "thing_type.updated", .thing_type = std::string(name)});
    if (events.On(EventType::kThingType)) {
      events.messages.push_back(ThingTypeEvent(Stamp(), Operation::kUpdated, *t));
    }
    return absl::OkStatus();
  });
}

absl::Status RegistryCore::DeleteThingType(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingTypeName", name));
  return Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingType> t, tx.GetThingType(name, Lock::kUpdate));
    if (!t.has_value()) {
      return absl::NotFoundError(absl::StrCat("thing type ", Quoted(name), " does not exist"));
    }
    if (!t->deprecated) {
      return absl::FailedPreconditionError(absl::StrCat(
          "thing type ", Quoted(name), " must be deprecated (DeprecateThingType) before deletion"));
    }
    const absl::Time allowed = t->deprecated_at + options_.thing_type_delete_delay;
    if (clock_->Now() < allowed) {
      return absl::FailedPreconditionError(absl::StrCat(
          "thing type ", Quoted(name), " was deprecated less than ",
          absl::FormatDuration(options_.thing_type_delete_delay), " ago; it can be deleted from ",
          absl::FormatTime(absl::RFC3339_sec, allowed, absl::UTCTimeZone())));
    }
    FLEETCORE_ASSIGN_OR_RETURN(int64_t in_use, tx.CountThingsOfType(name));
    if (in_use > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(in_use, " thing(s) still have thing type ", Quoted(name),
                       "; remove it from them (UpdateThing with removeThingType) first"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteThingType(name));
    tx.Publish({.type = "thing_type.deleted", .thing_type = std::string(name)});
    if (events.On(EventType::kThingType)) {
      events.messages.push_back(ThingTypeEvent(Stamp(), Operation::kDeleted, *t));
    }
    return absl::OkStatus();
  });
}

// ---- thing groups

absl::StatusOr<ThingGroup> RegistryCore::CreateThingGroup(const CreateThingGroupInput& in) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingGroupName", in.name));
  if (!in.parent.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateName("parentGroupName", in.parent));
    if (in.parent == in.name) {
      return absl::InvalidArgumentError("a thing group cannot be its own parent");
    }
  }
  FLEETCORE_RETURN_IF_ERROR(ValidateDescription("thingGroupDescription", in.description));
  FLEETCORE_RETURN_IF_ERROR(ValidateAttributes("attributePayload", in.attributes));
  const Attributes attributes = WithoutEmptyValues(in.attributes);
  if (static_cast<int>(attributes.size()) > kMaxGroupAttributes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attributePayload: a thing group can have at most 50 attributes, got ",
        attributes.size()));
  }
  const bool dynamic = !in.query_string.empty();
  if (dynamic) FLEETCORE_RETURN_IF_ERROR(ValidateDynamicQuery(in.index_name, in.query_string));
  if (dynamic && !in.parent.empty()) {
    return absl::InvalidArgumentError("a dynamic thing group cannot have a parent");
  }
  const std::string query_version = !dynamic                   ? ""
                                    : in.query_version.empty() ? kDefaultQueryVersion
                                                               : in.query_version;
  ThingGroup result;
  FLEETCORE_RETURN_IF_ERROR(Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingGroup> existing,
                               tx.GetGroup(in.name, Lock::kNone));
    if (existing.has_value()) {
      if (existing->parent == in.parent && existing->description == in.description &&
          existing->attributes == attributes && existing->query_string == in.query_string &&
          existing->query_version == query_version) {
        result = *existing;
        return absl::OkStatus();
      }
      return absl::AlreadyExistsError(absl::StrCat(
          "thing group ", Quoted(in.name), " already exists with another parent or properties"));
    }
    result = ThingGroup{.name = in.name,
                        .id = ids_->NewUuid(),
                        .parent = in.parent,
                        .root = in.name,
                        .depth = 1,
                        .description = in.description,
                        .attributes = attributes,
                        .version = 1,
                        .created_at = clock_->Now(),
                        .query_string = in.query_string,
                        .query_version = query_version};
    if (dynamic) {
      FLEETCORE_ASSIGN_OR_RETURN(IndexingConfiguration indexing,
                                 tx.GetIndexingConfiguration(Lock::kShare));
      if (!IndexOn(indexing, kThingIndex)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "thing indexing is off, and a dynamic thing group's query runs over ", kThingIndex,
            "; turn it on with UpdateIndexingConfiguration (thingIndexingMode REGISTRY)"));
      }
      FLEETCORE_RETURN_IF_ERROR(tx.LockCount("dynamic thing groups"));
      FLEETCORE_ASSIGN_OR_RETURN(int64_t count, tx.CountDynamicGroups());
      if (count >= kMaxDynamicGroups) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "there are already ", count, " dynamic thing groups, the most there can be"));
      }
    }
    if (!in.parent.empty()) {
      // Locking the parent serializes this with its deletion and with sibling creation.
      FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingGroup> parent,
                                 tx.GetGroup(in.parent, Lock::kUpdate));
      if (!parent.has_value()) {
        return absl::NotFoundError(
            absl::StrCat("parent thing group ", Quoted(in.parent), " does not exist"));
      }
      if (parent->dynamic()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "thing group ", Quoted(in.parent), " is dynamic, and dynamic groups have no children"));
      }
      if (parent->depth >= kMaxGroupDepth) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "thing group ", Quoted(in.parent), " is at depth ", parent->depth,
            ", the deepest a hierarchy may go; a child would be at depth ", parent->depth + 1));
      }
      FLEETCORE_ASSIGN_OR_RETURN(int64_t children, tx.CountChildGroups(in.parent));
      if (children >= kMaxChildGroups) {
        return absl::ResourceExhaustedError(
            absl::StrCat("thing group ", Quoted(in.parent), " already has ", children,
                         " child groups, the most a group can have"));
      }
      result.root = parent->root;
      result.depth = parent->depth + 1;
      if (events.On(EventType::kThingGroupHierarchy)) {
        events.messages.push_back(
            ThingGroupHierarchyEvent(Stamp(), Change::kAdded, *parent, result));
      }
    }
    FLEETCORE_RETURN_IF_ERROR(tx.InsertGroup(result));
    tx.Publish({.type = "thing_group.created", .thing_group = in.name});
    if (events.On(EventType::kThingGroup)) {
      FLEETCORE_ASSIGN_OR_RETURN(std::vector<ThingGroup> ancestors, AncestorsOf(tx, result));
      events.messages.insert(events.messages.begin(),
                             ThingGroupEvent(Stamp(), Operation::kCreated, result, ancestors));
    }
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<ThingGroupDescription> RegistryCore::DescribeThingGroup(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingGroupName", name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingGroup> g, store_->GetGroup(name));
  if (!g.has_value()) {
    return absl::NotFoundError(absl::StrCat("thing group ", Quoted(name), " does not exist"));
  }
  ThingGroupDescription d;
  d.group = *std::move(g);
  if (!d.group.parent.empty()) {
    FLEETCORE_ASSIGN_OR_RETURN(d.ancestors, store_->Ancestors(name));
  }
  return d;
}

absl::StatusOr<int64_t> RegistryCore::UpdateThingGroup(const UpdateThingGroupInput& in) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingGroupName", in.name));
  if (in.description.has_value()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateDescription("thingGroupDescription", *in.description));
  }
  if (in.attributes.has_value()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateAttributes("attributePayload", in.attributes->attributes));
  }
  if (in.expected_version.has_value() && *in.expected_version < 1) {
    return absl::InvalidArgumentError("expectedVersion must be 1 or more");
  }
  if (in.dynamic && !in.query_string.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateDynamicQuery(in.index_name, in.query_string));
  }
  int64_t version = 0;
  FLEETCORE_RETURN_IF_ERROR(Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingGroup> g, tx.GetGroup(in.name, Lock::kUpdate));
    if (!g.has_value()) {
      return absl::NotFoundError(absl::StrCat("thing group ", Quoted(in.name), " does not exist"));
    }
    if (g->dynamic() != in.dynamic) return WrongKind(*g, "Update");
    if (in.expected_version.has_value() && *in.expected_version != g->version) {
      return VersionConflict("thing group", in.name, g->version, *in.expected_version);
    }
    if (in.description.has_value()) {
      g->description = *in.description;
    }
    if (!in.query_string.empty()) g->query_string = in.query_string;
    if (!in.query_version.empty()) g->query_version = in.query_version;
    if (in.attributes.has_value()) {
      g->attributes = ApplyAttributeUpdate(g->attributes, *in.attributes);
      if (static_cast<int>(g->attributes.size()) > kMaxGroupAttributes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "attributePayload: a thing group can have at most 50 attributes, it would have ",
            g->attributes.size()));
      }
    }
    g->version += 1;
    version = g->version;
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateGroup(*g));
    tx.Publish({.type = "thing_group.updated", .thing_group = in.name});
    if (events.On(EventType::kThingGroup)) {
      FLEETCORE_ASSIGN_OR_RETURN(std::vector<ThingGroup> ancestors, AncestorsOf(tx, *g));
      events.messages.push_back(ThingGroupEvent(Stamp(), Operation::kUpdated, *g, ancestors));
    }
    return absl::OkStatus();
  }));
  return version;
}

absl::Status RegistryCore::DeleteThingGroup(absl::string_view name,
                                            std::optional<int64_t> expected_version, bool dynamic) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingGroupName", name));
  return Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingGroup> g, tx.GetGroup(name, Lock::kUpdate));
    if (!g.has_value()) {
      return absl::OkStatus();  // like DeleteThing: nothing to delete is success
    }
    if (g->dynamic() != dynamic) return WrongKind(*g, "Delete");
    if (expected_version.has_value() && *expected_version != g->version) {
      return VersionConflict("thing group", name, g->version, *expected_version);
    }
    FLEETCORE_ASSIGN_OR_RETURN(int64_t children, tx.CountChildGroups(name));
    if (children > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("thing group ", Quoted(name), " has ", children,
                       " child group(s); delete them before their parent"));
    }
    std::vector<ThingGroup> ancestors;
    if (events.On(EventType::kThingGroup) || events.On(EventType::kThingGroupHierarchy)) {
      FLEETCORE_ASSIGN_OR_RETURN(ancestors, AncestorsOf(tx, *g));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteGroup(name));
    tx.Publish({.type = "thing_group.deleted", .thing_group = std::string(name)});
    if (events.On(EventType::kThingGroup)) {
      events.messages.push_back(ThingGroupEvent(Stamp(), Operation::kDeleted, *g, ancestors));
    }
    if (events.On(EventType::kThingGroupHierarchy) && !ancestors.empty()) {
      events.messages.push_back(
          ThingGroupHierarchyEvent(Stamp(), Change::kRemoved, ancestors.back(), *g));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<Page<ThingGroup>> RegistryCore::ListThingGroups(const GroupQuery& query,
                                                              const PageRequest& page) {
  if (!query.parent.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateName("parentGroup", query.parent));
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingGroup> parent, store_->GetGroup(query.parent));
    if (!parent.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("thing group ", Quoted(query.parent), " does not exist"));
    }
  }
  if (!query.name_prefix.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateName("namePrefixFilter", query.name_prefix));
  }
  const bool recursive = !query.parent.empty() && query.recursive.value_or(false);
  const bool roots_only = query.parent.empty() && query.recursive.has_value() && !*query.recursive;
  const std::string fingerprint = absl::StrCat("groups|", query.parent, "|", query.name_prefix,
                                               "|", recursive, "|", roots_only);
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, fingerprint));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<ThingGroup> groups,
                             store_->ListGroups(query.parent, recursive, roots_only,
                                                query.name_prefix, w.after, w.limit + 1));
  return MakePage(std::move(groups), w.limit, fingerprint,
                  [](const ThingGroup& g) { return g.name; });
}

absl::Status RegistryCore::AddMembership(RegistryTx& tx, Events& events, absl::string_view group,
                                         absl::string_view thing) {
  FLEETCORE_ASSIGN_OR_RETURN(Membership m, ReadMembership(tx, group, thing));
  if (m.member()) {
    return absl::OkStatus();  // already a member
  }
  if (static_cast<int>(m.current.size()) >= kMaxGroupsPerThing) {
    return absl::ResourceExhaustedError(
        absl::StrCat("thing ", Quoted(thing), " already belongs to ", m.current.size(),
                     " thing groups, the most a thing can belong to"));
  }
  for (const ThingGroup& other : m.current) {
    if (other.root == m.group.root) {
      return absl::FailedPreconditionError(
          absl::StrCat("thing ", Quoted(thing), " already belongs to thing group ",
                       Quoted(other.name), " of the same hierarchy (root ", Quoted(m.group.root),
                       "); a thing can be in only one group of a hierarchy"));
    }
  }
  FLEETCORE_RETURN_IF_ERROR(tx.AddMember(group, thing));
  tx.Publish({.type = "thing_group.thing_added",
              .thing = std::string(thing),
              .thing_group = std::string(group)});
  if (events.On(EventType::kThingGroupMembership)) {
    events.messages.push_back(ThingGroupMembershipEvent(Stamp(), Change::kAdded, m.group, m.thing));
  }
  return absl::OkStatus();
}

absl::Status RegistryCore::RemoveMembership(RegistryTx& tx, Events& events, absl::string_view group,
                                            absl::string_view thing) {
  FLEETCORE_ASSIGN_OR_RETURN(Membership m, ReadMembership(tx, group, thing));
  if (!m.member()) {
    return absl::OkStatus();
  }
  FLEETCORE_RETURN_IF_ERROR(tx.RemoveMember(group, thing));
  tx.Publish({.type = "thing_group.thing_removed",
              .thing = std::string(thing),
              .thing_group = std::string(group)});
  if (events.On(EventType::kThingGroupMembership)) {
    events.messages.push_back(
        ThingGroupMembershipEvent(Stamp(), Change::kRemoved, m.group, m.thing));
  }
  return absl::OkStatus();
}

absl::Status RegistryCore::AddThingToThingGroup(absl::string_view group, absl::string_view thing) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingGroupName", group));
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", thing));
  return Change(
      [&](RegistryTx& tx, Events& events) { return AddMembership(tx, events, group, thing); });
}

absl::Status RegistryCore::RemoveThingFromThingGroup(absl::string_view group,
                                                     absl::string_view thing) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingGroupName", group));
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", thing));
  return Change(
      [&](RegistryTx& tx, Events& events) { return RemoveMembership(tx, events, group, thing); });
}

absl::Status RegistryCore::UpdateThingGroupsForThing(absl::string_view thing,
                                                     const std::vector<std::string>& add,
                                                     const std::vector<std::string>& remove) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", thing));
  for (const auto& [field, list] :
       {std::pair{"thingGroupsToAdd", &add}, std::pair{"thingGroupsToRemove", &remove}}) {
    if (static_cast<int>(list->size()) > kMaxGroupsPerThing) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": at most ", kMaxGroupsPerThing,
                                                     " thing groups, got ", list->size()));
    }
    for (const std::string& g : *list) FLEETCORE_RETURN_IF_ERROR(ValidateName(field, g));
  }
  for (const std::string& g : add) {
    if (std::find(remove.begin(), remove.end(), g) != remove.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "thing group ", Quoted(g), " is in both thingGroupsToAdd and thingGroupsToRemove"));
    }
  }
  FLEETCORE_RETURN_IF_ERROR(RequireThing(thing));
  return Change([&](RegistryTx& tx, Events& events) -> absl::Status {
    for (const std::string& g : remove) {
      FLEETCORE_RETURN_IF_ERROR(RemoveMembership(tx, events, g, thing));
    }
    for (const std::string& g : add) {
      FLEETCORE_RETURN_IF_ERROR(AddMembership(tx, events, g, thing));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<Page<std::string>> RegistryCore::ListThingsInThingGroup(absl::string_view group,
                                                                       bool recursive,
                                                                       const PageRequest& page) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingGroupName", group));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingGroup> g, store_->GetGroup(group));
  if (!g.has_value()) {
    return absl::NotFoundError(absl::StrCat("thing group ", Quoted(group), " does not exist"));
  }
  const std::string fingerprint = absl::StrCat("group_things|", group, "|", recursive);
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, fingerprint));
  std::vector<std::string> things;
  if (g->dynamic()) {
    // Its members are what its query matches now (a dynamic group has no descendants).
    FLEETCORE_ASSIGN_OR_RETURN(IndexQuery query,
                               ParseIndexQuery(g->query_string, ThingIndexSchema()));
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<ThingDocument> docs,
                               store_->SearchThings(query, w.after, w.limit + 1));
    for (ThingDocument& d : docs) things.push_back(std::move(d.thing.name));
  } else {
    FLEETCORE_ASSIGN_OR_RETURN(things,
                               store_->ListThingsInGroup(group, recursive, w.after, w.limit + 1));
  }
  return MakePage(std::move(things), w.limit, fingerprint,
                  [](const std::string& t) { return t; });
}

absl::StatusOr<Page<ThingGroup>> RegistryCore::ListThingGroupsForThing(absl::string_view thing,
                                                                       bool include_ancestors,
                                                                       const PageRequest& page,
                                                                       bool static_only) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", thing));
  FLEETCORE_RETURN_IF_ERROR(RequireThing(thing));
  const std::string fingerprint =
      absl::StrCat("thing_groups|", thing, "|", include_ancestors, "|", static_only);
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, fingerprint));
  FLEETCORE_ASSIGN_OR_RETURN(
      std::vector<ThingGroup> groups,
      store_->ListGroupsForThing(thing, include_ancestors, w.after, w.limit + 1));
  std::vector<ThingGroup> dynamic;
  if (!static_only) {
    FLEETCORE_ASSIGN_OR_RETURN(dynamic, DynamicGroupsOf(thing, w.after));
  }
  if (!dynamic.empty()) {
    groups.insert(groups.end(), std::make_move_iterator(dynamic.begin()),
                  std::make_move_iterator(dynamic.end()));
    std::sort(groups.begin(), groups.end(),
              [](const ThingGroup& a, const ThingGroup& b) { return a.name < b.name; });
    if (static_cast<int>(groups.size()) > w.limit + 1) groups.resize(w.limit + 1);
  }
  return MakePage(std::move(groups), w.limit, fingerprint,
                  [](const ThingGroup& g) { return g.name; });
}

absl::StatusOr<std::vector<ThingGroup>> RegistryCore::DynamicGroupsOf(absl::string_view thing,
                                                                      absl::string_view after) {
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<ThingGroup> all, store_->DynamicGroups());
  std::vector<ThingGroup> out;
  if (all.empty()) return out;
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> t, store_->GetThing(thing));
  if (!t.has_value()) return out;
  // The document the index holds of the thing: with the static groups it is directly in.
  ThingDocument doc{.thing = *std::move(t)};
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<ThingGroup> direct,
                             store_->ListGroupsForThing(thing, false, "", kMaxGroupsPerThing));
  for (const ThingGroup& g : direct) doc.group_names.push_back(g.name);
  const IndexDocument indexed = ThingIndexDocument(doc);
  for (ThingGroup& g : all) {
    if (g.name <= after) continue;
    absl::StatusOr<IndexQuery> query = ParseIndexQuery(g.query_string, ThingIndexSchema());
    if (query.ok() && MatchesIndexQuery(*query, indexed)) out.push_back(std::move(g));
  }
  return out;
}

// ---- billing groups

absl::StatusOr<BillingGroup> RegistryCore::CreateBillingGroup(absl::string_view name,
                                                              absl::string_view description) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("billingGroupName", name));
  FLEETCORE_RETURN_IF_ERROR(ValidateDescription("billingGroupDescription", description));
  BillingGroup result;
  FLEETCORE_RETURN_IF_ERROR(Change([&](RegistryTx& tx, Events&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<BillingGroup> existing,
                               tx.GetBillingGroup(name, Lock::kNone));
    if (existing.has_value()) {
      // As CreateThing: the same properties succeed, others conflict.
      if (existing->description == description) {
        result = *existing;
        return absl::OkStatus();
      }
      return absl::AlreadyExistsError(
          absl::StrCat("billing group ", Quoted(name), " already exists with another description"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.LockCount("billing groups"));
    FLEETCORE_ASSIGN_OR_RETURN(int64_t count, tx.CountBillingGroups());
    if (count >= kMaxBillingGroups) {
      return absl::ResourceExhaustedError(
          absl::StrCat("there are already ", count, " billing groups, the most there can be"));
    }
    result = BillingGroup{.name = std::string(name),
                          .id = ids_->NewUuid(),
                          .description = std::string(description),
                          .version = 1,
                          .created_at = clock_->Now()};
    return tx.InsertBillingGroup(result);
  }));
  return result;
}

absl::StatusOr<BillingGroup> RegistryCore::DescribeBillingGroup(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("billingGroupName", name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<BillingGroup> g, store_->GetBillingGroup(name));
  if (!g.has_value()) {
    return absl::NotFoundError(absl::StrCat("billing group ", Quoted(name), " does not exist"));
  }
  return *std::move(g);
}

absl::StatusOr<int64_t> RegistryCore::UpdateBillingGroup(absl::string_view name,
                                                         absl::string_view description,
                                                         std::optional<int64_t> expected_version) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("billingGroupName", name));
  FLEETCORE_RETURN_IF_ERROR(ValidateDescription("billingGroupDescription", description));
  int64_t version = 0;
  FLEETCORE_RETURN_IF_ERROR(Change([&](RegistryTx& tx, Events&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<BillingGroup> g,
                               tx.GetBillingGroup(name, Lock::kUpdate));
    if (!g.has_value()) {
      return absl::NotFoundError(absl::StrCat("billing group ", Quoted(name), " does not exist"));
    }
    if (expected_version.has_value() && *expected_version != g->version) {
      return VersionConflict("billing group", name, g->version, *expected_version);
    }
    g->description = std::string(description);
    g->version += 1;
    version = g->version;
    return tx.UpdateBillingGroup(*g);
  }));
  return version;
}

absl::Status RegistryCore::DeleteBillingGroup(absl::string_view name,
                                              std::optional<int64_t> expected_version) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("billingGroupName", name));
  return Change([&](RegistryTx& tx, Events&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<BillingGroup> g,
                               tx.GetBillingGroup(name, Lock::kUpdate));
    if (!g.has_value()) {
      return absl::OkStatus();  // AWS: deleting what does not exist succeeds
    }
    if (expected_version.has_value() && *expected_version != g->version) {
      return VersionConflict("billing group", name, g->version, *expected_version);
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteBillingGroup(name));
    tx.Publish({.type = kBillingGroupDeleted});
    return absl::OkStatus();
  });
}

absl::StatusOr<Page<BillingGroup>> RegistryCore::ListBillingGroups(absl::string_view name_prefix,
                                                                   const PageRequest& page) {
  if (!name_prefix.empty()) {
    FLEETCORE_RETURN_IF_ERROR(ValidateName("namePrefixFilter", name_prefix));
  }
  const std::string fingerprint = absl::StrCat("billing_groups|", name_prefix);
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, fingerprint));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<BillingGroup> groups,
                             store_->ListBillingGroups(name_prefix, w.after, w.limit + 1));
  return MakePage(std::move(groups), w.limit, fingerprint,
                  [](const BillingGroup& g) { return g.name; });
}

absl::Status RegistryCore::SetBillingGroup(absl::string_view group, absl::string_view thing,
                                           bool add) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("billingGroupName", group));
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", thing));
  return Change([&](RegistryTx& tx, Events&) -> absl::Status {
    // The group first, then the thing: the order DeleteBillingGroup's cascade locks them in.
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<BillingGroup> g,
                               tx.GetBillingGroup(group, Lock::kShare));
    if (!g.has_value()) {
      return absl::NotFoundError(absl::StrCat("billing group ", Quoted(group), " does not exist"));
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> t, tx.GetThing(thing, Lock::kUpdate));
    if (!t.has_value()) {
      return absl::NotFoundError(absl::StrCat("thing ", Quoted(thing), " does not exist"));
    }
    if (add ? t->billing_group == group : t->billing_group != group) {
      return absl::OkStatus();  // already so
    }
    FLEETCORE_RETURN_IF_ERROR(tx.SetThingBillingGroup(thing, add ? group : ""));
    tx.Publish({.type = add ? "billing_group.thing_added" : "billing_group.thing_removed",
                .thing = std::string(thing)});
    return absl::OkStatus();
  });
}

absl::Status RegistryCore::AddThingToBillingGroup(absl::string_view group,
                                                  absl::string_view thing) {
  return SetBillingGroup(group, thing, /*add=*/true);
}

absl::Status RegistryCore::RemoveThingFromBillingGroup(absl::string_view group,
                                                       absl::string_view thing) {
  return SetBillingGroup(group, thing, /*add=*/false);
}

absl::StatusOr<Page<std::string>> RegistryCore::ListThingsInBillingGroup(absl::string_view group,
                                                                         const PageRequest& page) {
  FLEETCORE_ASSIGN_OR_RETURN(BillingGroup g, DescribeBillingGroup(group));
  const std::string fingerprint = absl::StrCat("billing_group_things|", g.name);
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, fingerprint));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> things,
                             store_->ListThingsInBillingGroup(g.name, w.after, w.limit + 1));
  return MakePage(std::move(things), w.limit, fingerprint, [](const std::string& t) { return t; });
}

// ---- principals

absl::Status RegistryCore::AttachThingPrincipal(absl::string_view thing,
                                                absl::string_view principal, PrincipalType type) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", thing));
  FLEETCORE_RETURN_IF_ERROR(ValidatePrincipal(principal));
  return store_->Transact([&](RegistryTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> t, tx.GetThing(thing, Lock::kShare));
    if (!t.has_value()) {
      return absl::NotFoundError(absl::StrCat("thing ", Quoted(thing), " does not exist"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.LockPrincipal(principal));
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<PrincipalAttachment> existing,
                               tx.AttachmentsOfPrincipal(principal));
    for (const PrincipalAttachment& a : existing) {
      if (a.thing_name == thing) {
        if (a.type == type) {
          return absl::OkStatus();  // already attached this way
        }
        continue;
      }
      if (type == PrincipalType::kExclusive) {
        return absl::FailedPreconditionError(
            absl::StrCat("principal is already attached to thing ", Quoted(a.thing_name),
                         "; an EXCLUSIVE_THING attachment needs it attached to no other thing"));
      }
      if (a.type == PrincipalType::kExclusive) {
        return absl::FailedPreconditionError(
            absl::StrCat("principal is attached exclusively (EXCLUSIVE_THING) to thing ",
                         Quoted(a.thing_name), "; detach it there first"));
      }
    }
    FLEETCORE_RETURN_IF_ERROR(tx.PutAttachment(
        {.thing_name = std::string(thing), .principal = std::string(principal), .type = type}));
    tx.Publish({.type = "thing.principal_attached",
                .thing = std::string(thing),
                .principal = std::string(principal)});
    return absl::OkStatus();
  });
}

absl::Status RegistryCore::DetachThingPrincipal(absl::string_view thing,
                                                absl::string_view principal) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", thing));
  FLEETCORE_RETURN_IF_ERROR(ValidatePrincipal(principal));
  return store_->Transact([&](RegistryTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Thing> t, tx.GetThing(thing, Lock::kShare));
    if (!t.has_value()) {
      return absl::NotFoundError(absl::StrCat("thing ", Quoted(thing), " does not exist"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.LockPrincipal(principal));
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<PrincipalAttachment> attached,
                               tx.AttachmentsOfThing(thing));
    const bool present =
        std::any_of(attached.begin(), attached.end(),
                    [&](const PrincipalAttachment& a) { return a.principal == principal; });
    if (!present) {
      return absl::OkStatus();
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteAttachment(thing, principal));
    tx.Publish({.type = "thing.principal_detached",
                .thing = std::string(thing),
                .principal = std::string(principal)});
    return absl::OkStatus();
  });
}

absl::StatusOr<Page<PrincipalAttachment>> RegistryCore::ListThingPrincipals(
    absl::string_view thing, const PageRequest& page) {
  FLEETCORE_RETURN_IF_ERROR(ValidateName("thingName", thing));
  FLEETCORE_RETURN_IF_ERROR(RequireThing(thing));
  const std::string fingerprint = absl::StrCat("thing_principals|", thing);
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, fingerprint));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<PrincipalAttachment> items,
                             store_->ListThingPrincipals(thing, w.after, w.limit + 1));
  return MakePage(std::move(items), w.limit, fingerprint,
                  [](const PrincipalAttachment& a) { return a.principal; });
}

absl::StatusOr<Page<PrincipalAttachment>> RegistryCore::ListPrincipalThings(
    absl::string_view principal, const PageRequest& page) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePrincipal(principal));
  const std::string fingerprint = absl::StrCat("principal_things|", principal);
  FLEETCORE_ASSIGN_OR_RETURN(PageWindow w, Window(page, fingerprint));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<PrincipalAttachment> things,
                             store_->ListPrincipalThings(principal, w.after, w.limit + 1));
  return MakePage(std::move(things), w.limit, fingerprint,
                  [](const PrincipalAttachment& a) { return a.thing_name; });
}

}  // namespace fleetcore::registry
