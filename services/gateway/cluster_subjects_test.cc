#include "services/gateway/cluster_subjects.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::gateway {
namespace {

using ::testing::ElementsAre;

TEST(ClusterSubjectsTest, TopicLevelsBecomeTokensThatNeverCollide) {
  EXPECT_EQ(SubjectOfTopic("p", "sensors/kitchen/temp"), "p.sensors.kitchen.temp");
  EXPECT_EQ(SubjectOfTopic("p", "a/b.c"), "p.a.b%2ec");
  // Empty levels, spaces, NATS wildcards, '%' itself and bytes beyond ASCII.
  EXPECT_EQ(SubjectOfTopic("p", "/a//"), "p.%.a.%.%");
  EXPECT_EQ(SubjectOfTopic("p", "* >/x y/100%"), "p.%2a%20%3e.x%20y.100%25");
  EXPECT_EQ(SubjectOfTopic("p", "$aws/things/t-1_a"), "p.%24aws.things.t-1_a");
  EXPECT_EQ(SubjectOfTopic("p", "\xc3\xa9"), "p.%c3%a9");
  EXPECT_NE(SubjectOfTopic("p", "a/%"), SubjectOfTopic("p", "a/"));
  EXPECT_NE(SubjectOfTopic("p", "a/%25"), SubjectOfTopic("p", "a/%"));
  EXPECT_EQ(SubjectToken("node-1.example"), "node-1%2eexample");
}

TEST(ClusterSubjectsTest, FiltersUseNatsWildcardsAndHashAlsoMatchesItsParent) {
  EXPECT_THAT(SubjectsOfFilter("p", "a/+/c"), ElementsAre("p.a.*.c"));
  EXPECT_THAT(SubjectsOfFilter("p", "a/#"), ElementsAre("p.a", "p.a.>"));
  EXPECT_THAT(SubjectsOfFilter("p", "#"), ElementsAre("p.>"));
  EXPECT_THAT(SubjectsOfFilter("p", "+/#"), ElementsAre("p.*", "p.*.>"));
  EXPECT_THAT(SubjectsOfFilter("p", "a//b"), ElementsAre("p.a.%.b"));
}

TEST(ClusterSubjectsTest, QueuesAreOnePerGroupAndFilter) {
  EXPECT_EQ(QueueOfShare("g", "a/b"), QueueOfShare("g", "a/b"));
  EXPECT_NE(QueueOfShare("g", "a/b"), QueueOfShare("g", "a/c"));
  EXPECT_NE(QueueOfShare("g", "a/b"), QueueOfShare("h", "a/b"));
  // The separator keeps "g" + "a/b" apart from "ga" + "/b".
  EXPECT_NE(QueueOfShare("g", "a/b"), QueueOfShare("ga", "/b"));
  EXPECT_EQ(QueueOfShare("g", "a/b").size(), 33u);
  // The heartbeats' number for them: the same hash (SHA-256 of "g\0a/b"), its first 8 bytes.
  EXPECT_EQ(QueueOfShare("g", "a/b"), "q04a1563cb37dd25e33909f651d5c7e0d");
  EXPECT_EQ(ShareId("g", "a/b"), 0x04a1563cb37dd25eu);
  EXPECT_NE(ShareId("g", "a/b"), ShareId("ga", "/b"));
}

}  // namespace
}  // namespace fleetcore::gateway
