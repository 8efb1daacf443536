#include "common/net/percent.h"

#include "gtest/gtest.h"

namespace fleetcore::net {
namespace {

TEST(PercentDecode, EscapesAndPlusAndWhatIsRefused) {
  std::string out;
  ASSERT_TRUE(PercentDecode("a%2Fb%20c+d%c3%A9", /*plus_is_space=*/false, &out));
  EXPECT_EQ(out, "a/b c+d\xc3\xa9");
  ASSERT_TRUE(PercentDecode("a+b", /*plus_is_space=*/true, &out));
  EXPECT_EQ(out, "a b");
  EXPECT_FALSE(PercentDecode("%", false, &out));
  EXPECT_FALSE(PercentDecode("%2", false, &out));
  EXPECT_FALSE(PercentDecode("%zz", true, &out));
  ASSERT_TRUE(PercentDecode("", false, &out));
  EXPECT_EQ(out, "");
}

TEST(DecodeQuery, PairsInOrderAndNothingOnAMalformedEscape) {
  std::vector<std::pair<std::string, std::string>> out = {{"kept", "1"}};
  ASSERT_TRUE(DecodeQuery("b=2&&a=x%20y+z&flag&a=", /*plus_is_space=*/true, &out));
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(out, (Pairs{{"kept", "1"}, {"b", "2"}, {"a", "x y z"}, {"flag", ""}, {"a", ""}}));
  out.clear();
  ASSERT_TRUE(DecodeQuery("a=1+2", /*plus_is_space=*/false, &out));
  EXPECT_EQ(out, (Pairs{{"a", "1+2"}}));
  EXPECT_FALSE(DecodeQuery("ok=1&bad=%zz", false, &out));
  EXPECT_EQ(out, (Pairs{{"a", "1+2"}}));
}

}  // namespace
}  // namespace fleetcore::net
