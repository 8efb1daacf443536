// What only a real Postgres can show: keyset pagination while rows are inserted, exact
// round trips of the column conversions, and row locks deciding concurrent writers.
#include <atomic>
#include <set>
#include <thread>

#include "common/db/pg_pool.h"
#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/registry/pg_registry_store.h"
#include "services/registry/registry_core.h"

namespace fleetcore::registry {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::SizeIs;

class PgRegistryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    ASSERT_OK_AND_ASSIGN(pool_, db::PgPool::Create({.url = db_->url(), .pool_size = 8}, nullptr,
                                                   &PgRegistryStore::PrepareConnection));
    store_ = std::make_unique<PgRegistryStore>(pool_.get());
    core_ = std::make_unique<RegistryCore>(store_.get(), &arns_, &clock_, &ids_);
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<PgRegistryStore> store_;
  aws::Arns arns_{"us-east-1", "123456789012"};
  testing::FakeClock clock_{absl::FromUnixMicros(1700000000123456)};
  RandomIdGenerator ids_;
  std::unique_ptr<RegistryCore> core_;
};

TEST_F(PgRegistryStoreTest, PaginationStaysCorrectWhileRowsAreInserted) {
  std::set<std::string> original;
  for (int i = 0; i < 1000; ++i) {
    char name[16];
    snprintf(name, sizeof(name), "thing-%04d", i * 2);  // even numbers; odd ones come later
    ASSERT_OK(core_->CreateThing({.name = name}));
    original.insert(name);
  }
  std::vector<std::string> seen;
  PageRequest page{.max_results = 250};
  int inserted = 0;
  for (int pages = 0; pages < 20; ++pages) {
    ASSERT_OK_AND_ASSIGN(Page<Thing> p, core_->ListThings({}, page));
    for (const Thing& t : p.items) seen.push_back(t.name);
    if (p.next_token.empty()) break;
    // Insert before and after the cursor between pages.
    for (int k = 0; k < 5; ++k) {
      char name[16];
      snprintf(name, sizeof(name), "thing-%04d", (inserted * 397) % 2000 | 1);
      ASSERT_OK(core_->CreateThing({.name = name}));
      ++inserted;
    }
    page.next_token = p.next_token;
  }
  std::set<std::string> seen_set(seen.begin(), seen.end());
  EXPECT_EQ(seen_set.size(), seen.size()) << "a thing was returned twice";
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  for (const std::string& name : original) {
    EXPECT_EQ(seen_set.count(name), 1u) << name << " was skipped";
  }
}

TEST_F(PgRegistryStoreTest, ValuesRoundTripExactly) {
  Attributes attrs{{"path", "a/b:c#d"}, {"list", "[1,2]=x"}, {"at", "x@y.z"}};
  ASSERT_OK(core_->CreateThingType({.name = "sensor", .description = "multi\nline \"quoted\"",
                                    .searchable_attributes = {"path", "at"}}));
  ASSERT_OK_AND_ASSIGN(Thing created,
                       core_->CreateThing({.name = "t", .type_name = "sensor", .attributes = attrs}));
  ASSERT_OK_AND_ASSIGN(Thing read, core_->DescribeThing("t"));
  EXPECT_EQ(read.attributes, attrs);
  EXPECT_EQ(read.id, created.id);
  EXPECT_EQ(read.created_at, clock_.Now());
  EXPECT_EQ(read.type_name, "sensor");
  ASSERT_OK(core_->DeprecateThingType("sensor", false));
  ASSERT_OK_AND_ASSIGN(ThingType type, core_->DescribeThingType("sensor"));
  EXPECT_EQ(type.description, "multi\nline \"quoted\"");
  EXPECT_EQ(type.searchable_attributes, (std::vector<std::string>{"path", "at"}));
  EXPECT_EQ(type.deprecated_at, clock_.Now());
}

TEST_F(PgRegistryStoreTest, AttributeFiltersUseExactAndPrefixMatching) {
  ASSERT_OK(core_->CreateThing({.name = "a", .attributes = {{"site", "ber_lin"}}}));
  ASSERT_OK(core_->CreateThing({.name = "b", .attributes = {{"site", "berXlin"}}}));
  ASSERT_OK(core_->CreateThing({.name = "c", .attributes = {{"floor", "1"}}}));
  // "_" and "%" in a prefix are literal, not LIKE wildcards.
  auto prefix = core_->ListThings(
      {.attribute_name = "site", .attribute_value = "ber_", .prefix_value = true}, {});
  ASSERT_TRUE(prefix.ok());
  ASSERT_THAT(prefix->items, SizeIs(1));
  EXPECT_EQ(prefix->items[0].name, "a");
  auto any_value = core_->ListThings({.attribute_name = "site"}, {});
  EXPECT_THAT(any_value->items, SizeIs(2));
}

TEST_F(PgRegistryStoreTest, ExactlyOneWriterWinsPerVersion) {
  ASSERT_OK(core_->CreateThing({.name = "t"}));
  std::atomic<int> won{0}, conflicted{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < 8; ++i) {
    writers.emplace_back([&, i] {
      absl::Status s = core_->UpdateThing(
          {.name = "t",
           .attributes = AttributeUpdate{.attributes = {{"w", std::to_string(i)}}, .merge = true},
           .expected_version = 1});
      if (s.ok()) ++won;
      if (s.code() == absl::StatusCode::kAborted) ++conflicted;
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(conflicted.load(), 7);
  EXPECT_EQ(core_->DescribeThing("t")->version, 2);
}

TEST_F(PgRegistryStoreTest, ConcurrentUpdatesWithoutVersionLoseNothing) {
  ASSERT_OK(core_->CreateThingType({.name = "wide"}));
  ASSERT_OK(core_->CreateThing({.name = "t", .type_name = "wide"}));
  std::vector<std::thread> writers;
  for (int i = 0; i < 8; ++i) {
    writers.emplace_back([&, i] {
      for (int k = 0; k < 5; ++k) {
        EXPECT_OK(core_->UpdateThing(
            {.name = "t",
             .attributes = AttributeUpdate{
                 .attributes = {{"w" + std::to_string(i) + "_" + std::to_string(k), "1"}},
                 .merge = true}}));
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_OK_AND_ASSIGN(Thing t, core_->DescribeThing("t"));
  EXPECT_EQ(t.version, 41);
  EXPECT_THAT(t.attributes, SizeIs(40));
}

}  // namespace
}  // namespace fleetcore::registry
