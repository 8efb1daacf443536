#include "services/rules/shadow_lookups.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/grpc/status.h"
#include "common/nesting/nesting.h"
#include "fleetcore/shadow/v1/shadow.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace fleetcore::rules {

namespace sh = ::fleetcore::shadow::v1;
using json = nlohmann::json;

namespace {
// Shadow documents nest at most 8 levels in their state (plus state, metadata and the
// section): anything deeper is not a shadow document.
constexpr int kMaxDocumentNesting = 32;
}  // namespace

struct ShadowLookups::Impl {
  std::unique_ptr<sh::Shadow::Stub> stub;
  std::string token;
  absl::Duration timeout;
  prometheus::Counter* found = nullptr;
  prometheus::Counter* not_found = nullptr;
  prometheus::Counter* failed = nullptr;
};

ShadowLookups::ShadowLookups(std::shared_ptr<grpc::Channel> channel, std::string token,
                             prometheus::Registry* metrics, absl::Duration timeout)
    : impl_(std::make_unique<Impl>()) {
  if (channel != nullptr) impl_->stub = sh::Shadow::NewStub(channel);
  impl_->token = std::move(token);
  impl_->timeout = timeout;
  if (metrics != nullptr) {
    auto& family = prometheus::BuildCounter()
                       .Name("fleetcore_rules_lookups_total")
                       .Help("Reads of other services by the rules' SQL functions, by function "
                             "and result (found, not_found, failed: the rule did not run).")
                       .Register(*metrics);
    impl_->found = &family.Add({{"function", "get_thing_shadow"}, {"result", "found"}});
    impl_->not_found = &family.Add({{"function", "get_thing_shadow"}, {"result", "not_found"}});
    impl_->failed = &family.Add({{"function", "get_thing_shadow"}, {"result", "failed"}});
  }
}

ShadowLookups::~ShadowLookups() = default;

absl::StatusOr<json> ShadowLookups::GetThingShadow(absl::string_view thing,
                                                   absl::string_view shadow) {
  auto count = [](prometheus::Counter* c) {
    if (c != nullptr) c->Increment();
  };
  if (impl_->stub == nullptr) {
    count(impl_->failed);
    return absl::FailedPreconditionError(
        "the rules service has no shadow service to read from (--shadow-endpoint)");
  }
  sh::GetThingShadowRequest req;
  req.set_thing_name(std::string(thing));
  req.set_shadow_name(std::string(shadow));
  sh::GetThingShadowResponse resp;
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(impl_->timeout));
  if (!impl_->token.empty()) c.AddMetadata("authorization", "Bearer " + impl_->token);
  const grpc::Status s = impl_->stub->GetThingShadow(&c, req, &resp);
  if (!s.ok()) {
    absl::Status status = grpc_util::FromGrpcStatus(s);
    if (status.code() == absl::StatusCode::kNotFound ||
        status.code() == absl::StatusCode::kInvalidArgument) {
      count(impl_->not_found);
      return status;
    }
    count(impl_->failed);
    return absl::Status(status.code(), absl::StrCat("the shadow service: ", status.message()));
  }
  if (!nesting::JsonNestingWithin(resp.payload(), kMaxDocumentNesting)) {
    count(impl_->failed);
    return absl::DataLossError("the shadow service answered a document nested too deeply");
  }
  json doc = json::parse(resp.payload(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    count(impl_->failed);
    return absl::DataLossError("the shadow service answered something that is not JSON");
  }
  count(impl_->found);
  return doc;
}

}  // namespace fleetcore::rules
