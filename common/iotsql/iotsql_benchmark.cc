// Rule evaluations per second (docs/benchmarks.md, "Rules SQL"):
//
//   build/common/iotsql/iotsql_benchmark --benchmark_min_time=2
//
// The seed's filter rule, and a projection with five functions, on a typical reading.
// items_per_second is evaluations per second on one core. Then a republish action's topic
// template on a 4 KB reading: parsed once and rendered on the message's parsed payload, as
// the rules engine does, and for comparison parsed with the payload on every use.
#include "benchmark/benchmark.h"
#include "common/iotsql/iotsql.h"

namespace fleetcore::iotsql {
namespace {

constexpr char kReading[] =
    R"({"temperature": 31.5, "humidity": 40, "unit": "C", "device": "lamp-0042"})";
const MessageContext kContext{.topic = "sensors/lamp-0042/data",
                              .client_id = "lamp-0042",
                              .principal = "abc",
                              .timestamp_ms = 1700000000000};

void Run(benchmark::State& state, const char* sql) {
  absl::StatusOr<Statement> st = Statement::Parse(sql);
  if (!st.ok()) {
    state.SkipWithError(std::string(st.status().message()).c_str());
    return;
  }
  for (auto _ : state) {
    Result r = st->Evaluate(kReading, kContext);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_FilterRule(benchmark::State& state) {
  Run(state, "SELECT * FROM 'sensors/+/data' WHERE temperature > 30");
}
BENCHMARK(BM_FilterRule);

void BM_ProjectionFiveFunctions(benchmark::State& state) {
  Run(state,
      "SELECT topic(2) AS device, upper(unit) AS unit, round(temperature) AS t, "
      "timestamp() AS ts, concat(device, '-', humidity) AS tag FROM 'sensors/+/data'");
}
BENCHMARK(BM_ProjectionFiveFunctions);

void BM_RegexpRule(benchmark::State& state) {
  Run(state,
      "SELECT * FROM 'sensors/+/data' WHERE regexp_matches(device, '^lamp-[0-9]{4}$')");
}
BENCHMARK(BM_RegexpRule);

// A reading of about 4 KB: 64 samples besides the fields the template reads.
std::string LargeReading() {
  std::string samples;
  for (int i = 0; i < 64; ++i) {
    samples += (i == 0 ? "" : ", ") + std::string(R"({"t": 21.25, "h": 40, "ok": true})");
  }
  return R"({"device": "lamp-0042", "unit": "C", "samples": [)" + samples + "]}";
}

constexpr char kTopicTemplate[] = "alerts/${topic(2)}/${upper(unit)}";

void BM_TemplateParsedOnce(benchmark::State& state) {
  absl::StatusOr<Template> t = Template::Parse(kTopicTemplate);
  const Payload payload(LargeReading());
  for (auto _ : state) {
    absl::StatusOr<std::string> out = t->Render(payload, kContext);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TemplateParsedOnce);

void BM_TemplateParsedWithPayloadEachTime(benchmark::State& state) {
  const std::string reading = LargeReading();
  for (auto _ : state) {
    absl::StatusOr<std::string> out = Statement::Substitute(kTopicTemplate, reading, kContext);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TemplateParsedWithPayloadEachTime);

}  // namespace
}  // namespace fleetcore::iotsql

BENCHMARK_MAIN();
