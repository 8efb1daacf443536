#include "services/gateway/provisioning_forwarder.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/json/json_text.h"
#include "common/log/log.h"
#include "common/log/throttle.h"
#include "common/mqtt/codec.h"
#include "common/nesting/nesting.h"
#include "common/time/clock.h"
#include "fleetcore/ca/v1/ca.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "services/gateway/broker_limits.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/in_flight_calls.h"
#include "services/gateway/rate_bucket.h"

namespace fleetcore::gateway {

namespace capb = ::fleetcore::ca::v1;
using json = nlohmann::json;

struct ProvisioningForwarder::Impl {
  explicit Impl(const ProvisioningLimits& limits)
      : create_keys(limits.create_keys_and_certificate_per_second),
        from_csr(limits.create_certificate_from_csr_per_second),
        register_thing(limits.register_thing_per_second) {}

  std::unique_ptr<capb::Ca::Stub> ca;
  std::string token;
  Broker* broker = nullptr;
  const Clock* clock = nullptr;
  GatewayMetrics* metrics = nullptr;
  SharedRateLimit create_keys;
  SharedRateLimit from_csr;
  SharedRateLimit register_thing;
  log::Throttle refused_log{absl::Seconds(10)};
  // Last: destroyed first, cancelling the calls still waiting and waiting for them.
  InFlightCalls calls;
};

namespace {

template <typename Req, typename Resp>
using Call = TrackedCall<Req, Resp>;

// CBOR text strings are not checked as they are read; what goes on to the CA (in gRPC
// strings) must be UTF-8.
constexpr char kNotText[] = "the payload's strings must be UTF-8 text";

json Rejection(int status, const std::string& code, const std::string& message) {
  return json{{"statusCode", status}, {"errorCode", code}, {"errorMessage", message}};
}

json Rejection(const capb::ProvisioningRejection& r) {
  return Rejection(r.status_code(), r.error_code(), r.error_message());
}

json Rejection(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Rejection(400, "InvalidPayload", s.error_message());
    case grpc::StatusCode::NOT_FOUND:
      return Rejection(404, "ResourceNotFound", s.error_message());
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return Rejection(403, "AccessDenied", s.error_message());
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Rejection(429, "Throttled", s.error_message());
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      log::Warn("fleet provisioning: the CA service did not answer",
                {{"error", s.error_message()}, {"code", static_cast<int>(s.error_code())}});
      return Rejection(503, "ServiceUnavailable", "Service Unavailable");
    default:
      log::Warn("fleet provisioning: the CA service failed",
                {{"error", s.error_message()}, {"code", static_cast<int>(s.error_code())}});
      return Rejection(500, "InternalFailure", "Internal service failure");
  }
}

}  // namespace

ProvisioningForwarder::ProvisioningForwarder(std::shared_ptr<grpc::Channel> ca, std::string token,
                                             Broker* broker, const ProvisioningLimits& limits,
                                             const Clock* clock, GatewayMetrics* metrics)
    : impl_(std::make_unique<Impl>(limits)) {
  impl_->ca = capb::Ca::NewStub(std::move(ca));
  impl_->token = std::move(token);
  impl_->broker = broker;
  impl_->clock = clock;
  impl_->metrics = metrics;
}

ProvisioningForwarder::~ProvisioningForwarder() = default;

void ProvisioningForwarder::MaybeForward(const MessagePtr& message) {
  const std::optional<ProvisioningTopic> request_topic = ParseProvisioningTopic(message->topic);
  if (!request_topic.has_value() || message->origin == 0) return;
  const std::string& op = request_topic->operation;
  const std::string& template_name = request_topic->template_name;
  const bool cbor = request_topic->cbor;
  // The answer goes to the asking connection only, and its claim certificate is the one
  // the request is made with.
  std::shared_ptr<Session> asker;
  for (const std::shared_ptr<Session>& s : impl_->broker->Sessions()) {
    if (s->id() == message->origin) {
      asker = s;
      break;
    }
  }
  if (asker == nullptr) return;
  std::shared_ptr<Outlet> outlet = asker->outlet();
  const std::string claim(outlet != nullptr ? outlet->certificate_id() : absl::string_view());
  Impl* impl = impl_.get();
  const std::string topic = message->topic;
  // The request's API: AWS's name for it (in the metrics and the logs), and its quota.
  struct Api {
    const char* name;
    SharedRateLimit* limit;
  };
  const Api api = op == "create"            ? Api{"CreateKeysAndCertificate", &impl->create_keys}
                  : op == "create-from-csr" ? Api{"CreateCertificateFromCsr", &impl->from_csr}
                                            : Api{"RegisterThing", &impl->register_thing};
  auto reply = [impl, asker, topic, cbor, api](const char* result, const json& doc) {
    if (impl->metrics != nullptr) impl->metrics->ProvisioningRequest(api.name, result);
    const bool accepted = std::string_view(result) == "accepted";
    impl->broker->PublishAnswer(topic + (accepted ? "/accepted" : "/rejected"),
                                json_text::AnswerPayload(doc, cbor), asker.get());
  };
  auto answer = [reply](bool accepted, const json& doc) {
    reply(accepted ? "accepted" : "rejected", doc);
  };
  // Whether the request is within its API's quota; one over it is answered here, 429.
  auto admitted = [impl, api, reply]() {
    if (api.limit->Admit(absl::ToUnixNanos(impl->clock->Now()))) return true;
    if (uint64_t n = 0; impl->refused_log.Allow(&n)) {
      log::Warn("fleet provisioning requests refused over the rate limit",
                {{"operation", api.name}, {"per_second", api.limit->rate()}, {"refused", n}});
    }
    reply("throttled",
          Rejection(429, "Throttled",
                    absl::StrCat("Rate exceeded: this endpoint takes ", api.limit->rate(), " ",
                                 api.name, " requests a second; try again later")));
    return false;
  };
  auto prepare = [impl](grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    // A peer that is starting (or restarting) is waited for, within the deadline, instead of
    // failing the call at once while the channel backs off.
    ctx->set_wait_for_ready(true);
    if (!impl->token.empty()) ctx->AddMetadata("authorization", "Bearer " + impl->token);
  };
  if (claim.empty()) {
    return answer(false, Rejection(403, "AccessDenied",
                                   "fleet provisioning needs a connection with a claim certificate"));
  }
  json request = json::object();
  if (!message->payload.empty()) {
    // A request is two levels deep; a deeper one is refused before a parser recurses
    // through it (CBOR nests a level per byte).
    constexpr int kMaxNesting = 8;
    if (cbor ? !nesting::CborNestingWithin(message->payload, kMaxNesting)
             : !nesting::JsonNestingWithin(message->payload, kMaxNesting)) {
      return answer(false, Rejection(400, "InvalidPayload", "the payload nests too deeply"));
    }
    request = cbor ? json::from_cbor(message->payload, /*strict=*/true,
                                     /*allow_exceptions=*/false)
                   : json::parse(message->payload, nullptr, /*allow_exceptions=*/false);
    if (request.is_discarded() || !request.is_object()) {
      return answer(false, Rejection(400, "InvalidPayload",
                                     cbor ? "the payload is not a CBOR map"
                                          : "the payload is not a JSON object"));
    }
  }
  if (op == "create") {
    if (!admitted()) return;
    auto* c = new Call<capb::FleetCreateKeysAndCertificateRequest,
                       capb::FleetCreateKeysAndCertificateResponse>(&impl_->calls);
    prepare(&c->ctx);
    c->req.set_claim_certificate_id(claim);
    impl->ca->async()->FleetCreateKeysAndCertificate(
        &c->ctx, &c->req, &c->resp, [c, answer](grpc::Status s) {
          std::unique_ptr<std::remove_reference_t<decltype(*c)>> owned(c);
          if (!s.ok()) return answer(false, Rejection(s));
          if (c->resp.has_rejected()) return answer(false, Rejection(c->resp.rejected()));
          answer(true, json{{"certificateId", c->resp.certificate_id()},
                            {"certificatePem", c->resp.certificate_pem()},
                            {"privateKey", c->resp.private_key()},
                            {"certificateOwnershipToken", c->resp.certificate_ownership_token()}});
        });
  } else if (op == "create-from-csr") {
    auto csr = request.find("certificateSigningRequest");
    if (csr == request.end() || !csr->is_string()) {
      return answer(false, Rejection(400, "InvalidPayload",
                                     "certificateSigningRequest (a PEM CSR) is required"));
    }
    if (!mqtt::ValidUtf8(csr->get_ref<const std::string&>())) {
      return answer(false, Rejection(400, "InvalidPayload", kNotText));
    }
    if (!admitted()) return;
    auto* c = new Call<capb::FleetCreateCertificateFromCsrRequest,
                       capb::FleetCreateCertificateFromCsrResponse>(&impl_->calls);
    prepare(&c->ctx);
    c->req.set_claim_certificate_id(claim);
    c->req.set_certificate_signing_request(csr->get<std::string>());
    impl->ca->async()->FleetCreateCertificateFromCsr(
        &c->ctx, &c->req, &c->resp, [c, answer](grpc::Status s) {
          std::unique_ptr<std::remove_reference_t<decltype(*c)>> owned(c);
          if (!s.ok()) return answer(false, Rejection(s));
          if (c->resp.has_rejected()) return answer(false, Rejection(c->resp.rejected()));
          answer(true, json{{"certificateId", c->resp.certificate_id()},
                            {"certificatePem", c->resp.certificate_pem()},
                            {"certificateOwnershipToken", c->resp.certificate_ownership_token()}});
        });
  } else {
    auto token = request.find("certificateOwnershipToken");
    if (token == request.end() || !token->is_string()) {
      return answer(false,
                    Rejection(400, "InvalidPayload", "certificateOwnershipToken is required"));
    }
    if (!mqtt::ValidUtf8(token->get_ref<const std::string&>())) {
      return answer(false, Rejection(400, "InvalidPayload", kNotText));
    }
    capb::RegisterThingRequest req;
    if (auto params = request.find("parameters"); params != request.end()) {
      if (!params->is_object()) {
        return answer(false, Rejection(400, "InvalidPayload", "parameters must be an object"));
      }
      for (auto it = params->begin(); it != params->end(); ++it) {
        if (!it.value().is_string()) {
          return answer(false, Rejection(400, "InvalidPayload",
                                         "parameter " + it.key() + " must be a string"));
        }
        if (!mqtt::ValidUtf8(it.key()) ||
            !mqtt::ValidUtf8(it.value().get_ref<const std::string&>())) {
          return answer(false, Rejection(400, "InvalidPayload", kNotText));
        }
        (*req.mutable_parameters())[it.key()] = it.value().get<std::string>();
      }
    }
    req.set_template_name(template_name);
    req.set_certificate_ownership_token(token->get<std::string>());
    req.set_claim_certificate_id(claim);
    req.set_client_id(asker->client_id());
    if (!admitted()) return;
    auto* c = new Call<capb::RegisterThingRequest, capb::RegisterThingResponse>(&impl_->calls);
    prepare(&c->ctx);
    c->req = std::move(req);
    impl->ca->async()->RegisterThing(
        &c->ctx, &c->req, &c->resp, [c, answer](grpc::Status s) {
          std::unique_ptr<std::remove_reference_t<decltype(*c)>> owned(c);
          if (!s.ok()) return answer(false, Rejection(s));
          if (c->resp.has_rejected()) return answer(false, Rejection(c->resp.rejected()));
          json config = json::object();
          for (const auto& [k, v] : c->resp.device_configuration()) config[k] = v;
          answer(true, json{{"deviceConfiguration", config}, {"thingName", c->resp.thing_name()}});
        });
  }
}

}  // namespace fleetcore::gateway
