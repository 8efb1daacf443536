// The store a CA conformance test runs against. Each test binary links one definition of
// MakeStoreUnderTest(): the fake (fake_store_under_test.cc) or Postgres
// (pg_store_under_test.cc), so the same rules are checked against both.
#pragma once

#include <memory>
#include <vector>

#include "services/ca/ca_store.h"

namespace fleetcore::ca {

class StoreUnderTest {
 public:
  virtual ~StoreUnderTest() = default;
  virtual CaStore* store() = 0;
  // The events committed so far, oldest first, once at least `n` have arrived (bounded wait).
  virtual std::vector<CaEvent> WaitForEvents(size_t n) = 0;
};

std::unique_ptr<StoreUnderTest> MakeStoreUnderTest();

}  // namespace fleetcore::ca
