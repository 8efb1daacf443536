// libFuzzer target: any bytes as a policy document. Parsing must never crash or hang, and
// a document that parses must evaluate any request without crashing.
#include <cstddef>
#include <cstdint>

#include "common/policy/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetcore::policy;
  auto doc = PolicyDocument::Parse(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!doc.ok()) return 0;
  static const fleetcore::aws::Arns arns("us-east-1", "123456789012");
  std::vector<PolicySet::Policy> policies;
  policies.push_back({"fuzz", "1", *doc});
  PolicySet set(std::move(policies), arns);
  ThingInfo thing;
  thing.name = "lamp-1";
  thing.type_name = "lamp";
  thing.attributes["room"] = "hall";
  thing.attached = true;
  CertificateInfo cert;
  cert.subject[static_cast<int>(CertField::kCommonName)] = {"lamp-1"};
  cert.ComputeAvailableKeys();
  std::vector<std::string> attrs = {"PersistentConnect"};
  Context ctx{.client_id = "lamp-1",
              .source_ip = "10.0.0.7",
              .thing = &thing,
              .certificate = &cert,
              .connect_attributes = attrs,
              .now = absl::FromUnixSeconds(1800000000)};
  for (int a = 0; a < kActionCount; ++a) {
    for (absl::string_view resource : {"lamp-1", "things/lamp-1/temp", "things/+/#", ""}) {
      Decision d = set.Evaluate(static_cast<Action>(a), resource, ctx);
      (void)set.Explain(d);
      (void)set.EvaluateArn(static_cast<Action>(a), "arn:aws:iot:us-east-1:123456789012:topic/x", ctx);
    }
  }
  return 0;
}
