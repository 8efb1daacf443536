// AWS IoT's registry events: the MQTT messages the registry publishes on $aws/events/...
// when things, thing types and thing groups change, each kind opt-in
// (UpdateEventConfigurations), with AWS's topics and payload fields.
//
//   $aws/events/thing/{thing}/{created|updated|deleted}                      THING
//   $aws/events/thingType/{type}/{created|updated|deleted}                   THING_TYPE
//   $aws/events/thingTypeAssociation/thing/{thing}/{type}                    THING_TYPE_ASSOCIATION
//   $aws/events/thingGroup/{group}/{created|updated|deleted}                 THING_GROUP
//   $aws/events/thingGroupMembership/thingGroup/{group}/thing/{thing}/{added|removed}
//                                                                            THING_GROUP_MEMBERSHIP
//   $aws/events/thingGroupHierarchy/thingGroup/{parent}/childThingGroup/{child}/{added|removed}
//                                                                            THING_GROUP_HIERARCHY
//
// Pure functions: the caller gives the event id and the time.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/aws/arn.h"
#include "services/registry/registry_types.h"

namespace fleetcore::registry {

enum class EventType {
  kThing,
  kThingType,
  kThingTypeAssociation,
  kThingGroup,
  kThingGroupMembership,
  kThingGroupHierarchy,
};
inline constexpr EventType kEventTypes[] = {
    EventType::kThing,      EventType::kThingType,            EventType::kThingTypeAssociation,
    EventType::kThingGroup, EventType::kThingGroupMembership, EventType::kThingGroupHierarchy};

// AWS's name of the kind ("THING_GROUP_MEMBERSHIP"), and back.
absl::string_view EventTypeName(EventType type);
std::optional<EventType> ParseEventType(absl::string_view name);

enum class Operation { kCreated, kUpdated, kDeleted };
enum class Change { kAdded, kRemoved };

// One event: its topic and JSON payload.
using EventMessage = std::pair<std::string, std::string>;

// What every event carries besides its subject.
struct EventStamp {
  std::string event_id;
  absl::Time at;
  const aws::Arns* arns = nullptr;  // the account id and ARNs
};

// A thing type's propagating attributes in AWS's JSON shape, [{"userPropertyKey": ...,
// "thingAttribute" or "connectionAttribute": ...}], as its events carry them (and the
// registry stores them); and back, from text this wrote.
std::string PropagatingAttributesJson(const std::vector<PropagatingAttribute>& list);
std::vector<PropagatingAttribute> ParsePropagatingAttributesJson(absl::string_view text);

EventMessage ThingEvent(const EventStamp& s, Operation op, const Thing& thing);
EventMessage ThingTypeEvent(const EventStamp& s, Operation op, const ThingType& type);
EventMessage ThingTypeAssociationEvent(const EventStamp& s, Change change, const Thing& thing,
                                       absl::string_view type_name);
// `ancestors`: root first, down to the group's parent.
EventMessage ThingGroupEvent(const EventStamp& s, Operation op, const ThingGroup& group,
                             const std::vector<ThingGroup>& ancestors);
EventMessage ThingGroupMembershipEvent(const EventStamp& s, Change change,
                                       const ThingGroup& group, const Thing& thing);
EventMessage ThingGroupHierarchyEvent(const EventStamp& s, Change change,
                                      const ThingGroup& parent, const ThingGroup& child);

}  // namespace fleetcore::registry
