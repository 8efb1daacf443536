// The gRPC adapter of fleetcore.rules.v1.Rules.
#pragma once

#include "common/grpc/call_runner.h"
#include "fleetcore/rules/v1/rules.grpc.pb.h"
#include "services/rules/rules_core.h"
#include "services/rules/rules_engine.h"

namespace fleetcore::rules {

class RulesService final : public pb::Rules::CallbackService {
 public:
  // Nothing is owned.
  RulesService(RulesCore* core, RulesEngine* engine, grpc_util::CallRunner* calls)
      : core_(core), engine_(engine), calls_(calls) {}

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

 private:
  RulesCore* const core_;
  RulesEngine* const engine_;
  grpc_util::CallRunner* const calls_;
};

}  // namespace fleetcore::rules
