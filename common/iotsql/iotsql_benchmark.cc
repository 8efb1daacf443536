// Rule evaluations per second (docs/benchmarks.md, "Rules SQL"):
//
//   build/common/iotsql/iotsql_benchmark --benchmark_min_time=2
//
// The seed's filter rule, and a projection with five functions, on a typical reading.
// items_per_second is evaluations per second on one core.
#include "benchmark/benchmark.h"
#include "common/iotsql/iotsql.h"

namespace fleetcore::iotsql {
namespace {

constexpr char kReading[] =
    R"({"temperature": 31.5, "humidity": 40, "unit": "C", "device": "lamp-0042"})";
const MessageContext kContext{.topic = "sensors/lamp-0042/data", .client_id = "lamp-0042",
                              .principal = "abc", .timestamp_ms = 1700000000000};

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

}  // namespace
}  // namespace fleetcore::iotsql

BENCHMARK_MAIN();
