// get_thing_shadow() for topic rules: the rules service reads the shadow from the shadow
// service (GetThingShadow, with the admin token), where AWS's rules engine reads it with
// the IAM role the call names.
//
//   ShadowLookups lookups(channel, token, metrics);
//   context.lookups = &lookups;   // iotsql::MessageContext
//
// Thread safety: GetThingShadow may be called from any thread.
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

class ShadowLookups final : public iotsql::ServiceLookups {
 public:
  // `channel` reaches the shadow service; null when the rules service has none configured
  // (then every call fails, naming the flag). `metrics` may be null.
  ShadowLookups(std::shared_ptr<grpc::Channel> channel, std::string token,
                prometheus::Registry* metrics, absl::Duration timeout = absl::Seconds(3));
  ~ShadowLookups() override;

  // The shadow document; NOT_FOUND and INVALID_ARGUMENT as the shadow service says them,
  // any other failure UNAVAILABLE (or the service's own code) with a message naming it.
  absl::StatusOr<nlohmann::json> GetThingShadow(absl::string_view thing,
                                                absl::string_view shadow) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::rules
