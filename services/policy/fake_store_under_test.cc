#include "services/policy/fake_policy_store.h"
#include "services/policy/store_under_test.h"

namespace fleetcore::policy_service {
namespace {

class FakeStoreUnderTest final : public StoreUnderTest {
 public:
  PolicyStore* store() override { return &store_; }
  std::vector<PolicyEvent> WaitForEvents(size_t) override { return store_.events(); }

 private:
  FakePolicyStore store_;
};

}  // namespace

std::unique_ptr<StoreUnderTest> MakeStoreUnderTest() {
  return std::make_unique<FakeStoreUnderTest>();
}

}  // namespace fleetcore::policy_service
