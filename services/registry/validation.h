// Input rules of the registry API, checked before Postgres is touched. Pure functions; every
// error is INVALID_ARGUMENT and names the field, the rule and the offending value, e.g.
//   thingName: "lamp 1" must be 1-128 characters of a-z A-Z 0-9 : _ -
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/aws/arn.h"
#include "services/registry/registry_types.h"

namespace fleetcore::registry {

// AWS IoT Core's registry limits.
inline constexpr int kMaxAttributesWithoutType = 3;
inline constexpr int kMaxAttributesWithType = 50;
inline constexpr int kMaxGroupAttributes = 50;
inline constexpr size_t kMaxAttributeBytes = 47 * 1024;
inline constexpr size_t kMaxAttributeNameLength = 128;
inline constexpr size_t kMaxAttributeValueLength = 800;
inline constexpr int kMaxGroupDepth = 7;
inline constexpr int kMaxChildGroups = 100;
inline constexpr int kMaxGroupsPerThing = 10;
inline constexpr int kMaxSearchableAttributes = 3;
inline constexpr size_t kMaxDescriptionLength = 2028;
inline constexpr int kMaxPropagatingAttributes = 20;
inline constexpr int kMaxDynamicGroups = 100;
inline constexpr int kMaxBillingGroups = 20000;

// Thing, thing type and thing group names: 1-128 of [a-zA-Z0-9:_-].
absl::Status ValidateName(absl::string_view field, absl::string_view value);

// Attribute names and values (patterns and lengths) and the 47 KB total. Not the count,
// which depends on the thing type: see ValidateThingAttributeCount.
absl::Status ValidateAttributes(absl::string_view field, const Attributes& attributes);

absl::Status ValidateThingAttributeCount(const Attributes& attributes, bool has_type);

absl::Status ValidateDescription(absl::string_view field, absl::string_view value);

// A thing type's searchableAttributes: at most 3 attribute names.
absl::Status ValidateSearchableAttributes(const std::vector<std::string>& names);

// A thing type's mqtt5Configuration.propagatingAttributes: at most 20, each with a user
// property key (1-128 of a-z A-Z 0-9 : $ .) and exactly one of a thing attribute name or a
// connection attribute (iot:ClientId, iot:Thing.ThingName).
absl::Status ValidatePropagatingAttributes(const std::vector<PropagatingAttribute>& list);

// A certificate ARN: arn:aws:iot:REGION:ACCOUNT:cert/<64 hex>.
absl::Status ValidatePrincipal(absl::string_view principal);

// The resource name given either by name or by ARN (of this install's region and account),
// as AWS lets AddThingToThingGroup and friends take either.
absl::StatusOr<std::string> NameFromNameOrArn(const aws::Arns& arns, absl::string_view name,
                                              absl::string_view arn, absl::string_view type,
                                              absl::string_view name_field,
                                              absl::string_view arn_field);

// Applies an AttributeUpdate to `current`: with merge, the update's attributes are added or
// replaced; without, they replace all. Either way an empty value means "no such attribute"
// (AWS: "to remove an attribute, call UpdateThing with an empty attribute value").
Attributes ApplyAttributeUpdate(const Attributes& current, const AttributeUpdate& update);

}  // namespace fleetcore::registry
