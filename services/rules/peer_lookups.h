// The rules' SQL functions that read other fleetcore services, answered over gRPC with the
// admin token, where AWS's rules engine reads with the IAM role the call names:
//   get_thing_shadow()   the shadow service's GetThingShadow
//   get_registry_data()  the registry's DescribeThing and ListThingGroupsForThing
//
//   PeerLookups lookups({.shadow = channel, .registry = channel, .token = token}, metrics);
//   context.lookups = &lookups;   // iotsql::MessageContext
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/iotsql/iotsql.h"

namespace grpc {
class Channel;
}
namespace prometheus {
class Registry;
}

namespace fleetcore::rules {

class PeerLookups final : public iotsql::ServiceLookups {
 public:
  struct Peers {
    // Null when the rules service has none configured: every call fails, naming the flag.
    std::shared_ptr<grpc::Channel> shadow;
    std::shared_ptr<grpc::Channel> registry;
    std::string token;  // the services' admin token
    absl::Duration timeout = absl::Seconds(3);
  };
  // `metrics` may be null.
  PeerLookups(Peers peers, prometheus::Registry* metrics);
  ~PeerLookups() override;

  // NOT_FOUND and INVALID_ARGUMENT as the service says them; any other failure with the
  // service's code and a message naming it.
  absl::StatusOr<nlohmann::json> GetThingShadow(absl::string_view thing,
                                                absl::string_view shadow) override;
  absl::StatusOr<nlohmann::json> GetRegistryData(absl::string_view api,
                                                 absl::string_view thing) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::rules
