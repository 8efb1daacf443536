// The gRPC adapter of the registry (fleetcore.registry.v1.Registry): converts protos to the
// core's domain types and back, and nothing else. Every RPC body runs through the shared
// CallRunner (admin token, request id, worker pool, status mapping).
#pragma once

#include "common/grpc/call_runner.h"
#include "fleetcore/registry/v1/registry.grpc.pb.h"
#include "services/registry/registry_core.h"

namespace fleetcore::registry {

namespace pb = ::fleetcore::registry::v1;

class RegistryService final : public pb::Registry::CallbackService {
 public:
  // Nothing is owned. Both are defined in the .cc file: built inline, they instantiate the
  // handler of every RPC in each file that makes or destroys a service (a test, main).
  RegistryService(RegistryCore* core, grpc_util::CallRunner* calls);
  ~RegistryService() override;

  grpc::ServerUnaryReactor* CreateThing(grpc::CallbackServerContext* ctx,
                                        const pb::CreateThingRequest* req,
                                        pb::CreateThingResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeThing(grpc::CallbackServerContext* ctx,
                                          const pb::DescribeThingRequest* req,
                                          pb::DescribeThingResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateThing(grpc::CallbackServerContext* ctx,
                                        const pb::UpdateThingRequest* req,
                                        pb::UpdateThingResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteThing(grpc::CallbackServerContext* ctx,
                                        const pb::DeleteThingRequest* req,
                                        pb::DeleteThingResponse* resp) override;
  grpc::ServerUnaryReactor* ListThings(grpc::CallbackServerContext* ctx,
                                       const pb::ListThingsRequest* req,
                                       pb::ListThingsResponse* resp) override;

  grpc::ServerUnaryReactor* CreateThingType(grpc::CallbackServerContext* ctx,
                                            const pb::CreateThingTypeRequest* req,
                                            pb::CreateThingTypeResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeThingType(grpc::CallbackServerContext* ctx,
                                              const pb::DescribeThingTypeRequest* req,
                                              pb::DescribeThingTypeResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateThingType(grpc::CallbackServerContext* ctx,
                                            const pb::UpdateThingTypeRequest* req,
                                            pb::UpdateThingTypeResponse* resp) override;
  grpc::ServerUnaryReactor* ListThingTypes(grpc::CallbackServerContext* ctx,
                                           const pb::ListThingTypesRequest* req,
                                           pb::ListThingTypesResponse* resp) override;
  grpc::ServerUnaryReactor* DeprecateThingType(grpc::CallbackServerContext* ctx,
                                               const pb::DeprecateThingTypeRequest* req,
                                               pb::DeprecateThingTypeResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteThingType(grpc::CallbackServerContext* ctx,
                                            const pb::DeleteThingTypeRequest* req,
                                            pb::DeleteThingTypeResponse* resp) override;

  grpc::ServerUnaryReactor* CreateThingGroup(grpc::CallbackServerContext* ctx,
                                             const pb::CreateThingGroupRequest* req,
                                             pb::CreateThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeThingGroup(grpc::CallbackServerContext* ctx,
                                               const pb::DescribeThingGroupRequest* req,
                                               pb::DescribeThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateThingGroup(grpc::CallbackServerContext* ctx,
                                             const pb::UpdateThingGroupRequest* req,
                                             pb::UpdateThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteThingGroup(grpc::CallbackServerContext* ctx,
                                             const pb::DeleteThingGroupRequest* req,
                                             pb::DeleteThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* CreateDynamicThingGroup(
      grpc::CallbackServerContext* ctx, const pb::CreateDynamicThingGroupRequest* req,
      pb::CreateDynamicThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateDynamicThingGroup(
      grpc::CallbackServerContext* ctx, const pb::UpdateDynamicThingGroupRequest* req,
      pb::UpdateDynamicThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteDynamicThingGroup(
      grpc::CallbackServerContext* ctx, const pb::DeleteDynamicThingGroupRequest* req,
      pb::DeleteDynamicThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* ListThingGroups(grpc::CallbackServerContext* ctx,
                                            const pb::ListThingGroupsRequest* req,
                                            pb::ListThingGroupsResponse* resp) override;
  grpc::ServerUnaryReactor* AddThingToThingGroup(grpc::CallbackServerContext* ctx,
                                                 const pb::AddThingToThingGroupRequest* req,
                                                 pb::AddThingToThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* RemoveThingFromThingGroup(
      grpc::CallbackServerContext* ctx, const pb::RemoveThingFromThingGroupRequest* req,
      pb::RemoveThingFromThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateThingGroupsForThing(
      grpc::CallbackServerContext* ctx, const pb::UpdateThingGroupsForThingRequest* req,
      pb::UpdateThingGroupsForThingResponse* resp) override;
  grpc::ServerUnaryReactor* ListThingsInThingGroup(
      grpc::CallbackServerContext* ctx, const pb::ListThingsInThingGroupRequest* req,
      pb::ListThingsInThingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* ListThingGroupsForThing(
      grpc::CallbackServerContext* ctx, const pb::ListThingGroupsForThingRequest* req,
      pb::ListThingGroupsForThingResponse* resp) override;

  grpc::ServerUnaryReactor* CreateBillingGroup(grpc::CallbackServerContext* ctx,
                                               const pb::CreateBillingGroupRequest* req,
                                               pb::CreateBillingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeBillingGroup(grpc::CallbackServerContext* ctx,
                                                 const pb::DescribeBillingGroupRequest* req,
                                                 pb::DescribeBillingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateBillingGroup(grpc::CallbackServerContext* ctx,
                                               const pb::UpdateBillingGroupRequest* req,
                                               pb::UpdateBillingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteBillingGroup(grpc::CallbackServerContext* ctx,
                                               const pb::DeleteBillingGroupRequest* req,
                                               pb::DeleteBillingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* ListBillingGroups(grpc::CallbackServerContext* ctx,
                                              const pb::ListBillingGroupsRequest* req,
                                              pb::ListBillingGroupsResponse* resp) override;
  grpc::ServerUnaryReactor* AddThingToBillingGroup(
      grpc::CallbackServerContext* ctx, const pb::AddThingToBillingGroupRequest* req,
      pb::AddThingToBillingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* RemoveThingFromBillingGroup(
      grpc::CallbackServerContext* ctx, const pb::RemoveThingFromBillingGroupRequest* req,
      pb::RemoveThingFromBillingGroupResponse* resp) override;
  grpc::ServerUnaryReactor* ListThingsInBillingGroup(
      grpc::CallbackServerContext* ctx, const pb::ListThingsInBillingGroupRequest* req,
      pb::ListThingsInBillingGroupResponse* resp) override;

  grpc::ServerUnaryReactor* AttachThingPrincipal(grpc::CallbackServerContext* ctx,
                                                 const pb::AttachThingPrincipalRequest* req,
                                                 pb::AttachThingPrincipalResponse* resp) override;
  grpc::ServerUnaryReactor* DetachThingPrincipal(grpc::CallbackServerContext* ctx,
                                                 const pb::DetachThingPrincipalRequest* req,
                                                 pb::DetachThingPrincipalResponse* resp) override;
  grpc::ServerUnaryReactor* ListThingPrincipals(grpc::CallbackServerContext* ctx,
                                                const pb::ListThingPrincipalsRequest* req,
                                                pb::ListThingPrincipalsResponse* resp) override;
  grpc::ServerUnaryReactor* ListPrincipalThings(grpc::CallbackServerContext* ctx,
                                                const pb::ListPrincipalThingsRequest* req,
                                                pb::ListPrincipalThingsResponse* resp) override;

  grpc::ServerUnaryReactor* SearchIndex(grpc::CallbackServerContext* ctx,
                                        const pb::SearchIndexRequest* req,
                                        pb::SearchIndexResponse* resp) override;
  grpc::ServerUnaryReactor* GetStatistics(grpc::CallbackServerContext* ctx,
                                          const pb::GetStatisticsRequest* req,
                                          pb::GetStatisticsResponse* resp) override;
  grpc::ServerUnaryReactor* GetCardinality(grpc::CallbackServerContext* ctx,
                                           const pb::GetCardinalityRequest* req,
                                           pb::GetCardinalityResponse* resp) override;
  grpc::ServerUnaryReactor* GetPercentiles(grpc::CallbackServerContext* ctx,
                                           const pb::GetPercentilesRequest* req,
                                           pb::GetPercentilesResponse* resp) override;
  grpc::ServerUnaryReactor* GetBucketsAggregation(grpc::CallbackServerContext* ctx,
                                                  const pb::GetBucketsAggregationRequest* req,
                                                  pb::GetBucketsAggregationResponse* resp) override;

  grpc::ServerUnaryReactor* GetIndexingConfiguration(
      grpc::CallbackServerContext* ctx, const pb::GetIndexingConfigurationRequest* req,
      pb::GetIndexingConfigurationResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateIndexingConfiguration(
      grpc::CallbackServerContext* ctx, const pb::UpdateIndexingConfigurationRequest* req,
      pb::UpdateIndexingConfigurationResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeIndex(grpc::CallbackServerContext* ctx,
                                          const pb::DescribeIndexRequest* req,
                                          pb::DescribeIndexResponse* resp) override;
  grpc::ServerUnaryReactor* ListIndices(grpc::CallbackServerContext* ctx,
                                        const pb::ListIndicesRequest* req,
                                        pb::ListIndicesResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateEventConfigurations(
      grpc::CallbackServerContext* ctx, const pb::UpdateEventConfigurationsRequest* req,
      pb::UpdateEventConfigurationsResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeEventConfigurations(
      grpc::CallbackServerContext* ctx, const pb::DescribeEventConfigurationsRequest* req,
      pb::DescribeEventConfigurationsResponse* resp) override;

 private:
  RegistryCore* core_;
  grpc_util::CallRunner* calls_;
};

}  // namespace fleetcore::registry
