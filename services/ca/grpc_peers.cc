#include "services/ca/grpc_peers.h"

#include "absl/strings/str_cat.h"
#include "common/grpc/status.h"
#include "fleetcore/policy/v1/policy.grpc.pb.h"
#include "fleetcore/registry/v1/registry.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace fleetcore::ca {
namespace {

namespace rpb = ::fleetcore::registry::v1;
namespace ppb = ::fleetcore::policy::v1;

// The peer's error, said to come from the peer, with its code.
absl::Status From(absl::string_view peer, const grpc::Status& s) {
  absl::Status status = grpc_util::FromGrpcStatus(s);
  return absl::Status(status.code(), absl::StrCat(peer, ": ", status.message()));
}

}  // namespace

struct GrpcPeers::Stubs {
  std::unique_ptr<rpb::Registry::Stub> registry;
  std::unique_ptr<ppb::Policy::Stub> policy;
};

GrpcPeers::GrpcPeers(grpc_util::ServiceChannel registry, grpc_util::ServiceChannel policy)
    : registry_(std::move(registry)),
      policy_(std::move(policy)),
      stubs_(std::make_unique<Stubs>(Stubs{rpb::Registry::NewStub(registry_.channel()),
                                           ppb::Policy::NewStub(policy_.channel())})) {}

GrpcPeers::~GrpcPeers() = default;

absl::StatusOr<std::optional<PeerThingRecord>> GrpcPeers::DescribeThing(absl::string_view name) {
  rpb::DescribeThingRequest req;
  req.set_thing_name(std::string(name));
  rpb::DescribeThingResponse resp;
  auto ctx = registry_.NewContext();
  grpc::Status s = stubs_->registry->DescribeThing(ctx.get(), req, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::optional<PeerThingRecord>();
  if (!s.ok()) return From("registry", s);
  PeerThingRecord t{.name = resp.thing_name(),
                    .type_name = resp.thing_type_name(),
                    .billing_group = resp.billing_group_name()};
  for (const auto& [k, v] : resp.attributes()) t.attributes[k] = v;
  rpb::ListThingGroupsForThingRequest groups;
  groups.set_thing_name(std::string(name));
  // A template's ThingGroups are static groups: a dynamic group the thing matches is not
  // one to keep, replace or compare.
  groups.set_static_only(true);
  groups.set_max_results(250);
  do {
    rpb::ListThingGroupsForThingResponse page;
    auto gctx = registry_.NewContext();
    grpc::Status gs = stubs_->registry->ListThingGroupsForThing(gctx.get(), groups, &page);
    if (!gs.ok()) return From("registry", gs);
    for (const auto& g : page.thing_groups()) t.groups.push_back(g.group_name());
    groups.set_next_token(page.next_token());
  } while (!groups.next_token().empty());
  return std::optional<PeerThingRecord>(std::move(t));
}

absl::Status GrpcPeers::CreateThing(absl::string_view name, absl::string_view type_name,
                                    const std::map<std::string, std::string>& attributes) {
  rpb::CreateThingRequest req;
  req.set_thing_name(std::string(name));
  req.set_thing_type_name(std::string(type_name));
  for (const auto& [k, v] : attributes)
    (*req.mutable_attribute_payload()->mutable_attributes())[k] = v;
  rpb::CreateThingResponse resp;
  auto ctx = registry_.NewContext();
  grpc::Status s = stubs_->registry->CreateThing(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("registry", s);
}

absl::Status GrpcPeers::UpdateThing(
    absl::string_view name, const std::optional<std::string>& type_name,
    const std::optional<std::map<std::string, std::string>>& attributes, bool merge) {
  rpb::UpdateThingRequest req;
  req.set_thing_name(std::string(name));
  if (type_name.has_value()) {
    if (type_name->empty()) {
      req.set_remove_thing_type(true);
    } else {
      req.set_thing_type_name(*type_name);
    }
  }
  if (attributes.has_value()) {
    rpb::AttributePayload* p = req.mutable_attribute_payload();
    p->set_merge(merge);
    for (const auto& [k, v] : *attributes) (*p->mutable_attributes())[k] = v;
  }
  rpb::UpdateThingResponse resp;
  auto ctx = registry_.NewContext();
  grpc::Status s = stubs_->registry->UpdateThing(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("registry", s);
}

absl::Status GrpcPeers::DeleteThing(absl::string_view name) {
  rpb::DeleteThingRequest req;
  req.set_thing_name(std::string(name));
  rpb::DeleteThingResponse resp;
  auto ctx = registry_.NewContext();
  grpc::Status s = stubs_->registry->DeleteThing(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("registry", s);
}

absl::Status GrpcPeers::AddThingToGroup(absl::string_view thing, absl::string_view group) {
  rpb::AddThingToThingGroupRequest req;
  req.set_thing_name(std::string(thing));
  req.set_thing_group_name(std::string(group));
  rpb::AddThingToThingGroupResponse resp;
  auto ctx = registry_.NewContext();
  grpc::Status s = stubs_->registry->AddThingToThingGroup(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("registry", s);
}

absl::Status GrpcPeers::AddThingToBillingGroup(absl::string_view thing, absl::string_view group) {
  rpb::AddThingToBillingGroupRequest req;
  req.set_thing_name(std::string(thing));
  req.set_billing_group_name(std::string(group));
  rpb::AddThingToBillingGroupResponse resp;
  auto ctx = registry_.NewContext();
  grpc::Status s = stubs_->registry->AddThingToBillingGroup(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("registry", s);
}

absl::Status GrpcPeers::RemoveThingFromGroup(absl::string_view thing, absl::string_view group) {
  rpb::RemoveThingFromThingGroupRequest req;
  req.set_thing_name(std::string(thing));
  req.set_thing_group_name(std::string(group));
  rpb::RemoveThingFromThingGroupResponse resp;
  auto ctx = registry_.NewContext();
  grpc::Status s = stubs_->registry->RemoveThingFromThingGroup(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("registry", s);
}

absl::Status GrpcPeers::AttachThingPrincipal(absl::string_view thing, absl::string_view principal,
                                             bool exclusive) {
  rpb::AttachThingPrincipalRequest req;
  req.set_thing_name(std::string(thing));
  req.set_principal(std::string(principal));
  req.set_thing_principal_type(exclusive ? rpb::EXCLUSIVE_THING : rpb::NON_EXCLUSIVE_THING);
  rpb::AttachThingPrincipalResponse resp;
  auto ctx = registry_.NewContext();
  grpc::Status s = stubs_->registry->AttachThingPrincipal(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("registry", s);
}

absl::Status GrpcPeers::DetachThingPrincipal(absl::string_view thing, absl::string_view principal) {
  rpb::DetachThingPrincipalRequest req;
  req.set_thing_name(std::string(thing));
  req.set_principal(std::string(principal));
  rpb::DetachThingPrincipalResponse resp;
  auto ctx = registry_.NewContext();
  grpc::Status s = stubs_->registry->DetachThingPrincipal(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("registry", s);
}

absl::StatusOr<std::vector<PrincipalThingRecord>> GrpcPeers::ThingsOfPrincipal(
    absl::string_view principal) {
  std::vector<PrincipalThingRecord> out;
  rpb::ListPrincipalThingsRequest req;
  req.set_principal(std::string(principal));
  req.set_max_results(250);
  do {
    rpb::ListPrincipalThingsResponse resp;
    auto ctx = registry_.NewContext();
    grpc::Status s = stubs_->registry->ListPrincipalThings(ctx.get(), req, &resp);
    if (!s.ok()) return From("registry", s);
    for (const auto& o : resp.principal_thing_objects()) {
      out.push_back({o.thing_name(), o.thing_principal_type() == rpb::EXCLUSIVE_THING});
    }
    req.set_next_token(resp.next_token());
  } while (!req.next_token().empty());
  return out;
}

absl::StatusOr<std::optional<std::string>> GrpcPeers::GetPolicy(absl::string_view name) {
  ppb::GetPolicyRequest req;
  req.set_policy_name(std::string(name));
  ppb::GetPolicyResponse resp;
  auto ctx = policy_.NewContext();
  grpc::Status s = stubs_->policy->GetPolicy(ctx.get(), req, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::optional<std::string>();
  if (!s.ok()) return From("policy", s);
  return std::optional<std::string>(resp.policy_document());
}

absl::Status GrpcPeers::CreatePolicy(absl::string_view name, absl::string_view document) {
  ppb::CreatePolicyRequest req;
  req.set_policy_name(std::string(name));
  req.set_policy_document(std::string(document));
  ppb::CreatePolicyResponse resp;
  auto ctx = policy_.NewContext();
  grpc::Status s = stubs_->policy->CreatePolicy(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("policy", s);
}

absl::Status GrpcPeers::DeletePolicy(absl::string_view name) {
  ppb::DeletePolicyRequest req;
  req.set_policy_name(std::string(name));
  ppb::DeletePolicyResponse resp;
  auto ctx = policy_.NewContext();
  grpc::Status s = stubs_->policy->DeletePolicy(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("policy", s);
}

absl::Status GrpcPeers::AttachPolicy(absl::string_view policy, absl::string_view target) {
  ppb::AttachPolicyRequest req;
  req.set_policy_name(std::string(policy));
  req.set_target(std::string(target));
  ppb::AttachPolicyResponse resp;
  auto ctx = policy_.NewContext();
  grpc::Status s = stubs_->policy->AttachPolicy(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("policy", s);
}

absl::Status GrpcPeers::DetachPolicy(absl::string_view policy, absl::string_view target) {
  ppb::DetachPolicyRequest req;
  req.set_policy_name(std::string(policy));
  req.set_target(std::string(target));
  ppb::DetachPolicyResponse resp;
  auto ctx = policy_.NewContext();
  grpc::Status s = stubs_->policy->DetachPolicy(ctx.get(), req, &resp);
  return s.ok() ? absl::OkStatus() : From("policy", s);
}

absl::StatusOr<std::vector<std::string>> GrpcPeers::PoliciesOf(absl::string_view target) {
  std::vector<std::string> out;
  ppb::ListAttachedPoliciesRequest req;
  req.set_target(std::string(target));
  req.set_page_size(250);
  do {
    ppb::ListAttachedPoliciesResponse resp;
    auto ctx = policy_.NewContext();
    grpc::Status s = stubs_->policy->ListAttachedPolicies(ctx.get(), req, &resp);
    if (!s.ok()) return From("policy", s);
    for (const auto& p : resp.policies()) out.push_back(p.policy_name());
    req.set_marker(resp.next_marker());
  } while (!req.marker().empty());
  return out;
}

}  // namespace fleetcore::ca
