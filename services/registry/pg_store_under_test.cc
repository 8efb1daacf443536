#include "common/db/pg_pool.h"
#include "common/testing/notify_collector.h"
#include "common/testing/test_database.h"
#include "gtest/gtest.h"
#include "services/registry/caching_registry_store.h"
#include "services/registry/pg_registry_store.h"
#include "services/registry/store_under_test.h"

namespace fleetcore::registry {
namespace {

// A fresh migrated database, the pool and PgRegistryStore on it, and a LISTEN on the
// registry channel that turns NOTIFY payloads back into events.
class PgStoreUnderTest final : public StoreUnderTest {
 public:
  PgStoreUnderTest() {
    auto db = testing::TestDatabase::Create();
    if (!db.ok()) {
      ADD_FAILURE() << db.status();
      return;
    }
    db_ = std::move(*db);
    auto pool = db::PgPool::Create({.url = db_->url(), .pool_size = 8}, nullptr,
                                   &PgRegistryStore::PrepareConnection);
    if (!pool.ok()) {
      ADD_FAILURE() << pool.status();
      return;
    }
    pool_ = std::move(*pool);
    store_ = std::make_unique<PgRegistryStore>(pool_.get());
    // The production arrangement: the cache in front of Postgres.
    cache_ = std::make_unique<CachingRegistryStore>(store_.get(), 1000);
    events_ = std::make_unique<testing::NotifyCollector<RegistryEvent>>(
        db_->url(), kRegistryChannel, &PgRegistryStore::ParseEvent,
        [this](const RegistryEvent& e) { cache_->Invalidate(e.thing); });
  }

  RegistryStore* store() override { return cache_.get(); }

  std::vector<RegistryEvent> WaitForEvents(size_t n) override { return events_->WaitFor(n); }

 private:
  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<PgRegistryStore> store_;
  std::unique_ptr<CachingRegistryStore> cache_;
  // Last: stopped first, before the cache its callback uses goes away.
  std::unique_ptr<testing::NotifyCollector<RegistryEvent>> events_;
};

}  // namespace

std::unique_ptr<StoreUnderTest> MakeStoreUnderTest() {
  return std::make_unique<PgStoreUnderTest>();
}

}  // namespace fleetcore::registry
