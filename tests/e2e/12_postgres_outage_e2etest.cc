// Postgres dies under a running stack and comes back. Between the services and Postgres sits
// a TCP proxy (tests/e2e/clients/tcp_proxy.py) that can reset every connection and refuse
// new ones, as a dead database host does, without touching the test run's shared cluster.
// While it is down, every API call fails at once with UNAVAILABLE and says why, devices go
// on exchanging messages, and the gateway keeps what it must store; when it is back, the
// very next call works and nothing written meanwhile is lost.
#include <signal.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/e2e_util.h"

namespace fleetcore::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

constexpr char kToken[] = "e2e-admin-token";

class PostgresOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    ASSERT_OK_AND_ASSIGN(
        proxy_, testing::Subprocess::Start({"/usr/bin/python3",
                                            SourcePath("tests/e2e/clients/tcp_proxy.py"),
                                            "--target-port",
                                            std::to_string(db_->server().port)}));
    ASSERT_OK_AND_ASSIGN(std::string listening, proxy_->WaitForLine([](absl::string_view l) {
      return absl::StartsWith(l, "listening ");
    }));
    testing::TestPostgres through_proxy = db_->server();
    ASSERT_TRUE(absl::SimpleAtoi(listening.substr(10), &through_proxy.port)) << listening;
    url_ = through_proxy.Url(db_->name());

    anonymous_ = WriteAllowAllPolicy(::testing::TempDir() + "outage-anonymous-policy.json");
    ASSERT_OK_AND_ASSIGN(registry_, StartService("services/registry/fleetcore-registry",
                                                 {"--db-url=" + url_},
                                                 {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
    shadow_port_ = FreePort();
    ASSERT_NO_FATAL_FAILURE(StartGateway());
    ASSERT_OK_AND_ASSIGN(
        shadow_, StartService("services/shadow/fleetcore-shadow",
                              {"--db-url=" + url_,
                               absl::StrCat("--listen=127.0.0.1:", shadow_port_),
                               "--gateway-endpoint=" + gateway_.endpoint},
                              {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  }

  void StartGateway() {
    ASSERT_OK_AND_ASSIGN(
        gateway_,
        StartService("services/gateway/fleetcore-gateway",
                     {"--db-url=" + url_, "--mqtt-listen=127.0.0.1:0", "--mqtts-listen=",
                      "--anonymous-policy-file=" + anonymous_,
                      absl::StrCat("--shadow-endpoint=127.0.0.1:", shadow_port_)},
                     {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  }

  // The proxy resets every connection and refuses new ones / listens again.
  void PostgresDies() {
    proxy_->Signal(SIGUSR1);
    ASSERT_OK(proxy_->WaitForLine([](absl::string_view l) { return l == "down"; }).status());
  }
  void PostgresReturns() {
    proxy_->Signal(SIGUSR2);
    ASSERT_OK(proxy_->WaitForLine([](absl::string_view l) { return l == "up"; }).status());
  }

  Fleetctl Ctl() const {
    return Fleetctl(kToken, {{"FLEETCORE_REGISTRY_ENDPOINT", registry_.endpoint},
                             {"FLEETCORE_SHADOW_ENDPOINT", shadow_.endpoint},
                             {"FLEETCORE_GATEWAY_ENDPOINT", gateway_.endpoint}});
  }

  testing::RunResult Paho(const std::string& scenario, std::vector<std::string> extra) {
    std::vector<std::string> argv{"/usr/bin/python3",
                                  SourcePath("tests/e2e/clients/paho_scenarios.py"), scenario,
                                  "--port", std::to_string(gateway_.ports.at("mqtt_port"))};
    argv.insert(argv.end(), extra.begin(), extra.end());
    absl::StatusOr<testing::RunResult> r = testing::Run(argv, {}, absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::RunResult{};
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<testing::Subprocess> proxy_;
  std::string url_;
  std::string anonymous_;
  int shadow_port_ = 0;
  RunningService registry_;
  RunningService gateway_;
  RunningService shadow_;
};

TEST_F(PostgresOutageTest, ApisSaySoDevicesGoOnAndNothingIsLost) {
  const Fleetctl ctl = Ctl();
  ctl.Json({"create-thing", "--thing-name", "lamp-1"});
  ASSERT_NO_FATAL_FAILURE(PostgresDies());

  // The control plane: UNAVAILABLE at once, saying it is the database, with no password.
  for (const std::vector<std::string>& call :
       {std::vector<std::string>{"create-thing", "--thing-name", "lamp-2"},
        std::vector<std::string>{"describe-thing", "--thing-name", "lamp-1"},
        std::vector<std::string>{"update-thing-shadow", "--thing-name", "lamp-1", "--payload",
                                 R"({"state":{"desired":{"on":true}}})"}}) {
    SCOPED_TRACE(call[0]);
    testing::RunResult r = ctl.Run(call);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE: "));
    EXPECT_THAT(r.err, HasSubstr("database"));
    EXPECT_THAT(r.err, Not(HasSubstr(db_->server().password)));
  }

  // Devices: publish and subscribe need no database. A persistent session subscribes, is
  // sent messages while away, and a retained message is set: all of it waits in the
  // gateway's write queue.
  EXPECT_THAT(Paho("persist_subscribe", {"--prefix", "outage"}).out,
              HasSubstr("ok persist_subscribe"));
  // A shadow request over MQTT is answered on /rejected, 503, and tells the device nothing
  // about the database behind.
  auto rejected = StartSubscriber(
      ctl, {"-p", std::to_string(gateway_.ports.at("mqtt_port")), "-t",
            "$aws/things/lamp-1/shadow/update/rejected", "-C", "1", "-W", "30"},
      "outage-shadow-watcher");
  ASSERT_NE(rejected, nullptr);
  ASSERT_OK_AND_ASSIGN(testing::RunResult pub,
                       testing::Run({Tool("mosquitto_pub"), "-p",
                                     std::to_string(gateway_.ports.at("mqtt_port")), "-t",
                                     "$aws/things/lamp-1/shadow/update", "-m",
                                     R"({"state":{"reported":{"on":false}},"clientToken":"t1"})",
                                     "-q", "1"}));
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
  ASSERT_OK_AND_ASSIGN(int code, rejected->Wait());
  EXPECT_EQ(code, 0) << rejected->output();
  const json answer = json::parse(rejected->output(), nullptr, /*allow_exceptions=*/false);
  EXPECT_EQ(answer.value("code", 0), 503) << rejected->output();
  EXPECT_EQ(answer.value("clientToken", ""), "t1");
  EXPECT_EQ(answer.value("message", ""), "Service Unavailable") << answer.dump();
  // The operator is told why, in the gateway's log.
  EXPECT_OK(gateway_.process
                ->WaitForLine([](absl::string_view l) {
                  return absl::StrContains(l, "shadow request failed") &&
                         absl::StrContains(l, "database unavailable");
                })
                .status());
  const std::string failing = "fleetcore_gateway_store_errors_total";
  EXPECT_THAT(MetricsWith(gateway_.metrics_port, {failing}), HasSubstr(failing));

  ASSERT_NO_FATAL_FAILURE(PostgresReturns());

  // The next call works: the pools drop the connections the outage closed before using one.
  json thing = ctl.Json({"create-thing", "--thing-name", "lamp-2"});
  EXPECT_EQ(thing["thingName"], "lamp-2") << thing.dump();
  json shadow = ctl.Json({"update-thing-shadow", "--thing-name", "lamp-1", "--payload",
                          R"({"state":{"desired":{"on":true}}})"});
  EXPECT_EQ(shadow["payload"]["version"], 1) << shadow.dump();

  // The gateway writes what it queued, then a restart finds all of it.
  ASSERT_OK(gateway_.process
                ->WaitForLine([](absl::string_view l) {
                  return absl::StrContains(l, "writing to Postgres again");
                })
                .status());
  gateway_.process->Signal(SIGTERM);
  ASSERT_OK_AND_ASSIGN(int gateway_exit, gateway_.process->Wait());
  EXPECT_EQ(gateway_exit, 0) << gateway_.process->output();
  ASSERT_NO_FATAL_FAILURE(StartGateway());
  EXPECT_THAT(Paho("persist_receive", {"--prefix", "outage"}).out,
              HasSubstr("ok persist_receive"));
}

}  // namespace
}  // namespace fleetcore::e2e
