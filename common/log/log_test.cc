#include "common/log/log.h"

#include "absl/time/clock.h"
#include "common/log/throttle.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fleetcore::log {
namespace {

TEST(LogRenderTest, JsonRecordIsOneValidObjectWithTypedFields) {
  const std::string line =
      RenderJson(Level::kWarn, "registry", "2026-01-01T00:00:00.000Z", "quote \" and\nnewline",
                 {{"request_id", "r-1"}, {"count", 3}, {"ok", true}, {"ratio", 0.5},
                  {"error", absl::NotFoundError("no such thing")}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["service"], "registry");
  EXPECT_EQ(j["msg"], "quote \" and\nnewline");
  EXPECT_EQ(j["request_id"], "r-1");
  EXPECT_EQ(j["count"], 3);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["ratio"], 0.5);
  EXPECT_EQ(j["error"], "NOT_FOUND: no such thing");
}

TEST(LogRenderTest, ControlCharactersAreEscaped) {
  const std::string line = RenderJson(Level::kInfo, "s", "t", std::string("a\x01z", 3), {});
  EXPECT_NE(line.find("\\u0001"), std::string::npos);
  EXPECT_TRUE(nlohmann::json::accept(line)) << line;
}

TEST(LogRenderTest, TextQuotesOnlyWhenNeeded) {
  const std::string line = RenderText(Level::kInfo, "registry", "T", "listening",
                                      {{"addr", "127.0.0.1:1"}, {"why", "two words"}});
  EXPECT_EQ(line, "T info  registry: listening addr=127.0.0.1:1 why=\"two words\"");
}

TEST(LogInitTest, RefusesUnknownFormatAndLevel) {
  EXPECT_EQ(Init({.service = "x", .format = "xml"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Init({.service = "x", .format = "json", .level = "loud"}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ThrottleTest, OneRecordPerPeriodCountingTheRest) {
  Throttle throttle(absl::Hours(1));
  uint64_t n = 0;
  ASSERT_TRUE(throttle.Allow(&n));
  EXPECT_EQ(n, 1u);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(throttle.Allow(&n));
  Throttle fast(absl::ZeroDuration());
  ASSERT_TRUE(fast.Allow(&n));
  EXPECT_EQ(n, 1u);
}

TEST(ThrottleTest, TheNextRecordCarriesWhatWasHeldBack) {
  Throttle throttle(absl::Milliseconds(20));
  uint64_t n = 0;
  ASSERT_TRUE(throttle.Allow(&n));
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(throttle.Allow(&n));
  absl::SleepFor(absl::Milliseconds(30));
  ASSERT_TRUE(throttle.Allow(&n));
  EXPECT_EQ(n, 4u);  // three held back and this one
}

}  // namespace
}  // namespace fleetcore::log
