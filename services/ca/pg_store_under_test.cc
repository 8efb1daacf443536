#include "common/db/pg_pool.h"
#include "common/testing/notify_collector.h"
#include "common/testing/test_database.h"
#include "gtest/gtest.h"
#include "services/ca/pg_ca_store.h"
#include "services/ca/store_under_test.h"

namespace fleetcore::ca {
namespace {

// A fresh migrated database, the pool and PgCaStore on it, and a LISTEN on the CA channel
// that turns NOTIFY payloads back into events.
class PgStoreUnderTest final : public StoreUnderTest {
 public:
  PgStoreUnderTest() {
    auto db = fleetcore::testing::TestDatabase::Create();
    if (!db.ok()) {
      ADD_FAILURE() << db.status();
      return;
    }
    db_ = std::move(*db);
    auto pool = db::PgPool::Create({.url = db_->url(), .pool_size = 8}, nullptr,
                                   &PgCaStore::Prepare);
    if (!pool.ok()) {
      ADD_FAILURE() << pool.status();
      return;
    }
    pool_ = std::move(*pool);
    store_ = std::make_unique<PgCaStore>(pool_.get());
    events_ = std::make_unique<fleetcore::testing::NotifyCollector<CaEvent>>(
        db_->url(), kCaChannel, &PgCaStore::ParseEvent);
  }

  CaStore* store() override { return store_.get(); }
  std::vector<CaEvent> WaitForEvents(size_t n) override { return events_->WaitFor(n); }

 private:
  std::unique_ptr<fleetcore::testing::TestDatabase> db_;
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<PgCaStore> store_;
  std::unique_ptr<fleetcore::testing::NotifyCollector<CaEvent>> events_;
};

}  // namespace

std::unique_ptr<StoreUnderTest> MakeStoreUnderTest() {
  return std::make_unique<PgStoreUnderTest>();
}

}  // namespace fleetcore::ca
