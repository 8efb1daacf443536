// The device shadow end to end: fleetcore-shadow and fleetcore-gateway on one Postgres, an
// app changing desired state over gRPC (fleetctl, as `aws iot-data`), and a device on
// paho-mqtt seeing the delta, reporting, and using get, a named shadow, a rejected update
// and delete over MQTT (tests/e2e/clients/paho_scenarios.py shadow_device).

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/testing/http.h"
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
using json = nlohmann::json;

constexpr char kToken[] = "e2e-admin-token";

class ShadowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    // Each calls the other: the shadow's port is chosen first.
    const int shadow_port = FreePort();
    // Devices without certificates, under an allow-all policy: this test is about shadows.
    anonymous_ = WriteAllowAllPolicy(::testing::TempDir() + "shadow-e2e-anonymous-policy.json");
    ASSERT_OK_AND_ASSIGN(
        gateway_,
        StartService("services/gateway/fleetcore-gateway",
                     {"--db-url=" + db_->url(), "--mqtt-listen=127.0.0.1:0", "--mqtts-listen=",
                      "--http-listen=127.0.0.1:0", "--anonymous-policy-file=" + anonymous_,
                      absl::StrCat("--shadow-endpoint=127.0.0.1:", shadow_port)},
                     {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
    ASSERT_OK_AND_ASSIGN(
        shadow_, StartService("services/shadow/fleetcore-shadow",
                              {"--db-url=" + db_->url(),
                               absl::StrCat("--listen=127.0.0.1:", shadow_port),
                               "--gateway-endpoint=" + gateway_.endpoint},
                              {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  }

  Fleetctl Ctl() const {
    return Fleetctl(kToken, {{"FLEETCORE_SHADOW_ENDPOINT", shadow_.endpoint},
                             {"FLEETCORE_GATEWAY_ENDPOINT", gateway_.endpoint}});
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::string anonymous_;
  RunningService gateway_;
  RunningService shadow_;
};

TEST_F(ShadowTest, AppChangesDesiredStateAndTheDeviceFollows) {
  ASSERT_OK_AND_ASSIGN(
      auto device,
      testing::Subprocess::Start({"/usr/bin/python3",
                                  SourcePath("tests/e2e/clients/paho_scenarios.py"),
                                  "shadow_device", "--port",
                                  std::to_string(gateway_.ports.at("mqtt_port")), "--topic",
                                  "lamp-1"}));
  ASSERT_OK(device->WaitForLine([](absl::string_view l) { return l == "subscribed"; }).status());
  // The app: desired color red, over gRPC.
  json accepted = Ctl().Json({"update-thing-shadow", "--thing-name", "lamp-1", "--payload",
                              R"({"state":{"desired":{"color":"red"}},"clientToken":"app-1"})"});
  EXPECT_EQ(accepted["payload"]["version"], 1) << accepted.dump();
  EXPECT_EQ(accepted["payload"]["clientToken"], "app-1");
  ASSERT_OK_AND_ASSIGN(int code, device->Wait(absl::Seconds(60)));
  EXPECT_EQ(code, 0) << device->output();
  EXPECT_THAT(device->output(), HasSubstr("ok shadow_device"));

  // The device deleted the classic shadow; the named one remains and is listed.
  Ctl().ExpectFailure({"get-thing-shadow", "--thing-name", "lamp-1"}, "NOT_FOUND",
                      "No shadow exists with name: 'lamp-1'");
  json named = Ctl().Json({"get-thing-shadow", "--thing-name", "lamp-1", "--shadow-name", "cfg"});
  EXPECT_EQ(named["payload"]["state"]["reported"]["fw"], "1.2") << named.dump();
  json list = Ctl().Json({"list-named-shadows-for-thing", "--thing-name", "lamp-1"});
  EXPECT_EQ(list["results"], json::parse(R"(["cfg"])")) << list.dump();
}

TEST_F(ShadowTest, ApiErrorsCarryAwsMessages) {
  Ctl().Json({"update-thing-shadow", "--thing-name", "lamp-2", "--payload",
              R"({"state":{"reported":{"t":20}}})"});
  Ctl().ExpectFailure({"update-thing-shadow", "--thing-name", "lamp-2", "--payload",
                       R"({"state":{"reported":{"t":21}},"version":7})"},
                      "ABORTED", "Version conflict");
  Ctl().ExpectFailure({"update-thing-shadow", "--thing-name", "lamp-2", "--payload", "{oops"},
                      "INVALID_ARGUMENT", "Invalid JSON");
  Ctl().ExpectFailure({"update-thing-shadow", "--thing-name", "lamp-2", "--payload",
                       R"({"state":{"desired":{"blob":")" + std::string(9000, 'x') + R"("}}})"},
                      "RESOURCE_EXHAUSTED", "The payload exceeds the maximum size allowed");
  Ctl().ExpectFailure({"delete-thing-shadow", "--thing-name", "lamp-2", "--shadow-name", "nope"},
                      "NOT_FOUND", "No shadow exists with name: 'nope'");
  Ctl().ExpectFailure({"get-thing-shadow", "--thing-name", "bad/name"}, "INVALID_ARGUMENT",
                      "Invalid thing name");
  json deleted = Ctl().Json({"delete-thing-shadow", "--thing-name", "lamp-2"});
  EXPECT_EQ(deleted["payload"]["version"], 1);
  // The gateway counted what it forwarded; the shadow service what it published.
  const std::string metrics = testing::HttpGet(shadow_.metrics_port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("fleetcore_shadow_messages_total{result=\"sent\"}"));
  EXPECT_THAT(metrics, HasSubstr("fleetcore_shadow_document_bytes_count{operation=\"update\"} 4"));
}

TEST_F(ShadowTest, TooManyRequestsInFlightOnOneConnectionAre429) {
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult r,
      testing::Run({"/usr/bin/python3", SourcePath("tests/e2e/clients/paho_scenarios.py"),
                    "shadow_flood", "--port", std::to_string(gateway_.ports.at("mqtt_port")),
                    "--topic", "lamp-4"},
                   {}, absl::Seconds(60)));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok shadow_flood"));
}

// AWS's quota of 20 requests a second per shadow, over MQTT and HTTPS together: a burst gets
// one second's worth, the rest are rejected with 429 "Rate exceeded" before they reach the
// shadow service, and a request a second later is served.
TEST_F(ShadowTest, RequestsOverAShadowsQuotaAre429) {
  Ctl().Json({"update-thing-shadow", "--thing-name", "lamp-6", "--payload",
              R"({"state":{"reported":{"on":true}}})"});
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult r,
      testing::Run(
          {"/usr/bin/python3", SourcePath("tests/e2e/clients/paho_scenarios.py"), "shadow_rate",
           "--port", std::to_string(gateway_.ports.at("mqtt_port")), "--topic", "lamp-6"},
          {}, absl::Seconds(60)));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  int accepted = 0;
  int exceeded = 0;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "answers %d %d", &accepted, &exceeded), 2) << r.out;
  // The 50 were sent at once: 20 pass, more only if they took the gateway longer than 1.5 s.
  EXPECT_EQ(accepted + exceeded, 50);
  EXPECT_GE(accepted, 20);
  EXPECT_GE(exceeded, 1);
  EXPECT_THAT(r.out, HasSubstr("late accepted"));

  // The same quota over HTTP, on another shadow: 50 GETs at once (curl --parallel, a
  // connection each).
  Ctl().Json({"update-thing-shadow", "--thing-name", "lamp-7", "--payload",
              R"({"state":{"reported":{"on":true}}})"});
  const std::string url =
      absl::StrCat("http://127.0.0.1:", gateway_.ports.at("http_port"), "/things/lamp-7/shadow");
  // curl sending 50 requests at once, a connection each, printing each status.
  const std::vector<std::string> parallel_curl{
      "/usr/bin/curl",  "-s", "-w", "%{http_code}\n", "--parallel", "--parallel-immediate",
      "--parallel-max", "50"};
  std::vector<std::string> argv = parallel_curl;
  for (int i = 0; i < 50; ++i) argv.insert(argv.end(), {"-o", "/dev/null", url});
  ASSERT_OK_AND_ASSIGN(testing::RunResult curl, testing::Run(argv, {}, absl::Seconds(60)));
  const std::vector<std::string> codes = absl::StrSplit(curl.out, '\n', absl::SkipEmpty());
  const int ok = static_cast<int>(std::count(codes.begin(), codes.end(), "200"));
  const int throttled = static_cast<int>(std::count(codes.begin(), codes.end(), "429"));
  EXPECT_EQ(ok + throttled, 50) << curl.out;
  EXPECT_GE(ok, 20) << curl.out;
  EXPECT_GE(throttled, 1) << curl.out;

  auto gets = [&](const std::string& result) {
    return static_cast<int64_t>(testing::MetricValue(
        testing::HttpGet(gateway_.metrics_port, "/metrics"),
        absl::StrCat(R"(fleetcore_gateway_shadow_requests_total{operation="get",result=")", result,
                     R"("})")));
  };
  const int64_t throttled_before = gets("throttled");
  EXPECT_EQ(throttled_before, exceeded + throttled);

  // And over HTTPS publish to the request topic (no MQTT connection): 50 at once.
  Ctl().Json({"update-thing-shadow", "--thing-name", "lamp-8", "--payload",
              R"({"state":{"reported":{"on":true}}})"});
  const int64_t accepted_before = gets("accepted");
  const std::string topic_url = absl::StrCat("http://127.0.0.1:", gateway_.ports.at("http_port"),
                                             "/topics/%24aws%2Fthings%2Flamp-8%2Fshadow%2Fget");
  argv = parallel_curl;
  for (int i = 0; i < 50; ++i) argv.insert(argv.end(), {"-o", "/dev/null", "-d", "{}", topic_url});
  ASSERT_OK_AND_ASSIGN(curl, testing::Run(argv, {}, absl::Seconds(60)));
  const std::vector<std::string> published = absl::StrSplit(curl.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(std::count(published.begin(), published.end(), "200"), 50) << curl.out;
  // Each publish is answered 200 at once; the shadow's answers follow.
  int64_t answered = 0;
  for (const absl::Time until = absl::Now() + absl::Seconds(10);
       answered < 50 && absl::Now() < until; absl::SleepFor(absl::Milliseconds(100))) {
    answered = gets("accepted") - accepted_before + gets("throttled") - throttled_before;
  }
  EXPECT_EQ(answered, 50);
  EXPECT_GE(gets("accepted") - accepted_before, 20);
  EXPECT_GE(gets("throttled") - throttled_before, 1);
}

TEST_F(ShadowTest, RestApiWithCurl) {
  // AWS's data-plane REST API, as its documentation's curl examples call it (the gateway's
  // HTTP listener; over HTTPS the same paths).
  const std::string base = absl::StrCat("http://127.0.0.1:", gateway_.ports.at("http_port"));
  auto curl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/curl", "-s", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<testing::RunResult> r = testing::Run(argv);
    EXPECT_TRUE(r.ok()) << r.status();
    const std::string out = r.ok() ? r->out : "";
    const size_t nl = out.rfind('\n');
    return std::make_pair(nl == std::string::npos ? 0 : std::stoi(out.substr(nl + 1)),
                          out.substr(0, nl == std::string::npos ? 0 : nl));
  };
  auto [status, body] = curl({"-X", "POST", "--data-binary",
                              R"({"state":{"desired":{"fan":"high"}}})",
                              base + "/things/lamp-3/shadow?name=climate"});
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(json::parse(body)["version"], 1) << body;
  std::tie(status, body) = curl({base + "/things/lamp-3/shadow?name=climate"});
  EXPECT_EQ(status, 200);
  EXPECT_EQ(json::parse(body)["state"]["delta"]["fan"], "high") << body;
  std::tie(status, body) = curl({base + "/api/things/shadow/ListNamedShadowsForThing/lamp-3"});
  EXPECT_EQ(status, 200);
  EXPECT_EQ(json::parse(body)["results"], json::parse(R"(["climate"])")) << body;
  std::tie(status, body) = curl({base + "/things/lamp-3/shadow"});
  EXPECT_EQ(status, 404);
  EXPECT_EQ(json::parse(body)["message"], "No shadow exists with name: 'lamp-3'") << body;
  std::tie(status, body) = curl({"-X", "POST", "--data-binary", R"({"state":[]})",
                                 base + "/things/lamp-3/shadow?name=climate"});
  EXPECT_EQ(status, 400);
  EXPECT_EQ(json::parse(body)["message"], "State node must be an object") << body;
  std::tie(status, body) = curl({"-X", "PUT", base + "/things/lamp-3/shadow"});
  EXPECT_EQ(status, 405);
  // Names that are not UTF-8 once decoded are the client's error, not the service's.
  std::tie(status, body) = curl({base + "/things/%FF/shadow"});
  EXPECT_EQ(status, 400) << body;
  std::tie(status, body) = curl({base + "/things/lamp-3/shadow?name=%FF"});
  EXPECT_EQ(status, 400) << body;
  std::tie(status, body) = curl({"-X", "DELETE", base + "/things/lamp-3/shadow?name=climate"});
  EXPECT_EQ(status, 200);
  EXPECT_EQ(json::parse(body)["version"], 1) << body;
}

}  // namespace
}  // namespace fleetcore::e2e
