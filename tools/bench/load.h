// The load loop shared by fleetcore-bench's scenarios: keeps up to `concurrency` calls in
// flight with gRPC's callback API (no thread per caller), either as fast as answers come
// back (closed loop) or at a fixed offered rate (open loop). In rate mode a call's latency
// counts from when it was scheduled, not from when a free slot let it start, so a slow
// server cannot hide its queueing (no coordinated omission).
#pragma once

#include <cstdint>
#include <functional>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace fleetcore::bench {

struct LoadOptions {
  int concurrency = 16;
  double rate = 0;  // calls per second; 0: closed loop
  absl::Duration duration = absl::Seconds(10);
  absl::Duration warmup = absl::Seconds(2);
};

// Starts call number `seq`; must call `done(ok)` exactly once, from any thread.
using IssueFn = std::function<void(int64_t seq, std::function<void(bool ok)> done)>;

// Runs the load and returns calls, errors, calls_per_second, p50/p99/p999 (µs), and in
// rate mode the offered rate. Figures cover the measured window only (after the warm-up).
nlohmann::json RunLoad(const LoadOptions& options, const IssueFn& issue);

}  // namespace fleetcore::bench
