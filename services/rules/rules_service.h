// The gRPC adapter of fleetcore.rules.v1.Rules.
#pragma once

#include "common/grpc/call_runner.h"
#include "fleetcore/rules/v1/rules.grpc.pb.h"
#include "services/rules/destinations.h"
#include "services/rules/rules_core.h"
#include "services/rules/rules_engine.h"

namespace fleetcore::rules {

class RulesService final : public pb::Rules::CallbackService {
 public:
  // Nothing is owned.
  RulesService(RulesCore* core, DestinationsCore* destinations, RulesEngine* engine,
               grpc_util::CallRunner* calls);
  ~RulesService() override;

  grpc::ServerUnaryReactor* CreateTopicRule(grpc::CallbackServerContext* ctx,
                                            const pb::CreateTopicRuleRequest* req,
                                            pb::CreateTopicRuleResponse* resp) override;
  grpc::ServerUnaryReactor* GetTopicRule(grpc::CallbackServerContext* ctx,
                                         const pb::GetTopicRuleRequest* req,
                                         pb::GetTopicRuleResponse* resp) override;
  grpc::ServerUnaryReactor* ListTopicRules(grpc::CallbackServerContext* ctx,
                                           const pb::ListTopicRulesRequest* req,
                                           pb::ListTopicRulesResponse* resp) override;
  grpc::ServerUnaryReactor* ReplaceTopicRule(grpc::CallbackServerContext* ctx,
                                             const pb::ReplaceTopicRuleRequest* req,
                                             pb::ReplaceTopicRuleResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteTopicRule(grpc::CallbackServerContext* ctx,
                                            const pb::DeleteTopicRuleRequest* req,
                                            pb::DeleteTopicRuleResponse* resp) override;
  grpc::ServerUnaryReactor* EnableTopicRule(grpc::CallbackServerContext* ctx,
                                            const pb::EnableTopicRuleRequest* req,
                                            pb::EnableTopicRuleResponse* resp) override;
  grpc::ServerUnaryReactor* DisableTopicRule(grpc::CallbackServerContext* ctx,
                                             const pb::DisableTopicRuleRequest* req,
                                             pb::DisableTopicRuleResponse* resp) override;
  grpc::ServerUnaryReactor* EvaluateRule(grpc::CallbackServerContext* ctx,
                                         const pb::EvaluateRuleRequest* req,
                                         pb::EvaluateRuleResponse* resp) override;
  grpc::ServerUnaryReactor* Ingest(grpc::CallbackServerContext* ctx,
                                   const pb::IngestRequest* req,
                                   pb::IngestResponse* resp) override;
  grpc::ServerUnaryReactor* ListRuleFilters(grpc::CallbackServerContext* ctx,
                                            const pb::ListRuleFiltersRequest* req,
                                            pb::ListRuleFiltersResponse* resp) override;
  grpc::ServerUnaryReactor* CreateTopicRuleDestination(
      grpc::CallbackServerContext* ctx, const pb::CreateTopicRuleDestinationRequest* req,
      pb::CreateTopicRuleDestinationResponse* resp) override;
  grpc::ServerUnaryReactor* GetTopicRuleDestination(
      grpc::CallbackServerContext* ctx, const pb::GetTopicRuleDestinationRequest* req,
      pb::GetTopicRuleDestinationResponse* resp) override;
  grpc::ServerUnaryReactor* ListTopicRuleDestinations(
      grpc::CallbackServerContext* ctx, const pb::ListTopicRuleDestinationsRequest* req,
      pb::ListTopicRuleDestinationsResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateTopicRuleDestination(
      grpc::CallbackServerContext* ctx, const pb::UpdateTopicRuleDestinationRequest* req,
      pb::UpdateTopicRuleDestinationResponse* resp) override;
  grpc::ServerUnaryReactor* ConfirmTopicRuleDestination(
      grpc::CallbackServerContext* ctx, const pb::ConfirmTopicRuleDestinationRequest* req,
      pb::ConfirmTopicRuleDestinationResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteTopicRuleDestination(
      grpc::CallbackServerContext* ctx, const pb::DeleteTopicRuleDestinationRequest* req,
      pb::DeleteTopicRuleDestinationResponse* resp) override;

 private:
  RulesCore* const core_;
  DestinationsCore* const destinations_;
  RulesEngine* const engine_;
  grpc_util::CallRunner* const calls_;
};

}  // namespace fleetcore::rules
