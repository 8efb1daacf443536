#include "services/registry/registry_service.h"

#include "common/status/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "services/registry/validation.h"

namespace fleetcore::registry {
namespace {

using grpc_util::CallContext;

Attributes FromProto(const google::protobuf::Map<std::string, std::string>& m) {
  return Attributes(m.begin(), m.end());
}

void ToProto(const Attributes& a, google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [k, v] : a) {
    (*out)[k] = v;
  }
}

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

std::optional<AttributeUpdate> AttributeUpdateFromProto(bool present,
                                                        const pb::AttributePayload& p) {
  if (!present) {
    return std::nullopt;
  }
  return AttributeUpdate{.attributes = FromProto(p.attributes()), .merge = p.merge()};
}

PageRequest Paging(const std::string& token, int32_t max_results) {
  return PageRequest{.next_token = token, .max_results = max_results};
}

std::vector<PropagatingAttribute> FromProto(const pb::Mqtt5Configuration& c) {
  std::vector<PropagatingAttribute> out;
  for (const pb::PropagatingAttribute& a : c.propagating_attributes()) {
    out.push_back({.user_property_key = a.user_property_key(),
                   .thing_attribute = a.thing_attribute(),
                   .connection_attribute = a.connection_attribute()});
  }
  return out;
}

void ToProto(const ThingType& t, const aws::Arns& arns, pb::ThingTypeProperties* props,
             pb::ThingTypeMetadata* meta) {
  props->set_thing_type_description(t.description);
  for (const std::string& a : t.searchable_attributes) {
    props->add_searchable_attributes(a);
  }
  if (!t.propagating_attributes.empty()) {
    pb::Mqtt5Configuration* c = props->mutable_mqtt5_configuration();
    for (const PropagatingAttribute& a : t.propagating_attributes) {
      pb::PropagatingAttribute* out = c->add_propagating_attributes();
      out->set_user_property_key(a.user_property_key);
      out->set_thing_attribute(a.thing_attribute);
      out->set_connection_attribute(a.connection_attribute);
    }
  }
  meta->set_deprecated(t.deprecated);
  if (t.deprecated) {
    ToProto(t.deprecated_at, meta->mutable_deprecation_date());
  }
  ToProto(t.created_at, meta->mutable_creation_date());
}

// The group and the thing a membership request names, each by name or by ARN: a billing
// group's request or a thing group's.
template <typename Request>
absl::StatusOr<std::pair<std::string, std::string>> GroupAndThing(const aws::Arns& arns,
                                                                  const Request& req) {
  absl::StatusOr<std::string> group;
  if constexpr (requires { req.billing_group_name(); }) {
    group = NameFromNameOrArn(arns, req.billing_group_name(), req.billing_group_arn(),
                              "billinggroup", "billingGroupName", "billingGroupArn");
  } else {
    group = NameFromNameOrArn(arns, req.thing_group_name(), req.thing_group_arn(), "thinggroup",
                              "thingGroupName", "thingGroupArn");
  }
  if (!group.ok()) return group.status();
  FLEETCORE_ASSIGN_OR_RETURN(std::string thing,
                             NameFromNameOrArn(arns, req.thing_name(), req.thing_arn(), "thing",
                                               "thingName", "thingArn"));
  return std::make_pair(*std::move(group), std::move(thing));
}

void ToProto(const ThingGroup& g, const aws::Arns& arns, pb::GroupNameAndArn* out) {
  out->set_group_name(g.name);
  out->set_group_arn(arns.ThingGroup(g.name));
}

// UpdateThingGroup's and UpdateDynamicThingGroup's common fields.
template <typename Req>
UpdateThingGroupInput GroupUpdate(const Req& req, bool dynamic) {
  const pb::ThingGroupProperties& p = req.thing_group_properties();
  UpdateThingGroupInput in{
      .name = req.thing_group_name(),
      .attributes = AttributeUpdateFromProto(p.has_attribute_payload(), p.attribute_payload()),
      .dynamic = dynamic};
  if (p.has_thing_group_description()) in.description = p.thing_group_description();
  if (req.has_expected_version()) in.expected_version = req.expected_version();
  return in;
}

template <typename Req>
std::optional<int64_t> ExpectedVersion(const Req& req) {
  return req.has_expected_version() ? std::optional(req.expected_version()) : std::nullopt;
}

}  // namespace

RegistryService::RegistryService(RegistryCore* core, grpc_util::CallRunner* calls)
    : core_(core), calls_(calls) {}

RegistryService::~RegistryService() = default;

// ---- things

grpc::ServerUnaryReactor* RegistryService::CreateThing(grpc::CallbackServerContext* ctx,
                                                       const pb::CreateThingRequest* req,
                                                       pb::CreateThingResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Thing t, core_->CreateThing({.name = req->thing_name(),
                                     .type_name = req->thing_type_name(),
                                     .attributes = FromProto(req->attribute_payload().attributes()),
                                     .billing_group = req->billing_group_name()}));
    resp->set_thing_name(t.name);
    resp->set_thing_arn(core_->arns().Thing(t.name));
    resp->set_thing_id(t.id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::DescribeThing(grpc::CallbackServerContext* ctx,
                                                         const pb::DescribeThingRequest* req,
                                                         pb::DescribeThingResponse* resp) {
  auto fill = [this, resp](const Thing& t) {
    resp->set_default_client_id(t.name);
    resp->set_thing_name(t.name);
    resp->set_thing_id(t.id);
    resp->set_thing_arn(core_->arns().Thing(t.name));
    resp->set_thing_type_name(t.type_name);
    ToProto(t.attributes, resp->mutable_attributes());
    resp->set_version(t.version);
    resp->set_billing_group_name(t.billing_group);
  };
  // Devices connect far more often than things change: most answers come from memory.
  return calls_->RunWithFastPath(
      ctx,
      [this, req, fill]() -> std::optional<absl::Status> {
        std::optional<Thing> t = core_->DescribeThingIfCached(req->thing_name());
        if (!t.has_value()) return std::nullopt;
        fill(*t);
        return absl::OkStatus();
      },
      [this, req, fill](const CallContext&) -> absl::Status {
        FLEETCORE_ASSIGN_OR_RETURN(Thing t, core_->DescribeThing(req->thing_name()));
        fill(t);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* RegistryService::UpdateThing(grpc::CallbackServerContext* ctx,
                                                       const pb::UpdateThingRequest* req,
                                                       pb::UpdateThingResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    UpdateThingInput in{
        .name = req->thing_name(),
        .type_name = req->thing_type_name(),
        .remove_type = req->remove_thing_type(),
        .attributes =
            AttributeUpdateFromProto(req->has_attribute_payload(), req->attribute_payload())};
    if (req->has_expected_version()) {
      in.expected_version = req->expected_version();
    }
    return core_->UpdateThing(in);
  });
}

grpc::ServerUnaryReactor* RegistryService::DeleteThing(grpc::CallbackServerContext* ctx,
                                                       const pb::DeleteThingRequest* req,
                                                       pb::DeleteThingResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    return core_->DeleteThing(req->thing_name(), ExpectedVersion(*req));
  });
}

grpc::ServerUnaryReactor* RegistryService::ListThings(grpc::CallbackServerContext* ctx,
                                                      const pb::ListThingsRequest* req,
                                                      pb::ListThingsResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<Thing> page,
        core_->ListThings({.attribute_name = req->attribute_name(),
                           .attribute_value = req->attribute_value(),
                           .prefix_value = req->use_prefix_attribute_value(),
                           .type_name = req->thing_type_name()},
                          Paging(req->next_token(), req->max_results())));
    for (const Thing& t : page.items) {
      pb::ThingAttribute* out = resp->add_things();
      out->set_thing_name(t.name);
      out->set_thing_type_name(t.type_name);
      out->set_thing_arn(core_->arns().Thing(t.name));
      ToProto(t.attributes, out->mutable_attributes());
      out->set_version(t.version);
    }
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

// ---- thing types

grpc::ServerUnaryReactor* RegistryService::CreateThingType(grpc::CallbackServerContext* ctx,
                                                           const pb::CreateThingTypeRequest* req,
                                                           pb::CreateThingTypeResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    const pb::ThingTypeProperties& p = req->thing_type_properties();
    FLEETCORE_ASSIGN_OR_RETURN(
        ThingType t,
        core_->CreateThingType({.name = req->thing_type_name(),
                                .description = p.thing_type_description(),
                                .searchable_attributes = {p.searchable_attributes().begin(),
                                                          p.searchable_attributes().end()},
                                .propagating_attributes = FromProto(p.mqtt5_configuration())}));
    resp->set_thing_type_name(t.name);
    resp->set_thing_type_arn(core_->arns().ThingType(t.name));
    resp->set_thing_type_id(t.id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::DescribeThingType(
    grpc::CallbackServerContext* ctx, const pb::DescribeThingTypeRequest* req,
    pb::DescribeThingTypeResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(ThingType t, core_->DescribeThingType(req->thing_type_name()));
    resp->set_thing_type_name(t.name);
    resp->set_thing_type_id(t.id);
    resp->set_thing_type_arn(core_->arns().ThingType(t.name));
    ToProto(t, core_->arns(), resp->mutable_thing_type_properties(),
            resp->mutable_thing_type_metadata());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::UpdateThingType(grpc::CallbackServerContext* ctx,
                                                           const pb::UpdateThingTypeRequest* req,
                                                           pb::UpdateThingTypeResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    const pb::ThingTypeProperties& p = req->thing_type_properties();
    UpdateThingTypeInput in{.name = req->thing_type_name()};
    if (!p.thing_type_description().empty()) in.description = p.thing_type_description();
    if (!p.searchable_attributes().empty()) {
      in.searchable_attributes.emplace(p.searchable_attributes().begin(),
                                       p.searchable_attributes().end());
    }
    if (p.has_mqtt5_configuration()) {
      in.propagating_attributes = FromProto(p.mqtt5_configuration());
    }
    return core_->UpdateThingType(in);
  });
}

grpc::ServerUnaryReactor* RegistryService::ListThingTypes(grpc::CallbackServerContext* ctx,
                                                          const pb::ListThingTypesRequest* req,
                                                          pb::ListThingTypesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<ThingType> page,
        core_->ListThingTypes(req->thing_type_name(),
                              Paging(req->next_token(), req->max_results())));
    for (const ThingType& t : page.items) {
      pb::ThingTypeDefinition* out = resp->add_thing_types();
      out->set_thing_type_name(t.name);
      out->set_thing_type_arn(core_->arns().ThingType(t.name));
      ToProto(t, core_->arns(), out->mutable_thing_type_properties(),
              out->mutable_thing_type_metadata());
    }
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::DeprecateThingType(
    grpc::CallbackServerContext* ctx, const pb::DeprecateThingTypeRequest* req,
    pb::DeprecateThingTypeResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    return core_->DeprecateThingType(req->thing_type_name(), req->undo_deprecate());
  });
}

grpc::ServerUnaryReactor* RegistryService::DeleteThingType(grpc::CallbackServerContext* ctx,
                                                           const pb::DeleteThingTypeRequest* req,
                                                           pb::DeleteThingTypeResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    return core_->DeleteThingType(req->thing_type_name());
  });
}

// ---- thing groups

grpc::ServerUnaryReactor* RegistryService::CreateThingGroup(
    grpc::CallbackServerContext* ctx, const pb::CreateThingGroupRequest* req,
    pb::CreateThingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    const pb::ThingGroupProperties& p = req->thing_group_properties();
    FLEETCORE_ASSIGN_OR_RETURN(
        ThingGroup g,
        core_->CreateThingGroup({.name = req->thing_group_name(),
                                 .parent = req->parent_group_name(),
                                 .description = p.thing_group_description(),
                                 .attributes = FromProto(p.attribute_payload().attributes())}));
    resp->set_thing_group_name(g.name);
    resp->set_thing_group_arn(core_->arns().ThingGroup(g.name));
    resp->set_thing_group_id(g.id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::CreateDynamicThingGroup(
    grpc::CallbackServerContext* ctx, const pb::CreateDynamicThingGroupRequest* req,
    pb::CreateDynamicThingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    if (req->query_string().empty()) {
      return absl::InvalidArgumentError("queryString: required (\"*\" matches every thing)");
    }
    const pb::ThingGroupProperties& p = req->thing_group_properties();
    FLEETCORE_ASSIGN_OR_RETURN(
        ThingGroup g,
        core_->CreateThingGroup({.name = req->thing_group_name(),
                                 .description = p.thing_group_description(),
                                 .attributes = FromProto(p.attribute_payload().attributes()),
                                 .index_name = req->index_name(),
                                 .query_string = req->query_string(),
                                 .query_version = req->query_version()}));
    resp->set_thing_group_name(g.name);
    resp->set_thing_group_arn(core_->arns().ThingGroup(g.name));
    resp->set_thing_group_id(g.id);
    resp->set_index_name(kThingIndex);
    resp->set_query_string(g.query_string);
    resp->set_query_version(g.query_version);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::DescribeThingGroup(
    grpc::CallbackServerContext* ctx, const pb::DescribeThingGroupRequest* req,
    pb::DescribeThingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(ThingGroupDescription d,
                               core_->DescribeThingGroup(req->thing_group_name()));
    resp->set_thing_group_name(d.group.name);
    resp->set_thing_group_id(d.group.id);
    resp->set_thing_group_arn(core_->arns().ThingGroup(d.group.name));
    resp->set_version(d.group.version);
    resp->mutable_thing_group_properties()->set_thing_group_description(d.group.description);
    ToProto(d.group.attributes, resp->mutable_thing_group_properties()
                                    ->mutable_attribute_payload()
                                    ->mutable_attributes());
    pb::ThingGroupMetadata* meta = resp->mutable_thing_group_metadata();
    meta->set_parent_group_name(d.group.parent);
    for (const ThingGroup& a : d.ancestors) {
      ToProto(a, core_->arns(), meta->add_root_to_parent_thing_groups());
    }
    ToProto(d.group.created_at, meta->mutable_creation_date());
    if (d.group.dynamic()) {
      resp->set_index_name(kThingIndex);
      resp->set_query_string(d.group.query_string);
      resp->set_query_version(d.group.query_version);
      resp->set_status("ACTIVE");
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::UpdateThingGroup(
    grpc::CallbackServerContext* ctx, const pb::UpdateThingGroupRequest* req,
    pb::UpdateThingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(int64_t version,
                               core_->UpdateThingGroup(GroupUpdate(*req, /*dynamic=*/false)));
    resp->set_version(version);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::UpdateDynamicThingGroup(
    grpc::CallbackServerContext* ctx, const pb::UpdateDynamicThingGroupRequest* req,
    pb::UpdateDynamicThingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    UpdateThingGroupInput in = GroupUpdate(*req, /*dynamic=*/true);
    in.index_name = req->index_name();
    in.query_string = req->query_string();
    in.query_version = req->query_version();
    FLEETCORE_ASSIGN_OR_RETURN(int64_t version, core_->UpdateThingGroup(in));
    resp->set_version(version);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::DeleteThingGroup(
    grpc::CallbackServerContext* ctx, const pb::DeleteThingGroupRequest* req,
    pb::DeleteThingGroupResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    return core_->DeleteThingGroup(req->thing_group_name(), ExpectedVersion(*req),
                                   /*dynamic=*/false);
  });
}

grpc::ServerUnaryReactor* RegistryService::DeleteDynamicThingGroup(
    grpc::CallbackServerContext* ctx, const pb::DeleteDynamicThingGroupRequest* req,
    pb::DeleteDynamicThingGroupResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    return core_->DeleteThingGroup(req->thing_group_name(), ExpectedVersion(*req),
                                   /*dynamic=*/true);
  });
}

grpc::ServerUnaryReactor* RegistryService::ListThingGroups(grpc::CallbackServerContext* ctx,
                                                           const pb::ListThingGroupsRequest* req,
                                                           pb::ListThingGroupsResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    GroupQuery q{.parent = req->parent_group(), .name_prefix = req->name_prefix_filter()};
    if (req->has_recursive()) {
      q.recursive = req->recursive();
    }
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<ThingGroup> page,
        core_->ListThingGroups(q, Paging(req->next_token(), req->max_results())));
    for (const ThingGroup& g : page.items) {
      ToProto(g, core_->arns(), resp->add_thing_groups());
    }
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::AddThingToThingGroup(
    grpc::CallbackServerContext* ctx, const pb::AddThingToThingGroupRequest* req,
    pb::AddThingToThingGroupResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(auto names, GroupAndThing(core_->arns(), *req));
    return core_->AddThingToThingGroup(names.first, names.second);
  });
}

grpc::ServerUnaryReactor* RegistryService::RemoveThingFromThingGroup(
    grpc::CallbackServerContext* ctx, const pb::RemoveThingFromThingGroupRequest* req,
    pb::RemoveThingFromThingGroupResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(auto names, GroupAndThing(core_->arns(), *req));
    return core_->RemoveThingFromThingGroup(names.first, names.second);
  });
}

grpc::ServerUnaryReactor* RegistryService::UpdateThingGroupsForThing(
    grpc::CallbackServerContext* ctx, const pb::UpdateThingGroupsForThingRequest* req,
    pb::UpdateThingGroupsForThingResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    return core_->UpdateThingGroupsForThing(
        req->thing_name(), {req->thing_groups_to_add().begin(), req->thing_groups_to_add().end()},
        {req->thing_groups_to_remove().begin(), req->thing_groups_to_remove().end()});
  });
}

grpc::ServerUnaryReactor* RegistryService::ListThingsInThingGroup(
    grpc::CallbackServerContext* ctx, const pb::ListThingsInThingGroupRequest* req,
    pb::ListThingsInThingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<std::string> page,
        core_->ListThingsInThingGroup(req->thing_group_name(), req->recursive(),
                                      Paging(req->next_token(), req->max_results())));
    for (std::string& t : page.items) {
      resp->add_things(std::move(t));
    }
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::ListThingGroupsForThing(
    grpc::CallbackServerContext* ctx, const pb::ListThingGroupsForThingRequest* req,
    pb::ListThingGroupsForThingResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<ThingGroup> page,
        core_->ListThingGroupsForThing(req->thing_name(), req->include_ancestors(),
                                       Paging(req->next_token(), req->max_results()),
                                       req->static_only()));
    for (const ThingGroup& g : page.items) {
      ToProto(g, core_->arns(), resp->add_thing_groups());
    }
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

// ---- billing groups

grpc::ServerUnaryReactor* RegistryService::CreateBillingGroup(
    grpc::CallbackServerContext* ctx, const pb::CreateBillingGroupRequest* req,
    pb::CreateBillingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        BillingGroup g,
        core_->CreateBillingGroup(req->billing_group_name(),
                                  req->billing_group_properties().billing_group_description()));
    resp->set_billing_group_name(g.name);
    resp->set_billing_group_arn(core_->arns().BillingGroup(g.name));
    resp->set_billing_group_id(g.id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::DescribeBillingGroup(
    grpc::CallbackServerContext* ctx, const pb::DescribeBillingGroupRequest* req,
    pb::DescribeBillingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(BillingGroup g,
                               core_->DescribeBillingGroup(req->billing_group_name()));
    resp->set_billing_group_name(g.name);
    resp->set_billing_group_id(g.id);
    resp->set_billing_group_arn(core_->arns().BillingGroup(g.name));
    resp->set_version(g.version);
    resp->mutable_billing_group_properties()->set_billing_group_description(g.description);
    ToProto(g.created_at, resp->mutable_billing_group_metadata()->mutable_creation_date());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::UpdateBillingGroup(
    grpc::CallbackServerContext* ctx, const pb::UpdateBillingGroupRequest* req,
    pb::UpdateBillingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        int64_t version,
        core_->UpdateBillingGroup(req->billing_group_name(),
                                  req->billing_group_properties().billing_group_description(),
                                  ExpectedVersion(*req)));
    resp->set_version(version);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::DeleteBillingGroup(
    grpc::CallbackServerContext* ctx, const pb::DeleteBillingGroupRequest* req,
    pb::DeleteBillingGroupResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    return core_->DeleteBillingGroup(req->billing_group_name(), ExpectedVersion(*req));
  });
}

grpc::ServerUnaryReactor* RegistryService::ListBillingGroups(
    grpc::CallbackServerContext* ctx, const pb::ListBillingGroupsRequest* req,
    pb::ListBillingGroupsResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<BillingGroup> page,
        core_->ListBillingGroups(req->name_prefix_filter(),
                                 Paging(req->next_token(), req->max_results())));
    for (const BillingGroup& g : page.items) {
      pb::GroupNameAndArn* out = resp->add_billing_groups();
      out->set_group_name(g.name);
      out->set_group_arn(core_->arns().BillingGroup(g.name));
    }
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::AddThingToBillingGroup(
    grpc::CallbackServerContext* ctx, const pb::AddThingToBillingGroupRequest* req,
    pb::AddThingToBillingGroupResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(auto names, GroupAndThing(core_->arns(), *req));
    return core_->AddThingToBillingGroup(names.first, names.second);
  });
}

grpc::ServerUnaryReactor* RegistryService::RemoveThingFromBillingGroup(
    grpc::CallbackServerContext* ctx, const pb::RemoveThingFromBillingGroupRequest* req,
    pb::RemoveThingFromBillingGroupResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(auto names, GroupAndThing(core_->arns(), *req));
    return core_->RemoveThingFromBillingGroup(names.first, names.second);
  });
}

grpc::ServerUnaryReactor* RegistryService::ListThingsInBillingGroup(
    grpc::CallbackServerContext* ctx, const pb::ListThingsInBillingGroupRequest* req,
    pb::ListThingsInBillingGroupResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<std::string> page,
        core_->ListThingsInBillingGroup(req->billing_group_name(),
                                        Paging(req->next_token(), req->max_results())));
    for (const std::string& t : page.items) resp->add_things(t);
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

// ---- principals

grpc::ServerUnaryReactor* RegistryService::AttachThingPrincipal(
    grpc::CallbackServerContext* ctx, const pb::AttachThingPrincipalRequest* req,
    pb::AttachThingPrincipalResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    const PrincipalType type = req->thing_principal_type() == pb::EXCLUSIVE_THING
                                   ? PrincipalType::kExclusive
                                   : PrincipalType::kNonExclusive;
    return core_->AttachThingPrincipal(req->thing_name(), req->principal(), type);
  });
}

grpc::ServerUnaryReactor* RegistryService::DetachThingPrincipal(
    grpc::CallbackServerContext* ctx, const pb::DetachThingPrincipalRequest* req,
    pb::DetachThingPrincipalResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    return core_->DetachThingPrincipal(req->thing_name(), req->principal());
  });
}

grpc::ServerUnaryReactor* RegistryService::ListThingPrincipals(
    grpc::CallbackServerContext* ctx, const pb::ListThingPrincipalsRequest* req,
    pb::ListThingPrincipalsResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<PrincipalAttachment> page,
        core_->ListThingPrincipals(req->thing_name(),
                                   Paging(req->next_token(), req->max_results())));
    for (const PrincipalAttachment& a : page.items) {
      resp->add_principals(a.principal);
      pb::ThingPrincipalObject* o = resp->add_thing_principal_objects();
      o->set_principal(a.principal);
      o->set_thing_principal_type(a.type == PrincipalType::kExclusive ? pb::EXCLUSIVE_THING
                                                                      : pb::NON_EXCLUSIVE_THING);
    }
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::ListPrincipalThings(
    grpc::CallbackServerContext* ctx, const pb::ListPrincipalThingsRequest* req,
    pb::ListPrincipalThingsResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<PrincipalAttachment> page,
        core_->ListPrincipalThings(req->principal(),
                                   Paging(req->next_token(), req->max_results())));
    for (const PrincipalAttachment& a : page.items) {
      resp->add_things(a.thing_name);
      pb::PrincipalThingObject* o = resp->add_principal_thing_objects();
      o->set_thing_name(a.thing_name);
      o->set_thing_principal_type(a.type == PrincipalType::kExclusive ? pb::EXCLUSIVE_THING
                                                                      : pb::NON_EXCLUSIVE_THING);
    }
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

// ---- fleet indexing

grpc::ServerUnaryReactor* RegistryService::SearchIndex(grpc::CallbackServerContext* ctx,
                                                       const pb::SearchIndexRequest* req,
                                                       pb::SearchIndexResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(RegistryCore::SearchResult result,
                               core_->SearchIndex(req->index_name(), req->query_string(),
                                                  Paging(req->next_token(), req->max_results())));
    for (const ThingDocument& d : result.things) {
      pb::ThingDocument* out = resp->add_things();
      out->set_thing_name(d.thing.name);
      out->set_thing_id(d.thing.id);
      out->set_thing_type_name(d.thing.type_name);
      for (const std::string& g : d.group_names) out->add_thing_group_names(g);
      ToProto(d.thing.attributes, out->mutable_attributes());
    }
    for (const ThingGroupDocument& d : result.thing_groups) {
      pb::ThingGroupDocument* out = resp->add_thing_groups();
      out->set_thing_group_name(d.group.name);
      out->set_thing_group_id(d.group.id);
      out->set_thing_group_description(d.group.description);
      ToProto(d.group.attributes, out->mutable_attributes());
      for (const std::string& p : d.parent_names) out->add_parent_group_names(p);
    }
    resp->set_next_token(result.next_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::GetStatistics(grpc::CallbackServerContext* ctx,
                                                         const pb::GetStatisticsRequest* req,
                                                         pb::GetStatisticsResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(IndexAggregationResult r,
                               core_->Aggregate(req->index_name(), req->query_string(),
                                                {.kind = IndexAggregation::Kind::kStatistics,
                                                 .field = req->aggregation_field()}));
    const IndexStatistics& s = r.statistics;
    pb::Statistics* out = resp->mutable_statistics();
    out->set_count(s.count);
    if (s.average) out->set_average(*s.average);
    if (s.sum) out->set_sum(*s.sum);
    if (s.minimum) out->set_minimum(*s.minimum);
    if (s.maximum) out->set_maximum(*s.maximum);
    if (s.sum_of_squares) out->set_sum_of_squares(*s.sum_of_squares);
    if (s.variance) out->set_variance(*s.variance);
    if (s.std_deviation) out->set_std_deviation(*s.std_deviation);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::GetCardinality(grpc::CallbackServerContext* ctx,
                                                          const pb::GetCardinalityRequest* req,
                                                          pb::GetCardinalityResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(IndexAggregationResult r,
                               core_->Aggregate(req->index_name(), req->query_string(),
                                                {.kind = IndexAggregation::Kind::kCardinality,
                                                 .field = req->aggregation_field()}));
    resp->set_cardinality(static_cast<int32_t>(r.cardinality));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::GetPercentiles(grpc::CallbackServerContext* ctx,
                                                          const pb::GetPercentilesRequest* req,
                                                          pb::GetPercentilesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        IndexAggregationResult r,
        core_->Aggregate(req->index_name(), req->query_string(),
                         {.kind = IndexAggregation::Kind::kPercentiles,
                          .field = req->aggregation_field(),
                          .percents = {req->percents().begin(), req->percents().end()}}));
    for (const auto& [percent, value] : r.percentiles) {
      pb::PercentPair* p = resp->add_percentiles();
      p->set_percent(percent);
      p->set_value(value);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::GetBucketsAggregation(
    grpc::CallbackServerContext* ctx, const pb::GetBucketsAggregationRequest* req,
    pb::GetBucketsAggregationResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    const int max = req->buckets_aggregation_type().terms_aggregation().max_buckets();
    FLEETCORE_ASSIGN_OR_RETURN(IndexAggregationResult r,
                               core_->Aggregate(req->index_name(), req->query_string(),
                                                {.kind = IndexAggregation::Kind::kBuckets,
                                                 .field = req->aggregation_field(),
                                                 .max_buckets = max == 0 ? 10 : max}));
    resp->set_total_count(static_cast<int32_t>(r.total_count));
    for (const IndexBucket& b : r.buckets) {
      pb::Bucket* out = resp->add_buckets();
      out->set_key_value(b.key);
      out->set_count(static_cast<int32_t>(b.count));
    }
    return absl::OkStatus();
  });
}

// ---- fleet indexing's configuration

grpc::ServerUnaryReactor* RegistryService::GetIndexingConfiguration(
    grpc::CallbackServerContext* ctx, const pb::GetIndexingConfigurationRequest*,
    pb::GetIndexingConfigurationResponse* resp) {
  return calls_->Run(ctx, [this, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(IndexingConfiguration c, core_->GetIndexingConfiguration());
    pb::ThingIndexingConfiguration* things = resp->mutable_thing_indexing_configuration();
    things->set_thing_indexing_mode(c.thing_indexing_mode);
    things->set_thing_connectivity_indexing_mode("OFF");
    things->set_device_defender_indexing_mode("OFF");
    things->set_named_shadow_indexing_mode("OFF");
    resp->mutable_thing_group_indexing_configuration()->set_thing_group_indexing_mode(
        c.thing_group_indexing_mode);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::UpdateIndexingConfiguration(
    grpc::CallbackServerContext* ctx, const pb::UpdateIndexingConfigurationRequest* req,
    pb::UpdateIndexingConfigurationResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    IndexingConfigurationUpdate in;
    if (req->has_thing_indexing_configuration()) {
      const pb::ThingIndexingConfiguration& t = req->thing_indexing_configuration();
      in.thing_indexing_mode = t.thing_indexing_mode();
      in.thing_modes = {{"thingConnectivityIndexingMode", t.thing_connectivity_indexing_mode()},
                        {"deviceDefenderIndexingMode", t.device_defender_indexing_mode()},
                        {"namedShadowIndexingMode", t.named_shadow_indexing_mode()}};
    }
    if (req->has_thing_group_indexing_configuration()) {
      in.thing_group_indexing_mode =
          req->thing_group_indexing_configuration().thing_group_indexing_mode();
    }
    return core_->UpdateIndexingConfiguration(in);
  });
}

grpc::ServerUnaryReactor* RegistryService::DescribeIndex(grpc::CallbackServerContext* ctx,
                                                         const pb::DescribeIndexRequest* req,
                                                         pb::DescribeIndexResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(IndexDescription d, core_->DescribeIndex(req->index_name()));
    resp->set_index_name(d.name);
    resp->set_index_status(d.status);
    resp->set_schema(d.schema);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RegistryService::ListIndices(grpc::CallbackServerContext* ctx,
                                                       const pb::ListIndicesRequest* req,
                                                       pb::ListIndicesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(Page<std::string> page,
                               core_->ListIndices(Paging(req->next_token(), req->max_results())));
    for (const std::string& name : page.items) resp->add_index_names(name);
    resp->set_next_token(page.next_token);
    return absl::OkStatus();
  });
}

// ---- event configurations

grpc::ServerUnaryReactor* RegistryService::UpdateEventConfigurations(
    grpc::CallbackServerContext* ctx, const pb::UpdateEventConfigurationsRequest* req,
    pb::UpdateEventConfigurationsResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    std::map<std::string, bool> changes;
    for (const auto& [name, c] : req->event_configurations()) changes[name] = c.enabled();
    return core_->UpdateEventConfigurations(changes);
  });
}

grpc::ServerUnaryReactor* RegistryService::DescribeEventConfigurations(
    grpc::CallbackServerContext* ctx, const pb::DescribeEventConfigurationsRequest*,
    pb::DescribeEventConfigurationsResponse* resp) {
  return calls_->Run(ctx, [this, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(EventConfigurations c, core_->DescribeEventConfigurations());
    for (const auto& [name, on] : c.enabled) {
      (*resp->mutable_event_configurations())[name].set_enabled(on);
    }
    if (c.created_at != absl::Time()) ToProto(c.created_at, resp->mutable_creation_date());
    if (c.updated_at != absl::Time()) ToProto(c.updated_at, resp->mutable_last_modified_date());
    return absl::OkStatus();
  });
}

}  // namespace fleetcore::registry
