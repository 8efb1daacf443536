// A token bucket per key, each holding one second's worth of one rate: AWS IoT's quota of
// 20 requests a second per shadow (--max-shadow-requests-per-second), where each thing's
// shadow has its own budget and a request over it is refused, not delayed.
//
//   KeyedRateLimit limit(20);
//   if (!limit.Admit(thing + "/" + shadow, now_ns)) answer 429;
//
// Only keys asked for within the last second are kept: an older bucket has refilled, the
// same as none.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/gateway/rate_bucket.h"

namespace fleetcore::gateway {

class KeyedRateLimit {
 public:
  // `per_second` 0: no limit.
  explicit KeyedRateLimit(double per_second) : rate_(per_second) {}

  double rate() const { return rate_; }

  // Whether one more for `key` fits at `now_ns` (taking it); false: over its limit, refused.
  bool Admit(absl::string_view key, int64_t now_ns);
  // Keys held (asked for within the last second, at the last sweep).
  size_t size() const;

 private:
  const double rate_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, RateBucket> buckets_ ABSL_GUARDED_BY(mu_);
  int64_t next_sweep_ns_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fleetcore::gateway
