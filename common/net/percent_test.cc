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

}  // namespace
}  // namespace fleetcore::net
