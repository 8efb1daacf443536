#include "services/registry/fake_registry_store.h"
#include "services/registry/store_under_test.h"

namespace fleetcore::registry {
namespace {

class FakeStoreUnderTest final : public StoreUnderTest {
 public:
  RegistryStore* store() override { return &store_; }
  std::vector<RegistryEvent> WaitForEvents(size_t) override { return store_.events(); }

 private:
  FakeRegistryStore store_;
};

}  // namespace

std::unique_ptr<StoreUnderTest> MakeStoreUnderTest() {
  return std::make_unique<FakeStoreUnderTest>();
}

}  // namespace fleetcore::registry
