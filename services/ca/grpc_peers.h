// Peers over the registry's and the policy service's gRPC APIs (with the admin token and a
// deadline on every call).
#pragma once

#include <memory>

#include "common/grpc/client.h"
#include "services/ca/peers.h"

namespace fleetcore::ca {

class GrpcPeers final : public Peers {
 public:
  GrpcPeers(grpc_util::ServiceChannel registry, grpc_util::ServiceChannel policy);
  ~GrpcPeers() override;

  absl::StatusOr<std::optional<PeerThingRecord>> DescribeThing(absl::string_view name) override;
  absl::Status CreateThing(absl::string_view name, absl::string_view type_name,
                           const std::map<std::string, std::string>& attributes) override;
  absl::Status UpdateThing(absl::string_view name, const std::optional<std::string>& type_name,
                           const std::optional<std::map<std::string, std::string>>& attributes,
                           bool merge) override;
  absl::Status DeleteThing(absl::string_view name) override;
  absl::Status AddThingToGroup(absl::string_view thing, absl::string_view group) override;
  absl::Status RemoveThingFromGroup(absl::string_view thing, absl::string_view group) override;
  absl::Status AddThingToBillingGroup(absl::string_view thing, absl::string_view group) override;
  absl::Status AttachThingPrincipal(absl::string_view thing, absl::string_view principal,
                                    bool exclusive) override;
  absl::Status DetachThingPrincipal(absl::string_view thing, absl::string_view principal) override;
  absl::StatusOr<std::vector<PrincipalThingRecord>> ThingsOfPrincipal(
      absl::string_view principal) override;
  absl::StatusOr<std::optional<std::string>> GetPolicy(absl::string_view name) override;
  absl::Status CreatePolicy(absl::string_view name, absl::string_view document) override;
  absl::Status DeletePolicy(absl::string_view name) override;
  absl::Status AttachPolicy(absl::string_view policy, absl::string_view target) override;
  absl::Status DetachPolicy(absl::string_view policy, absl::string_view target) override;
  absl::StatusOr<std::vector<std::string>> PoliciesOf(absl::string_view target) override;

 private:
  struct Stubs;
  grpc_util::ServiceChannel registry_;
  grpc_util::ServiceChannel policy_;
  std::unique_ptr<Stubs> stubs_;
};

}  // namespace fleetcore::ca
