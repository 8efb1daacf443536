#include "common/aws/arn.h"

#include "gtest/gtest.h"

namespace fleetcore::aws {
namespace {

TEST(ArnsTest, BuildsAwsShapedArns) {
  Arns arns("eu-west-1", "123456789012");
  EXPECT_EQ(arns.Thing("lamp-1"), "arn:aws:iot:eu-west-1:123456789012:thing/lamp-1");
  EXPECT_EQ(arns.ThingGroup("g"), "arn:aws:iot:eu-west-1:123456789012:thinggroup/g");
  EXPECT_EQ(arns.ThingType("t"), "arn:aws:iot:eu-west-1:123456789012:thingtype/t");
  EXPECT_EQ(arns.Cert("ab12"), "arn:aws:iot:eu-west-1:123456789012:cert/ab12");
}

TEST(ArnsTest, ParsesOnlyItsOwnRegionAccountAndType) {
  Arns arns("eu-west-1", "123456789012");
  EXPECT_EQ(arns.ParseResource("arn:aws:iot:eu-west-1:123456789012:thing/x", "thing"), "x");
  EXPECT_EQ(arns.ParseResource("arn:aws:iot:eu-west-1:123456789012:thing/x", "thinggroup"),
            std::nullopt);
  EXPECT_EQ(arns.ParseResource("arn:aws:iot:us-east-1:123456789012:thing/x", "thing"),
            std::nullopt);
  EXPECT_EQ(arns.ParseResource("arn:aws:iot:eu-west-1:123456789012:thing/", "thing"),
            std::nullopt);
  EXPECT_EQ(arns.ParseResource("thing/x", "thing"), std::nullopt);
}

TEST(ArnsTest, ValidatesRegionAndAccount) {
  EXPECT_TRUE(Arns::Validate("us-east-1", "000000000000").ok());
  EXPECT_EQ(Arns::Validate("US_EAST", "000000000000").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Arns::Validate("us-east-1", "12345").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Arns::Validate("", "000000000000").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fleetcore::aws
