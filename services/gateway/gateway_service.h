// The gRPC adapter of fleetcore.gateway.v1.Broker: Publish for the other services, and
// the connection and retained-message administration. Everything it reads is in the
// broker's memory, so calls are answered on gRPC's thread (CallRunner's fast path).
// Among gateway replicas, a call about a client id held by another replica, and
// ListConnections, are asked of the others (Cluster) on the worker pool.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/grpc/call_runner.h"
#include "fleetcore/gateway/v1/gateway.grpc.pb.h"
#include "services/gateway/broker.h"
#include "services/gateway/cluster.h"
#include "services/gateway/connect_throttle.h"
#include "services/gateway/direct_messages.h"

namespace fleetcore::gateway {

namespace pb = ::fleetcore::gateway::v1;

class GatewayService final : public pb::Broker::CallbackService {
 public:
  // Nothing is owned. `endpoint_address` answers DescribeEndpoint (any thread). `cluster`:
  // the other replicas, or null; it is given this service's answers for them. `direct`
  // sends direct messages (null: SendDirectMessage is UNAVAILABLE). `delete_interval`:
  // DeleteConnection's quota, one call per client id in it (AWS's second; tests may set a
  // longer one, which the refusal's words do not follow).
  GatewayService(Broker* broker, grpc_util::CallRunner* calls,
                 std::function<std::string()> endpoint_address, Cluster* cluster = nullptr,
                 DirectMessages* direct = nullptr,
                 absl::Duration delete_interval = absl::Seconds(1));

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
  grpc::ServerUnaryReactor* SendDirectMessage(grpc::CallbackServerContext* ctx,
                                              const pb::SendDirectMessageRequest* req,
                                              pb::SendDirectMessageResponse* resp) override;
  grpc::ServerUnaryReactor* ListRetainedMessages(grpc::CallbackServerContext* ctx,
                                                 const pb::ListRetainedMessagesRequest* req,
                                                 pb::ListRetainedMessagesResponse* resp) override;
  grpc::ServerUnaryReactor* GetRetainedMessage(grpc::CallbackServerContext* ctx,
                                               const pb::GetRetainedMessageRequest* req,
                                               pb::GetRetainedMessageResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeEndpoint(grpc::CallbackServerContext* ctx,
                                             const pb::DescribeEndpointRequest* req,
                                             pb::DescribeEndpointResponse* resp) override;

  // For the data plane's HTTP API (services/gateway/connections_api.h): a client's
  // connection and session, and its disconnection, wherever its replica; NOT_FOUND when
  // it has neither. Any thread; `done` runs once, here or on a thread that asked the other
  // replicas.
  using DescribeDone = std::function<void(absl::StatusOr<pb::DescribeConnectionResponse>)>;
  void Describe(const std::string& client_id, DescribeDone done);
  // RESOURCE_EXHAUSTED within a second of the last DeleteConnection of the same client id
  // (gRPC's or HTTP's, made to any replica: the one holding the client counts them): AWS
  // IoT's quota of one a second per client id, so a caller in a loop cannot keep a device off.
  void Delete(const pb::DeleteConnectionRequest& req, std::function<void(absl::Status)> done);

  // The message a PublishRequest asks for; the checks a client's PUBLISH gets.
  static absl::StatusOr<std::shared_ptr<Message>> ToMessage(const pb::PublishRequest& req,
                                                            const BrokerLimits& limits,
                                                            int64_t now_ms);

 private:
  template <typename Fn>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, Fn fn);

  // Publishes `req`: to every subscription, or to its target client's session. With
  // replicas, a target held by none here is asked of them when `ask_replicas`; otherwise
  // nullopt says it cannot be decided here.
  std::optional<absl::StatusOr<int32_t>> PublishOne(const pb::PublishRequest& req,
                                                    bool ask_replicas);
  // This replica's part of each call.
  bool DescribeHere(const std::string& client_id, pb::DescribeConnectionResponse* resp);
  // nullopt when nothing of the client is here to end; else the call's answer.
  std::optional<absl::Status> DeleteHere(const pb::DeleteConnectionRequest& req);
  void ListHere(const std::string& after, int limit, std::vector<pb::Connection>* out);
  // The other replicas' part (blocks while they answer); NOT_FOUND from none.
  absl::Status DescribeElsewhere(const std::string& client_id,
                                 pb::DescribeConnectionResponse* resp);
  absl::Status DeleteElsewhere(const pb::DeleteConnectionRequest& req);
  void AnswerReplica(const v1::ClusterAdminRequest& req, Cluster::Reply reply);
  // Counts a DeleteConnection of `client_id`, held here, against the quota (Delete).
  absl::Status AdmitDelete(const std::string& client_id);

  Broker* const broker_;
  grpc_util::CallRunner* const calls_;
  const std::function<std::string()> endpoint_address_;
  Cluster* const cluster_;
  DirectMessages* const direct_;
  // Asks the other replicas for the HTTP API, off the I/O threads.
  grpc_util::Executor askers_{2, /*max_queued=*/1000};
  ConnectThrottle delete_throttle_;
};

}  // namespace fleetcore::gateway
