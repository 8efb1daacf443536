#include "services/rules/peer_lookups.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/grpc/status.h"
#include "common/nesting/nesting.h"
#include "fleetcore/registry/v1/registry.grpc.pb.h"
#include "fleetcore/shadow/v1/shadow.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace fleetcore::rules {

namespace sh = ::fleetcore::shadow::v1;
namespace reg = ::fleetcore::registry::v1;
using json = nlohmann::json;

namespace {

// Shadow documents nest at most 8 levels in their state (plus state, metadata and the
// section): anything deeper is not a shadow document.
constexpr int kMaxDocumentNesting = 32;

// One function's counters by result.
struct Counts {
  prometheus::Counter* found = nullptr;
  prometheus::Counter* not_found = nullptr;
  prometheus::Counter* failed = nullptr;

  void Register(prometheus::Family<prometheus::Counter>* family, const std::string& function) {
    found = &family->Add({{"function", function}, {"result", "found"}});
    not_found = &family->Add({{"function", function}, {"result", "not_found"}});
    failed = &family->Add({{"function", function}, {"result", "failed"}});
  }
  // Counts the answer and passes it on.
  absl::StatusOr<json> Count(absl::StatusOr<json> answer) const {
    prometheus::Counter* c = answer.ok()                                 ? found
                             : iotsql::LookupFoundNothing(answer.status()) ? not_found
                                                                           : failed;
    if (c != nullptr) c->Increment();
    return answer;
  }
};

}  // namespace

struct PeerLookups::Impl {
  std::unique_ptr<sh::Shadow::Stub> shadow;
  std::unique_ptr<reg::Registry::Stub> registry;
  Peers peers;
  Counts shadow_counts;
  Counts registry_counts;

  void Prepare(grpc::ClientContext* c) const {
    c->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(peers.timeout));
    if (!peers.token.empty()) c->AddMetadata("authorization", "Bearer " + peers.token);
  }

  // An answer of nothing to read (iotsql::LookupFoundNothing) as it is; any other failure
  // names the service.
  static absl::Status Failure(const grpc::Status& s, absl::string_view service) {
    absl::Status status = grpc_util::FromGrpcStatus(s);
    if (iotsql::LookupFoundNothing(status)) return status;
    return absl::Status(status.code(), absl::StrCat("the ", service, ": ", status.message()));
  }

  absl::StatusOr<json> Shadow(absl::string_view thing, absl::string_view shadow_name) const {
    if (shadow == nullptr) {
      return absl::FailedPreconditionError(
          "the rules service has no shadow service to read from (--shadow-endpoint)");
    }
    sh::GetThingShadowRequest req;
    req.set_thing_name(std::string(thing));
    req.set_shadow_name(std::string(shadow_name));
    sh::GetThingShadowResponse resp;
    grpc::ClientContext c;
    Prepare(&c);
    if (grpc::Status s = shadow->GetThingShadow(&c, req, &resp); !s.ok()) {
      return Failure(s, "shadow service");
    }
    if (!nesting::JsonNestingWithin(resp.payload(), kMaxDocumentNesting)) {
      return absl::DataLossError("the shadow service answered a document nested too deeply");
    }
    json doc = json::parse(resp.payload(), nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) {
      return absl::DataLossError("the shadow service answered something that is not JSON");
    }
    return doc;
  }

  // DescribeThing's answer as AWS writes it (version a number, absent fields left out).
  absl::StatusOr<json> DescribeThing(absl::string_view thing) const {
    reg::DescribeThingRequest req;
    req.set_thing_name(std::string(thing));
    reg::DescribeThingResponse resp;
    grpc::ClientContext c;
    Prepare(&c);
    if (grpc::Status s = registry->DescribeThing(&c, req, &resp); !s.ok()) {
      return Failure(s, "registry");
    }
    json out{{"thingName", resp.thing_name()},
             {"thingId", resp.thing_id()},
             {"thingArn", resp.thing_arn()},
             {"version", resp.version()},
             {"attributes", json::object()}};
    if (!resp.default_client_id().empty()) out["defaultClientId"] = resp.default_client_id();
    if (!resp.thing_type_name().empty()) out["thingTypeName"] = resp.thing_type_name();
    for (const auto& [k, v] : resp.attributes()) out["attributes"][k] = v;
    return out;
  }

  // ListThingGroupsForThing's answer, every page: {"thingGroups": [{groupName, groupArn}]}.
  absl::StatusOr<json> ThingGroups(absl::string_view thing) const {
    json groups = json::array();
    reg::ListThingGroupsForThingRequest req;
    req.set_thing_name(std::string(thing));
    req.set_max_results(250);
    do {
      reg::ListThingGroupsForThingResponse resp;
      grpc::ClientContext c;
      Prepare(&c);
      if (grpc::Status s = registry->ListThingGroupsForThing(&c, req, &resp); !s.ok()) {
        return Failure(s, "registry");
      }
      for (const reg::GroupNameAndArn& g : resp.thing_groups()) {
        groups.push_back({{"groupName", g.group_name()}, {"groupArn", g.group_arn()}});
      }
      req.set_next_token(resp.next_token());
    } while (!req.next_token().empty());
    return json{{"thingGroups", std::move(groups)}};
  }
};

PeerLookups::PeerLookups(Peers peers, prometheus::Registry* metrics)
    : impl_(std::make_unique<Impl>()) {
  if (peers.shadow != nullptr) impl_->shadow = sh::Shadow::NewStub(peers.shadow);
  if (peers.registry != nullptr) impl_->registry = reg::Registry::NewStub(peers.registry);
  impl_->peers = std::move(peers);
  if (metrics != nullptr) {
    auto& family = prometheus::BuildCounter()
                       .Name("fleetcore_rules_lookups_total")
                       .Help(
                           "Reads of other services by the rules' SQL functions, by function "
                           "and result (found, not_found, failed: the rule did not run).")
                       .Register(*metrics);
    impl_->shadow_counts.Register(&family, "get_thing_shadow");
    impl_->registry_counts.Register(&family, "get_registry_data");
  }
}

PeerLookups::~PeerLookups() = default;

absl::StatusOr<json> PeerLookups::GetThingShadow(absl::string_view thing,
                                                 absl::string_view shadow) {
  return impl_->shadow_counts.Count(impl_->Shadow(thing, shadow));
}

absl::StatusOr<json> PeerLookups::GetRegistryData(absl::string_view api, absl::string_view thing) {
  if (impl_->registry == nullptr) {
    return impl_->registry_counts.Count(absl::FailedPreconditionError(
        "the rules service has no registry to read from (--registry-endpoint)"));
  }
  if (api == "DescribeThing") return impl_->registry_counts.Count(impl_->DescribeThing(thing));
  if (api == "ListThingGroupsForThing") {
    return impl_->registry_counts.Count(impl_->ThingGroups(thing));
  }
  return impl_->registry_counts.Count(absl::InvalidArgumentError(absl::StrCat(
      "get_registry_data() reads DescribeThing or ListThingGroupsForThing, not ", api)));
}

}  // namespace fleetcore::rules
