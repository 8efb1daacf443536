#include "services/shadow/shadow_service.h"

#include "common/status/status_macros.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace fleetcore::shadow {
namespace {

using grpc_util::CallContext;

std::optional<std::string> Token(const std::string& t) {
  if (t.empty()) return std::nullopt;
  return t;
}

absl::Status CheckToken(const std::string& t) {
  if (t.size() > kMaxClientTokenBytes) return absl::InvalidArgumentError("Invalid clientToken");
  return absl::OkStatus();
}

}  // namespace

ShadowService::ShadowService(ShadowCore* core, grpc_util::CallRunner* calls,
                             prometheus::Registry* metrics)
    : core_(core), calls_(calls) {
  if (metrics == nullptr) return;
  auto& family = prometheus::BuildHistogram()
                     .Name("fleetcore_shadow_document_bytes")
                     .Help("Size of shadow documents: update requests, and get answers.")
                     .Register(*metrics);
  const prometheus::Histogram::BucketBoundaries buckets{128, 256, 512, 1024, 2048,
                                                        4096, 8192, 16384, 32768};
  update_bytes_ = &family.Add({{"operation", "update"}}, buckets);
  get_bytes_ = &family.Add({{"operation", "get"}}, buckets);
}

grpc::ServerUnaryReactor* ShadowService::GetThingShadow(grpc::CallbackServerContext* ctx,
                                                        const pb::GetThingShadowRequest* req,
                                                        pb::GetThingShadowResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_RETURN_IF_ERROR(CheckToken(req->client_token()));
    FLEETCORE_ASSIGN_OR_RETURN(
        std::string doc,
        core_->Get({req->thing_name(), req->shadow_name()}, Token(req->client_token())));
    if (get_bytes_ != nullptr) get_bytes_->Observe(static_cast<double>(doc.size()));
    resp->set_payload(std::move(doc));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ShadowService::UpdateThingShadow(
    grpc::CallbackServerContext* ctx, const pb::UpdateThingShadowRequest* req,
    pb::UpdateThingShadowResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    if (update_bytes_ != nullptr) update_bytes_->Observe(static_cast<double>(req->payload().size()));
    FLEETCORE_ASSIGN_OR_RETURN(
        std::string doc, core_->Update({req->thing_name(), req->shadow_name()}, req->payload()));
    resp->set_payload(std::move(doc));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ShadowService::DeleteThingShadow(
    grpc::CallbackServerContext* ctx, const pb::DeleteThingShadowRequest* req,
    pb::DeleteThingShadowResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_RETURN_IF_ERROR(CheckToken(req->client_token()));
    FLEETCORE_ASSIGN_OR_RETURN(
        std::string doc,
        core_->Delete({req->thing_name(), req->shadow_name()}, Token(req->client_token())));
    resp->set_payload(std::move(doc));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ShadowService::ListNamedShadowsForThing(
    grpc::CallbackServerContext* ctx, const pb::ListNamedShadowsForThingRequest* req,
    pb::ListNamedShadowsForThingResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        ListPage page, core_->ListNamed(req->thing_name(), req->next_token(), req->page_size()));
    for (std::string& name : page.results) resp->add_results(std::move(name));
    resp->set_next_token(page.next_token);
    resp->set_timestamp(page.timestamp);
    return absl::OkStatus();
  });
}

}  // namespace fleetcore::shadow
