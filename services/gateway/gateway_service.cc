#include "services/gateway/gateway_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mqtt/codec.h"
#include "common/pagination/page_token.h"
#include "common/status/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "services/gateway/connection.h"
#include "services/gateway/io_thread.h"

namespace fleetcore::gateway {
namespace {

void SetTime(int64_t unix_ms, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(unix_ms);
}

void ToProto(const ConnectionInfo& info, const Connection& c, pb::Connection* out) {
  out->set_client_id(info.client_id);
  out->set_listener(ListenerName(info.listener));
  out->set_remote_address(info.remote_address);
  out->set_local_address(info.local_address);
  out->set_protocol_version(info.version == mqtt::Version::kV5 ? "5" : "3.1.1");
  out->set_clean_start(info.clean_start);
  out->set_keep_alive_seconds(static_cast<int32_t>(info.keep_alive));
  SetTime(info.connected_at_ms, out->mutable_connected_at());
  if (info.username.has_value()) out->set_username(*info.username);
  out->set_certificate_id(info.certificate_id);
  out->set_messages_received(static_cast<int64_t>(c.messages_in()));
  out->set_messages_sent(static_cast<int64_t>(c.messages_out()));
  out->set_thing_name(std::string(c.thing_name()));
}

const Connection* ConnectionOf(const Session& s, std::shared_ptr<Outlet>* keep) {
  *keep = s.outlet();
  return dynamic_cast<const Connection*>(keep->get());
}

}  // namespace

GatewayService::GatewayService(Broker* broker, grpc_util::CallRunner* calls,
                               std::function<std::string()> endpoint_address, Cluster* cluster,
                               DirectMessages* direct, absl::Duration delete_interval)
    : broker_(broker),
      calls_(calls),
      endpoint_address_(std::move(endpoint_address)),
      cluster_(cluster),
      direct_(direct),
      delete_throttle_(delete_interval) {
  if (cluster_ != nullptr) {
    cluster_->SetAsyncAdminHandler(
        [this](const v1::ClusterAdminRequest& req, Cluster::Reply reply) {
          AnswerReplica(req, std::move(reply));
        });
  }
}

template <typename Fn>
grpc::ServerUnaryReactor* GatewayService::Answer(grpc::CallbackServerContext* ctx, Fn fn) {
  // Memory only: answered on the calling thread, never queued behind Postgres work.
  return calls_->RunInline(ctx, std::move(fn));
}

absl::StatusOr<std::shared_ptr<Message>> GatewayService::ToMessage(const pb::PublishRequest& req,
                                                                   const BrokerLimits& limits,
                                                                   int64_t now_ms) {
  if (!mqtt::ValidTopicName(req.topic()) || !WithinTopicLimits(limits, req.topic())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "topic \"", req.topic(), "\" is not a valid topic name (non-empty UTF-8 without + or #, "
        "at most ", limits.max_topic_bytes, " bytes and ", limits.max_topic_slashes, " slashes)"));
  }
  if (req.qos() < 0 || req.qos() > limits.max_qos) {
    return absl::InvalidArgumentError(absl::StrCat("qos must be 0 to ", limits.max_qos));
  }
  if (req.payload().size() > limits.max_payload_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("payload of ", req.payload().size(),
                                                     " bytes is over the limit of ",
                                                     limits.max_payload_bytes));
  }
  if (req.retain() && !limits.retain_available) {
    return absl::InvalidArgumentError("retained messages are turned off (--retain-available)");
  }
  if (!req.response_topic().empty() && !mqtt::ValidTopicName(req.response_topic())) {
    return absl::InvalidArgumentError("response_topic is not a valid topic name");
  }
  // An MQTT 5 UTF-8 string property (gRPC's strings are UTF-8 already; a direct message's
  // contentType from an HTTP query string may not be).
  if (!mqtt::ValidUtf8(req.content_type())) {
    return absl::InvalidArgumentError("content_type must be UTF-8 text");
  }
  if (req.message_expiry_seconds() < 0) {
    return absl::InvalidArgumentError("message_expiry_seconds must not be negative");
  }
  auto m = std::make_shared<Message>();
  m->topic = req.topic();
  m->payload = req.payload();
  m->qos = static_cast<uint8_t>(req.qos());
  m->retain = req.retain();
  switch (req.payload_format()) {
    case pb::UTF8_DATA:
      if (!mqtt::ValidUtf8(m->payload)) {
        return absl::InvalidArgumentError("payload_format is UTF8_DATA but the payload is not");
      }
      m->payload_format_indicator = 1;
      break;
    case pb::UNSPECIFIED_BYTES:
      m->payload_format_indicator = 0;
      break;
    default:
      break;
  }
  if (!req.content_type().empty()) m->content_type = req.content_type();
  if (!req.response_topic().empty()) m->response_topic = req.response_topic();
  if (!req.correlation_data().empty()) m->correlation_data = req.correlation_data();
  for (const pb::UserProperty& p : req.user_properties()) {
    m->user_properties.push_back({p.key(), p.value()});
  }
  if (req.message_expiry_seconds() > 0) {
    m->expires_at_ms = now_ms + std::min<int64_t>(req.message_expiry_seconds(), 604800) * 1000;
  }
  m->received_ns = IoThread::MonotonicNs();
  m->published_at_ms = now_ms;
  Seal(m.get());
  return m;
}

grpc::ServerUnaryReactor* GatewayService::Publish(grpc::CallbackServerContext* ctx,
                                                  const pb::PublishRequest* req,
                                                  pb::PublishResponse* resp) {
  auto answer = [this, req, resp](bool ask) -> std::optional<absl::Status> {
    std::optional<absl::StatusOr<int32_t>> matched = PublishOne(*req, ask);
    if (!matched.has_value()) return std::nullopt;
    if (!matched->ok()) return matched->status();
    resp->set_matched_sessions(**matched);
    return absl::OkStatus();
  };
  return calls_->RunWithFastPath(
      ctx, [&] { return answer(false); },
      [answer](const grpc_util::CallContext&) { return *answer(true); });
}

std::optional<absl::StatusOr<int32_t>> GatewayService::PublishOne(const pb::PublishRequest& req,
                                                                  bool ask_replicas) {
  absl::StatusOr<std::shared_ptr<Message>> m =
      ToMessage(req, broker_->limits(), broker_->NowMs());
  if (!m.ok()) return m.status();
  if (!broker_->RetainedRoomFor(**m)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the gateway holds ", broker_->limits().max_retained_messages,
        " retained messages, its --max-retained-messages: replace or delete one, or publish ",
        "without retain"));
  }
  if (req.target_client_id().empty()) {
    return static_cast<int32_t>(broker_->Publish(*m, nullptr));
  }
  if (std::shared_ptr<Session> only = broker_->Find(req.target_client_id())) {
    return static_cast<int32_t>(broker_->Publish(*m, only.get()));
  }
  const absl::Status none = absl::NotFoundError(
      absl::StrCat("client \"", req.target_client_id(), "\" has no session"));
  if (cluster_ == nullptr) return none;
  if (!ask_replicas) return std::nullopt;
  v1::ClusterAdminRequest ask;
  *ask.mutable_publish() = req;
  for (const v1::ClusterAdminResponse& r : cluster_->AskReplicas(std::move(ask))) {
    if (r.found()) return r.matched_sessions();
  }
  return none;
}

grpc::ServerUnaryReactor* GatewayService::PublishBatch(grpc::CallbackServerContext* ctx,
                                                       const pb::PublishBatchRequest* req,
                                                       pb::PublishBatchResponse* resp) {
  auto answer = [this, req, resp](bool ask) -> std::optional<absl::Status> {
    if (req->messages_size() > 1000) {
      return absl::InvalidArgumentError("at most 1000 messages per PublishBatch");
    }
    // A target elsewhere: the whole batch goes to the pool, in order, before any is sent.
    if (!ask && cluster_ != nullptr) {
      for (const pb::PublishRequest& m : req->messages()) {
        if (!m.target_client_id().empty() && broker_->Find(m.target_client_id()) == nullptr) {
          return std::nullopt;
        }
      }
    }
    for (int i = 0; i < req->messages_size(); ++i) {
      absl::StatusOr<int32_t> matched = *PublishOne(req->messages(i), /*ask_replicas=*/true);
      resp->add_matched_sessions(matched.ok() ? *matched : 0);
      if (!matched.ok()) {
        pb::PublishBatchResponse::Refusal* r = resp->add_refused();
        r->set_index(i);
        r->set_reason(std::string(matched.status().message()));
      }
    }
    return absl::OkStatus();
  };
  return calls_->RunWithFastPath(
      ctx, [&] { return answer(false); },
      [answer](const grpc_util::CallContext&) { return *answer(true); });
}

void GatewayService::ListHere(const std::string& after, int limit,
                              std::vector<pb::Connection>* out) {
  std::vector<std::shared_ptr<Session>> sessions = broker_->Sessions();
  std::sort(sessions.begin(), sessions.end(),
            [](const auto& a, const auto& b) { return a->client_id() < b->client_id(); });
  for (const std::shared_ptr<Session>& s : sessions) {
    if (static_cast<int>(out->size()) == limit) break;
    if (s->client_id() <= after) continue;
    std::shared_ptr<Outlet> keep;
    const Connection* c = ConnectionOf(*s, &keep);
    if (c == nullptr) continue;
    ToProto(c->info(), *c, &out->emplace_back());
  }
}

grpc::ServerUnaryReactor* GatewayService::ListConnections(grpc::CallbackServerContext* ctx,
                                                          const pb::ListConnectionsRequest* req,
                                                          pb::ListConnectionsResponse* resp) {
  auto answer = [this, req, resp](bool ask) -> std::optional<absl::Status> {
    if (!ask && cluster_ != nullptr) return std::nullopt;  // every replica's: on the pool
    FLEETCORE_ASSIGN_OR_RETURN(int limit, pagination::ResolveMaxResults(req->max_results()));
    FLEETCORE_ASSIGN_OR_RETURN(std::string after,
                               pagination::DecodePageToken(req->next_token(), "connections"));
    // One more than the page, from here and from each replica: the merged first `limit`
    // are the page, and a next one says there is more.
    std::vector<pb::Connection> all;
    ListHere(after, limit + 1, &all);
    if (cluster_ != nullptr) {
      v1::ClusterAdminRequest list;
      list.mutable_list()->set_next_token(after);
      list.mutable_list()->set_max_results(limit + 1);
      for (v1::ClusterAdminResponse& r : cluster_->AskReplicas(std::move(list))) {
        for (pb::Connection& c : *r.mutable_connections()) all.push_back(std::move(c));
      }
      std::sort(all.begin(), all.end(), [](const pb::Connection& a, const pb::Connection& b) {
        return a.client_id() < b.client_id();
      });
    }
    for (int i = 0; i < static_cast<int>(all.size()) && i < limit; ++i) {
      *resp->add_connections() = std::move(all[i]);
    }
    if (static_cast<int>(all.size()) > limit) {
      resp->set_next_token(pagination::EncodePageToken(
          resp->connections(limit - 1).client_id(), "connections"));
    }
    return absl::OkStatus();
  };
  return calls_->RunWithFastPath(
      ctx, [&] { return answer(false); },
      [answer](const grpc_util::CallContext&) { return *answer(true); });
}

bool GatewayService::DescribeHere(const std::string& client_id,
                                  pb::DescribeConnectionResponse* resp) {
  std::shared_ptr<Session> s = broker_->Find(client_id);
  if (s == nullptr) return false;
  std::shared_ptr<Outlet> keep;
  if (const Connection* c = ConnectionOf(*s, &keep)) {
    resp->set_connected(true);
    ToProto(c->info(), *c, resp->mutable_connection());
  }
  pb::Session* out = resp->mutable_session();
  out->set_persistent(s->persistent());
  out->set_session_expiry_seconds(s->expiry_interval());
  if (std::optional<int64_t> at = s->detached_at_ms()) {
    SetTime(*at, out->mutable_disconnected_at());
    out->set_disconnect_reason(s->disconnect_reason());
  }
  const Session::Stats stats = s->stats();
  out->set_queued_messages(static_cast<int32_t>(stats.queued));
  out->set_inflight_messages(static_cast<int32_t>(stats.inflight));
  auto subscriptions = s->subscriptions();
  std::vector<std::string> filters;
  for (const auto& [filter, sub] : subscriptions) filters.push_back(filter);
  std::sort(filters.begin(), filters.end());
  for (const std::string& filter : filters) {
    const Session::Subscription& sub = subscriptions.at(filter);
    pb::Subscription* p = out->add_subscriptions();
    p->set_topic_filter(filter);
    p->set_qos(sub.options.qos);
    p->set_no_local(sub.options.no_local);
    p->set_retain_as_published(sub.options.retain_as_published);
    p->set_retain_handling(sub.options.retain_handling);
    p->set_subscription_id(sub.options.subscription_id);
  }
  return true;
}

grpc::ServerUnaryReactor* GatewayService::DescribeConnection(
    grpc::CallbackServerContext* ctx, const pb::DescribeConnectionRequest* req,
    pb::DescribeConnectionResponse* resp) {
  auto answer = [this, req, resp](bool ask) -> std::optional<absl::Status> {
    if (DescribeHere(req->client_id(), resp)) return absl::OkStatus();
    if (cluster_ != nullptr && !ask) return std::nullopt;
    return DescribeElsewhere(req->client_id(), resp);
  };
  return calls_->RunWithFastPath(
      ctx, [&] { return answer(false); },
      [answer](const grpc_util::CallContext&) { return *answer(true); });
}

std::optional<absl::Status> GatewayService::DeleteHere(const pb::DeleteConnectionRequest& req) {
  // The replica holding the client counts the quota, so calls made to any replica count.
  if (broker_->Find(req.client_id()) == nullptr) return std::nullopt;
  if (absl::Status s = AdmitDelete(req.client_id()); !s.ok()) return s;
  if (broker_->Disconnect(req.client_id(), mqtt::reason::kAdministrativeAction,
                          req.prevent_will_message() ? WillPolicy::kSuppress : WillPolicy::kPublish,
                          req.clean_session())) {
    return absl::OkStatus();
  }
  return std::nullopt;
}

absl::Status GatewayService::AdmitDelete(const std::string& client_id) {
  const int64_t now = broker_->NowMs();
  // Client ids deleted a second ago or more are forgotten now and then.
  if (delete_throttle_.size() > 10000) delete_throttle_.Forget(now);
  if (delete_throttle_.Admit(client_id, now)) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("DeleteConnection of client \"", client_id,
                   "\" was asked less than a second ago: one a second per client id (AWS IoT's "
                   "quota); try again in a second"));
}

grpc::ServerUnaryReactor* GatewayService::DeleteConnection(grpc::CallbackServerContext* ctx,
                                                           const pb::DeleteConnectionRequest* req,
                                                           pb::DeleteConnectionResponse*) {
  auto answer = [this, req](bool ask) -> std::optional<absl::Status> {
    if (std::optional<absl::Status> here = DeleteHere(*req)) return *here;
    if (cluster_ != nullptr && !ask) return std::nullopt;
    return DeleteElsewhere(*req);
  };
  return calls_->RunWithFastPath(
      ctx, [&] { return answer(false); },
      [answer](const grpc_util::CallContext&) { return *answer(true); });
}

absl::Status GatewayService::DescribeElsewhere(const std::string& client_id,
                                              pb::DescribeConnectionResponse* resp) {
  if (cluster_ != nullptr) {
    v1::ClusterAdminRequest describe;
    describe.mutable_describe()->set_client_id(client_id);
    for (v1::ClusterAdminResponse& r : cluster_->AskReplicas(std::move(describe))) {
      if (r.found()) {
        *resp = std::move(*r.mutable_describe());
        return absl::OkStatus();
      }
    }
  }
  return absl::NotFoundError(
      absl::StrCat("client \"", client_id, "\" has no connection and no session"));
}

absl::Status GatewayService::DeleteElsewhere(const pb::DeleteConnectionRequest& req) {
  if (cluster_ != nullptr) {
    v1::ClusterAdminRequest del;
    *del.mutable_delete_() = req;
    for (const v1::ClusterAdminResponse& r : cluster_->AskReplicas(std::move(del))) {
      if (!r.found()) continue;
      return absl::Status(static_cast<absl::StatusCode>(r.error_code()), r.error_message());
    }
  }
  return absl::NotFoundError(absl::StrCat("client \"", req.client_id(), "\" is not connected",
                                          req.clean_session() ? " and has no session" : ""));
}

void GatewayService::Describe(const std::string& client_id, DescribeDone done) {
  pb::DescribeConnectionResponse resp;
  if (DescribeHere(client_id, &resp)) return done(std::move(resp));
  if (cluster_ == nullptr) return done(DescribeElsewhere(client_id, &resp));
  if (!askers_.TrySubmit([this, client_id, done] {
        pb::DescribeConnectionResponse r;
        absl::Status s = DescribeElsewhere(client_id, &r);
        if (s.ok()) return done(std::move(r));
        done(s);
      })) {
    done(absl::UnavailableError("too many connection requests on their way; try again"));
  }
}

void GatewayService::Delete(const pb::DeleteConnectionRequest& req,
                            std::function<void(absl::Status)> done) {
  if (std::optional<absl::Status> here = DeleteHere(req)) return done(*here);
  if (cluster_ == nullptr) return done(DeleteElsewhere(req));
  if (!askers_.TrySubmit([this, req, done] { done(DeleteElsewhere(req)); })) {
    done(absl::UnavailableError("too many connection requests on their way; try again"));
  }
}

void GatewayService::AnswerReplica(const v1::ClusterAdminRequest& req, Cluster::Reply reply) {
  v1::ClusterAdminResponse resp;
  switch (req.call_case()) {
    case v1::ClusterAdminRequest::kDirect: {
      // Answered once delivered (with confirmation: once acknowledged, or not in time).
      auto answer = [reply](absl::Status s) {
        v1::ClusterAdminResponse r;
        r.set_found(true);
        r.set_error_code(static_cast<int32_t>(s.code()));
        r.set_error_message(std::string(s.message()));
        reply(std::move(r));
      };
      if (direct_ != nullptr && direct_->SendHere(req.direct(), std::move(answer))) return;
      break;
    }
    case v1::ClusterAdminRequest::kDescribe:
      resp.set_found(DescribeHere(req.describe().client_id(), resp.mutable_describe()));
      break;
    case v1::ClusterAdminRequest::kDelete: {
      const std::optional<absl::Status> here = DeleteHere(req.delete_());
      resp.set_found(here.has_value());
      if (here.has_value() && !here->ok()) {
        resp.set_error_code(static_cast<int32_t>(here->code()));
        resp.set_error_message(std::string(here->message()));
      }
      break;
    }
    case v1::ClusterAdminRequest::kList: {
      std::vector<pb::Connection> here;
      ListHere(req.list().next_token(), std::max(1, req.list().max_results()), &here);
      for (pb::Connection& c : here) *resp.add_connections() = std::move(c);
      break;
    }
    case v1::ClusterAdminRequest::kPublish: {
      // Only for a target held here: the asking replica answers NOT_FOUND from nobody's.
      if (broker_->Find(req.publish().target_client_id()) == nullptr) break;
      std::optional<absl::StatusOr<int32_t>> matched = PublishOne(req.publish(), false);
      if (matched.has_value() && matched->ok()) {
        resp.set_found(true);
        resp.set_matched_sessions(**matched);
      }
      break;
    }
    case v1::ClusterAdminRequest::CALL_NOT_SET:
      break;
  }
  reply(std::move(resp));
}

grpc::ServerUnaryReactor* GatewayService::SendDirectMessage(
    grpc::CallbackServerContext* ctx, const pb::SendDirectMessageRequest* req,
    pb::SendDirectMessageResponse* resp) {
  return calls_->RunAsync(ctx, [this, req, resp](const grpc_util::CallContext& call,
                                                 grpc_util::CallRunner::Finish finish) {
    if (direct_ == nullptr) {
      return finish(absl::UnavailableError("this gateway sends no direct messages"));
    }
    direct_->Send(*req, [resp, finish, trace = call.request_id](absl::Status s) {
      if (s.ok()) {
        resp->set_message("OK");
        resp->set_trace_id(trace);
      }
      finish(std::move(s));
    });
  });
}

grpc::ServerUnaryReactor* GatewayService::ListRetainedMessages(
    grpc::CallbackServerContext* ctx, const pb::ListRetainedMessagesRequest* req,
    pb::ListRetainedMessagesResponse* resp) {
  return Answer(ctx, [&]() -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(int limit, pagination::ResolveMaxResults(req->max_results()));
    FLEETCORE_ASSIGN_OR_RETURN(std::string after,
                               pagination::DecodePageToken(req->next_token(), "retained"));
    std::vector<MessagePtr> page = broker_->retained().List(after, static_cast<size_t>(limit) + 1);
    for (size_t i = 0; i < page.size() && i < static_cast<size_t>(limit); ++i) {
      pb::RetainedMessageSummary* s = resp->add_retained_topics();
      s->set_topic(page[i]->topic);
      s->set_payload_size(static_cast<int64_t>(page[i]->payload.size()));
      s->set_qos(page[i]->qos);
      SetTime(page[i]->published_at_ms, s->mutable_last_modified_time());
    }
    if (page.size() > static_cast<size_t>(limit)) {
      resp->set_next_token(pagination::EncodePageToken(page[limit - 1]->topic, "retained"));
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GatewayService::GetRetainedMessage(
    grpc::CallbackServerContext* ctx, const pb::GetRetainedMessageRequest* req,
    pb::GetRetainedMessageResponse* resp) {
  return Answer(ctx, [&]() -> absl::Status {
    MessagePtr m = broker_->retained().Get(req->topic());
    if (m == nullptr ||
        (m->expires_at_ms.has_value() && *m->expires_at_ms <= broker_->NowMs())) {
      return absl::NotFoundError(
          absl::StrCat("no retained message on topic \"", req->topic(), "\""));
    }
    resp->set_topic(m->topic);
    resp->set_payload(m->payload);
    resp->set_qos(m->qos);
    SetTime(m->published_at_ms, resp->mutable_last_modified_time());
    for (const mqtt::UserProperty& p : m->user_properties) {
      pb::UserProperty* u = resp->add_user_properties();
      u->set_key(p.key);
      u->set_value(p.value);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* GatewayService::DescribeEndpoint(
    grpc::CallbackServerContext* ctx, const pb::DescribeEndpointRequest* req,
    pb::DescribeEndpointResponse* resp) {
  return Answer(ctx, [&]() -> absl::Status {
    const std::string& type = req->endpoint_type();
    if (type == "iot:CredentialProvider" || type == "iot:Jobs") {
      return absl::InvalidArgumentError(absl::StrCat(
          "endpoint type ", type, ": fleetcore has no ",
          type == "iot:Jobs" ? "jobs service" : "credential provider",
          "; devices connect to iot:Data-ATS"));
    }
    if (!type.empty() && type != "iot:Data-ATS" && type != "iot:Data") {
      return absl::InvalidArgumentError(absl::StrCat(
          "endpoint type \"", type, "\" is not one of iot:Data-ATS, iot:Data, "
          "iot:CredentialProvider, iot:Jobs"));
    }
    resp->set_endpoint_address(endpoint_address_());
    return absl::OkStatus();
  });
}

}  // namespace fleetcore::gateway
