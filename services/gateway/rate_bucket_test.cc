// The gateway's token buckets: how much they hold, how fast they refill, and the refusals of
// a shared limit (fleet provisioning's quotas) and of one bucket per key (the shadows').
#include "services/gateway/rate_bucket.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "services/gateway/keyed_rate_limit.h"

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

TEST(KeyedRateLimit, EachKeyHasItsOwnBudget) {
  KeyedRateLimit limit(20);
  int lamp = 0;
  for (int i = 0; i < 30; ++i) lamp += limit.Admit("lamp-1/", kStart) ? 1 : 0;
  EXPECT_EQ(lamp, 20);
  // Another shadow of the same thing, and the same shadow's name on another thing, are not
  // held back by it.
  EXPECT_TRUE(limit.Admit("lamp-1/cfg", kStart));
  EXPECT_TRUE(limit.Admit("lamp-2/", kStart));
  // 50 ms later, one more (20/s).
  EXPECT_TRUE(limit.Admit("lamp-1/", kStart + kSecond / 20));
  EXPECT_FALSE(limit.Admit("lamp-1/", kStart + kSecond / 20));
}

TEST(KeyedRateLimit, KeysIdleForASecondAreDropped) {
  KeyedRateLimit limit(20);
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(limit.Admit("thing-" + std::to_string(i) + "/", kStart));
  EXPECT_EQ(limit.size(), 1000u);
  // A second on, the next request sweeps them: only its own key is left, with a full budget.
  int admitted = 0;
  for (int i = 0; i < 25; ++i) admitted += limit.Admit("thing-0/", kStart + kSecond) ? 1 : 0;
  EXPECT_EQ(admitted, 20);
  EXPECT_EQ(limit.size(), 1u);
}

TEST(KeyedRateLimit, ZeroIsNoLimit) {
  KeyedRateLimit limit(0);
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(limit.Admit("lamp-1/", kStart)) << i;
  EXPECT_EQ(limit.size(), 0u);
}

}  // namespace
}  // namespace fleetcore::gateway
