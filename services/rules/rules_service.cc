#include "services/rules/rules_service.h"

#include "common/status/status_macros.h"

namespace fleetcore::rules {

using grpc_util::CallContext;

RulesService::RulesService(RulesCore* core, DestinationsCore* destinations, RulesEngine* engine,
                           grpc_util::CallRunner* calls)
    : core_(core), destinations_(destinations), engine_(engine), calls_(calls) {}

RulesService::~RulesService() = default;

grpc::ServerUnaryReactor* RulesService::CreateTopicRule(grpc::CallbackServerContext* ctx,
                                                        const pb::CreateTopicRuleRequest* req,
                                                        pb::CreateTopicRuleResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return core_->Create(req->rule_name(), req->topic_rule_payload());
  });
}

grpc::ServerUnaryReactor* RulesService::GetTopicRule(grpc::CallbackServerContext* ctx,
                                                     const pb::GetTopicRuleRequest* req,
                                                     pb::GetTopicRuleResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(*resp, core_->Get(req->rule_name()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RulesService::ListTopicRules(grpc::CallbackServerContext* ctx,
                                                       const pb::ListTopicRulesRequest* req,
                                                       pb::ListTopicRulesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(*resp, core_->List(*req));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RulesService::ReplaceTopicRule(grpc::CallbackServerContext* ctx,
                                                         const pb::ReplaceTopicRuleRequest* req,
                                                         pb::ReplaceTopicRuleResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return core_->Replace(req->rule_name(), req->topic_rule_payload());
  });
}

grpc::ServerUnaryReactor* RulesService::DeleteTopicRule(grpc::CallbackServerContext* ctx,
                                                        const pb::DeleteTopicRuleRequest* req,
                                                        pb::DeleteTopicRuleResponse*) {
  return calls_->Run(ctx,
                     [this, req](const CallContext&) { return core_->Delete(req->rule_name()); });
}

grpc::ServerUnaryReactor* RulesService::EnableTopicRule(grpc::CallbackServerContext* ctx,
                                                        const pb::EnableTopicRuleRequest* req,
                                                        pb::EnableTopicRuleResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return core_->SetDisabled(req->rule_name(), false);
  });
}

grpc::ServerUnaryReactor* RulesService::DisableTopicRule(grpc::CallbackServerContext* ctx,
                                                         const pb::DisableTopicRuleRequest* req,
                                                         pb::DisableTopicRuleResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return core_->SetDisabled(req->rule_name(), true);
  });
}

grpc::ServerUnaryReactor* RulesService::EvaluateRule(grpc::CallbackServerContext* ctx,
                                                     const pb::EvaluateRuleRequest* req,
                                                     pb::EvaluateRuleResponse* resp) {
  // Pure computation: answered on the calling thread.
  return calls_->RunInline(ctx, [this, req, resp]() -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(*resp, core_->Evaluate(*req));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RulesService::Ingest(grpc::CallbackServerContext* ctx,
                                               const pb::IngestRequest* req,
                                               pb::IngestResponse* resp) {
  // Queueing only: answered on the calling thread, the rules run on the engine's.
  return calls_->RunInline(ctx, [this, req, resp]() -> absl::Status {
    for (const pb::InboundMessage& m : req->messages()) {
      if (engine_->Enqueue(m)) {
        resp->set_queued(resp->queued() + 1);
      } else {
        resp->set_dropped(resp->dropped() + 1);
      }
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RulesService::ListRuleFilters(grpc::CallbackServerContext* ctx,
                                                        const pb::ListRuleFiltersRequest*,
                                                        pb::ListRuleFiltersResponse* resp) {
  // The gateway asks when a rule changed, possibly before this replica's NOTIFY arrived:
  // the engine reloads first, so the messages sent for the new filters meet the new rules.
  return calls_->Run(ctx, [this, resp](const CallContext&) -> absl::Status {
    FLEETCORE_RETURN_IF_ERROR(engine_->Reload());
    for (std::string& f : engine_->Filters()) resp->add_filters(std::move(f));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RulesService::CreateTopicRuleDestination(
    grpc::CallbackServerContext* ctx, const pb::CreateTopicRuleDestinationRequest* req,
    pb::CreateTopicRuleDestinationResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(*resp->mutable_topic_rule_destination(),
                               destinations_->Create(*req));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RulesService::GetTopicRuleDestination(
    grpc::CallbackServerContext* ctx, const pb::GetTopicRuleDestinationRequest* req,
    pb::GetTopicRuleDestinationResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(*resp->mutable_topic_rule_destination(),
                               destinations_->Get(req->arn()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RulesService::ListTopicRuleDestinations(
    grpc::CallbackServerContext* ctx, const pb::ListTopicRuleDestinationsRequest* req,
    pb::ListTopicRuleDestinationsResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(*resp, destinations_->List(*req));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* RulesService::UpdateTopicRuleDestination(
    grpc::CallbackServerContext* ctx, const pb::UpdateTopicRuleDestinationRequest* req,
    pb::UpdateTopicRuleDestinationResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return destinations_->Update(req->arn(), req->status());
  });
}

grpc::ServerUnaryReactor* RulesService::ConfirmTopicRuleDestination(
    grpc::CallbackServerContext* ctx, const pb::ConfirmTopicRuleDestinationRequest* req,
    pb::ConfirmTopicRuleDestinationResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return destinations_->Confirm(req->confirmation_token()).status();
  });
}

grpc::ServerUnaryReactor* RulesService::DeleteTopicRuleDestination(
    grpc::CallbackServerContext* ctx, const pb::DeleteTopicRuleDestinationRequest* req,
    pb::DeleteTopicRuleDestinationResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return destinations_->Delete(req->arn());
  });
}

}  // namespace fleetcore::rules
