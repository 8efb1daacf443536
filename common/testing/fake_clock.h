// A Clock whose time moves only when a test says so.
#pragma once

#include <mutex>

#include "common/ids/id_generator.h"
#include "common/time/clock.h"

namespace fleetcore::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000)) : now_(start) {}

  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_;
};

// Sequential, predictable ids: "00000000-0000-4000-8000-000000000001", ...
class FakeIdGenerator final : public IdGenerator {
 public:
  std::string NewUuid() override;

 private:
  std::mutex mu_;
  uint64_t next_ = 1;
};

}  // namespace fleetcore::testing
