#include "services/gateway/shadow_forwarder.h"

#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/json/json_text.h"
#include "common/log/log.h"
#include "common/log/throttle.h"
#include "common/mqtt/codec.h"
#include "common/net/percent.h"
#include "common/status/public_message.h"
#include "fleetcore/shadow/v1/shadow.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "services/gateway/authenticator.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/http_publish.h"
#include "services/gateway/in_flight_calls.h"
#include "services/gateway/keyed_rate_limit.h"
#include "services/shadow/shadow_document.h"

namespace fleetcore::gateway {

namespace spb = ::fleetcore::shadow::v1;

// AWS answers 429 beyond 10 shadow requests in flight on one connection.
constexpr int kMaxInFlightPerConnection = 10;

struct ShadowForwarder::Impl {
  explicit Impl(int max_requests_per_shadow) : per_shadow(max_requests_per_shadow) {}

  std::unique_ptr<spb::Shadow::Stub> stub;
  std::string token;
  Broker* broker = nullptr;
  GatewayMetrics* metrics = nullptr;
  absl::Mutex mu;
  absl::flat_hash_map<uint64_t, int> in_flight ABSL_GUARDED_BY(mu);  // by session id
  // By ShadowKey.
  KeyedRateLimit per_shadow;
  log::Throttle throttled_log{absl::Seconds(10)};
  // Last: destroyed first, cancelling the calls still waiting and waiting for them.
  InFlightCalls calls;
};

namespace {

// Devices are told only "Service Unavailable" or "Internal service failure" of a failure of
// the shadow service or of the way to it (shadow::ErrorDocument); the operator is told why.
void LogServerError(const absl::Status& status, absl::string_view operation) {
  if (!IsServerError(status)) return;
  log::Warn("shadow request failed", {{"operation", operation}, {"error", status}});
}

// One request in flight: its context, messages and what to do with the answer.
template <typename Req, typename Resp>
using Call = TrackedCall<Req, Resp>;

int64_t NowSeconds() { return absl::ToUnixSeconds(absl::Now()); }

// The quota's key: a thing's shadow (classic: no name), or, with `list`, the thing's list
// requests ('/' is in no name).
std::string ShadowKey(absl::string_view thing, absl::string_view shadow, bool list = false) {
  return absl::StrCat(thing, "/", shadow, list ? "/list" : "");
}

constexpr char kRateExceeded[] = "Rate exceeded";

}  // namespace

ShadowForwarder::ShadowForwarder(std::shared_ptr<grpc::Channel> channel, std::string token,
                                 Broker* broker, GatewayMetrics* metrics,
                                 int max_requests_per_shadow)
    : impl_(std::make_unique<Impl>(max_requests_per_shadow)) {
  impl_->stub = spb::Shadow::NewStub(std::move(channel));
  impl_->token = std::move(token);
  impl_->broker = broker;
  impl_->metrics = metrics;
}

ShadowForwarder::~ShadowForwarder() = default;

bool ShadowForwarder::Admit(const std::string& key, absl::string_view operation) {
  if (impl_->per_shadow.Admit(key, absl::ToUnixNanos(absl::Now()))) return true;
  if (impl_->metrics != nullptr) impl_->metrics->ShadowThrottled(operation);
  if (uint64_t n = 0; impl_->throttled_log.Allow(&n)) {
    log::Warn("shadow requests refused over the per-shadow rate limit",
              {{"shadow", key}, {"per_second", impl_->per_shadow.rate()}, {"refused", n}});
  }
  return false;
}

void ShadowForwarder::Answer(const std::string& topic, std::string payload) {
  impl_->broker->PublishAnswer(topic, std::move(payload));
}

void ShadowForwarder::MaybeForward(const MessagePtr& message) {
  std::optional<ShadowTopic> parsed = ParseShadowTopic(message->topic);
  if (!parsed.has_value()) return;
  const ShadowTopic r = *std::move(parsed);
  // The clientToken of a get or delete comes from its payload (AWS ignores the rest).
  std::optional<std::string> token;
  if (r.operation != "update") {
    absl::StatusOr<std::optional<std::string>> t = shadow::ParseClientToken(message->payload);
    if (t.ok()) token = *t;
  }
  // Requests of devices and apps, over MQTT (a session: origin) or HTTPS publish (a
  // publisher, no session), are held to the quota; the services' own messages are not.
  const bool from_client = message->origin != 0 || message->publisher != nullptr;
  if (from_client && !Admit(ShadowKey(r.thing_name, r.shadow_name), r.operation)) {
    nlohmann::json doc{{"code", 429}, {"message", kRateExceeded}, {"timestamp", NowSeconds()}};
    if (token) doc["clientToken"] = *token;
    Answer(r.prefix + "/" + r.operation + "/rejected", doc.dump());
    return;
  }
  // A slot among the connection's requests in flight, given back when the call's callback
  // (which holds it) is destroyed.
  std::shared_ptr<void> slot;
  if (message->origin != 0) {
    const uint64_t origin = message->origin;
    {
      absl::MutexLock l(&impl_->mu);
      int& n = impl_->in_flight[origin];
      if (n >= kMaxInFlightPerConnection) {
        if (impl_->metrics != nullptr) impl_->metrics->ShadowRequest(r.operation, false);
        nlohmann::json doc{{"code", 429},
                           {"message", "Too many requests in flight on this connection"},
                           {"timestamp", NowSeconds()}};
        if (token) doc["clientToken"] = *token;
        Answer(r.prefix + "/" + r.operation + "/rejected", doc.dump());
        return;
      }
      ++n;
    }
    slot = std::shared_ptr<void>(nullptr, [impl = impl_.get(), origin](void*) {
      absl::MutexLock l(&impl->mu);
      auto it = impl->in_flight.find(origin);
      if (it != impl->in_flight.end() && --it->second <= 0) impl->in_flight.erase(it);
    });
  }
  auto reject = [this, r](const grpc::Status& s, const std::optional<std::string>& client_token) {
    const absl::Status status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    if (impl_->metrics != nullptr) impl_->metrics->ShadowRequest(r.operation, false);
    LogServerError(status, r.operation);
    Answer(r.prefix + "/" + r.operation + "/rejected",
           json_text::JsonText(shadow::ErrorDocument(status, NowSeconds(), client_token)));
  };
  auto prepare = [this](grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    // A peer that is starting (or restarting) is waited for, within the deadline, instead of
    // failing the call at once while the channel backs off.
    ctx->set_wait_for_ready(true);
    if (!impl_->token.empty()) ctx->AddMetadata("authorization", "Bearer " + impl_->token);
  };
  if (r.operation == "get") {
    auto* c = new Call<spb::GetThingShadowRequest, spb::GetThingShadowResponse>(&impl_->calls);
    c->hold = slot;
    prepare(&c->ctx);
    c->req.set_thing_name(r.thing_name);
    c->req.set_shadow_name(r.shadow_name);
    if (token) c->req.set_client_token(*token);
    impl_->stub->async()->GetThingShadow(
        &c->ctx, &c->req, &c->resp, [this, c, r, token, reject](grpc::Status s) {
          if (s.ok()) {
            if (impl_->metrics != nullptr) impl_->metrics->ShadowRequest(r.operation, true);
            Answer(r.prefix + "/get/accepted", std::move(*c->resp.mutable_payload()));
          } else {
            reject(s, token);
          }
          delete c;
        });
  } else if (r.operation == "update") {
    auto* c = new Call<spb::UpdateThingShadowRequest, spb::UpdateThingShadowResponse>(&impl_->calls);
    c->hold = slot;
    prepare(&c->ctx);
    c->req.set_thing_name(r.thing_name);
    c->req.set_shadow_name(r.shadow_name);
    c->req.set_payload(message->payload);
    impl_->stub->async()->UpdateThingShadow(
        &c->ctx, &c->req, &c->resp, [this, c, r, reject](grpc::Status s) {
          // The shadow service publishes update/accepted (and delta, documents) itself.
          if (s.ok()) {
            if (impl_->metrics != nullptr) impl_->metrics->ShadowRequest(r.operation, true);
          } else {
            absl::StatusOr<std::optional<std::string>> t =
                shadow::ParseClientToken(c->req.payload());
            reject(s, t.ok() ? *t : std::nullopt);
          }
          delete c;
        });
  } else {
    auto* c = new Call<spb::DeleteThingShadowRequest, spb::DeleteThingShadowResponse>(&impl_->calls);
    c->hold = slot;
    prepare(&c->ctx);
    c->req.set_thing_name(r.thing_name);
    c->req.set_shadow_name(r.shadow_name);
    if (token) c->req.set_client_token(*token);
    impl_->stub->async()->DeleteThingShadow(
        &c->ctx, &c->req, &c->resp, [this, c, r, token, reject](grpc::Status s) {
          if (s.ok()) {
            if (impl_->metrics != nullptr) impl_->metrics->ShadowRequest(r.operation, true);
          } else {
            reject(s, token);
          }
          delete c;
        });
  }
}

namespace {

struct HttpTarget {
  bool list = false;
  std::string thing_name;
  std::string shadow_name;
  std::string next_token;
  int page_size = 0;
  bool bad_query = false;
};

bool ParseHttpTarget(absl::string_view target, HttpTarget* out) {
  const size_t q = target.find('?');
  const absl::string_view path = target.substr(0, q);
  const absl::string_view query = q == absl::string_view::npos ? "" : target.substr(q + 1);
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
  std::string thing;
  if (parts.size() == 4 && parts[0].empty() && parts[1] == "things" && parts[3] == "shadow") {
    if (!net::PercentDecode(parts[2], false, &thing)) return false;
  } else if (parts.size() == 6 && parts[0].empty() && parts[1] == "api" && parts[2] == "things" &&
             parts[3] == "shadow" && parts[4] == "ListNamedShadowsForThing") {
    if (!net::PercentDecode(parts[5], false, &thing)) return false;
    out->list = true;
  } else {
    return false;
  }
  out->thing_name = std::move(thing);
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = kv.find('=');
    std::string key, value;
    if (!net::PercentDecode(kv.substr(0, eq), true, &key) ||
        !net::PercentDecode(eq == absl::string_view::npos ? "" : kv.substr(eq + 1), true, &value)) {
      out->bad_query = true;
      continue;
    }
    if (key == "name") {
      out->shadow_name = value;
    } else if (key == "nextToken") {
      out->next_token = value;
    } else if (key == "pageSize") {
      if (!absl::SimpleAtoi(value, &out->page_size)) out->bad_query = true;
    }
  }
  return true;
}

}  // namespace

bool ShadowForwarder::Handles(absl::string_view target) const {
  HttpTarget t;
  return ParseHttpTarget(target, &t);
}

void ShadowForwarder::Handle(absl::string_view method, absl::string_view target,
                             const HeaderLookup&, std::string body, const Identity* identity,
                             Done done) {
  HttpTarget t;
  ParseHttpTarget(target, &t);
  if (identity != nullptr) {
    // The shadow actions on thing/{thing} (thing/{thing}/{shadow} for a named shadow).
    policy::Action action = policy::Action::kListNamedShadowsForThing;
    if (!t.list) {
      action = method == "POST"     ? policy::Action::kUpdateThingShadow
               : method == "DELETE" ? policy::Action::kDeleteThingShadow
                                    : policy::Action::kGetThingShadow;
    }
    const std::string resource =
        t.shadow_name.empty() || t.list ? t.thing_name : t.thing_name + "/" + t.shadow_name;
    if (!identity->Allows(action, resource)) {
      if (impl_->metrics != nullptr) impl_->metrics->Denied(policy::ActionName(action));
      return done(403, R"({"code":403,"message":"Forbidden"})");
    }
  }
  auto fail = [done, method = std::string(method)](const grpc::Status& s) {
    const absl::Status status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    LogServerError(status, method);
    // Error messages may quote what a client sent: text that is not UTF-8 becomes U+FFFD.
    done(shadow::HttpStatus(status),
         json_text::JsonText(shadow::ErrorDocument(status, NowSeconds(), std::nullopt)));
  };
  if (t.bad_query) {
    return fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Invalid query string"));
  }
  // Names travel in gRPC strings, which must be UTF-8 (%FF decodes to a byte that is not).
  if (!mqtt::ValidUtf8(t.thing_name)) {
    return fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "Invalid thing name: not UTF-8 once decoded"));
  }
  if (!mqtt::ValidUtf8(t.shadow_name) || !mqtt::ValidUtf8(t.next_token)) {
    return fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Invalid query string"));
  }
  // The quota counts the requests that would reach the shadow service (not a 405).
  const char* operation = t.list               ? (method == "GET" ? "list" : nullptr)
                          : method == "GET"    ? "get"
                          : method == "POST"   ? "update"
                          : method == "DELETE" ? "delete"
                                               : nullptr;
  if (operation != nullptr && !Admit(ShadowKey(t.thing_name, t.shadow_name, t.list), operation)) {
    return done(429, nlohmann::json{{"code", 429}, {"message", kRateExceeded}}.dump());
  }
  auto prepare = [this](grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    // A peer that is starting (or restarting) is waited for, within the deadline, instead of
    // failing the call at once while the channel backs off.
    ctx->set_wait_for_ready(true);
    if (!impl_->token.empty()) ctx->AddMetadata("authorization", "Bearer " + impl_->token);
  };
  auto count = [this](const char* op, bool ok) {
    if (impl_->metrics != nullptr) impl_->metrics->ShadowRequest(op, ok);
  };
  if (t.list) {
    if (method != "GET") {
      return done(405, R"({"code":405,"message":"Method Not Allowed"})");
    }
    auto* c = new Call<spb::ListNamedShadowsForThingRequest,
                       spb::ListNamedShadowsForThingResponse>(&impl_->calls);
    prepare(&c->ctx);
    c->req.set_thing_name(t.thing_name);
    c->req.set_next_token(t.next_token);
    c->req.set_page_size(t.page_size);
    impl_->stub->async()->ListNamedShadowsForThing(
        &c->ctx, &c->req, &c->resp, [c, done, fail, count](grpc::Status s) {
          count("list", s.ok());
          if (s.ok()) {
            nlohmann::json out{{"results", c->resp.results()}, {"timestamp", c->resp.timestamp()}};
            if (!c->resp.next_token().empty()) out["nextToken"] = c->resp.next_token();
            done(200, out.dump());
          } else {
            fail(s);
          }
          delete c;
        });
    return;
  }
  if (method == "GET") {
    auto* c = new Call<spb::GetThingShadowRequest, spb::GetThingShadowResponse>(&impl_->calls);
    prepare(&c->ctx);
    c->req.set_thing_name(t.thing_name);
    c->req.set_shadow_name(t.shadow_name);
    impl_->stub->async()->GetThingShadow(&c->ctx, &c->req, &c->resp,
                                         [c, done, fail, count](grpc::Status s) {
                                           count("get", s.ok());
                                           if (s.ok()) {
                                             done(200, std::move(*c->resp.mutable_payload()));
                                           } else {
                                             fail(s);
                                           }
                                           delete c;
                                         });
  } else if (method == "POST") {
    auto* c = new Call<spb::UpdateThingShadowRequest, spb::UpdateThingShadowResponse>(&impl_->calls);
    prepare(&c->ctx);
    c->req.set_thing_name(t.thing_name);
    c->req.set_shadow_name(t.shadow_name);
    c->req.set_payload(std::move(body));
    impl_->stub->async()->UpdateThingShadow(&c->ctx, &c->req, &c->resp,
                                            [c, done, fail, count](grpc::Status s) {
                                              count("update", s.ok());
                                              if (s.ok()) {
                                                done(200, std::move(*c->resp.mutable_payload()));
                                              } else {
                                                fail(s);
                                              }
                                              delete c;
                                            });
  } else if (method == "DELETE") {
    auto* c = new Call<spb::DeleteThingShadowRequest, spb::DeleteThingShadowResponse>(&impl_->calls);
    prepare(&c->ctx);
    c->req.set_thing_name(t.thing_name);
    c->req.set_shadow_name(t.shadow_name);
    impl_->stub->async()->DeleteThingShadow(&c->ctx, &c->req, &c->resp,
                                            [c, done, fail, count](grpc::Status s) {
                                              count("delete", s.ok());
                                              if (s.ok()) {
                                                done(200, std::move(*c->resp.mutable_payload()));
                                              } else {
                                                fail(s);
                                              }
                                              delete c;
                                            });
  } else {
    done(405, R"({"code":405,"message":"Method Not Allowed"})");
  }
}

}  // namespace fleetcore::gateway
