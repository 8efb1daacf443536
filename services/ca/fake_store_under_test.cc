#include "services/ca/fake_ca_store.h"
#include "services/ca/store_under_test.h"

namespace fleetcore::ca {
namespace {

class FakeStoreUnderTest final : public StoreUnderTest {
 public:
  CaStore* store() override { return &store_; }
  std::vector<CaEvent> WaitForEvents(size_t) override { return store_.events(); }

 private:
  FakeCaStore store_;
};

}  // namespace

std::unique_ptr<StoreUnderTest> MakeStoreUnderTest() {
  return std::make_unique<FakeStoreUnderTest>();
}

}  // namespace fleetcore::ca
