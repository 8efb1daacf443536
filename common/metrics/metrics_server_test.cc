#include "common/metrics/metrics_server.h"

#include "common/testing/http.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace fleetcore::metrics {
namespace {

using ::fleetcore::testing::HttpGet;
using ::testing::HasSubstr;

TEST(MetricsServerTest, ServesRegistryAndProcessMetrics) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildCounter()
                     .Name("fleetcore_test_things_total")
                     .Help("Things.")
                     .Register(*registry);
  family.Add({{"kind", "lamp"}}).Increment(3);

  auto server = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  const std::string body = HttpGet((*server)->port(), "/metrics");
  EXPECT_THAT(body, HasSubstr("fleetcore_test_things_total{kind=\"lamp\"} 3"));
  EXPECT_THAT(body, HasSubstr("process_cpu_seconds_total"));
  EXPECT_THAT(body, HasSubstr("process_resident_memory_bytes"));
  EXPECT_THAT(body, HasSubstr("process_open_fds"));
}

TEST(MetricsServerTest, TakenPortIsAClearError) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto first = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(first.ok());
  auto second =
      MetricsServer::Start("127.0.0.1:" + std::to_string((*first)->port()), registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("already in use"));
}

}  // namespace
}  // namespace fleetcore::metrics
