#include <condition_variable>
#include <mutex>

#include "common/db/pg_listener.h"
#include "common/db/pg_pool.h"
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
    auto listener = db::PgListener::Start(
        db_->url(), {kPolicyChannel},
        [this](absl::string_view, absl::string_view payload) {
          std::optional<PolicyEvent> e = PgPolicyStore::ParseEvent(payload);
          ASSERT_TRUE(e.has_value()) << payload;
          std::lock_guard<std::mutex> lock(mu_);
          events_.push_back(*std::move(e));
          cv_.notify_all();
        },
        nullptr);
    if (!listener.ok()) {
      ADD_FAILURE() << listener.status();
      return;
    }
    listener_ = std::move(*listener);
  }

  PolicyStore* store() override { return store_.get(); }

  std::vector<PolicyEvent> WaitForEvents(size_t n) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return events_.size() >= n; });
    return events_;
  }

 private:
  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<PgPolicyStore> store_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PolicyEvent> events_;
  // Last: stopped first, before what its callback uses goes away.
  std::unique_ptr<db::PgListener> listener_;
};

}  // namespace

std::unique_ptr<StoreUnderTest> MakeStoreUnderTest() {
  return std::make_unique<PgStoreUnderTest>();
}

}  // namespace fleetcore::policy_service
