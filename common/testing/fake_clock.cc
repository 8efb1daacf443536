#include "common/testing/fake_clock.h"

#include "absl/strings/str_format.h"

namespace fleetcore::testing {

std::string FakeIdGenerator::NewUuid() {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::StrFormat("00000000-0000-4000-8000-%012x", next_++);
}

}  // namespace fleetcore::testing
