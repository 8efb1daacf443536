#include "services/registry/registry_events.h"

#include "absl/strings/str_cat.h"
#include "common/json/json_text.h"
#include "nlohmann/json.hpp"

namespace fleetcore::registry {
namespace {

using json = nlohmann::json;

constexpr std::pair<EventType, absl::string_view> kNames[] = {
    {EventType::kThing, "THING"},
    {EventType::kThingType, "THING_TYPE"},
    {EventType::kThingTypeAssociation, "THING_TYPE_ASSOCIATION"},
    {EventType::kThingGroup, "THING_GROUP"},
    {EventType::kThingGroupMembership, "THING_GROUP_MEMBERSHIP"},
    {EventType::kThingGroupHierarchy, "THING_GROUP_HIERARCHY"},
};

absl::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kCreated:
      return "CREATED";
    case Operation::kUpdated:
      return "UPDATED";
    case Operation::kDeleted:
      return "DELETED";
  }
  return "UPDATED";
}

std::string Lower(absl::string_view upper) {
  std::string s(upper);
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

absl::string_view ChangeName(Change c) { return c == Change::kAdded ? "ADDED" : "REMOVED"; }

json Common(const EventStamp& s, absl::string_view type, absl::string_view operation) {
  return json{{"eventType", type},
              {"eventId", s.event_id},
              {"timestamp", absl::ToUnixMillis(s.at)},
              {"operation", operation},
              {"accountId", s.arns->account_id()}};
}

json AttributesJson(const Attributes& a) {
  json out = json::object();
  for (const auto& [k, v] : a) out[k] = v;
  return out;
}

json NameOrNull(const std::string& name) { return name.empty() ? json(nullptr) : json(name); }

// A stable id for the membership of a thing in a group (the same when it is added and
// removed): the hex digits of the two ids combined, in a UUID's shape.
std::string MembershipId(absl::string_view group_id, absl::string_view thing_id) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(group_id);
  for (size_t i = 0; i < out.size() && i < thing_id.size(); ++i) {
    const int a = hex(out[i]);
    const int b = hex(thing_id[i]);
    if (a >= 0 && b >= 0) out[i] = "0123456789abcdef"[a ^ b];
  }
  return out;
}

}  // namespace

absl::string_view EventTypeName(EventType type) {
  for (const auto& [t, name] : kNames) {
    if (t == type) return name;
  }
  return "";
}

std::optional<EventType> ParseEventType(absl::string_view name) {
  for (const auto& [t, n] : kNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

EventMessage ThingEvent(const EventStamp& s, Operation op, const Thing& thing) {
  json j = Common(s, "THING_EVENT", OperationName(op));
  j["thingId"] = thing.id;
  j["thingName"] = thing.name;
  j["versionNumber"] = thing.version;
  j["thingTypeName"] = NameOrNull(thing.type_name);
  j["attributes"] = AttributesJson(thing.attributes);
  return {absl::StrCat("$aws/events/thing/", thing.name, "/", Lower(OperationName(op))),
          json_text::JsonText(j)};
}

namespace {

json PropagatingToJson(const std::vector<PropagatingAttribute>& list) {
  json out = json::array();
  for (const PropagatingAttribute& a : list) {
    json j{{"userPropertyKey", a.user_property_key}};
    if (!a.thing_attribute.empty()) j["thingAttribute"] = a.thing_attribute;
    if (!a.connection_attribute.empty()) j["connectionAttribute"] = a.connection_attribute;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

std::string PropagatingAttributesJson(const std::vector<PropagatingAttribute>& list) {
  return PropagatingToJson(list).dump();
}

std::vector<PropagatingAttribute> ParsePropagatingAttributesJson(absl::string_view text) {
  std::vector<PropagatingAttribute> out;
  const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_array()) return out;
  for (const json& j : doc) {
    if (!j.is_object()) continue;
    out.push_back({.user_property_key = j.value("userPropertyKey", ""),
                   .thing_attribute = j.value("thingAttribute", ""),
                   .connection_attribute = j.value("connectionAttribute", "")});
  }
  return out;
}

EventMessage ThingTypeEvent(const EventStamp& s, Operation op, const ThingType& type) {
  json j = Common(s, "THING_TYPE_EVENT", OperationName(op));
  j["thingTypeId"] = type.id;
  j["thingTypeName"] = type.name;
  j["isDeprecated"] = type.deprecated;
  j["deprecationDate"] =
      type.deprecated ? json(absl::ToUnixMillis(type.deprecated_at)) : json(nullptr);
  j["searchableAttributes"] = type.searchable_attributes;
  j["propagatingAttributes"] = PropagatingToJson(type.propagating_attributes);
  j["description"] = type.description;
  return {absl::StrCat("$aws/events/thingType/", type.name, "/", Lower(OperationName(op))),
          json_text::JsonText(j)};
}

EventMessage ThingTypeAssociationEvent(const EventStamp& s, Change change, const Thing& thing,
                                       absl::string_view type_name) {
  json j{{"eventId", s.event_id},
         {"eventType", "THING_TYPE_ASSOCIATION_EVENT"},
         {"operation", ChangeName(change)},
         {"thingId", thing.id},
         {"thingName", thing.name},
         {"thingTypeName", type_name},
         {"timestamp", absl::ToUnixMillis(s.at)}};
  return {absl::StrCat("$aws/events/thingTypeAssociation/thing/", thing.name, "/", type_name),
          json_text::JsonText(j)};
}

EventMessage ThingGroupEvent(const EventStamp& s, Operation op, const ThingGroup& group,
                             const std::vector<ThingGroup>& ancestors) {
  json j = Common(s, "THING_GROUP_EVENT", OperationName(op));
  j["thingGroupId"] = group.id;
  j["thingGroupName"] = group.name;
  j["versionNumber"] = group.version;
  j["parentGroupName"] = NameOrNull(group.parent);
  j["parentGroupId"] = ancestors.empty() ? json(nullptr) : json(ancestors.back().id);
  j["description"] = group.description;
  json chain = json::array();
  for (const ThingGroup& a : ancestors) {
    chain.push_back({{"groupArn", s.arns->ThingGroup(a.name)}, {"groupId", a.id}});
  }
  j["rootToParentThingGroups"] = std::move(chain);
  j["attributes"] = AttributesJson(group.attributes);
  j["dynamicGroupMappingId"] = nullptr;
  return {absl::StrCat("$aws/events/thingGroup/", group.name, "/", Lower(OperationName(op))),
          json_text::JsonText(j)};
}

EventMessage ThingGroupMembershipEvent(const EventStamp& s, Change change,
                                       const ThingGroup& group, const Thing& thing) {
  json j = Common(s, "THING_GROUP_MEMBERSHIP_EVENT", ChangeName(change));
  j["groupArn"] = s.arns->ThingGroup(group.name);
  j["groupId"] = group.id;
  j["thingArn"] = s.arns->Thing(thing.name);
  j["thingId"] = thing.id;
  j["membershipId"] = MembershipId(group.id, thing.id);
  return {absl::StrCat("$aws/events/thingGroupMembership/thingGroup/", group.name, "/thing/",
                       thing.name, "/", Lower(ChangeName(change))),
          json_text::JsonText(j)};
}

EventMessage ThingGroupHierarchyEvent(const EventStamp& s, Change change,
                                      const ThingGroup& parent, const ThingGroup& child) {
  json j = Common(s, "THING_GROUP_HIERARCHY_EVENT", ChangeName(change));
  j["thingGroupId"] = parent.id;
  j["thingGroupName"] = parent.name;
  j["childGroupId"] = child.id;
  j["childGroupName"] = child.name;
  return {absl::StrCat("$aws/events/thingGroupHierarchy/thingGroup/", parent.name,
                       "/childThingGroup/", child.name, "/", Lower(ChangeName(change))),
          json_text::JsonText(j)};
}

}  // namespace fleetcore::registry
