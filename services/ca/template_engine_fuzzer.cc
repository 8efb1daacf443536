// libFuzzer target: a provisioning template (an operator's) and the parameters a device
// sends with RegisterThing. The input is the template body, a NUL byte, and the parameters
// as a JSON object of strings. Parsing (as a fleet-provisioning and as a JITP template) and
// resolving must never crash or hang, and must fail only with INVALID_ARGUMENT; a resolved
// plan names a thing whenever the template has a thing resource.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "services/ca/template_engine.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const absl::string_view body = input.substr(0, nul);
  std::map<std::string, std::string> parameters;
  if (nul != absl::string_view::npos) {
    const absl::string_view rest = input.substr(nul + 1);
    nlohmann::json p = nlohmann::json::parse(rest.begin(), rest.end(), nullptr, false);
    if (p.is_object()) {
      for (const auto& [k, v] : p.items()) {
        if (v.is_string()) parameters[k] = v.get<std::string>();
      }
    }
  }
  for (auto type : {fleetcore::ca::TemplateType::kFleetProvisioning,
                    fleetcore::ca::TemplateType::kJitp}) {
    absl::StatusOr<fleetcore::ca::ProvisioningTemplate> t =
        fleetcore::ca::ProvisioningTemplate::Parse(body, type);
    if (!t.ok()) {
      Require(t.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    absl::StatusOr<fleetcore::ca::ProvisioningPlan> plan = t->Resolve(parameters);
    if (!plan.ok()) {
      Require(plan.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    if (plan->thing.has_value()) Require(!plan->thing->logical_name.empty());
  }
  return 0;
}
