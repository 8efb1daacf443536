#include "common/db/pg_pool.h"
#include "common/testing/notify_collector.h"
#include "common/testing/test_database.h"
#include "gtest/gtest.h"
#include "services/policy/pg_policy_store.h"
#include "services/policy/store_under_test.h"

namespace fleetcore::policy_service {
namespace {

// A fresh migrated database, the pool and PgPolicyStore on it, and a LISTEN on the policy
// channel that turns NOTIFY payloads back into events.
class PgStoreUnderTest final : public StoreUnderTest {
 public:
  PgStoreUnderTest() {
    auto db = testing::TestDatabase::Create();
    if (!db.ok()) {
      ADD_FAILURE() << db.status();
      return;
    }
    db_ = std::move(*db);
    auto pool = db::PgPool::Create({.url = db_->url(), .pool_size = 8}, nullptr);
    if (!pool.ok()) {
      ADD_FAILURE() << pool.status();
      return;
    }
    pool_ = std::move(*pool);
    store_ = std::make_unique<PgPolicyStore>(pool_.get());
    events_ = std::make_unique<testing::NotifyCollector<PolicyEvent>>(db_->url(), kPolicyChannel,
                                                                      &PgPolicyStore::ParseEvent);
  }

  PolicyStore* store() override { return store_.get(); }
  std::vector<PolicyEvent> WaitForEvents(size_t n) override { return events_->WaitFor(n); }

 private:
  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<PgPolicyStore> store_;
  std::unique_ptr<testing::NotifyCollector<PolicyEvent>> events_;
};

}  // namespace

std::unique_ptr<StoreUnderTest> MakeStoreUnderTest() {
  return std::make_unique<PgStoreUnderTest>();
}

}  // namespace fleetcore::policy_service
