#include "services/registry/caching_registry_store.h"

#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "services/registry/fake_registry_store.h"
#include "services/registry/registry_core.h"

namespace fleetcore::registry {
namespace {

using ::testing::HasSubstr;

class CachingRegistryStoreTest : public ::testing::Test {
 protected:
  FakeRegistryStore backend_;
  std::shared_ptr<prometheus::Registry> metrics_ = std::make_shared<prometheus::Registry>();
  CachingRegistryStore cache_{&backend_, 1024, metrics_.get()};
  aws::Arns arns_{"us-east-1", "123456789012"};
  testing::FakeClock clock_;
  testing::FakeIdGenerator ids_;
  // Writes through the cache, as the service does...
  RegistryCore core_{&cache_, &arns_, &clock_, &ids_};
  // ...and around it, as another replica does.
  RegistryCore other_replica_{&backend_, &arns_, &clock_, &ids_};
};

TEST_F(CachingRegistryStoreTest, ServesRepeatedReadsFromMemory) {
  ASSERT_OK(core_.CreateThing({.name = "t", .attributes = {{"a", "1"}}}));
  EXPECT_EQ(core_.DescribeThingIfCached("t"), std::nullopt);
  ASSERT_OK(core_.DescribeThing("t"));
  ASSERT_TRUE(core_.DescribeThingIfCached("t").has_value());
  // A change made elsewhere is not seen until its NOTIFY invalidates the entry.
  ASSERT_OK(other_replica_.UpdateThing(
      {.name = "t", .attributes = AttributeUpdate{.attributes = {{"a", "2"}}, .merge = true}}));
  EXPECT_EQ(core_.DescribeThing("t")->attributes.at("a"), "1");
  cache_.Invalidate("t");
  EXPECT_EQ(core_.DescribeThing("t")->attributes.at("a"), "2");
  const std::string text = prometheus::TextSerializer().Serialize(metrics_->Collect());
  EXPECT_THAT(text, HasSubstr("fleetcore_registry_thing_cache_lookups_total{result=\"hit\"} 2"));
  EXPECT_THAT(text, HasSubstr("fleetcore_registry_thing_cache_entries 1"));
}

TEST_F(CachingRegistryStoreTest, OwnWritesInvalidateBeforeTheyReturn) {
  ASSERT_OK(core_.CreateThing({.name = "t"}));
  ASSERT_OK(core_.DescribeThing("t"));
  ASSERT_OK(core_.UpdateThing({.name = "t", .attributes = AttributeUpdate{.attributes = {{"a", "1"}}}}));
  EXPECT_EQ(core_.DescribeThingIfCached("t"), std::nullopt);
  EXPECT_EQ(core_.DescribeThing("t")->version, 2);
  ASSERT_OK(core_.DeleteThing("t", std::nullopt));
  EXPECT_THAT(core_.DescribeThing("t"), testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(CachingRegistryStoreTest, AReadRacingAnInvalidationDoesNotFill) {
  ASSERT_OK(core_.CreateThing({.name = "t"}));
  // The invalidation lands while the reader is between its database read and its fill.
  backend_.SetGetThingHook([&] { cache_.Invalidate("t"); });
  ASSERT_OK(core_.DescribeThing("t"));
  backend_.SetGetThingHook(nullptr);
  EXPECT_EQ(core_.DescribeThingIfCached("t"), std::nullopt);
  ASSERT_OK(core_.DescribeThing("t"));
  EXPECT_TRUE(core_.DescribeThingIfCached("t").has_value());
}

TEST_F(CachingRegistryStoreTest, InvalidateAllAfterAReconnect) {
  ASSERT_OK(core_.CreateThing({.name = "a"}));
  ASSERT_OK(core_.CreateThing({.name = "b"}));
  ASSERT_OK(core_.DescribeThing("a"));
  ASSERT_OK(core_.DescribeThing("b"));
  EXPECT_EQ(cache_.size(), 2u);
  cache_.InvalidateAll();
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(CachingRegistryStoreTest, StaysWithinItsCapacity) {
  CachingRegistryStore small(&backend_, 32);
  RegistryCore core(&small, &arns_, &clock_, &ids_);
  for (int i = 0; i < 500; ++i) {
    ASSERT_OK(core.CreateThing({.name = "t" + std::to_string(i)}));
    ASSERT_OK(core.DescribeThing("t" + std::to_string(i)));
    if (i % 3 == 0) small.Invalidate("t" + std::to_string(i));
  }
  EXPECT_LE(small.size(), 32u);
}

TEST_F(CachingRegistryStoreTest, KeepsTheDynamicGroupsUntilAGroupChanges) {
  ASSERT_OK(core_.CreateThing({.name = "t", .attributes = {{"floor", "2"}}}));
  ASSERT_OK(core_.CreateThingGroup({.name = "low", .query_string = "attributes.floor<3"}));
  auto groups_of_t = [&] {
    std::vector<std::string> names;
    absl::StatusOr<Page<ThingGroup>> p = core_.ListThingGroupsForThing("t", false, {});
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) {
      for (const ThingGroup& g : p->items) names.push_back(g.name);
    }
    return names;
  };
  EXPECT_THAT(groups_of_t(), ::testing::ElementsAre("low"));
  // Another replica's new group is not seen until its NOTIFY drops the list...
  ASSERT_OK(other_replica_.CreateThingGroup({.name = "all", .query_string = "*"}));
  EXPECT_THAT(groups_of_t(), ::testing::ElementsAre("low"));
  cache_.InvalidateGroups();
  EXPECT_THAT(groups_of_t(), ::testing::ElementsAre("all", "low"));
  // ...while this one's own change drops it before returning.
  ASSERT_OK(core_.UpdateThingGroup(
      {.name = "low", .dynamic = true, .query_string = "attributes.floor<2"}));
  EXPECT_THAT(groups_of_t(), ::testing::ElementsAre("all"));
  EXPECT_TRUE(CachingRegistryStore::ChangesGroups({.type = "thing_group.deleted"}));
  EXPECT_FALSE(CachingRegistryStore::ChangesGroups({.type = "thing_group.thing_added"}));
}

TEST_F(CachingRegistryStoreTest, BillingGroupChangesReachTheCachedThings) {
  ASSERT_OK(core_.CreateBillingGroup("lab", ""));
  ASSERT_OK(core_.CreateThing({.name = "t"}));
  ASSERT_OK(core_.CreateThing({.name = "u"}));
  ASSERT_OK(core_.DescribeThing("t"));
  ASSERT_OK(core_.AddThingToBillingGroup("lab", "t"));
  EXPECT_EQ(core_.DescribeThing("t")->billing_group, "lab");
  ASSERT_OK(core_.AddThingToBillingGroup("lab", "u"));
  ASSERT_OK(core_.DescribeThing("u"));
  ASSERT_TRUE(core_.DescribeThingIfCached("t").has_value());
  // The deletion names no thing, yet changes both: every cached thing goes.
  ASSERT_OK(core_.DeleteBillingGroup("lab", std::nullopt));
  EXPECT_EQ(cache_.size(), 0u);
  EXPECT_EQ(core_.DescribeThing("t")->billing_group, "");
  EXPECT_EQ(core_.DescribeThing("u")->billing_group, "");
  EXPECT_TRUE(CachingRegistryStore::ChangesAllThings({.type = kBillingGroupDeleted}));
  EXPECT_FALSE(CachingRegistryStore::ChangesAllThings({.type = "thing.updated"}));
}

TEST_F(CachingRegistryStoreTest, InvalidNamesAreNeverAnsweredFromMemory) {
  EXPECT_EQ(core_.DescribeThingIfCached("bad name"), std::nullopt);
  EXPECT_THAT(core_.DescribeThing("bad name"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fleetcore::registry
