// The gRPC adapter of fleetcore.gateway.v1.Broker: Publish for the other services, and
// the connection and retained-message administration. Everything it reads is in the
// broker's memory, so calls are answered on gRPC's thread (CallRunner's fast path).
#pragma once

#include <functional>
#include <string>

#include "common/grpc/call_runner.h"
#include "fleetcore/gateway/v1/gateway.grpc.pb.h"
#include "services/gateway/broker.h"

namespace fleetcore::gateway {

namespace pb = ::fleetcore::gateway::v1;

class GatewayService final : public pb::Broker::CallbackService {
 public:
  // Nothing is owned. `endpoint_address` answers DescribeEndpoint (any thread).
  GatewayService(Broker* broker, grpc_util::CallRunner* calls,
                 std::function<std::string()> endpoint_address);

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* ctx, const pb::PublishRequest* req,
                                    pb::PublishResponse* resp) override;
  grpc::ServerUnaryReactor* PublishBatch(grpc::CallbackServerContext* ctx,
                                         const pb::PublishBatchRequest* req,
                                         pb::PublishBatchResponse* resp) override;
  grpc::ServerUnaryReactor* ListConnections(grpc::CallbackServerContext* ctx,
                                            const pb::ListConnectionsRequest* req,
                                            pb::ListConnectionsResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeConnection(grpc::CallbackServerContext* ctx,
                                               const pb::DescribeConnectionRequest* req,
                                               pb::DescribeConnectionResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteConnection(grpc::CallbackServerContext* ctx,
                                             const pb::DeleteConnectionRequest* req,
                                             pb::DeleteConnectionResponse* resp) override;
  grpc::ServerUnaryReactor* ListRetainedMessages(grpc::CallbackServerContext* ctx,
                                                 const pb::ListRetainedMessagesRequest* req,
                                                 pb::ListRetainedMessagesResponse* resp) override;
  grpc::ServerUnaryReactor* GetRetainedMessage(grpc::CallbackServerContext* ctx,
                                               const pb::GetRetainedMessageRequest* req,
                                               pb::GetRetainedMessageResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeEndpoint(grpc::CallbackServerContext* ctx,
                                             const pb::DescribeEndpointRequest* req,
                                             pb::DescribeEndpointResponse* resp) override;

  // The message a PublishRequest asks for; the checks a client's PUBLISH gets.
  static absl::StatusOr<std::shared_ptr<Message>> ToMessage(const pb::PublishRequest& req,
                                                            const BrokerLimits& limits,
                                                            int64_t now_ms);

 private:
  template <typename Fn>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, Fn fn);

  absl::StatusOr<int32_t> PublishOne(const pb::PublishRequest& req);

  Broker* const broker_;
  grpc_util::CallRunner* const calls_;
  const std::function<std::string()> endpoint_address_;
};

}  // namespace fleetcore::gateway
