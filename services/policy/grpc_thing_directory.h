// ThingDirectory over the registry's gRPC API.
#pragma once

#include <memory>

#include "common/grpc/client.h"
#include "services/policy/thing_directory.h"

namespace fleetcore::registry::v1 {
class Registry;
}  // namespace fleetcore::registry::v1

namespace fleetcore::policy_service {

class GrpcThingDirectory final : public ThingDirectory {
 public:
  explicit GrpcThingDirectory(grpc_util::ServiceChannel registry);
  ~GrpcThingDirectory() override;

  absl::StatusOr<std::optional<ThingRecord>> DescribeThing(absl::string_view name) override;
  absl::StatusOr<std::vector<std::string>> GroupsWithAncestors(absl::string_view thing) override;
  absl::StatusOr<std::vector<std::string>> GroupAndAncestors(absl::string_view group) override;
  absl::Status CheckPolicyTargetGroup(absl::string_view group) override;
  absl::StatusOr<std::vector<PrincipalThing>> ThingsOfPrincipal(
      absl::string_view principal) override;

 private:
  class Stub;
  grpc_util::ServiceChannel channel_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace fleetcore::policy_service
