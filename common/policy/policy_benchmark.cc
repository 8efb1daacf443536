// Decisions per second for a typical device policy (docs/benchmarks.md, "Policy engine").
//
//   build/common/policy/policy_benchmark --benchmark_min_time=2
//
// The policy: connect on its own client id, publish and receive under
// things/${iot:Connection.Thing.ThingName}/*, subscribe on the matching topic filter, and
// one explicit deny. items_per_second is decisions per second on one core.
#include <array>

#include "benchmark/benchmark.h"
#include "common/policy/policy.h"

namespace fleetcore::policy {
namespace {

constexpr char kDevicePolicy[] = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
     "Resource": "arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/things/${iot:Connection.Thing.ThingName}/*"},
    {"Effect": "Deny", "Action": "iot:Publish",
     "Resource": "arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/admin/*"}
  ]
})";

struct Fixture {
  Fixture() : arns("us-east-1", "123456789012") {
    thing.name = "lamp-0042";
    thing.attached = true;
    ctx.client_id = thing.name;
    ctx.thing = &thing;
    auto doc = PolicyDocument::Parse(kDevicePolicy);
    std::vector<PolicySet::Policy> policies;
    policies.push_back({"device", "1", *doc});
    set = std::make_unique<PolicySet>(std::move(policies), arns);
  }
  aws::Arns arns;
  ThingInfo thing;
  Context ctx;
  std::unique_ptr<PolicySet> set;
};

void Run(benchmark::State& state, Action action, const char* resource, Effect expected) {
  Fixture f;
  if (f.set->Evaluate(action, resource, f.ctx).effect != expected) {
    state.SkipWithError("unexpected decision");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.set->Evaluate(action, resource, f.ctx));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ConnectAllowed(benchmark::State& s) { Run(s, Action::kConnect, "lamp-0042", Effect::kAllow); }
void BM_PublishAllowed(benchmark::State& s) {
  Run(s, Action::kPublish, "things/lamp-0042/telemetry/temperature", Effect::kAllow);
}
void BM_PublishExplicitlyDenied(benchmark::State& s) {
  Run(s, Action::kPublish, "things/lamp-0042/admin/reset", Effect::kExplicitDeny);
}
void BM_PublishOtherThingDenied(benchmark::State& s) {
  Run(s, Action::kPublish, "things/lamp-0043/telemetry", Effect::kImplicitDeny);
}
void BM_ReceiveAllowed(benchmark::State& s) {
  Run(s, Action::kReceive, "things/lamp-0042/commands/on", Effect::kAllow);
}
void BM_SubscribeAllowed(benchmark::State& s) {
  Run(s, Action::kSubscribe, "things/lamp-0042/#", Effect::kAllow);
}

// A device's traffic: mostly publishes and receives, some subscribes, a few denials.
void BM_DeviceMix(benchmark::State& state) {
  Fixture f;
  struct Req {
    Action action;
    const char* resource;
  };
  static constexpr std::array<Req, 8> kMix = {{
      {Action::kPublish, "things/lamp-0042/telemetry/temperature"},
      {Action::kPublish, "things/lamp-0042/telemetry/humidity"},
      {Action::kReceive, "things/lamp-0042/commands/on"},
      {Action::kPublish, "things/lamp-0042/status"},
      {Action::kReceive, "things/lamp-0042/config"},
      {Action::kSubscribe, "things/lamp-0042/commands/#"},
      {Action::kPublish, "things/lamp-0042/admin/reset"},
      {Action::kPublish, "things/lamp-0043/telemetry"},
  }};
  size_t i = 0;
  for (auto _ : state) {
    const Req& r = kMix[i++ & 7];
    benchmark::DoNotOptimize(f.set->Evaluate(r.action, r.resource, f.ctx));
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_ConnectAllowed);
BENCHMARK(BM_PublishAllowed);
BENCHMARK(BM_PublishExplicitlyDenied);
BENCHMARK(BM_PublishOtherThingDenied);
BENCHMARK(BM_ReceiveAllowed);
BENCHMARK(BM_SubscribeAllowed);
BENCHMARK(BM_DeviceMix);

}  // namespace
}  // namespace fleetcore::policy

BENCHMARK_MAIN();
