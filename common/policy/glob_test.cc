#include "common/policy/glob.h"

#include "common/policy/actions.h"
#include "gtest/gtest.h"

namespace fleetcore::policy {
namespace {

TEST(GlobTest, StarSpansEverythingIncludingSlashes) {
  EXPECT_TRUE(GlobMatch("things/*", "things/a/b/c"));
  EXPECT_TRUE(GlobMatch("things/*", "things/"));
  EXPECT_FALSE(GlobMatch("things/*", "things"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(GlobMatch("*/temp", "a/b/temp"));
}

TEST(GlobTest, QuestionIsExactlyOneCharacter) {
  EXPECT_TRUE(GlobMatch("sensor?", "sensor1"));
  EXPECT_FALSE(GlobMatch("sensor?", "sensor12"));
  EXPECT_FALSE(GlobMatch("sensor?", "sensor"));
  EXPECT_TRUE(GlobMatch("a/?/b", "a/x/b"));
}

TEST(GlobTest, MqttWildcardsAreLiteral) {
  EXPECT_TRUE(GlobMatch("some/+/topic", "some/+/topic"));
  EXPECT_FALSE(GlobMatch("some/+/topic", "some/x/topic"));
  EXPECT_TRUE(GlobMatch("a/#", "a/#"));
  EXPECT_FALSE(GlobMatch("a/#", "a/b"));
}

TEST(GlobTest, CaseAndEscapes) {
  EXPECT_FALSE(GlobMatch("Topic", "topic"));
  EXPECT_TRUE(GlobMatch("Topic", "topic", /*ignore_case=*/true));
  const std::string literal_star = std::string("a") + kLiteralStar + "b";
  EXPECT_TRUE(GlobMatch(literal_star, "a*b"));
  EXPECT_FALSE(GlobMatch(literal_star, "aXb"));
}

TEST(ActionsTest, NamesWildcardsAndCase) {
  EXPECT_EQ(ParseAction("iot:publish"), Action::kPublish);
  EXPECT_EQ(ParseAction("iot:Publsh"), std::nullopt);
  EXPECT_EQ(MatchActions("iot:*"), kAllActions);
  EXPECT_EQ(MatchActions("*"), kAllActions);
  EXPECT_EQ(MatchActions("iot:Pub*"), Bit(Action::kPublish));
  EXPECT_EQ(MatchActions("iot:*ThingShadow"),
            Bit(Action::kGetThingShadow) | Bit(Action::kUpdateThingShadow) |
                Bit(Action::kDeleteThingShadow));
  EXPECT_EQ(MatchActions("s3:*"), 0u);
  EXPECT_EQ(ResourceType(Action::kSubscribe), "topicfilter");
}

}  // namespace
}  // namespace fleetcore::policy
