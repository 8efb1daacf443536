#include "services/gateway/connect_throttle.h"

namespace fleetcore::gateway {

bool ConnectThrottle::Admit(absl::string_view client_id, int64_t now_ms) {
  absl::MutexLock l(&mu_);
  auto [it, inserted] = last_ms_.try_emplace(client_id, now_ms);
  if (inserted) return true;
  if (now_ms - it->second < interval_ms_) return false;
  it->second = now_ms;
  return true;
}

void ConnectThrottle::Forget(int64_t now_ms) {
  absl::MutexLock l(&mu_);
  absl::erase_if(last_ms_, [&](const auto& kv) { return now_ms - kv.second >= interval_ms_; });
}

size_t ConnectThrottle::size() const {
  absl::MutexLock l(&mu_);
  return last_ms_.size();
}

}  // namespace fleetcore::gateway
