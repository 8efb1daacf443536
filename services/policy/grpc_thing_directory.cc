#include "services/policy/grpc_thing_directory.h"

#include "absl/strings/str_cat.h"
#include "common/grpc/status.h"
#include "common/status/status_macros.h"
#include "fleetcore/registry/v1/registry.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace fleetcore::policy_service {
namespace {

namespace rpb = ::fleetcore::registry::v1;

// The registry's error, said to come from the registry.
absl::Status FromRegistry(const grpc::Status& s) {
  absl::Status status = grpc_util::FromGrpcStatus(s);
  return absl::Status(status.code(), absl::StrCat("registry: ", status.message()));
}

// DescribeThingGroup of `group`.
absl::Status DescribeGroup(grpc_util::ServiceChannel& channel, rpb::Registry::Stub& stub,
                           absl::string_view group, rpb::DescribeThingGroupResponse* resp) {
  rpb::DescribeThingGroupRequest req;
  req.set_thing_group_name(std::string(group));
  auto ctx = channel.NewContext();
  grpc::Status s = stub.DescribeThingGroup(ctx.get(), req, resp);
  return s.ok() ? absl::OkStatus() : FromRegistry(s);
}

}  // namespace

class GrpcThingDirectory::Stub {
 public:
  explicit Stub(const std::shared_ptr<grpc::Channel>& ch) : stub(rpb::Registry::NewStub(ch)) {}
  std::unique_ptr<rpb::Registry::Stub> stub;
};

GrpcThingDirectory::GrpcThingDirectory(grpc_util::ServiceChannel registry)
    : channel_(std::move(registry)), stub_(std::make_unique<Stub>(channel_.channel())) {}

GrpcThingDirectory::~GrpcThingDirectory() = default;

absl::StatusOr<std::optional<ThingRecord>> GrpcThingDirectory::DescribeThing(
    absl::string_view name) {
  rpb::DescribeThingRequest req;
  req.set_thing_name(std::string(name));
  rpb::DescribeThingResponse resp;
  auto ctx = channel_.NewContext();
  grpc::Status s = stub_->stub->DescribeThing(ctx.get(), req, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::optional<ThingRecord>();
  if (!s.ok()) return FromRegistry(s);
  ThingRecord t{.name = resp.thing_name(), .type_name = resp.thing_type_name()};
  for (const auto& [k, v] : resp.attributes()) t.attributes[k] = v;
  if (!t.type_name.empty()) {
    // The type's propagating attributes, for the gateway's message enrichment.
    rpb::DescribeThingTypeRequest type_req;
    type_req.set_thing_type_name(t.type_name);
    rpb::DescribeThingTypeResponse type;
    auto type_ctx = channel_.NewContext();
    s = stub_->stub->DescribeThingType(type_ctx.get(), type_req, &type);
    // A type deleted since (only a type no thing has can be) enriches nothing.
    if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND) return FromRegistry(s);
    for (const rpb::PropagatingAttribute& a :
         type.thing_type_properties().mqtt5_configuration().propagating_attributes()) {
      t.propagating_attributes.push_back({.user_property_key = a.user_property_key(),
                                          .thing_attribute = a.thing_attribute(),
                                          .connection_attribute = a.connection_attribute()});
    }
  }
  return std::optional<ThingRecord>(std::move(t));
}

absl::StatusOr<std::vector<std::string>> GrpcThingDirectory::GroupsWithAncestors(
    absl::string_view thing) {
  std::vector<std::string> out;
  rpb::ListThingGroupsForThingRequest req;
  req.set_thing_name(std::string(thing));
  req.set_include_ancestors(true);
  req.set_static_only(true);  // dynamic groups take no policies
  req.set_max_results(250);
  do {
    rpb::ListThingGroupsForThingResponse resp;
    auto ctx = channel_.NewContext();
    grpc::Status s = stub_->stub->ListThingGroupsForThing(ctx.get(), req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) return out;  // no such thing: no groups
    if (!s.ok()) return FromRegistry(s);
    for (const auto& g : resp.thing_groups()) out.push_back(g.group_name());
    req.set_next_token(resp.next_token());
  } while (!req.next_token().empty());
  return out;
}

absl::StatusOr<std::vector<std::string>> GrpcThingDirectory::GroupAndAncestors(
    absl::string_view group) {
  rpb::DescribeThingGroupResponse resp;
  FLEETCORE_RETURN_IF_ERROR(DescribeGroup(channel_, *stub_->stub, group, &resp));
  std::vector<std::string> out = {resp.thing_group_name()};
  const auto& chain = resp.thing_group_metadata().root_to_parent_thing_groups();
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) out.push_back(it->group_name());
  return out;
}

absl::Status GrpcThingDirectory::CheckPolicyTargetGroup(absl::string_view group) {
  rpb::DescribeThingGroupResponse resp;
  FLEETCORE_RETURN_IF_ERROR(DescribeGroup(channel_, *stub_->stub, group, &resp));
  if (!resp.query_string().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("thing group \"", group,
                     "\" is dynamic; AWS IoT attaches no policies to dynamic thing groups"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PrincipalThing>> GrpcThingDirectory::ThingsOfPrincipal(
    absl::string_view principal) {
  std::vector<PrincipalThing> out;
  rpb::ListPrincipalThingsRequest req;
  req.set_principal(std::string(principal));
  req.set_max_results(250);
  do {
    rpb::ListPrincipalThingsResponse resp;
    auto ctx = channel_.NewContext();
    grpc::Status s = stub_->stub->ListPrincipalThings(ctx.get(), req, &resp);
    if (!s.ok()) return FromRegistry(s);
    for (const auto& o : resp.principal_thing_objects()) {
      out.push_back({o.thing_name(), o.thing_principal_type() == rpb::EXCLUSIVE_THING});
    }
    req.set_next_token(resp.next_token());
  } while (!req.next_token().empty());
  return out;
}

}  // namespace fleetcore::policy_service
