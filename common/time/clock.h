// The source of "now" for code whose behaviour depends on time (version timestamps,
// deprecation delays, token expiry). Code takes a Clock& by constructor so tests can use
// testing::FakeClock instead of the wall clock.
//
// Thread safety: implementations must be safe to call from any thread.
#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fleetcore {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The wall clock.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace fleetcore
