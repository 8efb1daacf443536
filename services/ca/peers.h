// What the CA service asks of the registry and the policy service: provisioning creates
// things and policies and attaches certificates; deleting and rotating certificates needs
// their attachments. GrpcPeers calls the services; FakePeers keeps them in memory for tests.
//
// Errors are the peer's, with its status code, the message prefixed with "registry: " or
// "policy: ".
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetcore::ca {

struct PeerThingRecord {
  std::string name;
  std::string type_name;
  std::map<std::string, std::string> attributes;
  std::vector<std::string> groups;  // the static groups it is directly in
  std::string billing_group;        // empty: none
};

struct PrincipalThingRecord {
  std::string thing_name;
  bool exclusive = false;
};

class Peers {
 public:
  virtual ~Peers() = default;

  // ---- registry
  virtual absl::StatusOr<std::optional<PeerThingRecord>> DescribeThing(absl::string_view name) = 0;
  virtual absl::Status CreateThing(absl::string_view name, absl::string_view type_name,
                                   const std::map<std::string, std::string>& attributes) = 0;
  // Replaces the type when `type_name` is set (empty: removes it) and the attributes when
  // `attributes` is set (merged when `merge`).
  virtual absl::Status UpdateThing(
      absl::string_view name, const std::optional<std::string>& type_name,
      const std::optional<std::map<std::string, std::string>>& attributes, bool merge) = 0;
  virtual absl::Status DeleteThing(absl::string_view name) = 0;
  virtual absl::Status AddThingToGroup(absl::string_view thing, absl::string_view group) = 0;
  virtual absl::Status RemoveThingFromGroup(absl::string_view thing, absl::string_view group) = 0;
  virtual absl::Status AddThingToBillingGroup(absl::string_view thing, absl::string_view group) = 0;
  virtual absl::Status AttachThingPrincipal(absl::string_view thing, absl::string_view principal,
                                            bool exclusive) = 0;
  virtual absl::Status DetachThingPrincipal(absl::string_view thing,
                                            absl::string_view principal) = 0;
  virtual absl::StatusOr<std::vector<PrincipalThingRecord>> ThingsOfPrincipal(
      absl::string_view principal) = 0;

  // ---- policy
  // nullopt when the policy does not exist; else its default document.
  virtual absl::StatusOr<std::optional<std::string>> GetPolicy(absl::string_view name) = 0;
  virtual absl::Status CreatePolicy(absl::string_view name, absl::string_view document) = 0;
  virtual absl::Status DeletePolicy(absl::string_view name) = 0;
  virtual absl::Status AttachPolicy(absl::string_view policy, absl::string_view target) = 0;
  virtual absl::Status DetachPolicy(absl::string_view policy, absl::string_view target) = 0;
  virtual absl::StatusOr<std::vector<std::string>> PoliciesOf(absl::string_view target) = 0;
};

}  // namespace fleetcore::ca
