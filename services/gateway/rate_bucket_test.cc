// The gateway's token buckets: how much they hold, how fast they refill, and a shared limit's
// refusals (fleet provisioning's quotas).
#include "services/gateway/rate_bucket.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace fleetcore::gateway {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kStart = 100 * kSecond;

TEST(RateBucket, HoldsOneSecondsWorthAndRefillsAtTheRate) {
  RateBucket b;
  // Full when first used: ten at once at 10/s, then the eleventh waits a tenth of a second.
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(b.Wait(kStart, 10, 1), 0.0) << i;
    b.Take(1);
  }
  EXPECT_DOUBLE_EQ(b.Wait(kStart, 10, 1), 0.1);
  EXPECT_EQ(b.Wait(kStart + kSecond / 10, 10, 1), 0.0);
  b.Take(1);
  // An hour idle refills one second's worth, no more.
  EXPECT_EQ(b.Wait(kStart + 3600 * kSecond, 10, 10), 0.0);
  b.Take(10);
  EXPECT_GT(b.Wait(kStart + 3600 * kSecond, 10, 1), 0.0);
  // More than a second's worth waits for a full bucket.
  EXPECT_DOUBLE_EQ(b.Wait(kStart + 3600 * kSecond, 10, 50), 1.0);
}

TEST(SharedRateLimit, RefusesWhatIsOverTheRateAndAdmitsAgainAsItRefills) {
  SharedRateLimit limit(10);
  int admitted = 0;
  for (int i = 0; i < 25; ++i) admitted += limit.Admit(kStart) ? 1 : 0;
  EXPECT_EQ(admitted, 10);
  // A refusal takes nothing: a tenth of a second later one more fits, and only one.
  EXPECT_TRUE(limit.Admit(kStart + kSecond / 10));
  EXPECT_FALSE(limit.Admit(kStart + kSecond / 10));
  // Asked every millisecond, the rate: ten in 1.05 s (the half keeps rounding out of it).
  admitted = 0;
  for (int ms = 1; ms <= 1050; ++ms) {
    admitted += limit.Admit(kStart + kSecond / 10 + ms * (kSecond / 1000)) ? 1 : 0;
  }
  EXPECT_EQ(admitted, 10);
}

TEST(SharedRateLimit, ZeroIsNoLimit) {
  SharedRateLimit limit(0);
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(limit.Admit(kStart)) << i;
}

TEST(SharedRateLimit, ThreadsShareOneBudget) {
  SharedRateLimit limit(1000);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (limit.Admit(kStart)) admitted.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 1000);
}

}  // namespace
}  // namespace fleetcore::gateway
