// A token bucket holding one second's worth of a rate at most, for the gateway's rate limits
// (a connection's publishes and bytes, a listener's accepts). Full when first used.
//
//   const double wait_s = bucket.Wait(now_ns, rate, 1);
//   if (wait_s == 0) bucket.Take(1); else come back in wait_s seconds
//
// SharedRateLimit is one for threads to share, for a limit that refuses what is over it
// (fleet provisioning's requests) instead of waiting.
//
// Thread safety: RateBucket none, each belongs to one connection or acceptor;
// SharedRateLimit's Admit may be called from any thread.
#pragma once

#include <algorithm>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace fleetcore::gateway {

struct RateBucket {
  double tokens = 0;
  int64_t refilled_ns = 0;  // 0: not used yet (full)

  // Refills for the time since it was last used; the seconds until it holds `need` (more
  // than a second's worth waits for a full bucket), 0 when it does now.
  double Wait(int64_t now_ns, double rate, double need) {
    tokens = refilled_ns == 0
                 ? rate
                 : std::min(rate, tokens + static_cast<double>(now_ns - refilled_ns) * 1e-9 * rate);
    refilled_ns = now_ns;
    need = std::min(need, rate);
    return tokens >= need ? 0.0 : (need - tokens) / rate;
  }
  void Take(double n) { tokens -= n; }
  // For a limit that refuses instead of waiting: takes one when it holds one now; false
  // (nothing taken) when not.
  bool TryTake(int64_t now_ns, double rate) {
    if (Wait(now_ns, rate, 1) > 0) return false;
    Take(1);
    return true;
  }
};

class SharedRateLimit {
 public:
  // `per_second` 0: no limit.
  explicit SharedRateLimit(double per_second) : rate_(per_second) {}

  double rate() const { return rate_; }

  // Whether one more fits at `now_ns` (taking it); false: it is over the limit and refused.
  bool Admit(int64_t now_ns) {
    if (rate_ <= 0) return true;
    absl::MutexLock lock(&mu_);
    return bucket_.TryTake(now_ns, rate_);
  }

 private:
  const double rate_;
  absl::Mutex mu_;
  RateBucket bucket_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleetcore::gateway
