#include "common/pagination/page_token.h"

#include "gtest/gtest.h"

namespace fleetcore::pagination {
namespace {

TEST(PageTokenTest, RoundTripsTheLastKey) {
  const std::string token = EncodePageToken("thing-0042", "type=sensor");
  auto key = DecodePageToken(token, "type=sensor");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "thing-0042");
}

TEST(PageTokenTest, EmptyTokenIsTheFirstPage) {
  auto key = DecodePageToken("", "anything");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*key, "");
}

TEST(PageTokenTest, RefusesATokenOfAnotherQuery) {
  const std::string token = EncodePageToken("k", "type=sensor");
  auto key = DecodePageToken(token, "type=lamp");
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(key.status().message().find("different filters"), std::string::npos);
}

TEST(PageTokenTest, RefusesGarbage) {
  EXPECT_EQ(DecodePageToken("not a token!", "q").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodePageToken("cDE", "q").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PageTokenTest, TokenIsUrlSafe) {
  const std::string token = EncodePageToken(std::string(100, '\xff'), "q");
  EXPECT_EQ(token.find_first_of("+/="), std::string::npos);
}

TEST(ResolveMaxResultsTest, AppliesDefaultAndBounds) {
  EXPECT_EQ(*ResolveMaxResults(0), kDefaultMaxResults);
  EXPECT_EQ(*ResolveMaxResults(250), 250);
  EXPECT_EQ(*ResolveMaxResults(1), 1);
  EXPECT_EQ(ResolveMaxResults(251).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveMaxResults(-1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseMaxResultsTest, AQueryParameterIsANumberInRangeOrAbsent) {
  EXPECT_EQ(*ParseMaxResults(std::nullopt, 50, 200), 50);
  EXPECT_EQ(*ParseMaxResults("1", 50, 200), 1);
  EXPECT_EQ(*ParseMaxResults("200", 50, 200), 200);
  for (const char* bad : {"0", "201", "-1", "", "ten", "5x"}) {
    absl::StatusOr<int> got = ParseMaxResults(bad, 50, 200);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(got.status().message(), "maxResults must be from 1 to 200") << bad;
  }
}

}  // namespace
}  // namespace fleetcore::pagination
