// A token bucket holding one second's worth of a rate at most, for the gateway's rate limits
// (a connection's publishes and bytes, a listener's accepts). Full when first used.
//
//   const double wait_s = bucket.Wait(now_ns, rate, 1);
//   if (wait_s == 0) bucket.Take(1); else come back in wait_s seconds
//
// Thread safety: none; each bucket belongs to one connection or acceptor.
#pragma once

#include <algorithm>
#include <cstdint>

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
};

}  // namespace fleetcore::gateway
