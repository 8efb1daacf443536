#include "services/policy/policy_service.h"

#include <chrono>

#include "absl/strings/ascii.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace fleetcore::policy_service {
namespace {

using grpc_util::CallContext;

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

PageRequest Paging(const std::string& marker, int32_t page_size) {
  return {.marker = marker, .page_size = page_size};
}

absl::StatusOr<policy::Action> ActionOf(pb::ActionType t) {
  switch (t) {
    case pb::PUBLISH:
      return policy::Action::kPublish;
    case pb::SUBSCRIBE:
      return policy::Action::kSubscribe;
    case pb::RECEIVE:
      return policy::Action::kReceive;
    case pb::CONNECT:
      return policy::Action::kConnect;
    case pb::RETAIN_PUBLISH:
      return policy::Action::kRetainPublish;
    case pb::GET_THING_SHADOW:
      return policy::Action::kGetThingShadow;
    case pb::UPDATE_THING_SHADOW:
      return policy::Action::kUpdateThingShadow;
    case pb::DELETE_THING_SHADOW:
      return policy::Action::kDeleteThingShadow;
    case pb::LIST_NAMED_SHADOWS_FOR_THING:
      return policy::Action::kListNamedShadowsForThing;
    default:
      return absl::InvalidArgumentError(
          "actionType must be PUBLISH, SUBSCRIBE, RECEIVE, CONNECT, RETAIN_PUBLISH or a shadow "
          "action");
  }
}

pb::AuthDecision DecisionOf(policy::Effect e) {
  switch (e) {
    case policy::Effect::kAllow:
      return pb::ALLOWED;
    case policy::Effect::kExplicitDeny:
      return pb::EXPLICIT_DENY;
    case policy::Effect::kImplicitDeny:
      return pb::IMPLICIT_DENY;
  }
  return pb::IMPLICIT_DENY;
}

void ToProto(const AccessKey& k, const AccessKeyCore& core, pb::AccessKey* out) {
  out->set_user_name(k.user_name);
  out->set_access_key_id(k.id);
  out->set_status(k.active ? pb::AccessKey::ACTIVE : pb::AccessKey::INACTIVE);
  ToProto(k.created_at, out->mutable_create_date());
  out->set_user_arn(core.UserArn(k.user_name));
}

void ToProto(const Authorizer& a, const aws::Arns& arns, pb::AuthorizerDescription* out) {
  out->set_authorizer_name(a.name);
  out->set_authorizer_arn(arns.Make("authorizer", a.name));
  out->set_authorizer_function_arn(a.function_url);
  out->set_token_key_name(a.token_key_name);
  for (const auto& [k, v] : a.public_keys) (*out->mutable_token_signing_public_keys())[k] = v;
  out->set_status(a.active ? pb::ACTIVE : pb::INACTIVE);
  ToProto(a.created_at, out->mutable_creation_date());
  ToProto(a.updated_at, out->mutable_last_modified_date());
  out->set_signing_disabled(a.signing_disabled);
  out->set_enable_caching_for_http(a.caching_for_http);
}

AuthorizerRequest FromProto(absl::string_view name, absl::string_view token,
                            absl::string_view signature, const pb::HttpContext* http,
                            const pb::MqttContext* mqtt, const pb::TlsContext* tls) {
  AuthorizerRequest r{.authorizer_name = std::string(name),
                      .token = std::string(token),
                      .token_signature = std::string(signature)};
  if (tls != nullptr) {
    r.protocols.push_back("tls");
    r.tls_server_name = tls->server_name();
  }
  if (http != nullptr) {
    r.protocols.push_back("http");
    r.http_headers.emplace(http->headers().begin(), http->headers().end());
    r.http_query_string = http->query_string();
  }
  if (mqtt != nullptr) {
    r.protocols.push_back("mqtt");
    r.mqtt_username = mqtt->username();
    r.mqtt_password = mqtt->password();
    r.mqtt_client_id = mqtt->client_id();
  }
  return r;
}

std::string ActionLabel(policy::Action a) {
  std::string name(policy::ActionName(a).substr(4));  // drop "iot:"
  return name;
}

}  // namespace

struct PolicyService::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : decisions(prometheus::BuildCounter()
                      .Name("fleetcore_policy_decisions_total")
                      .Help("Authorization decisions made by TestAuthorization, by action and "
                            "result.")
                      .Register(r)),
        authorizer_calls(prometheus::BuildCounter()
                             .Name("fleetcore_policy_authorizer_calls_total")
                             .Help("Custom authorizer invocations by authorizer and result.")
                             .Register(r)),
        authorizer_latency(prometheus::BuildHistogram()
                               .Name("fleetcore_policy_authorizer_call_duration_seconds")
                               .Help("Time of a custom authorizer invocation that called the "
                                     "function.")
                               .Register(r)),
        cache(prometheus::BuildCounter()
                  .Name("fleetcore_policy_authorizer_cache_lookups_total")
                  .Help("Custom authorizer answer cache lookups, by result.")
                  .Register(r)),
        cache_hit(cache.Add({{"result", "hit"}})),
        cache_miss(cache.Add({{"result", "miss"}})),
        verifications(prometheus::BuildCounter()
                          .Name("fleetcore_policy_access_key_verifications_total")
                          .Help("SigV4 signatures checked for the gateway, by result.")
                          .Register(r)) {}

  prometheus::Family<prometheus::Counter>& decisions;
  prometheus::Family<prometheus::Counter>& authorizer_calls;
  prometheus::Family<prometheus::Histogram>& authorizer_latency;
  prometheus::Family<prometheus::Counter>& cache;
  prometheus::Counter& cache_hit;
  prometheus::Counter& cache_miss;
  prometheus::Family<prometheus::Counter>& verifications;
};

PolicyService::PolicyService(PolicyCore* policies, AuthorizerCore* authorizers,
                             AccessKeyCore* access_keys, grpc_util::CallRunner* calls,
                             prometheus::Registry* metrics)
    : policies_(policies),
      authorizers_(authorizers),
      access_keys_(access_keys),
      calls_(calls),
      metrics_(metrics != nullptr ? std::make_unique<Metrics>(*metrics) : nullptr) {}

PolicyService::~PolicyService() = default;

// ---- policies

grpc::ServerUnaryReactor* PolicyService::CreatePolicy(grpc::CallbackServerContext* ctx,
                                                      const pb::CreatePolicyRequest* req,
                                                      pb::CreatePolicyResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(PolicyVersionRecord v,
                               policies_->CreatePolicy(req->policy_name(), req->policy_document()));
    resp->set_policy_name(v.policy);
    resp->set_policy_arn(policies_->arns().Policy(v.policy));
    resp->set_policy_document(v.document);
    resp->set_policy_version_id(absl::StrCat(v.version));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::GetPolicy(grpc::CallbackServerContext* ctx,
                                                   const pb::GetPolicyRequest* req,
                                                   pb::GetPolicyResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(auto pv, policies_->GetPolicy(req->policy_name()));
    resp->set_policy_name(pv.first.name);
    resp->set_policy_arn(policies_->arns().Policy(pv.first.name));
    resp->set_policy_document(pv.second.document);
    resp->set_default_version_id(absl::StrCat(pv.first.default_version));
    ToProto(pv.first.created_at, resp->mutable_creation_date());
    ToProto(pv.first.updated_at, resp->mutable_last_modified_date());
    resp->set_generation_id(absl::StrCat(pv.first.generation));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::ListPolicies(grpc::CallbackServerContext* ctx,
                                                      const pb::ListPoliciesRequest* req,
                                                      pb::ListPoliciesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(Page<std::string> page,
                               policies_->ListPolicies(Paging(req->marker(), req->page_size())));
    for (const std::string& name : page.items) {
      pb::PolicyRef* p = resp->add_policies();
      p->set_policy_name(name);
      p->set_policy_arn(policies_->arns().Policy(name));
    }
    resp->set_next_marker(page.next_marker);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::DeletePolicy(grpc::CallbackServerContext* ctx,
                                                      const pb::DeletePolicyRequest* req,
                                                      pb::DeletePolicyResponse*) {
  return calls_->Run(
      ctx, [this, req](const CallContext&) { return policies_->DeletePolicy(req->policy_name()); });
}

grpc::ServerUnaryReactor* PolicyService::CreatePolicyVersion(
    grpc::CallbackServerContext* ctx, const pb::CreatePolicyVersionRequest* req,
    pb::CreatePolicyVersionResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        auto v, policies_->CreatePolicyVersion(req->policy_name(), req->policy_document(),
                                               req->set_as_default()));
    resp->set_policy_arn(policies_->arns().Policy(v.first.policy));
    resp->set_policy_document(v.first.document);
    resp->set_policy_version_id(absl::StrCat(v.first.version));
    resp->set_is_default_version(v.second);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::GetPolicyVersion(grpc::CallbackServerContext* ctx,
                                                          const pb::GetPolicyVersionRequest* req,
                                                          pb::GetPolicyVersionResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        auto pv, policies_->GetPolicyVersion(req->policy_name(), req->policy_version_id()));
    resp->set_policy_arn(policies_->arns().Policy(pv.first.name));
    resp->set_policy_name(pv.first.name);
    resp->set_policy_document(pv.second.document);
    resp->set_policy_version_id(absl::StrCat(pv.second.version));
    resp->set_is_default_version(pv.first.default_version == pv.second.version);
    ToProto(pv.second.created_at, resp->mutable_creation_date());
    ToProto(pv.first.updated_at, resp->mutable_last_modified_date());
    resp->set_generation_id(absl::StrCat(pv.first.generation));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::ListPolicyVersions(
    grpc::CallbackServerContext* ctx, const pb::ListPolicyVersionsRequest* req,
    pb::ListPolicyVersionsResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(auto pv, policies_->ListPolicyVersions(req->policy_name()));
    for (const PolicyVersionRecord& v : pv.second) {
      pb::PolicyVersion* out = resp->add_policy_versions();
      out->set_version_id(absl::StrCat(v.version));
      out->set_is_default_version(v.version == pv.first.default_version);
      ToProto(v.created_at, out->mutable_create_date());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::DeletePolicyVersion(
    grpc::CallbackServerContext* ctx, const pb::DeletePolicyVersionRequest* req,
    pb::DeletePolicyVersionResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return policies_->DeletePolicyVersion(req->policy_name(), req->policy_version_id());
  });
}

grpc::ServerUnaryReactor* PolicyService::SetDefaultPolicyVersion(
    grpc::CallbackServerContext* ctx, const pb::SetDefaultPolicyVersionRequest* req,
    pb::SetDefaultPolicyVersionResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return policies_->SetDefaultPolicyVersion(req->policy_name(), req->policy_version_id());
  });
}

// ---- attachments

grpc::ServerUnaryReactor* PolicyService::AttachPolicy(grpc::CallbackServerContext* ctx,
                                                      const pb::AttachPolicyRequest* req,
                                                      pb::AttachPolicyResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return policies_->AttachPolicy(req->policy_name(), req->target());
  });
}

grpc::ServerUnaryReactor* PolicyService::DetachPolicy(grpc::CallbackServerContext* ctx,
                                                      const pb::DetachPolicyRequest* req,
                                                      pb::DetachPolicyResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return policies_->DetachPolicy(req->policy_name(), req->target());
  });
}

grpc::ServerUnaryReactor* PolicyService::ListAttachedPolicies(
    grpc::CallbackServerContext* ctx, const pb::ListAttachedPoliciesRequest* req,
    pb::ListAttachedPoliciesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<std::string> page,
        policies_->ListAttachedPolicies(req->target(), req->recursive(),
                                        Paging(req->marker(), req->page_size())));
    for (const std::string& name : page.items) {
      pb::PolicyRef* p = resp->add_policies();
      p->set_policy_name(name);
      p->set_policy_arn(policies_->arns().Policy(name));
    }
    resp->set_next_marker(page.next_marker);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::ListTargetsForPolicy(
    grpc::CallbackServerContext* ctx, const pb::ListTargetsForPolicyRequest* req,
    pb::ListTargetsForPolicyResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(Page<std::string> page,
                               policies_->ListTargetsForPolicy(
                                   req->policy_name(), Paging(req->marker(), req->page_size())));
    for (std::string& t : page.items) resp->add_targets(std::move(t));
    resp->set_next_marker(page.next_marker);
    return absl::OkStatus();
  });
}

// ---- effective policies, tests

grpc::ServerUnaryReactor* PolicyService::GetEffectivePolicies(
    grpc::CallbackServerContext* ctx, const pb::GetEffectivePoliciesRequest* req,
    pb::GetEffectivePoliciesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        EffectivePolicies e,
        policies_->GetEffectivePolicies(req->principal(), req->thing_name(), req->client_id()));
    for (const AttachedPolicy& p : e.policies) {
      pb::EffectivePolicy* out = resp->add_effective_policies();
      out->set_policy_name(p.policy);
      out->set_policy_arn(policies_->arns().Policy(p.policy));
      out->set_policy_document(p.document);
      out->set_policy_version_id(absl::StrCat(p.version));
      out->set_attached_to(p.target);
    }
    if (e.thing.has_value()) {
      pb::ThingContext* t = resp->mutable_thing();
      t->set_thing_name(e.thing->name);
      t->set_thing_type_name(e.thing->type_name);
      for (const auto& [k, v] : e.thing->attributes) (*t->mutable_attributes())[k] = v;
      t->set_is_attached(e.thing->attached);
      for (const policy::PropagatingAttribute& a : e.thing->propagating_attributes) {
        registry::v1::PropagatingAttribute* out = t->add_propagating_attributes();
        out->set_user_property_key(a.user_property_key);
        out->set_thing_attribute(a.thing_attribute);
        out->set_connection_attribute(a.connection_attribute);
      }
    }
    for (std::string& name : e.principal_things) resp->add_principal_things(std::move(name));
    resp->set_exclusive_thing(e.exclusive_thing);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::TestAuthorization(grpc::CallbackServerContext* ctx,
                                                           const pb::TestAuthorizationRequest* req,
                                                           pb::TestAuthorizationResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    TestAuthorizationInput in{
        .principal = req->principal(),
        .client_id = req->client_id(),
        .policies_to_add = {req->policy_names_to_add().begin(), req->policy_names_to_add().end()},
        .policies_to_skip = {req->policy_names_to_skip().begin(),
                             req->policy_names_to_skip().end()}};
    for (const pb::AuthInfo& info : req->auth_infos()) {
      FLEETCORE_ASSIGN_OR_RETURN(policy::Action action, ActionOf(info.action_type()));
      in.auth_infos.push_back({action, {info.resources().begin(), info.resources().end()}});
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<AuthResultOutput> results,
                               policies_->TestAuthorization(in));
    auto refs = [&](const std::vector<std::string>& names, pb::PolicyList* out) {
      for (const std::string& n : names) {
        pb::PolicyRef* p = out->add_policies();
        p->set_policy_name(n);
        p->set_policy_arn(policies_->arns().Policy(n));
      }
    };
    for (size_t i = 0; i < results.size(); ++i) {
      const AuthResultOutput& r = results[i];
      pb::AuthResult* out = resp->add_auth_results();
      *out->mutable_auth_info() = req->auth_infos(static_cast<int>(i));
      refs(r.allowed, out->mutable_allowed());
      refs(r.explicit_deny, out->mutable_denied()->mutable_explicit_deny());
      refs(r.implicit_deny, out->mutable_denied()->mutable_implicit_deny());
      out->set_auth_decision(DecisionOf(r.decision));
      for (const std::string& m : r.missing_values) out->add_missing_context_values(m);
      for (const std::string& e : r.explanations) out->add_explanations(e);
      if (metrics_ != nullptr) {
        metrics_->decisions
            .Add({{"action", ActionLabel(in.auth_infos[i].action)},
                  {"result", absl::AsciiStrToLower(pb::AuthDecision_Name(DecisionOf(r.decision)))}})
            .Increment();
      }
    }
    return absl::OkStatus();
  });
}

// ---- authorizers

grpc::ServerUnaryReactor* PolicyService::CreateAuthorizer(grpc::CallbackServerContext* ctx,
                                                          const pb::CreateAuthorizerRequest* req,
                                                          pb::CreateAuthorizerResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    Authorizer in{.name = req->authorizer_name(),
                  .function_url = req->authorizer_function_arn(),
                  .token_key_name = req->token_key_name(),
                  .public_keys = {req->token_signing_public_keys().begin(),
                                  req->token_signing_public_keys().end()},
                  .active = req->status() != pb::INACTIVE,
                  .signing_disabled = req->signing_disabled(),
                  .caching_for_http = req->enable_caching_for_http()};
    FLEETCORE_ASSIGN_OR_RETURN(Authorizer a, authorizers_->CreateAuthorizer(std::move(in)));
    resp->set_authorizer_name(a.name);
    resp->set_authorizer_arn(policies_->arns().Make("authorizer", a.name));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::DescribeAuthorizer(
    grpc::CallbackServerContext* ctx, const pb::DescribeAuthorizerRequest* req,
    pb::DescribeAuthorizerResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(Authorizer a,
                               authorizers_->DescribeAuthorizer(req->authorizer_name()));
    ToProto(a, policies_->arns(), resp->mutable_authorizer_description());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::ListAuthorizers(grpc::CallbackServerContext* ctx,
                                                         const pb::ListAuthorizersRequest* req,
                                                         pb::ListAuthorizersResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    std::optional<bool> active;
    if (req->status() != pb::AUTHORIZER_STATUS_UNSPECIFIED) active = req->status() == pb::ACTIVE;
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<Authorizer> page,
        authorizers_->ListAuthorizers(active, Paging(req->marker(), req->page_size())));
    for (const Authorizer& a : page.items) {
      pb::AuthorizerSummary* s = resp->add_authorizers();
      s->set_authorizer_name(a.name);
      s->set_authorizer_arn(policies_->arns().Make("authorizer", a.name));
    }
    resp->set_next_marker(page.next_marker);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::UpdateAuthorizer(grpc::CallbackServerContext* ctx,
                                                          const pb::UpdateAuthorizerRequest* req,
                                                          pb::UpdateAuthorizerResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    AuthorizerUpdate u{.name = req->authorizer_name()};
    if (!req->authorizer_function_arn().empty()) u.function_url = req->authorizer_function_arn();
    if (!req->token_key_name().empty()) u.token_key_name = req->token_key_name();
    if (!req->token_signing_public_keys().empty()) {
      u.public_keys.emplace(req->token_signing_public_keys().begin(),
                            req->token_signing_public_keys().end());
    }
    if (req->status() != pb::AUTHORIZER_STATUS_UNSPECIFIED) u.active = req->status() == pb::ACTIVE;
    if (req->has_enable_caching_for_http()) u.caching_for_http = req->enable_caching_for_http();
    FLEETCORE_ASSIGN_OR_RETURN(Authorizer a, authorizers_->UpdateAuthorizer(u));
    resp->set_authorizer_name(a.name);
    resp->set_authorizer_arn(policies_->arns().Make("authorizer", a.name));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::DeleteAuthorizer(grpc::CallbackServerContext* ctx,
                                                          const pb::DeleteAuthorizerRequest* req,
                                                          pb::DeleteAuthorizerResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return authorizers_->DeleteAuthorizer(req->authorizer_name());
  });
}

grpc::ServerUnaryReactor* PolicyService::SetDefaultAuthorizer(
    grpc::CallbackServerContext* ctx, const pb::SetDefaultAuthorizerRequest* req,
    pb::SetDefaultAuthorizerResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(Authorizer a,
                               authorizers_->SetDefaultAuthorizer(req->authorizer_name()));
    resp->set_authorizer_name(a.name);
    resp->set_authorizer_arn(policies_->arns().Make("authorizer", a.name));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::DescribeDefaultAuthorizer(
    grpc::CallbackServerContext* ctx, const pb::DescribeDefaultAuthorizerRequest*,
    pb::DescribeDefaultAuthorizerResponse* resp) {
  return calls_->Run(ctx, [this, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(Authorizer a, authorizers_->DescribeDefaultAuthorizer());
    ToProto(a, policies_->arns(), resp->mutable_authorizer_description());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::TestInvokeAuthorizer(
    grpc::CallbackServerContext* ctx, const pb::TestInvokeAuthorizerRequest* req,
    pb::TestInvokeAuthorizerResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    AuthorizerRequest r = FromProto(req->authorizer_name(), req->token(), req->token_signature(),
                                    req->has_http_context() ? &req->http_context() : nullptr,
                                    req->has_mqtt_context() ? &req->mqtt_context() : nullptr,
                                    req->has_tls_context() ? &req->tls_context() : nullptr);
    if (r.authorizer_name.empty()) {
      return absl::InvalidArgumentError("authorizerName is required");
    }
    FLEETCORE_ASSIGN_OR_RETURN(AuthorizerAnswer a, authorizers_->TestInvoke(r));
    resp->set_is_authenticated(a.authenticated);
    resp->set_principal_id(a.principal_id);
    for (const std::string& d : a.policy_documents) resp->add_policy_documents(d);
    resp->set_refresh_after_in_seconds(a.refresh_after_seconds);
    resp->set_disconnect_after_in_seconds(a.disconnect_after_seconds);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::Authorize(grpc::CallbackServerContext* ctx,
                                                   const pb::AuthorizeRequest* req,
                                                   pb::AuthorizeResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext& call) -> absl::Status {
    AuthorizerRequest r = FromProto(req->authorizer_name(), req->token(), req->token_signature(),
                                    req->has_http_context() ? &req->http_context() : nullptr,
                                    req->has_mqtt_context() ? &req->mqtt_context() : nullptr,
                                    req->has_tls_context() ? &req->tls_context() : nullptr);
    if (!req->protocols().empty())
      r.protocols.assign(req->protocols().begin(), req->protocols().end());
    r.connection_id = req->connection_id();
    const auto start = std::chrono::steady_clock::now();
    FLEETCORE_ASSIGN_OR_RETURN(AuthorizeOutcome o, authorizers_->Authorize(r));
    if (metrics_ != nullptr) {
      // Names come from clients: unknown ones share one label, so they cannot grow the series.
      const std::string name = o.result == "not_found"     ? "(unknown)"
                               : r.authorizer_name.empty() ? "(default)"
                                                           : r.authorizer_name;
      metrics_->authorizer_calls.Add({{"authorizer", name}, {"result", o.result}}).Increment();
      (o.from_cache ? metrics_->cache_hit : metrics_->cache_miss).Increment();
      if (!o.from_cache) {
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        metrics_->authorizer_latency
            .Add({{"authorizer", name}},
                 prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                         1, 2.5, 5})
            .Observe(took.count());
      }
    }
    // A function that misbehaves is the operator's problem to fix: warn. Clients that are
    // refused are routine: debug. Neither logs the token or the password.
    if (o.result != "allow") {
      const bool malfunction = o.result == "timeout" || o.result == "unreachable" ||
                               o.result == "http_error" || o.result == "malformed";
      log::Write(malfunction ? log::Level::kWarn : log::Level::kDebug,
                 "custom authorizer denied the connection",
                 {{"request_id", call.request_id},
                  {"authorizer", r.authorizer_name},
                  {"result", o.result},
                  {"reason", o.deny_reason},
                  {"client_id", r.mqtt_client_id},
                  {"connection_id", r.connection_id}});
    }
    resp->set_is_authenticated(o.answer.authenticated);
    resp->set_principal_id(o.answer.principal_id);
    for (const std::string& d : o.answer.policy_documents) resp->add_policy_documents(d);
    resp->set_disconnect_after_in_seconds(o.answer.disconnect_after_seconds);
    resp->set_refresh_after_in_seconds(o.answer.refresh_after_seconds);
    resp->set_deny_reason(o.deny_reason);
    return absl::OkStatus();
  });
}

// ---- access keys

grpc::ServerUnaryReactor* PolicyService::CreateAccessKey(grpc::CallbackServerContext* ctx,
                                                         const pb::CreateAccessKeyRequest* req,
                                                         pb::CreateAccessKeyResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext& call) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(NewAccessKey k, access_keys_->CreateAccessKey(req->user_name()));
    ToProto(k.key, *access_keys_, resp->mutable_access_key());
    resp->set_secret_access_key(std::move(k.secret));
    log::Info("access key created", {{"request_id", call.request_id},
                                     {"user_name", k.key.user_name},
                                     {"access_key_id", k.key.id}});
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::ListAccessKeys(grpc::CallbackServerContext* ctx,
                                                        const pb::ListAccessKeysRequest* req,
                                                        pb::ListAccessKeysResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<AccessKey> page,
        access_keys_->ListAccessKeys(req->user_name(), Paging(req->marker(), req->page_size())));
    for (const AccessKey& k : page.items) ToProto(k, *access_keys_, resp->add_access_keys());
    resp->set_next_marker(page.next_marker);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::UpdateAccessKey(grpc::CallbackServerContext* ctx,
                                                         const pb::UpdateAccessKeyRequest* req,
                                                         pb::UpdateAccessKeyResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext& call) -> absl::Status {
    if (req->status() == pb::AccessKey::STATUS_UNSPECIFIED) {
      return absl::InvalidArgumentError("status must be ACTIVE or INACTIVE");
    }
    FLEETCORE_RETURN_IF_ERROR(access_keys_->UpdateAccessKey(
        req->access_key_id(), req->status() == pb::AccessKey::ACTIVE));
    log::Info("access key updated", {{"request_id", call.request_id},
                                     {"access_key_id", req->access_key_id()},
                                     {"status", pb::AccessKey::Status_Name(req->status())}});
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::DeleteAccessKey(grpc::CallbackServerContext* ctx,
                                                         const pb::DeleteAccessKeyRequest* req,
                                                         pb::DeleteAccessKeyResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext& call) -> absl::Status {
    FLEETCORE_RETURN_IF_ERROR(access_keys_->DeleteAccessKey(req->access_key_id()));
    log::Info("access key deleted",
              {{"request_id", call.request_id}, {"access_key_id", req->access_key_id()}});
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::GetSessionToken(grpc::CallbackServerContext* ctx,
                                                         const pb::GetSessionTokenRequest* req,
                                                         pb::GetSessionTokenResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext& call) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        SessionCredentials c,
        access_keys_->GetSessionToken(req->user_name(), absl::Seconds(req->duration_seconds())));
    pb::SessionCredentials* out = resp->mutable_credentials();
    out->set_access_key_id(c.access_key_id);
    out->set_secret_access_key(std::move(c.secret));
    out->set_session_token(std::move(c.session_token));
    ToProto(c.expiration, out->mutable_expiration());
    resp->set_user_arn(access_keys_->UserArn(c.user_name));
    log::Info("session credentials made",
              {{"request_id", call.request_id},
               {"user_name", c.user_name},
               {"access_key_id", c.access_key_id},
               {"expiration",
                absl::FormatTime(absl::RFC3339_sec, c.expiration, absl::UTCTimeZone())}});
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PolicyService::VerifyAccessKeySignature(
    grpc::CallbackServerContext* ctx, const pb::VerifyAccessKeySignatureRequest* req,
    pb::VerifyAccessKeySignatureResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext& call) -> absl::Status {
    SignatureCheck check{.access_key_id = req->access_key_id(),
                         .date = req->date(),
                         .region = req->region(),
                         .service = req->service(),
                         .strings_to_sign = {req->strings_to_sign().begin(),
                                             req->strings_to_sign().end()},
                         .signature = req->signature(),
                         .session_token = req->session_token()};
    absl::StatusOr<SignatureVerdict> verdict = access_keys_->Verify(check);
    if (absl::IsDataLoss(verdict.status())) {
      // The operator's to mend (the key file), and every client of that key is refused.
      log::Error("an access key's secret does not open: is --access-key-sealing-key-file the "
                 "key that sealed it?",
                 {{"request_id", call.request_id},
                  {"access_key_id", req->access_key_id()},
                  {"error", verdict.status()}});
    }
    if (!verdict.ok()) return verdict.status();
    const SignatureVerdict& v = *verdict;
    if (metrics_ != nullptr) metrics_->verifications.Add({{"result", v.result}}).Increment();
    if (v.resealed) {
      log::Info("an access key's secret is sealed with the current sealing key now",
                {{"request_id", call.request_id}, {"access_key_id", req->access_key_id()}});
    }
    if (!v.authenticated) {
      // Refused clients are routine; the key id is not a secret, the signature says nothing.
      log::Debug("SigV4 signature refused", {{"request_id", call.request_id},
                                             {"access_key_id", req->access_key_id()},
                                             {"result", v.result}});
    }
    resp->set_is_authenticated(v.authenticated);
    resp->set_user_name(v.user_name);
    resp->set_principal(v.principal);
    resp->set_deny_reason(v.deny_reason);
    if (v.expiration.has_value()) ToProto(*v.expiration, resp->mutable_expiration());
    return absl::OkStatus();
  });
}

}  // namespace fleetcore::policy_service
