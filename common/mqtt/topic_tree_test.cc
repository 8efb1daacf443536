// Topic matching: MQTT's wildcard rules, the '$' rule, shared groups in turn, and the tree
// shrinking back as subscriptions go.
#include "common/mqtt/topic_tree.h"

#include <map>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::mqtt {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

std::vector<uint64_t> Matches(const TopicTree& tree, absl::string_view topic) {
  std::vector<uint64_t> out;
  tree.Match(topic, [&](uint64_t s, const SubscriptionOptions&) { out.push_back(s); });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TopicTreeTest, WildcardsFollowTheSpecification) {
  TopicTree t;
  const std::vector<std::pair<uint64_t, std::string>> subs = {
      {1, "sport/tennis/player1"}, {2, "sport/tennis/player1/#"}, {3, "sport/#"},
      {4, "#"},                    {5, "sport/tennis/+"},         {6, "+/+"},
      {7, "/+"},                   {8, "+"},                      {9, "$SYS/#"},
      {10, "sport/+/player1"},     {11, "+/tennis/#"}};
  for (const auto& [id, f] : subs) ASSERT_TRUE(t.Subscribe(f, "", id, {}));
  EXPECT_EQ(t.size(), subs.size());
  EXPECT_THAT(Matches(t, "sport/tennis/player1"), ElementsAre(1, 2, 3, 4, 5, 10, 11));
  EXPECT_THAT(Matches(t, "sport/tennis/player1/ranking"), ElementsAre(2, 3, 4, 11));
  EXPECT_THAT(Matches(t, "sport"), ElementsAre(3, 4, 8));  // '#' includes the parent level
  EXPECT_THAT(Matches(t, "sport/"), ElementsAre(3, 4, 6));
  EXPECT_THAT(Matches(t, "/finance"), ElementsAre(4, 6, 7));
  // '$' topics: no wildcard matches their first level.
  EXPECT_THAT(Matches(t, "$SYS/broker/load"), ElementsAre(9));
  EXPECT_THAT(Matches(t, "$aws/things/x"), IsEmpty());
}

TEST(TopicTreeTest, ReplaceUnsubscribeAndPrune) {
  TopicTree t;
  EXPECT_TRUE(t.Subscribe("a/+/c", "", 1, {.qos = 0}));
  EXPECT_FALSE(t.Subscribe("a/+/c", "", 1, {.qos = 1}));  // replaced, not added
  std::vector<uint8_t> qos;
  t.Match("a/b/c", [&](uint64_t, const SubscriptionOptions& o) { qos.push_back(o.qos); });
  EXPECT_THAT(qos, ElementsAre(1));
  EXPECT_FALSE(t.Unsubscribe("a/+/c", "", 2));
  EXPECT_FALSE(t.Unsubscribe("a/b/c", "", 1));
  EXPECT_TRUE(t.Unsubscribe("a/+/c", "", 1));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_THAT(Matches(t, "a/b/c"), IsEmpty());
  // Pruned: a new subscription under the same prefix still works.
  EXPECT_TRUE(t.Subscribe("a/+/c", "", 3, {}));
  EXPECT_THAT(Matches(t, "a/x/c"), ElementsAre(3));
}

TEST(TopicTreeTest, SharedGroupsTakeTurns) {
  TopicTree t;
  for (uint64_t id : {1, 2, 3}) ASSERT_TRUE(t.Subscribe("jobs/#", "workers", id, {}));
  ASSERT_TRUE(t.Subscribe("jobs/+", "auditors", 10, {}));
  ASSERT_TRUE(t.Subscribe("jobs/#", "", 20, {}));
  std::map<uint64_t, int> count;
  for (int i = 0; i < 30; ++i) {
    std::vector<uint64_t> m = Matches(t, "jobs/x");
    // one worker, the one auditor, and the plain subscriber each time
    ASSERT_EQ(m.size(), 3u);
    for (uint64_t s : m) ++count[s];
  }
  EXPECT_EQ(count[1], 10);
  EXPECT_EQ(count[2], 10);
  EXPECT_EQ(count[3], 10);
  EXPECT_EQ(count[10], 30);
  EXPECT_EQ(count[20], 30);
  EXPECT_TRUE(t.Unsubscribe("jobs/#", "workers", 2));
  std::set<uint64_t> seen;
  for (int i = 0; i < 4; ++i) {
    for (uint64_t s : Matches(t, "jobs/y")) seen.insert(s);
  }
  EXPECT_THAT(seen, UnorderedElementsAre(1, 3, 10, 20));
}

// A match tells which shared group (as its clients write it) a member was picked for, and
// a group's members can be listed (a broker hands a group's waiting messages among them).
TEST(TopicTreeTest, MatchesNameTheirGroupAndGroupsListTheirMembers) {
  TopicTree t;
  ASSERT_TRUE(t.Subscribe("jobs/#", "workers", 1, {}));
  ASSERT_TRUE(t.Subscribe("jobs/#", "workers", 2, {}));
  ASSERT_TRUE(t.Subscribe("jobs/#", "", 3, {}));
  std::map<uint64_t, std::string> shares;
  t.Match("jobs/x", [&](uint64_t s, const SubscriptionOptions&, absl::string_view share) {
    shares[s] = std::string(share);
  });
  ASSERT_EQ(shares.size(), 2u);
  EXPECT_EQ(shares[3], "");
  EXPECT_EQ(shares.count(1) ? shares[1] : shares[2], "$share/workers/jobs/#");
  std::vector<uint64_t> members;
  t.SharedMembers("jobs/#", "workers", &members);
  EXPECT_THAT(members, UnorderedElementsAre(1, 2));
  members.clear();
  t.SharedMembers("jobs/#", "others", &members);
  t.SharedMembers("jobs/+", "workers", &members);
  EXPECT_THAT(members, IsEmpty());
}

TEST(TopicTreeTest, ParsesSharedFilters) {
  ParsedFilter p;
  ASSERT_TRUE(ParseSharedFilter("$share/g1/a/+/c", &p));
  EXPECT_EQ(p.share_group, "g1");
  EXPECT_EQ(p.filter, "a/+/c");
  EXPECT_EQ(SharedFilter(p.share_group, p.filter), "$share/g1/a/+/c");  // and back
  ASSERT_TRUE(ParseSharedFilter("a/#", &p));
  EXPECT_EQ(p.share_group, "");
  for (const char* bad : {"$share/", "$share//a", "$share/g", "$share/g+/a", "$share/g/a#"}) {
    EXPECT_FALSE(ParseSharedFilter(bad, &p)) << bad;
  }
}

TEST(TopicTreeTest, ManySubscriptionsStayCorrect) {
  TopicTree t;
  for (uint64_t i = 0; i < 20000; ++i) {
    ASSERT_TRUE(t.Subscribe("devices/" + std::to_string(i) + "/cmd", "", i, {}));
  }
  ASSERT_TRUE(t.Subscribe("devices/+/cmd", "", 99999, {}));
  EXPECT_THAT(Matches(t, "devices/123/cmd"), ElementsAre(123, 99999));
  EXPECT_THAT(Matches(t, "devices/123/other"), IsEmpty());
}

// Gateway replicas route shared groups apart: plain matches only, and one member of a
// given group and filter at a time.
TEST(TopicTreeTest, MatchesWithoutSharedGroupsAndPicksSharedMembersByFilter) {
  TopicTree t;
  ASSERT_TRUE(t.Subscribe("jobs/+", "", 1, {}));
  ASSERT_TRUE(t.Subscribe("jobs/+", "g", 10, {.qos = 1}));
  ASSERT_TRUE(t.Subscribe("jobs/+", "g", 20, {.qos = 1}));
  std::vector<uint64_t> plain;
  t.Match("jobs/x", [&](uint64_t s, const SubscriptionOptions&) { plain.push_back(s); },
          /*shared=*/false);
  EXPECT_THAT(plain, ElementsAre(1));
  std::set<uint64_t> picked;
  uint64_t who;
  SubscriptionOptions options;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(t.PickShared("jobs/+", "g", &who, &options));
    EXPECT_EQ(options.qos, 1);
    picked.insert(who);
  }
  EXPECT_THAT(picked, UnorderedElementsAre(10, 20));
  EXPECT_FALSE(t.PickShared("jobs/+", "other", &who, &options));
  EXPECT_FALSE(t.PickShared("jobs/#", "g", &who, &options));
  EXPECT_FALSE(t.PickShared("nothing/here", "g", &who, &options));
}

TEST(TopicTreeTest, SharedGroupsPassOverMembersThatCannotTakeAMessage) {
  TopicTree t;
  for (uint64_t member : {10, 20, 30}) ASSERT_TRUE(t.Subscribe("jobs/#", "g", member, {}));
  // 20 cannot take messages now: the others take turns, evenly, in Match and in PickShared.
  TopicTree::Available all_but_20 = [](uint64_t s) { return s != 20; };
  std::multiset<uint64_t> got;
  for (int i = 0; i < 6; ++i) {
    t.Match(
        "jobs/x", [&](uint64_t s, const SubscriptionOptions&) { got.insert(s); }, true, all_but_20);
    uint64_t who;
    SubscriptionOptions options;
    ASSERT_TRUE(t.PickShared("jobs/#", "g", &who, &options, all_but_20));
    got.insert(who);
  }
  EXPECT_EQ(got.count(20), 0u);
  EXPECT_EQ(got.count(10), 6u);
  EXPECT_EQ(got.count(30), 6u);
  // None can: each still goes to one member, in turn.
  TopicTree::Available none = [](uint64_t) { return false; };
  std::set<uint64_t> turns;
  for (int i = 0; i < 3; ++i) {
    t.Match(
        "jobs/x", [&](uint64_t s, const SubscriptionOptions&) { turns.insert(s); }, true, none);
  }
  EXPECT_THAT(turns, UnorderedElementsAre(10, 20, 30));
  // Whether any can, on exactly the group's filter.
  EXPECT_TRUE(t.HasAvailableShared("jobs/#", "g", all_but_20));
  EXPECT_TRUE(t.HasAvailableShared("jobs/#", "g", [](uint64_t s) { return s == 20; }));
  EXPECT_FALSE(t.HasAvailableShared("jobs/#", "g", none));
  EXPECT_FALSE(t.HasAvailableShared("jobs/#", "other", all_but_20));
  EXPECT_FALSE(t.HasAvailableShared("jobs/x", "g", all_but_20));
}

}  // namespace
}  // namespace fleetcore::mqtt
