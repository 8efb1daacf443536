// The gRPC adapter of fleetcore.shadow.v1.Shadow: protos in, ShadowCore, protos out.
#pragma once

#include "common/grpc/call_runner.h"
#include "fleetcore/shadow/v1/shadow.grpc.pb.h"
#include "services/shadow/shadow_core.h"

namespace prometheus {
class Histogram;
class Registry;
}  // namespace prometheus

namespace fleetcore::shadow {

namespace pb = ::fleetcore::shadow::v1;

class ShadowService final : public pb::Shadow::CallbackService {
 public:
  // Nothing is owned. `metrics` (may be null) gets fleetcore_shadow_document_bytes.
  ShadowService(ShadowCore* core, grpc_util::CallRunner* calls,
                prometheus::Registry* metrics = nullptr);

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
  prometheus::Histogram* update_bytes_ = nullptr;
  prometheus::Histogram* get_bytes_ = nullptr;
};

}  // namespace fleetcore::shadow
