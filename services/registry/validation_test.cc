#include "services/registry/validation.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::registry {
namespace {

using ::fleetcore::testing::IsOk;
using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
const std::string kCert =
    "arn:aws:iot:us-east-1:123456789012:cert/"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(ValidateNameTest, FollowsAwsPattern) {
  EXPECT_THAT(ValidateName("thingName", "lamp-1:a_B"), IsOk());
  EXPECT_THAT(ValidateName("thingName", std::string(128, 'a')), IsOk());
  EXPECT_THAT(ValidateName("thingName", ""), StatusIs(kInvalid, HasSubstr("required")));
  EXPECT_THAT(ValidateName("thingName", std::string(129, 'a')),
              StatusIs(kInvalid, HasSubstr("longer than 128")));
  EXPECT_THAT(ValidateName("thingName", "lamp 1"),
              StatusIs(kInvalid, HasSubstr("thingName: \"lamp 1\" must be")));
  EXPECT_THAT(ValidateName("thingName", "lamp/1"), StatusIs(kInvalid));
  EXPECT_THAT(ValidateName("thingName", "läm"), StatusIs(kInvalid));
}

TEST(ValidateAttributesTest, PatternsAndLengths) {
  EXPECT_THAT(ValidateAttributes("a", {{"serial_no.1,@/:#-", "v=[1]_.,@/:#-"}}), IsOk());
  EXPECT_THAT(ValidateAttributes("a", {{"k", ""}}), IsOk());
  EXPECT_THAT(ValidateAttributes("a", {{"bad key", "v"}}),
              StatusIs(kInvalid, HasSubstr("attribute name \"bad key\"")));
  EXPECT_THAT(ValidateAttributes("a", {{"k", "bad value"}}),
              StatusIs(kInvalid, HasSubstr("value of attribute \"k\"")));
  EXPECT_THAT(ValidateAttributes("a", {{std::string(129, 'k'), "v"}}), StatusIs(kInvalid));
  EXPECT_THAT(ValidateAttributes("a", {{"k", std::string(801, 'v')}}),
              StatusIs(kInvalid, HasSubstr("longer than 800")));
  EXPECT_THAT(ValidateAttributes("a", {{"k", std::string(800, 'v')}}), IsOk());
}

TEST(ValidateAttributesTest, TotalSizeLimit) {
  Attributes big;
  for (int i = 0; i < 60; ++i) {
    big["k" + std::to_string(i)] = std::string(800, 'v');
  }
  EXPECT_THAT(ValidateAttributes("a", big), StatusIs(kInvalid, HasSubstr("47 KB")));
}

TEST(ValidateThingAttributeCountTest, ThreeWithoutTypeFiftyWith) {
  Attributes three{{"a", "1"}, {"b", "2"}, {"c", "3"}};
  Attributes four = three;
  four["d"] = "4";
  EXPECT_THAT(ValidateThingAttributeCount(three, false), IsOk());
  EXPECT_THAT(ValidateThingAttributeCount(four, false),
              StatusIs(kInvalid, HasSubstr("at most 3")));
  EXPECT_THAT(ValidateThingAttributeCount(four, true), IsOk());
  Attributes fifty_one;
  for (int i = 0; i < 51; ++i) fifty_one["k" + std::to_string(i)] = "v";
  EXPECT_THAT(ValidateThingAttributeCount(fifty_one, true),
              StatusIs(kInvalid, HasSubstr("at most 50")));
}

TEST(ValidatePrincipalTest, AcceptsOnlyCertificateArns) {
  EXPECT_THAT(ValidatePrincipal(kCert), IsOk());
  EXPECT_THAT(ValidatePrincipal(""), StatusIs(kInvalid, HasSubstr("required")));
  EXPECT_THAT(ValidatePrincipal("arn:aws:iot:us-east-1:123456789012:cert/abc"),
              StatusIs(kInvalid, HasSubstr("certificate ARN")));
  EXPECT_THAT(ValidatePrincipal("arn:aws:iot:us-east-1:123456789012:thing/x"),
              StatusIs(kInvalid));
  std::string upper = kCert;
  upper.back() = 'F';
  EXPECT_THAT(ValidatePrincipal(upper), StatusIs(kInvalid));
  EXPECT_THAT(ValidatePrincipal("us-east-1:4b3f5cb8-0000-0000-0000-000000000000"),
              StatusIs(kInvalid));
}

TEST(NameFromNameOrArnTest, AcceptsEitherAndChecksAgreement) {
  aws::Arns arns("us-east-1", "123456789012");
  EXPECT_EQ(*NameFromNameOrArn(arns, "g", "", "thinggroup", "n", "a"), "g");
  EXPECT_EQ(*NameFromNameOrArn(arns, "", arns.ThingGroup("g"), "thinggroup", "n", "a"), "g");
  EXPECT_EQ(*NameFromNameOrArn(arns, "g", arns.ThingGroup("g"), "thinggroup", "n", "a"), "g");
  EXPECT_THAT(NameFromNameOrArn(arns, "h", arns.ThingGroup("g"), "thinggroup", "n", "a"),
              StatusIs(kInvalid, HasSubstr("different resources")));
  EXPECT_THAT(NameFromNameOrArn(arns, "", arns.Thing("g"), "thinggroup", "n", "a"),
              StatusIs(kInvalid, HasSubstr("is not a thinggroup ARN")));
  EXPECT_THAT(NameFromNameOrArn(arns, "", "", "thinggroup", "thingGroupName", "thingGroupArn"),
              StatusIs(kInvalid, HasSubstr("give thingGroupName or thingGroupArn")));
}

TEST(ApplyAttributeUpdateTest, MergeAndReplace) {
  Attributes current{{"a", "1"}, {"b", "2"}};
  EXPECT_EQ(ApplyAttributeUpdate(current, {.attributes = {{"b", "3"}, {"c", "4"}}, .merge = true}),
            (Attributes{{"a", "1"}, {"b", "3"}, {"c", "4"}}));
  EXPECT_EQ(ApplyAttributeUpdate(current, {.attributes = {{"a", ""}}, .merge = true}),
            (Attributes{{"b", "2"}}));
  EXPECT_EQ(ApplyAttributeUpdate(current, {.attributes = {{"c", "4"}, {"d", ""}}, .merge = false}),
            (Attributes{{"c", "4"}}));
  EXPECT_EQ(ApplyAttributeUpdate(current, {.attributes = {}, .merge = false}), Attributes{});
}

}  // namespace
}  // namespace fleetcore::registry
