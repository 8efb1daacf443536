#include "services/gateway/grpc_authenticator.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/aws/sigv4.h"
#include "common/mqtt/codec.h"
#include "fleetcore/ca/v1/ca.grpc.pb.h"
#include "fleetcore/policy/v1/policy.grpc.pb.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/in_flight_calls.h"
#include "services/gateway/http_publish.h"

namespace fleetcore::gateway {

namespace capb = ::fleetcore::ca::v1;
namespace ppb = ::fleetcore::policy::v1;

constexpr absl::Duration kCacheTtl = absl::Minutes(5);
constexpr size_t kMaxCached = 200000;  // entries per cache; beyond, it starts over

struct GrpcAuthenticator::Impl {
  std::unique_ptr<capb::Ca::Stub> ca;
  std::unique_ptr<ppb::Policy::Stub> policy;
  std::string token;
  aws::Arns arns;
  std::shared_ptr<const policy::PolicyDocument> anonymous;
  std::function<void(std::string, std::string)> publish_event;
  absl::Duration max_refresh;
  GatewayMetrics* metrics;
  // What reconnecting clients need not ask again; generations keep an answer fetched
  // before an invalidation out of the cache.
  struct Resolved {
    std::string certificate_arn;
    std::optional<policy::CertificateInfo> certificate;
    absl::Time expires;
  };
  struct CachedPolicies {
    std::shared_ptr<const policy::PolicySet> set;
    std::optional<policy::ThingInfo> thing;
    absl::Time expires;
  };
  // What a certificate's new client ids can share. With an exclusive thing, every client
  // id's answer is the same (`exclusive`). Otherwise a client id that names none of the
  // certificate's things gets the certificate's own policies (`own`), unless they look at
  // the thing (whose variables the client id could resolve, attached or not).
  struct PrincipalPolicies {
    std::optional<CachedPolicies> exclusive;
    std::optional<CachedPolicies> own;
    absl::flat_hash_set<std::string> things;
  };
  absl::Mutex cache_mu;
  absl::flat_hash_map<std::string, Resolved> resolved ABSL_GUARDED_BY(cache_mu);
  absl::flat_hash_map<std::string, CachedPolicies> policies ABSL_GUARDED_BY(cache_mu);
  absl::flat_hash_map<std::string, PrincipalPolicies> principals ABSL_GUARDED_BY(cache_mu);

  // The cached answer for `principal` connecting as `client_id`, if any; `*result` says
  // how it was found ("hit", "shared" or "miss").
  std::optional<CachedPolicies> Lookup(const std::string& key, const std::string& principal,
                                       const std::string& client_id, const char** result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cache_mu) {
    const absl::Time now = absl::Now();
    *result = "hit";
    if (auto it = policies.find(key); it != policies.end() && it->second.expires > now) {
      return it->second;
    }
    *result = "shared";
    if (auto it = principals.find(principal); it != principals.end()) {
      const PrincipalPolicies& p = it->second;
      if (p.exclusive.has_value() && p.exclusive->expires > now) return p.exclusive;
      if (p.own.has_value() && p.own->expires > now && !p.things.contains(client_id)) {
        return p.own;
      }
    }
    *result = "miss";
    return std::nullopt;
  }
  void Count(const char* cache, const char* result) const {
    if (metrics != nullptr) metrics->IdentityCache(cache, result);
  }
  uint64_t resolve_generation ABSL_GUARDED_BY(cache_mu) = 0;
  uint64_t policy_generation ABSL_GUARDED_BY(cache_mu) = 0;
  // Last: destroyed first, cancelling the calls still waiting and waiting for them.
  InFlightCalls calls;

  void Prepare(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    // A peer that is starting (or restarting) is waited for, within the deadline, instead of
    // failing the call at once while the channel backs off.
    ctx->set_wait_for_ready(true);
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  }
};

GrpcAuthenticator::GrpcAuthenticator(
    std::shared_ptr<grpc::Channel> ca, std::shared_ptr<grpc::Channel> policy, std::string token,
    aws::Arns arns, std::shared_ptr<const policy::PolicyDocument> anonymous,
    std::function<void(std::string, std::string)> publish_event, absl::Duration max_refresh,
    GatewayMetrics* metrics)
    : impl_(new Impl{.ca = capb::Ca::NewStub(std::move(ca)),
                     .policy = ppb::Policy::NewStub(std::move(policy)),
                     .token = std::move(token),
                     .arns = std::move(arns),
                     .anonymous = std::move(anonymous),
                     .publish_event = std::move(publish_event),
                     .max_refresh = max_refresh,
                     .metrics = metrics}) {}

GrpcAuthenticator::~GrpcAuthenticator() = default;

namespace {

using ResolveCall = TrackedCall<capb::ResolvePeerRequest, capb::ResolvePeerResponse>;
using PoliciesCall = TrackedCall<ppb::GetEffectivePoliciesRequest, ppb::GetEffectivePoliciesResponse>;

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  const auto code = static_cast<absl::StatusCode>(s.error_code());
  if (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded) {
    return absl::UnavailableError(absl::StrCat(what, ": ", s.error_message()));
  }
  return absl::Status(code, absl::StrCat(what, ": ", s.error_message()));
}

}  // namespace

namespace {

constexpr char kAuthorizerName[] = "x-amz-customauthorizer-name";
constexpr char kAuthorizerSignature[] = "x-amz-customauthorizer-signature";

}  // namespace

void GrpcAuthenticator::Authenticate(Credentials credentials, Done done) {
  if (credentials.chain_der.empty() && credentials.sigv4) {
    return AuthenticateSigV4(std::move(credentials), /*again=*/false, std::move(done));
  }
  if (credentials.chain_der.empty() &&
      (AuthorizerParams(credentials).contains(kAuthorizerName) ||
       credentials.password.has_value())) {
    return AuthenticateCustom(std::move(credentials), std::move(done));
  }
  if (credentials.chain_der.empty()) {
    if (impl_->anonymous == nullptr) {
      return done(absl::UnauthenticatedError(
          "no client certificate (and anonymous clients are not admitted)"));
    }
    std::vector<policy::PolicySet::Policy> set{{"anonymous", "1", impl_->anonymous}};
    return done(std::make_shared<const Identity>(
        "anonymous", std::move(credentials.client_id), std::move(credentials.source_ip),
        std::nullopt, std::nullopt,
        std::make_unique<const policy::PolicySet>(std::move(set), impl_->arns)));
  }
  const std::string certificate_id = credentials.certificate_id;
  uint64_t generation;
  std::optional<Impl::Resolved> known;
  {
    absl::MutexLock l(&impl_->cache_mu);
    generation = impl_->resolve_generation;
    if (auto it = impl_->resolved.find(certificate_id);
        !certificate_id.empty() && it != impl_->resolved.end() &&
        it->second.expires > absl::Now()) {
      known = it->second;
    }
  }
  impl_->Count("certificate", known.has_value() ? "hit" : "miss");
  if (known.has_value()) {
    return FetchPolicies(std::move(known->certificate_arn), std::move(credentials.client_id),
                         std::move(credentials.source_ip), std::move(known->certificate),
                         /*use_cache=*/true, std::move(done));
  }
  std::optional<policy::CertificateInfo> cert = CertificateInfoOf(credentials.chain_der[0]);
  auto* call = new ResolveCall(&impl_->calls);
  impl_->Prepare(&call->ctx);
  for (std::string& der : credentials.chain_der) call->req.add_chain_der(std::move(der));
  call->req.set_server_name(credentials.server_name);
  call->req.set_client_ip(credentials.source_ip);
  Impl* impl = impl_.get();
  impl->ca->async()->ResolvePeer(
      &call->ctx, &call->req, &call->resp,
      [this, impl, call, done, cert = std::move(cert), certificate_id, generation,
       client_id = std::move(credentials.client_id),
       source_ip = std::move(credentials.source_ip)](grpc::Status s) mutable {
        std::unique_ptr<ResolveCall> owned(call);
        if (!s.ok()) return done(FromGrpc(s, "resolving the client certificate"));
        if (impl->publish_event) {
          for (const capb::PeerEvent& e : call->resp.events()) {
            impl->publish_event(e.topic(), e.payload());
          }
        }
        if (call->resp.result() != capb::ALLOWED) {
          return done(absl::UnauthenticatedError(absl::StrCat(
              "client certificate refused: ", capb::PeerResult_Name(call->resp.result()),
              call->resp.reason().empty() ? "" : ": ", call->resp.reason())));
        }
        if (!certificate_id.empty()) {
          absl::MutexLock l(&impl->cache_mu);
          if (impl->resolve_generation == generation) {
            if (impl->resolved.size() >= kMaxCached) impl->resolved.clear();
            impl->resolved[certificate_id] = {call->resp.certificate_arn(), cert,
                                              absl::Now() + kCacheTtl};
          }
        }
        FetchPolicies(call->resp.certificate_arn(), std::move(client_id), std::move(source_ip),
                      std::move(cert), /*use_cache=*/true, std::move(done));
      });
}

void GrpcAuthenticator::Refresh(IdentityPtr current, Done done) {
  if (current != nullptr && current->from_access_key() &&
      current->reauthentication() != nullptr) {
    return AuthenticateSigV4(*current->reauthentication(), /*again=*/true, std::move(done));
  }
  if (current != nullptr && current->reauthentication() != nullptr) {
    return AuthenticateCustom(*current->reauthentication(), std::move(done));
  }
  if (current == nullptr || !current->from_certificate()) return done(std::move(current));
  FetchPolicies(current->principal(), current->client_id(), current->source_ip(),
                current->certificate(), /*use_cache=*/false, std::move(done));
}

void GrpcAuthenticator::Invalidate(absl::string_view certificate_id) {
  absl::MutexLock l(&impl_->cache_mu);
  if (!certificate_id.empty()) {
    ++impl_->resolve_generation;
    impl_->resolved.erase(certificate_id);
  }
  // A certificate's change may change its policies (attachments), so both go.
  ++impl_->policy_generation;
  impl_->policies.clear();
  impl_->principals.clear();
}

void GrpcAuthenticator::FetchPolicies(std::string principal, std::string client_id,
                                      std::string source_ip,
                                      std::optional<policy::CertificateInfo> cert,
                                      bool use_cache, Done done) {
  Impl* impl = impl_.get();
  std::string key = absl::StrCat(principal, std::string(1, '\0'), client_id);
  uint64_t generation;
  std::optional<Impl::CachedPolicies> known;
  const char* result = "miss";
  {
    absl::MutexLock l(&impl->cache_mu);
    generation = impl->policy_generation;
    if (use_cache) known = impl->Lookup(key, principal, client_id, &result);
  }
  if (use_cache) impl->Count("policies", result);
  if (known.has_value()) {
    return done(std::make_shared<const Identity>(std::move(principal), std::move(client_id),
                                                 std::move(source_ip), std::move(known->thing),
                                                 std::move(cert), std::move(known->set)));
  }
  auto* pc = new PoliciesCall(&impl_->calls);
  impl->Prepare(&pc->ctx);
  pc->req.set_principal(principal);
  pc->req.set_client_id(client_id);
  impl->policy->async()->GetEffectivePolicies(
      &pc->ctx, &pc->req, &pc->resp,
      [impl, pc, done, cert = std::move(cert), client_id = std::move(client_id),
       source_ip = std::move(source_ip), principal = std::move(principal), key = std::move(key),
       generation](grpc::Status s) mutable {
        std::unique_ptr<PoliciesCall> owned(pc);
        if (!s.ok()) return done(FromGrpc(s, "getting the client's policies"));
        std::vector<policy::PolicySet::Policy> set;
        for (const ppb::EffectivePolicy& p : pc->resp.effective_policies()) {
          absl::StatusOr<std::shared_ptr<const policy::PolicyDocument>> doc =
              policy::PolicyDocument::Parse(p.policy_document());
          // A stored policy was validated when it was created; one that no longer parses
          // grants nothing.
          if (!doc.ok()) continue;
          set.push_back({p.policy_name(), p.policy_version_id(), *std::move(doc)});
        }
        std::optional<policy::ThingInfo> thing;
        if (pc->resp.has_thing()) {
          const ppb::ThingContext& t = pc->resp.thing();
          thing.emplace();
          thing->name = t.thing_name();
          thing->type_name = t.thing_type_name();
          for (const auto& [k, v] : t.attributes()) thing->attributes[k] = v;
          thing->attached = t.is_attached();
          for (const auto& a : t.propagating_attributes()) {
            thing->propagating_attributes.push_back(
                {.user_property_key = a.user_property_key(),
                 .thing_attribute = a.thing_attribute(),
                 .connection_attribute = a.connection_attribute()});
          }
        }
        auto compiled = std::make_shared<const policy::PolicySet>(std::move(set), impl->arns);
        {
          absl::MutexLock l(&impl->cache_mu);
          if (impl->policy_generation == generation) {
            if (impl->policies.size() >= kMaxCached) impl->policies.clear();
            if (impl->principals.size() >= kMaxCached) impl->principals.clear();
            Impl::CachedPolicies entry{compiled, thing, absl::Now() + kCacheTtl};
            impl->policies[key] = entry;
            Impl::PrincipalPolicies& p = impl->principals[principal];
            if (pc->resp.exclusive_thing()) {
              p.exclusive = entry;
            } else if ((!thing.has_value() || !thing->attached) && !compiled->uses_thing()) {
              // No attached thing, so no group policies: these are the certificate's own,
              // and no statement reads the thing.
              p.own = Impl::CachedPolicies{compiled, std::nullopt, entry.expires};
              p.things = {pc->resp.principal_things().begin(),
                          pc->resp.principal_things().end()};
            }
          }
        }
        done(std::make_shared<const Identity>(std::move(principal), std::move(client_id),
                                              std::move(source_ip), std::move(thing),
                                              std::move(cert), std::move(compiled)));
      });
}

namespace {

using AuthorizeCall = TrackedCall<ppb::AuthorizeRequest, ppb::AuthorizeResponse>;
using DescribeCall = TrackedCall<ppb::DescribeAuthorizerRequest, ppb::DescribeAuthorizerResponse>;
using DescribeDefaultCall = TrackedCall<ppb::DescribeDefaultAuthorizerRequest, ppb::DescribeDefaultAuthorizerResponse>;

}  // namespace

void GrpcAuthenticator::AuthenticateCustom(Credentials credentials, Done done) {
  std::map<std::string, std::string> params = AuthorizerParams(credentials);
  // What goes to the authorizer travels in gRPC strings (and on to its JSON event), which
  // must be UTF-8: parameters that are not (%FF decodes to such a byte) are refused here,
  // and other headers that are not are left out of the event.
  for (const auto& [k, v] : params) {
    if (!mqtt::ValidUtf8(k) || !mqtt::ValidUtf8(v)) {
      return done(absl::UnauthenticatedError(
          "the custom authorizer's parameters are not UTF-8 once decoded"));
    }
  }
  if (!mqtt::ValidUtf8(credentials.http_query)) {
    return done(absl::UnauthenticatedError("the query string is not UTF-8 once decoded"));
  }
  const std::string name = params[kAuthorizerName];
  auto* call = new AuthorizeCall(&impl_->calls);
  impl_->Prepare(&call->ctx);
  call->req.set_authorizer_name(name);
  call->req.set_token_signature(params[kAuthorizerSignature]);
  if (!credentials.server_name.empty()) {
    call->req.add_protocols("tls");
    call->req.mutable_tls_context()->set_server_name(credentials.server_name);
  }
  if (credentials.http_headers.has_value()) {
    call->req.add_protocols("http");
    ppb::HttpContext* http = call->req.mutable_http_context();
    for (const auto& [k, v] : *credentials.http_headers) {
      if (mqtt::ValidUtf8(k) && mqtt::ValidUtf8(v)) (*http->mutable_headers())[k] = v;
    }
    if (!credentials.http_query.empty()) http->set_query_string("?" + credentials.http_query);
  }
  if (!credentials.client_id.empty() || credentials.username.has_value() ||
      credentials.password.has_value()) {
    call->req.add_protocols("mqtt");
    ppb::MqttContext* mqtt = call->req.mutable_mqtt_context();
    if (credentials.username.has_value()) mqtt->set_username(*credentials.username);
    if (credentials.password.has_value()) mqtt->set_password(*credentials.password);
    mqtt->set_client_id(credentials.client_id);
  }
  Impl* impl = impl_.get();
  // Presented again at refreshAfterInSeconds (kept in memory with the identity only).
  auto again = std::make_shared<const Credentials>(std::move(credentials));
  auto authorize = [impl, call, done, again]() mutable {
    impl->policy->async()->Authorize(
        &call->ctx, &call->req, &call->resp, [impl, call, done, again](grpc::Status s) {
          std::unique_ptr<AuthorizeCall> owned(call);
          if (!s.ok()) return done(FromGrpc(s, "calling the custom authorizer"));
          if (!call->resp.is_authenticated()) {
            return done(absl::UnauthenticatedError(
                absl::StrCat("the custom authorizer refused: ", call->resp.deny_reason())));
          }
          std::vector<policy::PolicySet::Policy> set;
          int i = 0;
          for (const std::string& text : call->resp.policy_documents()) {
            absl::StatusOr<std::shared_ptr<const policy::PolicyDocument>> doc =
                policy::PolicyDocument::Parse(text);
            if (doc.ok()) {
              set.push_back({absl::StrCat("authorizer policy ", i), "1", *std::move(doc)});
            }
            ++i;
          }
          auto identity = std::make_shared<Identity>(
              call->resp.principal_id(), again->client_id, again->source_ip, std::nullopt,
              std::nullopt,
              std::make_unique<const policy::PolicySet>(std::move(set), impl->arns));
          identity->set_disconnect_after_s(call->resp.disconnect_after_in_seconds());
          int64_t refresh = call->resp.refresh_after_in_seconds();
          if (impl->max_refresh > absl::ZeroDuration() &&
              (refresh <= 0 || refresh > absl::ToInt64Seconds(impl->max_refresh))) {
            refresh = std::max<int64_t>(1, absl::ToInt64Seconds(impl->max_refresh));
          }
          identity->set_refresh(refresh, again);
          done(IdentityPtr(std::move(identity)));
        });
  };
  // The token is the value named by the authorizer's tokenKeyName (a user-name or query
  // parameter, or a header); the name is looked up only when there are values besides the
  // authorizer's own.
  const bool has_token_param = std::any_of(params.begin(), params.end(), [](const auto& kv) {
    return kv.first != kAuthorizerName && kv.first != kAuthorizerSignature;
  });
  // Header names are lower case; a tokenKeyName may not be.
  auto find_token = [params](const std::string& key) -> std::optional<std::string> {
    if (key.empty()) return std::nullopt;
    if (auto it = params.find(key); it != params.end()) return it->second;
    if (auto it = params.find(absl::AsciiStrToLower(key)); it != params.end()) return it->second;
    return std::nullopt;
  };
  if (!has_token_param) return authorize();
  auto take_token = [call, find_token, authorize](const std::string& key) mutable {
    if (std::optional<std::string> token = find_token(key)) call->req.set_token(*token);
    authorize();
  };
  if (!name.empty()) {
    auto* d = new DescribeCall(&impl_->calls);
    impl->Prepare(&d->ctx);
    d->req.set_authorizer_name(name);
    impl->policy->async()->DescribeAuthorizer(
        &d->ctx, &d->req, &d->resp, [d, take_token](grpc::Status) mutable {
          std::unique_ptr<DescribeCall> owned(d);
          take_token(d->resp.authorizer_description().token_key_name());
        });
  } else {
    auto* d = new DescribeDefaultCall(&impl_->calls);
    impl->Prepare(&d->ctx);
    impl->policy->async()->DescribeDefaultAuthorizer(
        &d->ctx, &d->req, &d->resp, [d, take_token](grpc::Status) mutable {
          std::unique_ptr<DescribeDefaultCall> owned(d);
          take_token(d->resp.authorizer_description().token_key_name());
        });
  }
}

namespace {

using VerifyCall = TrackedCall<ppb::VerifyAccessKeySignatureRequest,
                               ppb::VerifyAccessKeySignatureResponse>;

// The signing names a SigV4 client may use: the WebSocket endpoint's, and the data plane's
// (botocore's iot-data signs as "iotdata"); STS's on its path (sts_api.h).
constexpr absl::string_view kSigV4Services[] = {"iotdevicegateway", "iotdata"};
constexpr absl::string_view kStsServices[] = {"sts"};
// AWS ends SigV4 connections within a day.
constexpr int64_t kSigV4LifetimeS = 24 * 60 * 60;

}  // namespace

void GrpcAuthenticator::AuthenticateSigV4(Credentials credentials, bool again, Done done) {
  // Kept with the identity, to verify again; the request is read from it.
  auto kept = std::make_shared<const Credentials>(std::move(credentials));
  aws::ReceivedRequest request{
      .method = kept->http_method,
      .target = kept->http_query.empty()
                    ? kept->http_path
                    : absl::StrCat(kept->http_path, "?", kept->http_query),
      .header = [&kept](absl::string_view name) -> std::optional<std::string> {
        if (!kept->http_headers.has_value()) return std::nullopt;
        auto it = kept->http_headers->find(std::string(name));
        if (it == kept->http_headers->end()) return std::nullopt;
        return it->second;
      },
      .body_sha256 = kept->http_body_sha256};
  const absl::Span<const absl::string_view> services =
      kept->http_path == "/" ? absl::MakeConstSpan(kStsServices)
                             : absl::MakeConstSpan(kSigV4Services);
  absl::StatusOr<aws::SigV4Presented> presented =
      aws::ReadSigV4(request, again ? std::nullopt : std::optional<absl::Time>(absl::Now()),
                     impl_->arns.region(), services);
  if (!presented.ok()) return done(presented.status());
  auto* call = new VerifyCall(&impl_->calls);
  impl_->Prepare(&call->ctx);
  call->req.set_access_key_id(presented->access_key_id);
  call->req.set_date(presented->date);
  call->req.set_region(presented->region);
  call->req.set_service(presented->service);
  for (std::string& s : presented->strings_to_sign) call->req.add_strings_to_sign(std::move(s));
  call->req.set_signature(presented->signature);
  if (presented->session_token.has_value()) call->req.set_session_token(*presented->session_token);
  Impl* impl = impl_.get();
  impl->policy->async()->VerifyAccessKeySignature(
      &call->ctx, &call->req, &call->resp,
      [this, call, done, kept, again](grpc::Status s) mutable {
        std::unique_ptr<VerifyCall> owned(call);
        if (!s.ok()) return done(FromGrpc(s, "verifying the SigV4 signature"));
        if (!call->resp.is_authenticated()) {
          return done(absl::UnauthenticatedError(
              absl::StrCat("SigV4 signature refused: ", call->resp.deny_reason())));
        }
        // Temporary credentials: the connection ends when they expire.
        const int64_t expires_at_ms =
            call->resp.has_expiration() ? call->resp.expiration().seconds() * 1000 : 0;
        FetchPolicies(call->resp.principal(), kept->client_id, kept->source_ip, std::nullopt,
                      /*use_cache=*/!again,
                      [done, kept, expires_at_ms](absl::StatusOr<IdentityPtr> identity) {
                        if (!identity.ok() || *identity == nullptr) return done(identity);
                        // The shared answer stays as it is; this connection's copy carries
                        // its lifetime and what to verify again.
                        auto own = std::make_shared<Identity>(**identity);
                        own->set_from_access_key();
                        own->set_disconnect_after_s(kSigV4LifetimeS);
                        own->set_expires_at_ms(expires_at_ms);
                        own->set_refresh(0, kept);
                        done(IdentityPtr(std::move(own)));
                      });
      });
}

}  // namespace fleetcore::gateway
