// What the policy service needs to know from the registry (asked over gRPC in production,
// GrpcThingDirectory; faked in tests).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/policy/context.h"

namespace fleetcore::policy_service {

struct ThingRecord {
  std::string name;
  std::string type_name;
  std::map<std::string, std::string, std::less<>> attributes;
  // Its thing type's mqtt5Configuration.propagatingAttributes.
  std::vector<policy::PropagatingAttribute> propagating_attributes;
};

struct PrincipalThing {
  std::string thing_name;
  bool exclusive = false;
};

class ThingDirectory {
 public:
  virtual ~ThingDirectory() = default;
  // nullopt when the thing does not exist.
  virtual absl::StatusOr<std::optional<ThingRecord>> DescribeThing(absl::string_view name) = 0;
  // The thing groups `thing` is in and all their ancestors.
  virtual absl::StatusOr<std::vector<std::string>> GroupsWithAncestors(absl::string_view thing) = 0;
  // The group and its ancestors (root last); NOT_FOUND when the group does not exist.
  virtual absl::StatusOr<std::vector<std::string>> GroupAndAncestors(absl::string_view group) = 0;
  // OK when policies can be attached to the group: it exists (NOT_FOUND otherwise) and is
  // static (INVALID_ARGUMENT for a dynamic group, as AWS IoT refuses).
  virtual absl::Status CheckPolicyTargetGroup(absl::string_view group) = 0;
  // The things a principal is attached to.
  virtual absl::StatusOr<std::vector<PrincipalThing>> ThingsOfPrincipal(
      absl::string_view principal) = 0;
};

}  // namespace fleetcore::policy_service
