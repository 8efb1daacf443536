// PgShadowStore on a real Postgres: round trips, the 48-hour continuity through a delete,
// many writers on one shadow (no lost update; one winner per expected version), and the
// rows kept in memory when another replica writes behind them. The store keeps rows, as
// the service does by default.
#include "services/shadow/pg_shadow_store.h"

#include <atomic>
#include <thread>

#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "services/shadow/shadow_core.h"

namespace fleetcore::shadow {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;

class NullPublisher final : public Publisher {
 public:
  void Publish(std::string, std::string) override { ++count; }
  std::atomic<int> count{0};
};

class PgShadowStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    db::DbOptions options;
    options.url = db_->url();
    options.pool_size = 8;
    ASSERT_OK_AND_ASSIGN(pool_, db::PgPool::Create(options, nullptr, &PgShadowStore::Prepare));
    store_ = std::make_unique<PgShadowStore>(pool_.get(), /*cache_size=*/1000, &metrics_);
    core_ = std::make_unique<ShadowCore>(store_.get(), &publisher_, &clock_);
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<db::PgPool> pool_;
  prometheus::Registry metrics_;
  std::unique_ptr<PgShadowStore> store_;
  NullPublisher publisher_;
  testing::FakeClock clock_;
  std::unique_ptr<ShadowCore> core_;
};

TEST_F(PgShadowStoreTest, RoundTripsDocumentsAndMetadata) {
  ASSERT_OK(core_->Update({"lamp-1", ""},
                          R"({"state":{"desired":{"c":{"r":1,"g":2}},"reported":{"l":[1,2]}}})")
                .status());
  ASSERT_OK_AND_ASSIGN(StoredShadow s, store_->Get({"lamp-1", ""}));
  EXPECT_TRUE(s.exists);
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(s.state, json::parse(R"({"desired":{"c":{"r":1,"g":2}},"reported":{"l":[1,2]}})"));
  EXPECT_EQ(s.metadata["desired"]["c"]["g"]["timestamp"], 1700000000);
  ASSERT_OK_AND_ASSIGN(StoredShadow none, store_->Get({"lamp-1", "cfg"}));
  EXPECT_FALSE(none.exists);
}

TEST_F(PgShadowStoreTest, DeleteKeepsTheVersionAndTheListSkipsIt) {
  for (const char* n : {"a", "b", "c"}) {
    ASSERT_OK(core_->Update({"lamp-1", n}, R"({"state":{"reported":{"x":1}}})").status());
  }
  ASSERT_OK(core_->Update({"lamp-1", ""}, R"({"state":{"reported":{"x":1}}})").status());
  ASSERT_OK(core_->Delete({"lamp-1", "b"}, std::nullopt).status());
  ASSERT_OK_AND_ASSIGN(ListPage page, core_->ListNamed("lamp-1", "", 0));
  EXPECT_THAT(page.results, ElementsAre("a", "c"));
  EXPECT_EQ(core_->Get({"lamp-1", "b"}, std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(std::string again,
                       core_->Update({"lamp-1", "b"}, R"({"state":{"reported":{"x":2}}})"));
  EXPECT_EQ(json::parse(again)["version"], 2);
  // A refused update leaves no trace, not even a row for a new shadow.
  EXPECT_FALSE(core_->Update({"lamp-9", ""}, R"({"state":{},"version":5})").ok());
  ASSERT_OK_AND_ASSIGN(StoredShadow none, store_->Get({"lamp-9", ""}));
  EXPECT_FALSE(none.exists);
  EXPECT_EQ(none.version, 0);
}

TEST_F(PgShadowStoreTest, ManyWritersLoseNothing) {
  // 8 writers, each setting its own key 25 times, starting on a shadow that does not exist
  // yet (so they also race to create it).
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        json req{{"state", {{"reported", {{"w" + std::to_string(t), i}}}}}};
        if (!core_->Update({"busy", ""}, req.dump()).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK_AND_ASSIGN(StoredShadow s, store_->Get({"busy", ""}));
  EXPECT_EQ(s.version, 200);
  for (int t = 0; t < 8; ++t) EXPECT_EQ(s.state["reported"]["w" + std::to_string(t)], 24);
}

TEST_F(PgShadowStoreTest, OneWinnerPerExpectedVersion) {
  ASSERT_OK(core_->Update({"race", ""}, R"({"state":{"reported":{"n":0}}})").status());
  std::atomic<int> won{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      json req{{"state", {{"reported", {{"n", t}}}}}, {"version", 1}};
      absl::StatusOr<std::string> r = core_->Update({"race", ""}, req.dump());
      if (r.ok()) {
        ++won;
      } else if (r.status().code() == absl::StatusCode::kAborted) {
        ++conflicts;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(conflicts.load(), 7);
}

// Two replicas, each keeping the rows it wrote: what one writes behind the other's kept row
// is found by the guarded write, read, and built upon; a version check is judged on the
// stored row, not the kept one.
TEST_F(PgShadowStoreTest, AnotherReplicasWriteBehindAKeptRow) {
  PgShadowStore other_store(pool_.get(), /*cache_size=*/1000);
  ShadowCore other(&other_store, &publisher_, &clock_);
  ASSERT_OK(core_->Update({"lamp-1", ""}, R"({"state":{"reported":{"a":1}}})").status());
  ASSERT_OK(core_->Update({"lamp-1", ""}, R"({"state":{"reported":{"a":1}}})").status());
  ASSERT_OK(other.Update({"lamp-1", ""}, R"({"state":{"reported":{"b":2}}})").status());
  ASSERT_OK_AND_ASSIGN(std::string third,
                       core_->Update({"lamp-1", ""}, R"({"state":{"reported":{"c":3}},"version":3})"));
  EXPECT_EQ(json::parse(third)["version"], 4);
  ASSERT_OK_AND_ASSIGN(StoredShadow s, store_->Get({"lamp-1", ""}));
  EXPECT_EQ(s.version, 4);
  // This replica: a miss (first), a hit (its own row), a stale row (the other's write).
  const std::string m = prometheus::TextSerializer().Serialize(metrics_.Collect());
  EXPECT_THAT(m, ::testing::HasSubstr(R"(fleetcore_shadow_row_cache_total{result="miss"} 1)"));
  EXPECT_THAT(m, ::testing::HasSubstr(R"(fleetcore_shadow_row_cache_total{result="hit"} 1)"));
  EXPECT_THAT(m, ::testing::HasSubstr(R"(fleetcore_shadow_row_cache_total{result="stale"} 1)"));
  EXPECT_THAT(m, ::testing::HasSubstr("fleetcore_shadow_row_cache_entries 1"));
  EXPECT_EQ(s.state["reported"], json::parse(R"({"a":1,"b":2,"c":3})"));

  // A delete elsewhere: this replica's kept row still says the shadow exists.
  ASSERT_OK(other.Delete({"lamp-1", ""}, std::nullopt).status());
  EXPECT_EQ(core_->Delete({"lamp-1", ""}, std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(std::string recreated,
                       core_->Update({"lamp-1", ""}, R"({"state":{"reported":{"d":4}}})"));
  EXPECT_EQ(json::parse(recreated)["version"], 5);
  ASSERT_OK_AND_ASSIGN(s, other_store.Get({"lamp-1", ""}));
  EXPECT_EQ(s.state["reported"], json::parse(R"({"d":4})"));

  // A stale expected version is still refused.
  EXPECT_EQ(other.Update({"lamp-1", ""}, R"({"state":{"reported":{"e":5}},"version":4})")
                .status()
                .code(),
            absl::StatusCode::kAborted);
}

}  // namespace
}  // namespace fleetcore::shadow
