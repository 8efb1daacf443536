#include "services/gateway/keyed_rate_limit.h"

namespace fleetcore::gateway {

namespace {
constexpr int64_t kSecondNs = 1'000'000'000;
}

bool KeyedRateLimit::Admit(absl::string_view key, int64_t now_ns) {
  if (rate_ <= 0) return true;
  absl::MutexLock lock(&mu_);
  // Once a second, the buckets not used for a second go: they are full again.
  if (now_ns >= next_sweep_ns_) {
    absl::erase_if(buckets_,
                   [&](const auto& kv) { return now_ns - kv.second.refilled_ns >= kSecondNs; });
    next_sweep_ns_ = now_ns + kSecondNs;
  }
  return buckets_[key].TryTake(now_ns, rate_);
}

size_t KeyedRateLimit::size() const {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

}  // namespace fleetcore::gateway
