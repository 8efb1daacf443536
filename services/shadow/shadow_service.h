// The gRPC adapter of fleetcore.shadow.v1.Shadow: protos in, ShadowCore, protos out.
#pragma once

#include "common/grpc/call_runner.h"
#include "fleetcore/shadow/v1/shadow.grpc.pb.h"
#include "services/shadow/shadow_core.h"

namespace fleetcore::shadow {

namespace pb = ::fleetcore::shadow::v1;

class ShadowService final : public pb::Shadow::CallbackService {
 public:
  // Nothing is owned.
  ShadowService(ShadowCore* core, grpc_util::CallRunner* calls) : core_(core), calls_(calls) {}

  grpc::ServerUnaryReactor* GetThingShadow(grpc::CallbackServerContext* ctx,
                                           const pb::GetThingShadowRequest* req,
                                           pb::GetThingShadowResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateThingShadow(grpc::CallbackServerContext* ctx,
                                              const pb::UpdateThingShadowRequest* req,
                                              pb::UpdateThingShadowResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteThingShadow(grpc::CallbackServerContext* ctx,
                                              const pb::DeleteThingShadowRequest* req,
                                              pb::DeleteThingShadowResponse* resp) override;
  grpc::ServerUnaryReactor* ListNamedShadowsForThing(
      grpc::CallbackServerContext* ctx, const pb::ListNamedShadowsForThingRequest* req,
      pb::ListNamedShadowsForThingResponse* resp) override;

 private:
  ShadowCore* const core_;
  grpc_util::CallRunner* const calls_;
};

}  // namespace fleetcore::shadow
