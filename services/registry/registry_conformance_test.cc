#include <atomic>
#include <cmath>
#include <set>
#include <thread>

#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/registry/registry_core.h"
#include "services/registry/store_under_test.h"
#include "services/registry/validation.h"

namespace fleetcore::registry {
namespace {

using ::fleetcore::testing::IsOk;
using ::fleetcore::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using Code = absl::StatusCode;

const std::string kCertA =
    "arn:aws:iot:us-east-1:123456789012:cert/"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string kCertB =
    "arn:aws:iot:us-east-1:123456789012:cert/"
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

// The rules of RegistryCore, run against the store this binary links (the in-memory fake in
// registry_core_test, Postgres in registry_store_pgtest), so both must behave the same.
class RegistryCoreTest : public ::testing::Test {
 protected:
  RegistryCoreTest()
      : sut_(MakeStoreUnderTest()),
        arns_("us-east-1", "123456789012"),
        core_(sut_->store(), &arns_, &clock_, &ids_) {}

  void CreateThing(const std::string& name, const std::string& type = "",
                   Attributes attributes = {}) {
    ASSERT_OK(core_.CreateThing({.name = name, .type_name = type, .attributes = attributes}));
  }
  void CreateGroup(const std::string& name, const std::string& parent = "") {
    ASSERT_OK(core_.CreateThingGroup({.name = name, .parent = parent}));
  }
  void CreateType(const std::string& name) {
    ASSERT_OK(core_.CreateThingType({.name = name}));
  }
  std::unique_ptr<StoreUnderTest> sut_;
  aws::Arns arns_;
  testing::FakeClock clock_;
  testing::FakeIdGenerator ids_;
  RegistryCore core_;
};

std::vector<std::string> ThingNames(const absl::StatusOr<Page<PrincipalAttachment>>& page) {
  std::vector<std::string> out;
  EXPECT_TRUE(page.ok()) << page.status();
  if (page.ok()) {
    for (const PrincipalAttachment& a : page->items) out.push_back(a.thing_name);
  }
  return out;
}

// ---- things

TEST_F(RegistryCoreTest, CreateAndDescribeThing) {
  ASSERT_OK_AND_ASSIGN(Thing t, core_.CreateThing({.name = "lamp-1",
                                                   .attributes = {{"color", "red"}}}));
  EXPECT_EQ(t.version, 1);
  EXPECT_EQ(t.id, "00000000-0000-4000-8000-000000000001");
  ASSERT_OK_AND_ASSIGN(Thing d, core_.DescribeThing("lamp-1"));
  EXPECT_EQ(d.attributes, (Attributes{{"color", "red"}}));
  EXPECT_EQ(d.id, t.id);
}

TEST_F(RegistryCoreTest, CreateThingIsIdempotentForTheSameConfiguration) {
  CreateThing("lamp-1", "", {{"a", "1"}});
  ASSERT_OK_AND_ASSIGN(Thing again, core_.CreateThing({.name = "lamp-1", .attributes = {{"a", "1"}}}));
  EXPECT_EQ(again.id, "00000000-0000-4000-8000-000000000001");
  EXPECT_THAT(core_.CreateThing({.name = "lamp-1", .attributes = {{"a", "2"}}}),
              StatusIs(Code::kAlreadyExists,
                       HasSubstr("different thing type, attributes or billing group")));
}

TEST_F(RegistryCoreTest, CreateThingValidatesBeforeTheStore) {
  EXPECT_THAT(core_.CreateThing({.name = "bad name"}), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.CreateThing({.name = "x", .attributes = {{"a", "1"}, {"b", "2"}, {"c", "3"},
                                                              {"d", "4"}}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("at most 3")));
  EXPECT_THAT(core_.CreateThing({.name = "x", .type_name = "no such type"}),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.CreateThing({.name = "x", .type_name = "missing"}),
              StatusIs(Code::kNotFound, HasSubstr("thing type \"missing\" does not exist")));
}

TEST_F(RegistryCoreTest, EmptyAttributeValuesAreNotStored) {
  CreateThing("t", "", {{"a", "1"}, {"b", ""}});
  EXPECT_EQ(core_.DescribeThing("t")->attributes, (Attributes{{"a", "1"}}));
}

TEST_F(RegistryCoreTest, DescribeMissingThingIsNotFound) {
  EXPECT_THAT(core_.DescribeThing("ghost"),
              StatusIs(Code::kNotFound, HasSubstr("thing \"ghost\" does not exist")));
}

TEST_F(RegistryCoreTest, UpdateMergesReplacesAndBumpsVersion) {
  CreateThing("t", "", {{"a", "1"}, {"b", "2"}});
  ASSERT_OK(core_.UpdateThing(
      {.name = "t", .attributes = AttributeUpdate{.attributes = {{"b", ""}, {"c", "3"}}, .merge = true}}));
  ASSERT_OK_AND_ASSIGN(Thing t, core_.DescribeThing("t"));
  EXPECT_EQ(t.attributes, (Attributes{{"a", "1"}, {"c", "3"}}));
  EXPECT_EQ(t.version, 2);
  ASSERT_OK(core_.UpdateThing(
      {.name = "t", .attributes = AttributeUpdate{.attributes = {{"z", "9"}}, .merge = false}}));
  t = *core_.DescribeThing("t");
  EXPECT_EQ(t.attributes, (Attributes{{"z", "9"}}));
  EXPECT_EQ(t.version, 3);
  // No attribute payload: attributes unchanged, version still increments.
  ASSERT_OK(core_.UpdateThing({.name = "t"}));
  t = *core_.DescribeThing("t");
  EXPECT_EQ(t.attributes, (Attributes{{"z", "9"}}));
  EXPECT_EQ(t.version, 4);
}

TEST_F(RegistryCoreTest, UpdateWithExpectedVersion) {
  CreateThing("t");
  EXPECT_THAT(core_.UpdateThing({.name = "t", .expected_version = 5}),
              StatusIs(Code::kAborted, HasSubstr("is at version 1, not the expected 5")));
  ASSERT_OK(core_.UpdateThing({.name = "t", .expected_version = 1}));
  EXPECT_THAT(core_.UpdateThing({.name = "t", .expected_version = 1}),
              StatusIs(Code::kAborted));
  EXPECT_THAT(core_.UpdateThing({.name = "t", .expected_version = 0}),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.UpdateThing({.name = "ghost"}), StatusIs(Code::kNotFound));
}

TEST_F(RegistryCoreTest, ThingTypeAssociationAndAttributeLimits) {
  CreateType("sensor");
  Attributes five{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}};
  CreateThing("t", "sensor", five);
  EXPECT_EQ(core_.DescribeThing("t")->type_name, "sensor");
  // Without the type, five attributes are too many.
  EXPECT_THAT(core_.UpdateThing({.name = "t", .remove_type = true}),
              StatusIs(Code::kInvalidArgument, HasSubstr("without a thing type")));
  EXPECT_THAT(core_.UpdateThing({.name = "t", .type_name = "sensor", .remove_type = true}),
              StatusIs(Code::kInvalidArgument, HasSubstr("cannot be used together")));
  ASSERT_OK(core_.UpdateThing(
      {.name = "t", .remove_type = true,
       .attributes = AttributeUpdate{.attributes = {{"a", "1"}}, .merge = false}}));
  ASSERT_OK_AND_ASSIGN(Thing t, core_.DescribeThing("t"));
  EXPECT_EQ(t.type_name, "");
  EXPECT_THAT(core_.UpdateThing({.name = "t", .type_name = "nope"}), StatusIs(Code::kNotFound));
}

TEST_F(RegistryCoreTest, DeprecatedTypeCannotBeGivenToNewThings) {
  CreateType("old");
  CreateThing("existing", "old");
  ASSERT_OK(core_.DeprecateThingType("old", false));
  EXPECT_THAT(core_.CreateThing({.name = "new", .type_name = "old"}),
              StatusIs(Code::kFailedPrecondition, HasSubstr("deprecated")));
  CreateThing("other");
  EXPECT_THAT(core_.UpdateThing({.name = "other", .type_name = "old"}),
              StatusIs(Code::kFailedPrecondition, HasSubstr("deprecated")));
  // Things that already have it keep it and can still be updated.
  EXPECT_OK(core_.UpdateThing({.name = "existing", .type_name = "old"}));
  ASSERT_OK(core_.DeprecateThingType("old", /*undo=*/true));
  EXPECT_OK(core_.CreateThing({.name = "new", .type_name = "old"}));
}

TEST_F(RegistryCoreTest, DeleteThing) {
  CreateThing("t");
  EXPECT_THAT(core_.DeleteThing("t", 7), StatusIs(Code::kAborted));
  ASSERT_OK(core_.DeleteThing("t", 1));
  EXPECT_THAT(core_.DescribeThing("t"), StatusIs(Code::kNotFound));
  // Deleting what does not exist succeeds, as on AWS.
  EXPECT_OK(core_.DeleteThing("t", std::nullopt));
}

TEST_F(RegistryCoreTest, DeleteThingWithPrincipalsIsRefused) {
  CreateThing("t");
  ASSERT_OK(core_.AttachThingPrincipal("t", kCertA, PrincipalType::kNonExclusive));
  EXPECT_THAT(core_.DeleteThing("t", std::nullopt),
              StatusIs(Code::kFailedPrecondition, HasSubstr("detach them")));
  ASSERT_OK(core_.DetachThingPrincipal("t", kCertA));
  EXPECT_OK(core_.DeleteThing("t", std::nullopt));
}

TEST_F(RegistryCoreTest, DeleteThingRemovesItsGroupMemberships) {
  CreateGroup("g");
  CreateThing("t");
  ASSERT_OK(core_.AddThingToThingGroup("g", "t"));
  ASSERT_OK(core_.DeleteThing("t", std::nullopt));
  EXPECT_THAT(core_.ListThingsInThingGroup("g", false, {})->items, SizeIs(0));
}

TEST_F(RegistryCoreTest, ListThingsFiltersAndPaginates) {
  CreateType("sensor");
  for (int i = 0; i < 7; ++i) {
    CreateThing("t" + std::to_string(i), i % 2 == 0 ? "sensor" : "",
                {{"site", i < 4 ? "berlin" : "bern"}});
  }
  auto by_site = core_.ListThings({.attribute_name = "site", .attribute_value = "berlin"}, {});
  ASSERT_OK(by_site);
  EXPECT_THAT(by_site->items, SizeIs(4));
  auto prefix = core_.ListThings(
      {.attribute_name = "site", .attribute_value = "ber", .prefix_value = true}, {});
  EXPECT_THAT(prefix->items, SizeIs(7));
  auto typed = core_.ListThings({.type_name = "sensor"}, {});
  EXPECT_THAT(typed->items, SizeIs(4));

  std::vector<std::string> seen;
  PageRequest page{.max_results = 3};
  for (int pages = 0; pages < 10; ++pages) {
    ASSERT_OK_AND_ASSIGN(Page<Thing> p, core_.ListThings({}, page));
    for (const Thing& t : p.items) seen.push_back(t.name);
    if (p.next_token.empty()) break;
    page.next_token = p.next_token;
  }
  EXPECT_THAT(seen, ElementsAre("t0", "t1", "t2", "t3", "t4", "t5", "t6"));

  EXPECT_THAT(core_.ListThings({.attribute_value = "x"}, {}), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.ListThings({}, {.max_results = 251}), StatusIs(Code::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(Page<Thing> first, core_.ListThings({}, {.max_results = 2}));
  EXPECT_THAT(core_.ListThings({.type_name = "sensor"}, {.next_token = first.next_token}),
              StatusIs(Code::kInvalidArgument, HasSubstr("different filters")));
}

// ---- fleet indexing (SearchIndex): the same queries through the fake's matcher and through
// Postgres's SQL

class SearchIndexTest : public RegistryCoreTest {
 protected:
  void SetUp() override {
    CreateType("lamp");
    CreateGroup("europe");
    CreateGroup("berlin", "europe");
    ASSERT_OK(core_.CreateThingGroup({.name = "floor-2",
                                      .parent = "berlin",
                                      .description = "Second floor, east",
                                      .attributes = {{"level", "2"}}}));
    CreateThing("Lamp-1", "lamp", {{"floor", "2"}, {"serial", "abcd"}});
    CreateThing("lamp-2", "lamp", {{"floor", "10"}, {"serial", "abcf"}});
    CreateThing("lamp-3", "lamp", {{"floor", "ground"}});
    CreateThing("fan-1", "", {{"floor", "2"}});
    ASSERT_OK(core_.AddThingToThingGroup("floor-2", "Lamp-1"));
    ASSERT_OK(core_.AddThingToThingGroup("europe", "fan-1"));
  }

  // The names SearchIndex finds in `index`, things or groups.
  std::vector<std::string> Search(const std::string& index, const std::string& query) {
    absl::StatusOr<RegistryCore::SearchResult> r = core_.SearchIndex(index, query, {});
    std::vector<std::string> out;
    EXPECT_TRUE(r.ok()) << query << ": " << r.status();
    if (r.ok()) {
      for (const ThingDocument& d : r->things) out.push_back(d.thing.name);
      for (const ThingGroupDocument& d : r->thing_groups) out.push_back(d.group.name);
    }
    return out;
  }
  std::vector<std::string> Things(const std::string& query) { return Search("AWS_Things", query); }
  std::vector<std::string> Groups(const std::string& query) {
    return Search("AWS_ThingGroups", query);
  }
};

TEST_F(SearchIndexTest, ThingQueriesMatchTheSameInEveryStore) {
  EXPECT_THAT(Things("*"), ElementsAre("Lamp-1", "fan-1", "lamp-2", "lamp-3"));
  EXPECT_THAT(Things("thingName:lamp*"), ElementsAre("Lamp-1", "lamp-2", "lamp-3"));
  EXPECT_THAT(Things("thingName:LAMP-?"), ElementsAre("Lamp-1", "lamp-2", "lamp-3"));
  EXPECT_THAT(Things("thingTypeName:lamp AND attributes.floor:2"), ElementsAre("Lamp-1"));
  EXPECT_THAT(Things("attributes.floor:[2 TO 10]"), ElementsAre("Lamp-1", "fan-1", "lamp-2"));
  EXPECT_THAT(Things("attributes.floor>2"), ElementsAre("lamp-2"));
  EXPECT_THAT(Things("attributes.floor:{2 TO *]"), ElementsAre("lamp-2"));
  EXPECT_THAT(Things("attributes.serial:[\"abcd\" TO \"abce\"]"), ElementsAre("Lamp-1"));
  EXPECT_THAT(Things("attributes.floor:gr*"), ElementsAre("lamp-3"));
  EXPECT_THAT(Things("thingGroupNames:floor-2"), ElementsAre("Lamp-1"));
  EXPECT_THAT(Things("NOT thingTypeName:lamp"), ElementsAre("fan-1"));
  EXPECT_THAT(Things("NOT attributes.serial:abcd"), ElementsAre("fan-1", "lamp-2", "lamp-3"));
  EXPECT_THAT(Things("thingName:(lamp* AND -lamp-2)"), ElementsAre("Lamp-1", "lamp-3"));
  EXPECT_THAT(Things("europe OR ground"), ElementsAre("fan-1", "lamp-3"));  // any field
  EXPECT_THAT(Things("attributes.serial:*"), ElementsAre("Lamp-1", "lamp-2"));
  EXPECT_THAT(Things("thingName:*-3"), ElementsAre("lamp-3"));
  EXPECT_THAT(Things("thingName:lamp_1"), SizeIs(0));  // LIKE's _ is a literal here

  ASSERT_OK_AND_ASSIGN(RegistryCore::SearchResult one,
                       core_.SearchIndex("", "thingGroupNames:floor-2", {}));
  ASSERT_THAT(one.things, SizeIs(1));
  EXPECT_EQ(one.things[0].thing.type_name, "lamp");
  EXPECT_THAT(one.things[0].group_names, ElementsAre("floor-2"));
  EXPECT_EQ(one.things[0].thing.attributes.at("serial"), "abcd");
}

TEST_F(SearchIndexTest, ThingGroupQueries) {
  EXPECT_THAT(Groups("parentGroupNames:europe"), ElementsAre("berlin", "floor-2"));
  EXPECT_THAT(Groups("thingGroupDescription:second"), ElementsAre("floor-2"));
  EXPECT_THAT(Groups("thingGroupDescription:*"), ElementsAre("floor-2"));
  EXPECT_THAT(Groups("attributes.level<3"), ElementsAre("floor-2"));
  EXPECT_THAT(Groups("NOT parentGroupNames:*"), ElementsAre("europe"));
  EXPECT_THAT(Groups("berlin"), ElementsAre("berlin", "floor-2"));
  ASSERT_OK_AND_ASSIGN(RegistryCore::SearchResult r,
                       core_.SearchIndex("AWS_ThingGroups", "thingGroupName:floor-2", {}));
  ASSERT_THAT(r.thing_groups, SizeIs(1));
  EXPECT_THAT(r.thing_groups[0].parent_names, ElementsAre("europe", "berlin"));
  EXPECT_EQ(r.thing_groups[0].group.description, "Second floor, east");
  // Case is ignored for A-Z only, whatever the database's locale would lower.
  ASSERT_OK(core_.CreateThingGroup({.name = "annoyed", .description = "Ärger im Büro"}));
  EXPECT_THAT(Groups("thingGroupDescription:Ärger"), ElementsAre("annoyed"));
  EXPECT_THAT(Groups("thingGroupDescription:IM"), ElementsAre("annoyed"));
}

TEST_F(SearchIndexTest, PaginatesAndRefusesWhatItCannotAnswer) {
  std::vector<std::string> seen;
  PageRequest page{.max_results = 3};
  for (int pages = 0; pages < 5; ++pages) {
    ASSERT_OK_AND_ASSIGN(RegistryCore::SearchResult r, core_.SearchIndex("", "*", page));
    for (const ThingDocument& d : r.things) seen.push_back(d.thing.name);
    if (r.next_token.empty()) break;
    page.next_token = r.next_token;
  }
  EXPECT_THAT(seen, ElementsAre("Lamp-1", "fan-1", "lamp-2", "lamp-3"));
  EXPECT_THAT(core_.SearchIndex("", "thingName:lamp*", {.next_token = page.next_token}),
              StatusIs(Code::kInvalidArgument, HasSubstr("different filters")));
  EXPECT_THAT(core_.SearchIndex("", "*", {.max_results = 101}), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.SearchIndex("AWS_Jobs", "*", {}),
              StatusIs(Code::kNotFound, HasSubstr("AWS_Things or AWS_ThingGroups")));
  EXPECT_THAT(core_.SearchIndex("", "shadow.reported.on:true", {}),
              StatusIs(Code::kInvalidArgument, HasSubstr("registry")));
  EXPECT_THAT(core_.SearchIndex("", "thingName:(a", {}), StatusIs(Code::kInvalidArgument));
}

// The aggregations, computed in memory by the fake and in SQL by Postgres.
TEST_F(SearchIndexTest, StatisticsAggregateNumbersAndCountTheRest) {
  using Kind = IndexAggregation::Kind;
  auto stats = [&](const std::string& index, const std::string& q, const std::string& field) {
    absl::StatusOr<IndexAggregationResult> r =
        core_.Aggregate(index, q, {.kind = Kind::kStatistics, .field = field});
    EXPECT_TRUE(r.ok()) << q << " " << field << ": " << r.status();
    return r.ok() ? r->statistics : IndexStatistics{.count = -1};
  };
  // Without a field, AWS's registry.version: every thing is at version 1 but fan-1 (2).
  ASSERT_OK(core_.UpdateThing({.name = "fan-1", .attributes = AttributeUpdate{.merge = true}}));
  IndexStatistics versions = stats("", "*", "");
  EXPECT_EQ(versions.count, 4);
  EXPECT_DOUBLE_EQ(versions.sum.value_or(-1), 5);
  EXPECT_DOUBLE_EQ(versions.maximum.value_or(-1), 2);
  EXPECT_EQ(stats("", "thingName:lamp*", "").count, 3);

  // Floors 2, 10 and 2 (lamp-3's "ground" left out by the query): all numbers.
  IndexStatistics floors = stats("AWS_Things", "NOT thingName:lamp-3", "attributes.floor");
  EXPECT_EQ(floors.count, 3);
  EXPECT_DOUBLE_EQ(floors.sum.value_or(-1), 14);
  EXPECT_NEAR(floors.average.value_or(-1), 14.0 / 3, 1e-9);
  EXPECT_DOUBLE_EQ(floors.minimum.value_or(-1), 2);
  EXPECT_DOUBLE_EQ(floors.maximum.value_or(-1), 10);
  EXPECT_DOUBLE_EQ(floors.sum_of_squares.value_or(-1), 108);
  EXPECT_NEAR(floors.variance.value_or(-1), 108.0 / 3 - (14.0 / 3) * (14.0 / 3), 1e-9);
  EXPECT_NEAR(floors.std_deviation.value_or(-1), std::sqrt(floors.variance.value_or(0)), 1e-9);
  // With "ground" among them the attribute is text, as on AWS: the count of things having it.
  IndexStatistics text = stats("", "*", "attributes.floor");
  EXPECT_EQ(text.count, 4);
  EXPECT_FALSE(text.average.has_value());
  EXPECT_EQ(stats("", "*", "thingTypeName").count, 3);
  EXPECT_EQ(stats("", "*", "thingGroupNames").count, 2);
  IndexStatistics none = stats("", "thingName:nothing", "attributes.floor");
  EXPECT_EQ(none.count, 0);
  EXPECT_FALSE(none.sum.has_value());
  EXPECT_DOUBLE_EQ(stats("AWS_ThingGroups", "*", "attributes.level").maximum.value_or(-1), 2);

  EXPECT_THAT(core_.Aggregate("", "*", {.field = "colour"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("aggregationField: index AWS_Things")));
  EXPECT_THAT(core_.Aggregate("", "a AND", {}), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.Aggregate("AWS_Jobs", "*", {}), StatusIs(Code::kNotFound));
}

TEST_F(SearchIndexTest, CardinalityPercentilesAndBuckets) {
  using Kind = IndexAggregation::Kind;
  ASSERT_OK_AND_ASSIGN(
      IndexAggregationResult distinct,
      core_.Aggregate("", "*", {.kind = Kind::kCardinality, .field = "attributes.floor"}));
  EXPECT_EQ(distinct.cardinality, 3);  // 2, 10, ground
  ASSERT_OK_AND_ASSIGN(IndexAggregationResult groups,
                       core_.Aggregate("AWS_ThingGroups", "*",
                                       {.kind = Kind::kCardinality, .field = "parentGroupNames"}));
  EXPECT_EQ(groups.cardinality, 2);  // europe, berlin
  EXPECT_THAT(core_.Aggregate("", "*", {.kind = Kind::kCardinality}),
              StatusIs(Code::kInvalidArgument, HasSubstr("required")));

  // Numbers 2, 2 and 10 ("ground" is not one): AWS's default percents, interpolated.
  ASSERT_OK_AND_ASSIGN(
      IndexAggregationResult p,
      core_.Aggregate("", "*", {.kind = Kind::kPercentiles, .field = "attributes.floor"}));
  ASSERT_EQ(p.percentiles.size(), 7u);
  EXPECT_EQ(p.percentiles[0].first, 1);
  EXPECT_NEAR(p.percentiles[0].second, 2, 1e-9);
  EXPECT_NEAR(p.percentiles[3].second, 2, 1e-9);     // the median
  EXPECT_NEAR(p.percentiles[4].second, 6, 1e-9);     // 75: halfway from 2 to 10
  EXPECT_NEAR(p.percentiles[6].second, 9.84, 1e-9);  // 99: 2 + 0.98 * 8
  ASSERT_OK_AND_ASSIGN(IndexAggregationResult none, core_.Aggregate("", "thingName:fan*",
                                                                    {.kind = Kind::kPercentiles,
                                                                     .field = "attributes.serial",
                                                                     .percents = {50}}));
  EXPECT_TRUE(none.percentiles.empty());
  EXPECT_THAT(core_.Aggregate("", "*", {.kind = Kind::kPercentiles, .field = "thingName"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("percentiles need numbers")));
  EXPECT_THAT(
      core_.Aggregate("", "*",
                      {.kind = Kind::kPercentiles, .field = "attributes.floor", .percents = {101}}),
      StatusIs(Code::kInvalidArgument, HasSubstr("0 to 100")));

  ASSERT_OK_AND_ASSIGN(
      IndexAggregationResult b,
      core_.Aggregate("", "*",
                      {.kind = Kind::kBuckets, .field = "attributes.floor", .max_buckets = 2}));
  EXPECT_EQ(b.total_count, 4);
  ASSERT_EQ(b.buckets.size(), 2u);
  EXPECT_EQ(b.buckets[0].key, "2");
  EXPECT_EQ(b.buckets[0].count, 2);
  EXPECT_EQ(b.buckets[1].key, "10");  // ties by value, as bytes: "10" < "ground"
  EXPECT_EQ(b.buckets[1].count, 1);
  EXPECT_THAT(core_.Aggregate(
                  "", "*", {.kind = Kind::kBuckets, .field = "attributes.floor", .max_buckets = 0}),
              StatusIs(Code::kInvalidArgument, HasSubstr("maxBuckets")));
}

// ---- dynamic thing groups: members are what a query matches, when asked

TEST_F(SearchIndexTest, DynamicGroupsHaveTheThingsTheirQueryMatches) {
  ASSERT_OK_AND_ASSIGN(ThingGroup g,
                       core_.CreateThingGroup({.name = "high-lamps",
                                               .description = "lamps above floor 3",
                                               .query_string = "thingTypeName:lamp AND "
                                                               "attributes.floor>3"}));
  EXPECT_TRUE(g.dynamic());
  EXPECT_EQ(g.query_version, "2017-09-30");
  auto members = [&](const std::string& group) {
    std::vector<std::string> out;
    absl::StatusOr<Page<std::string>> p = core_.ListThingsInThingGroup(group, false, {});
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) out = p->items;
    return out;
  };
  EXPECT_THAT(members("high-lamps"), ElementsAre("lamp-2"));
  // A change of the thing changes its groups at once.
  ASSERT_OK(core_.UpdateThing(
      {.name = "lamp-3",
       .attributes = AttributeUpdate{.attributes = {{"floor", "7"}}, .merge = true}}));
  EXPECT_THAT(members("high-lamps"), ElementsAre("lamp-2", "lamp-3"));

  // ListThingGroupsForThing has both kinds, by name, page by page.
  ASSERT_OK(core_.CreateThingGroup({.name = "all", .query_string = "*"}));
  ASSERT_OK(core_.AddThingToThingGroup("europe", "lamp-3"));
  std::vector<std::string> seen;
  PageRequest page{.max_results = 1};
  for (int pages = 0; pages < 5; ++pages) {
    ASSERT_OK_AND_ASSIGN(Page<ThingGroup> p, core_.ListThingGroupsForThing("lamp-3", false, page));
    for (const ThingGroup& group : p.items) seen.push_back(group.name);
    if (p.next_token.empty()) break;
    page.next_token = p.next_token;
  }
  EXPECT_THAT(seen, ElementsAre("all", "europe", "high-lamps"));
  // The static ones only, as the policy and CA services ask (with ancestors too).
  ASSERT_OK_AND_ASSIGN(Page<ThingGroup> static_only,
                       core_.ListThingGroupsForThing("lamp-3", true, {}, /*static_only=*/true));
  ASSERT_THAT(static_only.items, SizeIs(1));
  EXPECT_EQ(static_only.items[0].name, "europe");
  // A query may name static groups.
  ASSERT_OK(
      core_.CreateThingGroup({.name = "in-europe", .query_string = "thingGroupNames:europe"}));
  EXPECT_THAT(members("in-europe"), ElementsAre("fan-1", "lamp-3"));

  ASSERT_OK_AND_ASSIGN(ThingGroupDescription d, core_.DescribeThingGroup("high-lamps"));
  EXPECT_EQ(d.group.query_string, "thingTypeName:lamp AND attributes.floor>3");
  EXPECT_EQ(d.group.description, "lamps above floor 3");
}

TEST_F(SearchIndexTest, DynamicGroupsKeepTheirOwnRules) {
  ASSERT_OK(core_.CreateThingGroup({.name = "dyn", .query_string = "thingName:lamp*"}));
  // Creating it again is idempotent; another query is ALREADY_EXISTS.
  EXPECT_OK(core_.CreateThingGroup({.name = "dyn", .query_string = "thingName:lamp*"}));
  EXPECT_THAT(core_.CreateThingGroup({.name = "dyn", .query_string = "thingName:fan*"}),
              StatusIs(Code::kAlreadyExists));
  EXPECT_THAT(core_.CreateThingGroup({.name = "bad", .query_string = "thingName:(a"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("queryString")));
  EXPECT_THAT(
      core_.CreateThingGroup({.name = "bad", .index_name = "AWS_ThingGroups", .query_string = "*"}),
      StatusIs(Code::kInvalidArgument, HasSubstr("indexName")));
  EXPECT_THAT(core_.CreateThingGroup({.name = "child", .parent = "dyn"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("no children")));
  EXPECT_THAT(core_.AddThingToThingGroup("dyn", "fan-1"),
              StatusIs(Code::kInvalidArgument, HasSubstr("cannot be added or removed by hand")));
  EXPECT_THAT(core_.RemoveThingFromThingGroup("dyn", "lamp-2"), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.UpdateThingGroupsForThing("fan-1", {"dyn"}, {}),
              StatusIs(Code::kInvalidArgument));

  // Each kind is changed by its own RPCs.
  EXPECT_THAT(core_.UpdateThingGroup({.name = "dyn", .description = "x"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("UpdateDynamicThingGroup")));
  EXPECT_THAT(core_.UpdateThingGroup({.name = "europe", .description = "x", .dynamic = true}),
              StatusIs(Code::kInvalidArgument, HasSubstr("UpdateThingGroup")));
  EXPECT_THAT(core_.DeleteThingGroup("dyn", std::nullopt),
              StatusIs(Code::kInvalidArgument, HasSubstr("DeleteDynamicThingGroup")));
  EXPECT_THAT(core_.DeleteThingGroup("europe", std::nullopt, /*dynamic=*/true),
              StatusIs(Code::kInvalidArgument, HasSubstr("DeleteThingGroup")));
  EXPECT_THAT(core_.UpdateThingGroup({.name = "dyn", .dynamic = true, .query_string = "x:("}),
              StatusIs(Code::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(int64_t version, core_.UpdateThingGroup({.name = "dyn",
                                                                .expected_version = 1,
                                                                .dynamic = true,
                                                                .query_string = "thingName:fan*"}));
  EXPECT_EQ(version, 2);
  ASSERT_OK_AND_ASSIGN(Page<std::string> members, core_.ListThingsInThingGroup("dyn", false, {}));
  EXPECT_THAT(members.items, ElementsAre("fan-1"));
  EXPECT_OK(core_.DeleteThingGroup("dyn", 2, /*dynamic=*/true));
  EXPECT_THAT(core_.DescribeThingGroup("dyn"), StatusIs(Code::kNotFound));
}

TEST_F(SearchIndexTest, AtMostAHundredDynamicGroups) {
  for (int i = 0; i < kMaxDynamicGroups; ++i) {
    ASSERT_OK(core_.CreateThingGroup({.name = "d" + std::to_string(i), .query_string = "*"}));
  }
  EXPECT_THAT(core_.CreateThingGroup({.name = "one-more", .query_string = "*"}),
              StatusIs(Code::kResourceExhausted, HasSubstr("100 dynamic thing groups")));
  EXPECT_OK(core_.CreateThingGroup({.name = "static"}));
}

TEST_F(SearchIndexTest, ConcurrentCreatesNeverPassTheLimit) {
  for (int i = 0; i < kMaxDynamicGroups - 2; ++i) {
    ASSERT_OK(core_.CreateThingGroup({.name = "d" + std::to_string(i), .query_string = "*"}));
  }
  // Sixteen creates let go at once, so their counts overlap: first static ones, which open
  // the Postgres pool's connections, then dynamic ones, of which two fit.
  std::atomic<int> ok{0};
  for (bool dynamic : {false, true}) {
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    for (int i = 0; i < 16; ++i) {
      threads.emplace_back([&, i] {
        while (!go.load()) std::this_thread::yield();
        const std::string name = (dynamic ? "race" : "warm") + std::to_string(i);
        if (core_.CreateThingGroup({.name = name, .query_string = dynamic ? "*" : ""}).ok() &&
            dynamic) {
          ++ok;
        }
      });
    }
    go = true;
    for (auto& th : threads) th.join();
  }
  EXPECT_EQ(ok.load(), 2);
}

TEST_F(SearchIndexTest, IndexingConfigurationTurnsIndexesOffAndOn) {
  ASSERT_OK_AND_ASSIGN(IndexingConfiguration c, core_.GetIndexingConfiguration());
  EXPECT_EQ(c.thing_indexing_mode, "REGISTRY");
  EXPECT_EQ(c.thing_group_indexing_mode, "ON");
  ASSERT_OK_AND_ASSIGN(Page<std::string> first, core_.ListIndices({.max_results = 1}));
  EXPECT_THAT(first.items, ElementsAre("AWS_ThingGroups"));
  EXPECT_THAT(core_.ListIndices({.next_token = first.next_token, .max_results = 1})->items,
              ElementsAre("AWS_Things"));
  ASSERT_OK_AND_ASSIGN(IndexDescription d, core_.DescribeIndex("AWS_Things"));
  EXPECT_EQ(d.status, "ACTIVE");
  EXPECT_EQ(d.schema, "REGISTRY");
  EXPECT_THAT(core_.DescribeIndex(""), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.DescribeIndex("AWS_Jobs"), StatusIs(Code::kNotFound));

  // What fleetcore does not index is refused, saying so.
  EXPECT_THAT(core_.UpdateIndexingConfiguration({}), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.UpdateIndexingConfiguration({.thing_indexing_mode = "REGISTRY_AND_SHADOW"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("registry data only")));
  EXPECT_THAT(core_.UpdateIndexingConfiguration(
                  {.thing_indexing_mode = "REGISTRY",
                   .thing_modes = {{"thingConnectivityIndexingMode", "STATUS"}}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("thingConnectivityIndexingMode")));
  EXPECT_THAT(core_.UpdateIndexingConfiguration({.thing_group_indexing_mode = "MAYBE"}),
              StatusIs(Code::kInvalidArgument));

  // Not off while a dynamic group uses it.
  ASSERT_OK(core_.CreateThingGroup({.name = "every", .query_string = "*"}));
  EXPECT_THAT(core_.UpdateIndexingConfiguration({.thing_indexing_mode = "OFF"}),
              StatusIs(Code::kFailedPrecondition, HasSubstr("1 dynamic thing group")));
  ASSERT_OK(core_.DeleteThingGroup("every", std::nullopt, /*dynamic=*/true));
  ASSERT_OK(core_.UpdateIndexingConfiguration(
      {.thing_indexing_mode = "OFF", .thing_group_indexing_mode = "OFF"}));
  c = *core_.GetIndexingConfiguration();
  EXPECT_EQ(c.thing_indexing_mode, "OFF");
  EXPECT_EQ(c.thing_group_indexing_mode, "OFF");
  EXPECT_THAT(core_.SearchIndex("", "*", {}), StatusIs(Code::kNotFound, HasSubstr("is off")));
  EXPECT_THAT(core_.SearchIndex("AWS_ThingGroups", "*", {}), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.Aggregate("", "*", {}), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.DescribeIndex("AWS_Things"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.ListIndices({})->items, SizeIs(0));
  EXPECT_THAT(core_.CreateThingGroup({.name = "every", .query_string = "*"}),
              StatusIs(Code::kFailedPrecondition, HasSubstr("thing indexing is off")));

  ASSERT_OK(core_.UpdateIndexingConfiguration({.thing_indexing_mode = "REGISTRY"}));
  EXPECT_OK(core_.SearchIndex("", "*", {}));
  EXPECT_THAT(core_.SearchIndex("AWS_ThingGroups", "*", {}), StatusIs(Code::kNotFound));
}

// ---- thing types

TEST_F(RegistryCoreTest, ThingTypeLifecycle) {
  ASSERT_OK_AND_ASSIGN(ThingType t, core_.CreateThingType({.name = "sensor",
                                                           .description = "a sensor",
                                                           .searchable_attributes = {"site"}}));
  EXPECT_FALSE(t.deprecated);
  EXPECT_OK(core_.CreateThingType({.name = "sensor", .description = "a sensor",
                                   .searchable_attributes = {"site"}}));
  EXPECT_THAT(core_.CreateThingType({.name = "sensor", .description = "other"}),
              StatusIs(Code::kAlreadyExists));
  EXPECT_THAT(core_.CreateThingType({.name = "x", .searchable_attributes = {"a", "b", "c", "d"}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("at most 3")));

  EXPECT_THAT(core_.DeleteThingType("sensor"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("must be deprecated")));
  ASSERT_OK(core_.DeprecateThingType("sensor", false));
  ASSERT_OK_AND_ASSIGN(ThingType d, core_.DescribeThingType("sensor"));
  EXPECT_TRUE(d.deprecated);
  EXPECT_EQ(d.deprecated_at, clock_.Now());
  EXPECT_THAT(core_.DeleteThingType("sensor"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("less than 5m")));
  clock_.Advance(absl::Minutes(5));
  ASSERT_OK(core_.DeleteThingType("sensor"));
  EXPECT_THAT(core_.DescribeThingType("sensor"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.DeleteThingType("sensor"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.DeprecateThingType("sensor", false), StatusIs(Code::kNotFound));
}

TEST_F(RegistryCoreTest, ThingTypePropagatingAttributes) {
  const std::vector<PropagatingAttribute> enrich = {
      {.user_property_key = "environment", .thing_attribute = "environment"},
      {.user_property_key = "iot:ClientId", .connection_attribute = "iot:ClientId"},
      {.user_property_key = "$thing.name", .connection_attribute = "iot:Thing.ThingName"}};
  ASSERT_OK(core_.CreateThingType({.name = "aircon", .propagating_attributes = enrich}));
  ASSERT_OK_AND_ASSIGN(ThingType t, core_.DescribeThingType("aircon"));
  EXPECT_EQ(t.propagating_attributes, enrich);
  EXPECT_OK(core_.CreateThingType({.name = "aircon", .propagating_attributes = enrich}));
  EXPECT_THAT(core_.CreateThingType({.name = "aircon"}),
              StatusIs(Code::kAlreadyExists, HasSubstr("UpdateThingType changes them")));

  auto create = [&](PropagatingAttribute a) {
    return core_.CreateThingType({.name = "bad", .propagating_attributes = {a}});
  };
  EXPECT_THAT(create({.user_property_key = "a b", .thing_attribute = "x"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("a-z A-Z 0-9 : $ .")));
  EXPECT_THAT(create({.thing_attribute = "x"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("userPropertyKey \"\" must be")));
  EXPECT_THAT(create({.user_property_key = "k"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("exactly one of thingAttribute")));
  EXPECT_THAT(create({.user_property_key = "k",
                      .thing_attribute = "x",
                      .connection_attribute = "iot:ClientId"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("exactly one of thingAttribute")));
  EXPECT_THAT(
      create({.user_property_key = "k", .connection_attribute = "iot:SourceIp"}),
      StatusIs(Code::kInvalidArgument, HasSubstr("must be iot:ClientId or iot:Thing.ThingName")));
  EXPECT_THAT(create({.user_property_key = "k", .thing_attribute = "a b"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("attribute name \"a b\"")));
  std::vector<PropagatingAttribute> many(21, {.user_property_key = "k", .thing_attribute = "x"});
  EXPECT_THAT(core_.CreateThingType({.name = "bad", .propagating_attributes = many}),
              StatusIs(Code::kInvalidArgument, HasSubstr("at most 20 are allowed, got 21")));
  EXPECT_THAT(core_.DescribeThingType("bad"), StatusIs(Code::kNotFound));
}

TEST_F(RegistryCoreTest, UpdateThingTypeChangesWhatItGives) {
  ASSERT_OK(core_.CreateThingType(
      {.name = "aircon", .description = "an air conditioner", .searchable_attributes = {"site"}}));
  CreateThing("ac-1", "aircon");
  const std::vector<PropagatingAttribute> enrich = {
      {.user_property_key = "site", .thing_attribute = "site"}};
  ASSERT_OK(core_.UpdateThingType({.name = "aircon", .propagating_attributes = enrich}));
  ASSERT_OK_AND_ASSIGN(ThingType t, core_.DescribeThingType("aircon"));
  EXPECT_EQ(t.propagating_attributes, enrich);
  EXPECT_EQ(t.description, "an air conditioner");
  EXPECT_THAT(t.searchable_attributes, ElementsAre("site"));

  ASSERT_OK(core_.UpdateThingType({.name = "aircon",
                                   .description = "a cooler",
                                   .searchable_attributes = std::vector<std::string>{"a", "b"}}));
  ASSERT_OK_AND_ASSIGN(t, core_.DescribeThingType("aircon"));
  EXPECT_EQ(t.description, "a cooler");
  EXPECT_THAT(t.searchable_attributes, ElementsAre("a", "b"));
  EXPECT_EQ(t.propagating_attributes, enrich);
  // An empty configuration removes the propagating attributes; the thing keeps its type.
  ASSERT_OK(core_.UpdateThingType(
      {.name = "aircon", .propagating_attributes = std::vector<PropagatingAttribute>()}));
  ASSERT_OK_AND_ASSIGN(t, core_.DescribeThingType("aircon"));
  EXPECT_TRUE(t.propagating_attributes.empty());
  ASSERT_OK_AND_ASSIGN(Thing thing, core_.DescribeThing("ac-1"));
  EXPECT_EQ(thing.type_name, "aircon");

  EXPECT_THAT(core_.UpdateThingType({.name = "nope", .description = "x"}),
              StatusIs(Code::kNotFound, HasSubstr("thing type \"nope\" does not exist")));
  EXPECT_THAT(
      core_.UpdateThingType({.name = "aircon",
                             .propagating_attributes =
                                 std::vector<PropagatingAttribute>{{.user_property_key = "k"}}}),
      StatusIs(Code::kInvalidArgument, HasSubstr("exactly one of")));
  EXPECT_THAT(core_.UpdateThingType(
                  {.name = "aircon",
                   .searchable_attributes = std::vector<std::string>{"a", "b", "c", "d"}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("at most 3")));
}

TEST_F(RegistryCoreTest, ThingTypeInUseCannotBeDeleted) {
  CreateType("sensor");
  CreateThing("t", "sensor");
  ASSERT_OK(core_.DeprecateThingType("sensor", false));
  clock_.Advance(absl::Minutes(10));
  EXPECT_THAT(core_.DeleteThingType("sensor"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("1 thing(s) still have")));
  ASSERT_OK(core_.UpdateThing({.name = "t", .remove_type = true}));
  EXPECT_OK(core_.DeleteThingType("sensor"));
}

TEST_F(RegistryCoreTest, ListThingTypesByName) {
  CreateType("a");
  CreateType("b");
  EXPECT_THAT(core_.ListThingTypes("", {})->items, SizeIs(2));
  ASSERT_OK_AND_ASSIGN(Page<ThingType> one, core_.ListThingTypes("b", {}));
  ASSERT_THAT(one.items, SizeIs(1));
  EXPECT_EQ(one.items[0].name, "b");
}

// ---- thing groups

TEST_F(RegistryCoreTest, GroupHierarchyAndDescribe) {
  CreateGroup("root");
  CreateGroup("mid", "root");
  CreateGroup("leaf", "mid");
  ASSERT_OK_AND_ASSIGN(ThingGroupDescription d, core_.DescribeThingGroup("leaf"));
  EXPECT_EQ(d.group.parent, "mid");
  EXPECT_EQ(d.group.root, "root");
  EXPECT_EQ(d.group.depth, 3);
  ASSERT_THAT(d.ancestors, SizeIs(2));
  EXPECT_EQ(d.ancestors[0].name, "root");
  EXPECT_EQ(d.ancestors[1].name, "mid");
  EXPECT_THAT(core_.CreateThingGroup({.name = "x", .parent = "ghost"}),
              StatusIs(Code::kNotFound, HasSubstr("parent thing group \"ghost\"")));
  EXPECT_THAT(core_.CreateThingGroup({.name = "leaf", .parent = "root"}),
              StatusIs(Code::kAlreadyExists));
  EXPECT_OK(core_.CreateThingGroup({.name = "leaf", .parent = "mid"}));
  EXPECT_THAT(core_.CreateThingGroup({.name = "self", .parent = "self"}),
              StatusIs(Code::kInvalidArgument));
}

TEST_F(RegistryCoreTest, HierarchyDepthIsLimitedToSeven) {
  CreateGroup("g1");
  for (int i = 2; i <= 7; ++i) {
    CreateGroup("g" + std::to_string(i), "g" + std::to_string(i - 1));
  }
  EXPECT_THAT(core_.CreateThingGroup({.name = "g8", .parent = "g7"}),
              StatusIs(Code::kResourceExhausted, HasSubstr("depth 7")));
}

TEST_F(RegistryCoreTest, ChildrenPerGroupAreLimited) {
  CreateGroup("p");
  for (int i = 0; i < 100; ++i) {
    CreateGroup("c" + std::to_string(i), "p");
  }
  EXPECT_THAT(core_.CreateThingGroup({.name = "one-too-many", .parent = "p"}),
              StatusIs(Code::kResourceExhausted, HasSubstr("100 child groups")));
}

TEST_F(RegistryCoreTest, GroupWithChildrenCannotBeDeleted) {
  CreateGroup("p");
  CreateGroup("c", "p");
  EXPECT_THAT(core_.DeleteThingGroup("p", std::nullopt),
              StatusIs(Code::kFailedPrecondition, HasSubstr("1 child group")));
  ASSERT_OK(core_.DeleteThingGroup("c", std::nullopt));
  ASSERT_OK(core_.DeleteThingGroup("p", 1));
  EXPECT_OK(core_.DeleteThingGroup("p", std::nullopt));  // already gone
}

TEST_F(RegistryCoreTest, UpdateGroupVersionsDescriptionAndAttributes) {
  ASSERT_OK(core_.CreateThingGroup({.name = "g", .description = "first", .attributes = {{"a", "1"}}}));
  ASSERT_OK_AND_ASSIGN(int64_t v, core_.UpdateThingGroup(
                                      {.name = "g",
                                       .attributes = AttributeUpdate{.attributes = {{"b", "2"}},
                                                                     .merge = true},
                                       .expected_version = 1}));
  EXPECT_EQ(v, 2);
  ASSERT_OK_AND_ASSIGN(ThingGroupDescription d, core_.DescribeThingGroup("g"));
  EXPECT_EQ(d.group.description, "first");  // absent description is kept
  EXPECT_EQ(d.group.attributes, (Attributes{{"a", "1"}, {"b", "2"}}));
  EXPECT_THAT(core_.UpdateThingGroup({.name = "g", .expected_version = 1}),
              StatusIs(Code::kAborted));
  ASSERT_OK(core_.UpdateThingGroup({.name = "g", .description = ""}));
  EXPECT_EQ(core_.DescribeThingGroup("g")->group.description, "");
  EXPECT_THAT(core_.DeleteThingGroup("g", 1), StatusIs(Code::kAborted));
}

TEST_F(RegistryCoreTest, ListThingGroupsByParentPrefixAndRecursion) {
  CreateGroup("a");
  CreateGroup("a1", "a");
  CreateGroup("a11", "a1");
  CreateGroup("b");
  auto names = [&](const GroupQuery& q) {
    std::vector<std::string> out;
    absl::StatusOr<Page<ThingGroup>> page = core_.ListThingGroups(q, {});
    EXPECT_OK(page);
    for (const ThingGroup& g : page->items) out.push_back(g.name);
    return out;
  };
  EXPECT_THAT(names({}), ElementsAre("a", "a1", "a11", "b"));
  EXPECT_THAT(names({.recursive = false}), ElementsAre("a", "b"));
  EXPECT_THAT(names({.parent = "a"}), ElementsAre("a1"));
  EXPECT_THAT(names({.parent = "a", .recursive = true}), ElementsAre("a1", "a11"));
  EXPECT_THAT(names({.name_prefix = "a1"}), ElementsAre("a1", "a11"));
  EXPECT_THAT(core_.ListThingGroups({.parent = "ghost"}, {}), StatusIs(Code::kNotFound));
}

TEST_F(RegistryCoreTest, MembershipRules) {
  CreateGroup("site");
  CreateGroup("floor", "site");
  CreateGroup("other");
  CreateThing("t");
  ASSERT_OK(core_.AddThingToThingGroup("floor", "t"));
  EXPECT_OK(core_.AddThingToThingGroup("floor", "t"));  // idempotent
  EXPECT_THAT(core_.AddThingToThingGroup("site", "t"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("same hierarchy")));
  ASSERT_OK(core_.AddThingToThingGroup("other", "t"));
  EXPECT_THAT(core_.AddThingToThingGroup("ghost", "t"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.AddThingToThingGroup("other", "ghost"), StatusIs(Code::kNotFound));

  std::vector<std::string> groups;
  ASSERT_OK_AND_ASSIGN(Page<ThingGroup> for_thing, core_.ListThingGroupsForThing("t", false, {}));
  for (const ThingGroup& g : for_thing.items) groups.push_back(g.name);
  EXPECT_THAT(groups, ElementsAre("floor", "other"));

  ASSERT_OK(core_.RemoveThingFromThingGroup("floor", "t"));
  EXPECT_OK(core_.RemoveThingFromThingGroup("floor", "t"));
  EXPECT_OK(core_.AddThingToThingGroup("site", "t"));
  EXPECT_THAT(core_.ListThingGroupsForThing("ghost", false, {}), StatusIs(Code::kNotFound));
}

TEST_F(RegistryCoreTest, UpdateThingGroupsForThingMovesWithinAHierarchyAtOnce) {
  CreateGroup("building");
  CreateGroup("floor-1", "building");
  CreateGroup("floor-2", "building");
  CreateGroup("fleet");
  CreateThing("t");
  ASSERT_OK(core_.AddThingToThingGroup("floor-1", "t"));
  auto groups = [&] {
    std::vector<std::string> out;
    absl::StatusOr<Page<ThingGroup>> page = core_.ListThingGroupsForThing("t", false, {});
    EXPECT_OK(page.status());
    if (page.ok()) {
      for (const ThingGroup& g : page->items) out.push_back(g.name);
    }
    return out;
  };
  // One call moves it between groups of one hierarchy, which an add alone cannot.
  EXPECT_THAT(core_.AddThingToThingGroup("floor-2", "t"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("same hierarchy")));
  ASSERT_OK(core_.UpdateThingGroupsForThing("t", {"floor-2", "fleet"}, {"floor-1"}));
  EXPECT_THAT(groups(), ElementsAre("fleet", "floor-2"));

  // All or nothing: a group that does not exist leaves the removal undone too.
  EXPECT_THAT(core_.UpdateThingGroupsForThing("t", {"ghost"}, {"floor-2"}),
              StatusIs(Code::kNotFound, HasSubstr("thing group \"ghost\" does not exist")));
  EXPECT_THAT(core_.UpdateThingGroupsForThing("t", {"floor-1"}, {}),
              StatusIs(Code::kFailedPrecondition, HasSubstr("same hierarchy")));
  EXPECT_THAT(groups(), ElementsAre("fleet", "floor-2"));

  EXPECT_THAT(core_.UpdateThingGroupsForThing("t", {"fleet"}, {"fleet"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("in both")));
  EXPECT_THAT(core_.UpdateThingGroupsForThing("t", std::vector<std::string>(11, "fleet"), {}),
              StatusIs(Code::kInvalidArgument, HasSubstr("at most 10")));
  EXPECT_THAT(core_.UpdateThingGroupsForThing("ghost", {}, {}), StatusIs(Code::kNotFound));
  EXPECT_OK(core_.UpdateThingGroupsForThing("t", {"fleet"}, {"floor-1"}));  // already so
  EXPECT_THAT(groups(), ElementsAre("fleet", "floor-2"));
}

TEST_F(RegistryCoreTest, AThingBelongsToAtMostTenGroups) {
  CreateThing("t");
  for (int i = 0; i < 10; ++i) {
    CreateGroup("g" + std::to_string(i));
    ASSERT_OK(core_.AddThingToThingGroup("g" + std::to_string(i), "t"));
  }
  CreateGroup("g10");
  EXPECT_THAT(core_.AddThingToThingGroup("g10", "t"),
              StatusIs(Code::kResourceExhausted, HasSubstr("10 thing groups")));
}

TEST_F(RegistryCoreTest, ListThingsInGroupRecursively) {
  CreateGroup("site");
  CreateGroup("floor", "site");
  CreateGroup("room", "floor");
  CreateThing("a");
  CreateThing("b");
  CreateThing("c");
  ASSERT_OK(core_.AddThingToThingGroup("site", "a"));
  ASSERT_OK(core_.AddThingToThingGroup("floor", "b"));
  ASSERT_OK(core_.AddThingToThingGroup("room", "c"));
  EXPECT_THAT(core_.ListThingsInThingGroup("site", false, {})->items, ElementsAre("a"));
  EXPECT_THAT(core_.ListThingsInThingGroup("site", true, {})->items, ElementsAre("a", "b", "c"));
  EXPECT_THAT(core_.ListThingsInThingGroup("floor", true, {})->items, ElementsAre("b", "c"));
  EXPECT_THAT(core_.ListThingsInThingGroup("ghost", true, {}), StatusIs(Code::kNotFound));
}

TEST_F(RegistryCoreTest, GroupsForThingWithTheirAncestors) {
  CreateGroup("site");
  CreateGroup("floor", "site");
  CreateGroup("room", "floor");
  CreateGroup("fleet");
  CreateThing("t");
  ASSERT_OK(core_.AddThingToThingGroup("room", "t"));
  ASSERT_OK(core_.AddThingToThingGroup("fleet", "t"));
  auto names = [&](bool ancestors) {
    std::vector<std::string> out;
    absl::StatusOr<Page<ThingGroup>> page = core_.ListThingGroupsForThing("t", ancestors, {});
    EXPECT_OK(page);
    for (const ThingGroup& g : page->items) out.push_back(g.name);
    return out;
  };
  EXPECT_THAT(names(false), ElementsAre("fleet", "room"));
  EXPECT_THAT(names(true), ElementsAre("fleet", "floor", "room", "site"));
}

TEST_F(RegistryCoreTest, PrincipalThingsCarryTheAttachmentType) {
  CreateThing("t1");
  CreateThing("t2");
  ASSERT_OK(core_.AttachThingPrincipal("t2", kCertB, PrincipalType::kExclusive));
  ASSERT_OK_AND_ASSIGN(Page<PrincipalAttachment> p, core_.ListPrincipalThings(kCertB, {}));
  ASSERT_THAT(p.items, SizeIs(1));
  EXPECT_EQ(p.items[0].thing_name, "t2");
  EXPECT_EQ(p.items[0].type, PrincipalType::kExclusive);
}

TEST_F(RegistryCoreTest, DeletingAGroupRemovesMemberships) {
  CreateGroup("g");
  CreateThing("t");
  ASSERT_OK(core_.AddThingToThingGroup("g", "t"));
  ASSERT_OK(core_.DeleteThingGroup("g", std::nullopt));
  EXPECT_THAT(core_.ListThingGroupsForThing("t", false, {})->items, SizeIs(0));
}

// ---- billing groups

std::vector<std::string> Names(const absl::StatusOr<Page<std::string>>& page) {
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? page->items : std::vector<std::string>{};
}

TEST_F(RegistryCoreTest, BillingGroupLifecycle) {
  clock_.Advance(absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(BillingGroup created, core_.CreateBillingGroup("lab", "the lab's devices"));
  EXPECT_EQ(created.version, 1);
  // The same properties again succeed with the same group; others conflict.
  ASSERT_OK_AND_ASSIGN(BillingGroup again, core_.CreateBillingGroup("lab", "the lab's devices"));
  EXPECT_EQ(again.id, created.id);
  EXPECT_THAT(core_.CreateBillingGroup("lab", "elsewhere"), StatusIs(Code::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(BillingGroup d, core_.DescribeBillingGroup("lab"));
  EXPECT_EQ(d.id, created.id);
  EXPECT_EQ(d.description, "the lab's devices");
  EXPECT_EQ(d.created_at, clock_.Now());

  EXPECT_THAT(core_.UpdateBillingGroup("lab", "moved", 7), StatusIs(Code::kAborted));
  EXPECT_EQ(core_.UpdateBillingGroup("lab", "moved", 1).value_or(0), 2);
  EXPECT_EQ(core_.UpdateBillingGroup("lab", "", std::nullopt).value_or(0), 3);
  EXPECT_EQ(core_.DescribeBillingGroup("lab")->description, "");
  EXPECT_THAT(core_.UpdateBillingGroup("ghost", "x", std::nullopt), StatusIs(Code::kNotFound));

  EXPECT_THAT(core_.CreateBillingGroup("bad name", ""), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.CreateBillingGroup("long", std::string(kMaxDescriptionLength + 1, 'd')),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.DescribeBillingGroup("ghost"), StatusIs(Code::kNotFound));

  EXPECT_THAT(core_.DeleteBillingGroup("lab", 1), StatusIs(Code::kAborted));
  ASSERT_OK(core_.DeleteBillingGroup("lab", 3));
  EXPECT_THAT(core_.DescribeBillingGroup("lab"), StatusIs(Code::kNotFound));
  EXPECT_OK(core_.DeleteBillingGroup("lab", std::nullopt));  // nothing to delete: success
}

TEST_F(RegistryCoreTest, ListBillingGroupsByPrefixPageByPage) {
  for (const char* name : {"eu-1", "eu-2", "eu-3", "us-1"}) {
    ASSERT_OK(core_.CreateBillingGroup(name, ""));
  }
  std::vector<std::string> seen;
  PageRequest page{.max_results = 2};
  do {
    ASSERT_OK_AND_ASSIGN(Page<BillingGroup> p, core_.ListBillingGroups("eu-", page));
    ASSERT_LE(p.items.size(), 2u);
    for (const BillingGroup& g : p.items) seen.push_back(g.name);
    page.next_token = p.next_token;
  } while (!page.next_token.empty());
  EXPECT_THAT(seen, ElementsAre("eu-1", "eu-2", "eu-3"));
  EXPECT_THAT(core_.ListBillingGroups("", {})->items, SizeIs(4));
  EXPECT_THAT(core_.ListBillingGroups("bad prefix", {}), StatusIs(Code::kInvalidArgument));
}

TEST_F(RegistryCoreTest, AThingIsInAtMostOneBillingGroup) {
  ASSERT_OK(core_.CreateBillingGroup("a", ""));
  ASSERT_OK(core_.CreateBillingGroup("b", ""));
  EXPECT_THAT(core_.CreateThing({.name = "t", .billing_group = "ghost"}),
              StatusIs(Code::kNotFound, HasSubstr("billing group")));
  ASSERT_OK(core_.CreateThing({.name = "t", .billing_group = "a"}));
  EXPECT_OK(core_.CreateThing({.name = "t", .billing_group = "a"}));  // the same again
  EXPECT_THAT(core_.CreateThing({.name = "t", .billing_group = "b"}),
              StatusIs(Code::kAlreadyExists));
  EXPECT_EQ(core_.DescribeThing("t")->billing_group, "a");
  CreateThing("u");
  EXPECT_EQ(core_.DescribeThing("u")->billing_group, "");

  // Adding it to another billing group moves it; the thing's version does not change.
  ASSERT_OK(core_.AddThingToBillingGroup("b", "t"));
  ASSERT_OK(core_.AddThingToBillingGroup("b", "u"));
  ASSERT_OK(core_.AddThingToBillingGroup("b", "u"));  // already there
  EXPECT_EQ(core_.DescribeThing("t")->billing_group, "b");
  EXPECT_EQ(core_.DescribeThing("t")->version, 1);
  EXPECT_THAT(Names(core_.ListThingsInBillingGroup("a", {})), SizeIs(0));
  EXPECT_THAT(Names(core_.ListThingsInBillingGroup("b", {.max_results = 1})), ElementsAre("t"));
  EXPECT_THAT(Names(core_.ListThingsInBillingGroup("b", {})), ElementsAre("t", "u"));

  // Removing it from a group it is not in changes nothing.
  ASSERT_OK(core_.RemoveThingFromBillingGroup("a", "t"));
  EXPECT_EQ(core_.DescribeThing("t")->billing_group, "b");
  ASSERT_OK(core_.RemoveThingFromBillingGroup("b", "t"));
  EXPECT_EQ(core_.DescribeThing("t")->billing_group, "");
  EXPECT_THAT(Names(core_.ListThingsInBillingGroup("b", {})), ElementsAre("u"));

  EXPECT_THAT(core_.AddThingToBillingGroup("ghost", "t"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.AddThingToBillingGroup("a", "ghost"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.RemoveThingFromBillingGroup("ghost", "t"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.ListThingsInBillingGroup("ghost", {}), StatusIs(Code::kNotFound));
  // A thing's other changes keep its billing group.
  ASSERT_OK(core_.UpdateThing(
      {.name = "u", .attributes = AttributeUpdate{.attributes = {{"k", "v"}}, .merge = true}}));
  EXPECT_EQ(core_.DescribeThing("u")->billing_group, "b");
}

TEST_F(RegistryCoreTest, DeletingABillingGroupLeavesItsThingsInNone) {
  ASSERT_OK(core_.CreateBillingGroup("a", ""));
  ASSERT_OK(core_.CreateThing({.name = "t", .billing_group = "a"}));
  ASSERT_OK(core_.DeleteBillingGroup("a", std::nullopt));
  ASSERT_OK_AND_ASSIGN(Thing t, core_.DescribeThing("t"));
  EXPECT_EQ(t.billing_group, "");
  // A new group of the same name starts empty.
  ASSERT_OK(core_.CreateBillingGroup("a", ""));
  EXPECT_THAT(Names(core_.ListThingsInBillingGroup("a", {})), SizeIs(0));
  ASSERT_OK(core_.DeleteThing("t", std::nullopt));
}

TEST_F(RegistryCoreTest, BillingGroupChangesAreAnnouncedForCaches) {
  ASSERT_OK(core_.CreateBillingGroup("a", ""));
  CreateThing("t");
  ASSERT_OK(core_.AddThingToBillingGroup("a", "t"));
  ASSERT_OK(core_.AddThingToBillingGroup("a", "t"));  // no change: no event
  ASSERT_OK(core_.RemoveThingFromBillingGroup("a", "t"));
  ASSERT_OK(core_.DeleteBillingGroup("a", std::nullopt));
  std::vector<RegistryEvent> events = sut_->WaitForEvents(4);
  ASSERT_THAT(events, SizeIs(4));
  EXPECT_EQ(events[0].type, "thing.created");
  EXPECT_EQ(events[1].type, "billing_group.thing_added");
  EXPECT_EQ(events[1].thing, "t");
  EXPECT_EQ(events[2].type, "billing_group.thing_removed");
  EXPECT_EQ(events[2].thing, "t");
  EXPECT_EQ(events[3].type, kBillingGroupDeleted);
}

// ---- principals

TEST_F(RegistryCoreTest, AttachListDetachPrincipals) {
  CreateThing("t1");
  CreateThing("t2");
  ASSERT_OK(core_.AttachThingPrincipal("t1", kCertA, PrincipalType::kNonExclusive));
  ASSERT_OK(core_.AttachThingPrincipal("t2", kCertA, PrincipalType::kNonExclusive));
  ASSERT_OK(core_.AttachThingPrincipal("t1", kCertB, PrincipalType::kNonExclusive));
  EXPECT_THAT(ThingNames(core_.ListPrincipalThings(kCertA, {})), ElementsAre("t1", "t2"));
  ASSERT_OK_AND_ASSIGN(Page<PrincipalAttachment> p, core_.ListThingPrincipals("t1", {}));
  ASSERT_THAT(p.items, SizeIs(2));
  EXPECT_EQ(p.items[0].principal, kCertA);
  EXPECT_EQ(p.items[1].principal, kCertB);
  ASSERT_OK(core_.DetachThingPrincipal("t1", kCertA));
  EXPECT_OK(core_.DetachThingPrincipal("t1", kCertA));  // idempotent
  EXPECT_THAT(ThingNames(core_.ListPrincipalThings(kCertA, {})), ElementsAre("t2"));
  EXPECT_THAT(core_.AttachThingPrincipal("ghost", kCertA, PrincipalType::kNonExclusive),
              StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.AttachThingPrincipal("t1", "not-an-arn", PrincipalType::kNonExclusive),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.ListThingPrincipals("ghost", {}), StatusIs(Code::kNotFound));
}

TEST_F(RegistryCoreTest, ExclusiveAttachmentIsExclusive) {
  CreateThing("t1");
  CreateThing("t2");
  ASSERT_OK(core_.AttachThingPrincipal("t1", kCertA, PrincipalType::kExclusive));
  EXPECT_THAT(core_.AttachThingPrincipal("t2", kCertA, PrincipalType::kNonExclusive),
              StatusIs(Code::kFailedPrecondition, HasSubstr("exclusively")));
  EXPECT_OK(core_.AttachThingPrincipal("t1", kCertA, PrincipalType::kExclusive));
  ASSERT_OK(core_.AttachThingPrincipal("t1", kCertA, PrincipalType::kNonExclusive));
  ASSERT_OK(core_.AttachThingPrincipal("t2", kCertA, PrincipalType::kNonExclusive));
  EXPECT_THAT(core_.AttachThingPrincipal("t1", kCertA, PrincipalType::kExclusive),
              StatusIs(Code::kFailedPrecondition, HasSubstr("no other thing")));
}

TEST_F(RegistryCoreTest, EventsNameWhatChanged) {
  CreateGroup("g");
  CreateThing("t");
  ASSERT_OK(core_.AddThingToThingGroup("g", "t"));
  ASSERT_OK(core_.AttachThingPrincipal("t", kCertA, PrincipalType::kNonExclusive));
  std::vector<RegistryEvent> events = sut_->WaitForEvents(4);
  ASSERT_THAT(events, SizeIs(4));
  EXPECT_EQ(events[0].type, "thing_group.created");
  EXPECT_EQ(events[1].type, "thing.created");
  EXPECT_EQ(events[2].type, "thing_group.thing_added");
  EXPECT_EQ(events[2].thing, "t");
  EXPECT_EQ(events[2].thing_group, "g");
  EXPECT_EQ(events[3].type, "thing.principal_attached");
  EXPECT_EQ(events[3].principal, kCertA);
}

TEST_F(RegistryCoreTest, NoEventForNoOpsOrFailures) {
  CreateThing("t", "", {{"a", "1"}});
  CreateThing("t", "", {{"a", "1"}});                                   // idempotent: no event
  EXPECT_FALSE(core_.UpdateThing({.name = "t", .expected_version = 9}).ok());  // refused
  EXPECT_THAT(core_.RemoveThingFromThingGroup("g", "t"), StatusIs(Code::kNotFound));
  CreateThing("sentinel");
  std::vector<RegistryEvent> events = sut_->WaitForEvents(2);
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].thing, "t");
  EXPECT_EQ(events[1].thing, "sentinel");
}

TEST_F(RegistryCoreTest, ConcurrentWritersNeverBreakTheHierarchyRule) {
  CreateGroup("root");
  for (int i = 0; i < 8; ++i) CreateGroup("child" + std::to_string(i), "root");
  CreateThing("t");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      if (core_.AddThingToThingGroup("child" + std::to_string(i), "t").ok()) ++ok;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_THAT(core_.ListThingGroupsForThing("t", false, {})->items, SizeIs(1));
}

// ---- registry events

class RecordingPublisher final : public broker::Publisher {
 public:
  void Publish(std::string topic, std::string payload) override {
    messages.emplace_back(std::move(topic), std::move(payload));
  }
  std::vector<std::string> Topics() const {
    std::vector<std::string> out;
    for (const auto& [topic, payload] : messages) out.push_back(topic);
    return out;
  }
  nlohmann::json Payload(size_t i) const { return nlohmann::json::parse(messages.at(i).second); }
  std::vector<Message> messages;
};

// A registry that publishes registry events (core_ beside it has no publisher), on the
// same store.
class RegistryEventsTest : public RegistryCoreTest {
 protected:
  RegistryEventsTest()
      : events_(sut_->store(), &arns_, &clock_, &ids_, {.event_publisher = &published_}) {}

  void Enable(std::vector<std::string> kinds) {
    std::map<std::string, bool> changes;
    for (const std::string& k : kinds) changes[k] = true;
    ASSERT_OK(events_.UpdateEventConfigurations(changes));
  }

  RecordingPublisher published_;
  RegistryCore events_;
};

TEST_F(RegistryEventsTest, OffUntilConfigured) {
  ASSERT_OK_AND_ASSIGN(EventConfigurations c, events_.DescribeEventConfigurations());
  EXPECT_EQ(c.enabled.size(), 6u);
  for (const auto& [kind, on] : c.enabled) EXPECT_FALSE(on) << kind;
  EXPECT_EQ(c.created_at, absl::Time());
  ASSERT_OK(events_.CreateThing({.name = "lamp-1"}));
  EXPECT_TRUE(published_.messages.empty());

  Enable({"THING"});
  ASSERT_OK_AND_ASSIGN(c, events_.DescribeEventConfigurations());
  EXPECT_TRUE(c.enabled["THING"]);
  EXPECT_FALSE(c.enabled["THING_GROUP"]);
  EXPECT_EQ(c.created_at, clock_.Now());
  EXPECT_EQ(c.updated_at, clock_.Now());
  // A failed change publishes nothing; an idempotent create changes nothing.
  EXPECT_THAT(events_.UpdateThing({.name = "lamp-1", .expected_version = 9}),
              StatusIs(Code::kAborted));
  ASSERT_OK(events_.CreateThing({.name = "lamp-1"}));
  EXPECT_TRUE(published_.messages.empty());
  ASSERT_OK(events_.UpdateThing({.name = "lamp-1"}));
  EXPECT_THAT(published_.Topics(), ElementsAre("$aws/events/thing/lamp-1/updated"));
}

TEST_F(RegistryEventsTest, ThingEventsCarryAwsFields) {
  Enable({"THING", "THING_TYPE_ASSOCIATION"});
  CreateType("sensor");
  ASSERT_OK_AND_ASSIGN(Thing t, events_.CreateThing({.name = "lamp-1",
                                                     .type_name = "sensor",
                                                     .attributes = {{"color", "red"}}}));
  ASSERT_OK(events_.UpdateThing({.name = "lamp-1", .remove_type = true}));
  ASSERT_OK(events_.DeleteThing("lamp-1", std::nullopt));
  EXPECT_THAT(published_.Topics(),
              ElementsAre("$aws/events/thing/lamp-1/created",
                          "$aws/events/thingTypeAssociation/thing/lamp-1/sensor",
                          "$aws/events/thing/lamp-1/updated",
                          "$aws/events/thingTypeAssociation/thing/lamp-1/sensor",
                          "$aws/events/thing/lamp-1/deleted"));
  nlohmann::json created = published_.Payload(0);
  EXPECT_EQ(created["eventType"], "THING_EVENT");
  EXPECT_EQ(created["operation"], "CREATED");
  EXPECT_EQ(created["accountId"], "123456789012");
  EXPECT_EQ(created["thingId"], t.id);
  EXPECT_EQ(created["thingName"], "lamp-1");
  EXPECT_EQ(created["versionNumber"], 1);
  EXPECT_EQ(created["thingTypeName"], "sensor");
  EXPECT_EQ(created["attributes"], nlohmann::json({{"color", "red"}}));
  EXPECT_EQ(created["timestamp"], absl::ToUnixMillis(clock_.Now()));
  EXPECT_TRUE(created["eventId"].is_string());
  EXPECT_EQ(published_.Payload(1)["eventType"], "THING_TYPE_ASSOCIATION_EVENT");
  EXPECT_EQ(published_.Payload(1)["operation"], "ADDED");
  EXPECT_EQ(published_.Payload(3)["operation"], "REMOVED");
  nlohmann::json updated = published_.Payload(2);
  EXPECT_EQ(updated["versionNumber"], 2);
  EXPECT_TRUE(updated["thingTypeName"].is_null());
  EXPECT_EQ(published_.Payload(4)["operation"], "DELETED");
  EXPECT_NE(published_.Payload(0)["eventId"], published_.Payload(4)["eventId"]);
}

TEST_F(RegistryEventsTest, ThingTypeEvents) {
  Enable({"THING_TYPE"});
  ASSERT_OK(events_.CreateThingType(
      {.name = "sensor", .description = "a sensor", .searchable_attributes = {"site"}}));
  ASSERT_OK(events_.DeprecateThingType("sensor", /*undo=*/false));
  clock_.Advance(absl::Minutes(6));
  ASSERT_OK(events_.DeleteThingType("sensor"));
  EXPECT_THAT(published_.Topics(), ElementsAre("$aws/events/thingType/sensor/created",
                                               "$aws/events/thingType/sensor/updated",
                                               "$aws/events/thingType/sensor/deleted"));
  nlohmann::json created = published_.Payload(0);
  EXPECT_EQ(created["eventType"], "THING_TYPE_EVENT");
  EXPECT_EQ(created["thingTypeName"], "sensor");
  EXPECT_EQ(created["isDeprecated"], false);
  EXPECT_TRUE(created["deprecationDate"].is_null());
  EXPECT_EQ(created["searchableAttributes"], nlohmann::json({"site"}));
  EXPECT_EQ(created["description"], "a sensor");
  EXPECT_EQ(published_.Payload(1)["isDeprecated"], true);
  EXPECT_TRUE(published_.Payload(1)["deprecationDate"].is_number());
}

TEST_F(RegistryEventsTest, UpdatingAThingTypeIsAnUpdatedEvent) {
  Enable({"THING_TYPE"});
  ASSERT_OK(events_.CreateThingType({.name = "aircon"}));
  const std::vector<PropagatingAttribute> enrich = {
      {.user_property_key = "environment", .thing_attribute = "environment"},
      {.user_property_key = "iot:ClientId", .connection_attribute = "iot:ClientId"}};
  ASSERT_OK(events_.UpdateThingType({.name = "aircon", .propagating_attributes = enrich}));
  ASSERT_OK(events_.UpdateThingType({.name = "aircon", .propagating_attributes = enrich}));
  EXPECT_THAT(published_.Topics(), ElementsAre("$aws/events/thingType/aircon/created",
                                               "$aws/events/thingType/aircon/updated"));
  EXPECT_EQ(published_.Payload(0)["propagatingAttributes"], nlohmann::json::array());
  EXPECT_EQ(published_.Payload(1)["operation"], "UPDATED");
  EXPECT_EQ(published_.Payload(1)["propagatingAttributes"], nlohmann::json::parse(R"([
      {"userPropertyKey": "environment", "thingAttribute": "environment"},
      {"userPropertyKey": "iot:ClientId", "connectionAttribute": "iot:ClientId"}])"));
}

TEST_F(RegistryEventsTest, GroupHierarchyAndMembershipEvents) {
  Enable({"THING_GROUP", "THING_GROUP_HIERARCHY", "THING_GROUP_MEMBERSHIP"});
  ASSERT_OK_AND_ASSIGN(ThingGroup root, events_.CreateThingGroup({.name = "building"}));
  ASSERT_OK_AND_ASSIGN(ThingGroup floor,
                       events_.CreateThingGroup({.name = "floor-1", .parent = "building"}));
  CreateThing("lamp-1");
  ASSERT_OK(events_.AddThingToThingGroup("floor-1", "lamp-1"));
  ASSERT_OK(events_.AddThingToThingGroup("floor-1", "lamp-1"));  // already: no event
  ASSERT_OK(events_.UpdateThingGroup({.name = "floor-1", .description = "first floor"}));
  ASSERT_OK(events_.RemoveThingFromThingGroup("floor-1", "lamp-1"));
  ASSERT_OK(events_.DeleteThingGroup("floor-1", std::nullopt));
  EXPECT_THAT(
      published_.Topics(),
      ElementsAre(
          "$aws/events/thingGroup/building/created", "$aws/events/thingGroup/floor-1/created",
          "$aws/events/thingGroupHierarchy/thingGroup/building/childThingGroup/floor-1/added",
          "$aws/events/thingGroupMembership/thingGroup/floor-1/thing/lamp-1/added",
          "$aws/events/thingGroup/floor-1/updated",
          "$aws/events/thingGroupMembership/thingGroup/floor-1/thing/lamp-1/removed",
          "$aws/events/thingGroup/floor-1/deleted",
          "$aws/events/thingGroupHierarchy/thingGroup/building/childThingGroup/floor-1/removed"));
  nlohmann::json child = published_.Payload(1);
  EXPECT_EQ(child["eventType"], "THING_GROUP_EVENT");
  EXPECT_EQ(child["thingGroupId"], floor.id);
  EXPECT_EQ(child["parentGroupName"], "building");
  EXPECT_EQ(child["parentGroupId"], root.id);
  EXPECT_EQ(child["rootToParentThingGroups"],
            nlohmann::json::array({{{"groupArn",
                                     "arn:aws:iot:us-east-1:123456789012:thinggroup/building"},
                                    {"groupId", root.id}}}));
  EXPECT_TRUE(published_.Payload(0)["parentGroupName"].is_null());
  nlohmann::json hierarchy = published_.Payload(2);
  EXPECT_EQ(hierarchy["eventType"], "THING_GROUP_HIERARCHY_EVENT");
  EXPECT_EQ(hierarchy["operation"], "ADDED");
  EXPECT_EQ(hierarchy["thingGroupName"], "building");
  EXPECT_EQ(hierarchy["childGroupId"], floor.id);
  nlohmann::json added = published_.Payload(3);
  EXPECT_EQ(added["eventType"], "THING_GROUP_MEMBERSHIP_EVENT");
  EXPECT_EQ(added["operation"], "ADDED");
  EXPECT_EQ(added["groupArn"], "arn:aws:iot:us-east-1:123456789012:thinggroup/floor-1");
  EXPECT_EQ(added["thingArn"], "arn:aws:iot:us-east-1:123456789012:thing/lamp-1");
  EXPECT_EQ(added["thingId"], core_.DescribeThing("lamp-1")->id);
  // One membership, one id: the same when it ends.
  EXPECT_EQ(added["membershipId"], published_.Payload(5)["membershipId"]);
  EXPECT_EQ(published_.Payload(4)["versionNumber"], 2);
  EXPECT_EQ(published_.Payload(4)["description"], "first floor");
}

TEST_F(RegistryEventsTest, UpdateThingGroupsForThingPublishesEachChangeOnlyOnceCommitted) {
  ASSERT_OK(events_.CreateThingGroup({.name = "floor-1"}));
  ASSERT_OK(events_.CreateThingGroup({.name = "floor-2"}));
  CreateThing("lamp-1");
  ASSERT_OK(events_.AddThingToThingGroup("floor-1", "lamp-1"));
  Enable({"THING_GROUP_MEMBERSHIP"});
  EXPECT_THAT(events_.UpdateThingGroupsForThing("lamp-1", {"ghost"}, {"floor-1"}),
              StatusIs(Code::kNotFound));
  EXPECT_TRUE(published_.messages.empty());
  ASSERT_OK(events_.UpdateThingGroupsForThing("lamp-1", {"floor-2"}, {"floor-1"}));
  EXPECT_THAT(
      published_.Topics(),
      ElementsAre("$aws/events/thingGroupMembership/thingGroup/floor-1/thing/lamp-1/removed",
                  "$aws/events/thingGroupMembership/thingGroup/floor-2/thing/lamp-1/added"));
}

TEST_F(RegistryEventsTest, ConfigurationErrors) {
  EXPECT_THAT(events_.UpdateEventConfigurations({{"JOB", true}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("THING_GROUP_MEMBERSHIP")));
  EXPECT_THAT(events_.UpdateEventConfigurations({}),
              StatusIs(Code::kInvalidArgument, HasSubstr("name at least one kind")));
  // core_ has nowhere to publish: it may turn kinds off, never on.
  EXPECT_THAT(core_.UpdateEventConfigurations({{"THING", true}}),
              StatusIs(Code::kFailedPrecondition, HasSubstr("--gateway-endpoint")));
  EXPECT_OK(core_.UpdateEventConfigurations({{"THING", false}}));
}

// Another replica's change reaches this one when told (its NOTIFY, in the service).
TEST_F(RegistryEventsTest, AnotherReplicasChangeAppliesOnceInvalidated) {
  ASSERT_OK(events_.CreateThing({.name = "a"}));  // reads the configuration: all off
  RecordingPublisher other_published;
  RegistryCore other(sut_->store(), &arns_, &clock_, &ids_, {.event_publisher = &other_published});
  ASSERT_OK(other.UpdateEventConfigurations({{"THING", true}}));
  ASSERT_OK(events_.CreateThing({.name = "b"}));
  EXPECT_TRUE(published_.messages.empty());
  events_.InvalidateEventConfigurations();
  ASSERT_OK(events_.CreateThing({.name = "c"}));
  EXPECT_THAT(published_.Topics(), ElementsAre("$aws/events/thing/c/created"));
}

}  // namespace
}  // namespace fleetcore::registry
