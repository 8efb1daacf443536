// Lets a repeated warning through at most once per period, and says how many it stands for,
// so a flood (a full queue dropping thousands of messages a second) is one line every few
// seconds instead of thousands:
//
//   static log::Throttle drops(absl::Seconds(10));
//   if (uint64_t n = 0; drops.Allow(&n)) log::Warn("messages dropped", {{"dropped", n}});
//
// Thread safety: Allow may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "absl/time/time.h"

namespace fleetcore::log {

class Throttle {
 public:
  explicit Throttle(absl::Duration period) : period_ns_(absl::ToInt64Nanoseconds(period)) {}

  // Counts one event; true when a record may be written now, with *events the events since
  // the last record written (this one included).
  bool Allow(uint64_t* events) {
    count_.fetch_add(1, std::memory_order_relaxed);
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t next = next_ns_.load(std::memory_order_relaxed);
    if (now < next) return false;
    if (!next_ns_.compare_exchange_strong(next, now + period_ns_)) return false;
    *events = count_.exchange(0, std::memory_order_relaxed);
    return true;
  }

 private:
  const int64_t period_ns_;
  std::atomic<int64_t> next_ns_{0};
  std::atomic<uint64_t> count_{0};
};

}  // namespace fleetcore::log
