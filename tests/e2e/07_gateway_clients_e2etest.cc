// The MQTT gateway end to end, driven by real clients: paho-mqtt and raw packets
// (tests/e2e/clients/paho_scenarios.py), MQTT.js over TCP, TLS, WebSocket and secure
// WebSocket (tests/node/mqttjs_scenarios.js), mosquitto_pub/mosquitto_sub, curl for HTTPS
// publish, and fleetctl for the Broker gRPC API, against the real binary on a real
// Postgres.
#include <stdlib.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
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

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::MetricValue;
using json = nlohmann::json;

constexpr char kToken[] = "e2e-admin-token";

// A folder of its own for the endpoint certificate and client keys, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "fleetcore-gw-XXXXXX";
    path_ = mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One gateway with every listener for a test suite, with its Postgres database and a TLS
// endpoint certificate from tools/dev/endpoint-cert.sh.
struct Gateway {
  std::unique_ptr<testing::TestDatabase> db;
  std::unique_ptr<TempDir> dir;
  RunningService service;

  std::string ca() const { return dir->path() + "/ca.pem"; }
  int port(const std::string& name) const {
    auto it = service.ports.find(name + "_port");
    return it == service.ports.end() ? 0 : it->second;
  }

  // curl's POST of `body` to `path` over HTTPS: the answer's body, a newline, its status.
  std::string PostHttps(const std::string& path, const std::string& body) const {
    const std::string file = dir->path() + "/body";
    std::ofstream(file, std::ios::binary | std::ios::trunc) << body;
    absl::StatusOr<testing::RunResult> r =
        testing::Run({Tool("curl"), "-s", "--cacert", ca(), "-w", "\n%{http_code}", "--data-binary",
                      "@" + file, absl::StrCat("https://localhost:", port("https"), path)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->out : std::string();
  }

  static absl::StatusOr<Gateway> Start(std::vector<std::string> flags,
                                       std::unique_ptr<testing::TestDatabase> db = nullptr,
                                       std::unique_ptr<TempDir> dir = nullptr) {
    Gateway g;
    if (db == nullptr) {
      auto created = testing::TestDatabase::Create();
      if (!created.ok()) return created.status();
      db = std::move(*created);
    }
    if (dir == nullptr) {
      dir = std::make_unique<TempDir>();
      auto made = testing::Run({SourcePath("tools/dev/endpoint-cert.sh"), dir->path()});
      if (!made.ok()) return made.status();
      if (made->exit_code != 0) return absl::InternalError("endpoint-cert.sh: " + made->err);
    }
    // Clients without a certificate are admitted under an allow-all policy: these tests are
    // about MQTT itself (09_gateway_security covers certificates and policies).
    const std::string anonymous = WriteAllowAllPolicy(dir->path() + "/anonymous-policy.json");
    std::vector<std::string> args{"--db-url=" + db->url(),
                                  "--anonymous-policy-file=" + anonymous,
                                  "--mqtt-listen=127.0.0.1:0",
                                  "--mqtts-listen=127.0.0.1:0",
                                  "--http-listen=127.0.0.1:0",
                                  "--https-listen=127.0.0.1:0",
                                  "--endpoint-cert-file=" + dir->path() + "/endpoint.pem",
                                  "--endpoint-key-file=" + dir->path() + "/endpoint.key",
                                  "--io-threads=2"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto service = StartService("services/gateway/fleetcore-gateway", std::move(args),
                                {{"FLEETCORE_ADMIN_TOKEN", kToken}});
    if (!service.ok()) return service.status();
    g.db = std::move(db);
    g.dir = std::move(dir);
    g.service = std::move(*service);
    return g;
  }
};

testing::RunResult Paho(const Gateway& g, const std::string& scenario,
                        std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{"/usr/bin/python3",
                                SourcePath("tests/e2e/clients/paho_scenarios.py"),
                                scenario,
                                "--port",
                                std::to_string(g.port("mqtt")),
                                "--tls-port",
                                std::to_string(g.port("mqtts")),
                                "--cafile",
                                g.ca()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  absl::StatusOr<testing::RunResult> r = testing::Run(argv, {}, absl::Seconds(120));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : testing::RunResult{};
}

void ExpectScenario(const testing::RunResult& r, const std::string& scenario) {
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok " + scenario)) << r.err;
}

// --- paho and raw-packet scenarios on a gateway with the default limits -----------------

class GatewayClientsTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    // A 1 s keep-alive floor lets the keep-alive scenario see a timeout quickly.
    auto g = Gateway::Start({"--keep-alive-min=1s"});
    ASSERT_TRUE(g.ok()) << g.status();
    gateway_ = new Gateway(std::move(*g));
  }
  static void TearDownTestSuite() {
    delete gateway_;
    gateway_ = nullptr;
  }
  static Gateway* gateway_;
};
Gateway* GatewayClientsTest::gateway_ = nullptr;

TEST_P(GatewayClientsTest, PahoScenario) {
  ASSERT_NE(gateway_, nullptr);
  ExpectScenario(Paho(*gateway_, GetParam()), GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, GatewayClientsTest,
    ::testing::Values("wildcards_v311", "wildcards_v5", "qos_v311", "qos_v5", "qos2_exactly_once",
                      "offline_queue", "redelivery_v311", "redelivery_v5", "retained_v311",
                      "retained_v5", "retain_options", "will", "will_delay", "takeover_v311",
                      "takeover_v5", "keepalive", "shared", "v5_properties", "message_expiry",
                      "malformed", "tls", "lifecycle", "defender"),
    [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// --- MQTT.js over every transport ---------------------------------------------------------

class GatewayMqttJsTest : public GatewayClientsTest {};

testing::RunResult MqttJs(const std::vector<std::string>& args) {
  const std::string dir = SourcePath("tests/node");
  std::vector<std::string> argv{Tool("node"), dir + "/mqttjs_scenarios.js"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<testing::RunResult> r = testing::Run(argv, {}, absl::Seconds(60));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : testing::RunResult{};
}

TEST_F(GatewayMqttJsTest, RoundTripOnEveryTransportAndVersion) {
  ASSERT_NE(gateway_, nullptr);
  ASSERT_EQ(access(SourcePath("tests/node/node_modules/mqtt/package.json").c_str(), R_OK), 0)
      << "MQTT.js is not installed in tests/node; ./fleetcore test runs npm ci there";
  const Gateway& g = *gateway_;
  const std::vector<std::pair<std::string, bool>> urls{
      {absl::StrCat("mqtt://127.0.0.1:", g.port("mqtt")), false},
      {absl::StrCat("mqtts://127.0.0.1:", g.port("mqtts")), true},
      {absl::StrCat("ws://127.0.0.1:", g.port("http"), "/mqtt"), false},
      {absl::StrCat("wss://127.0.0.1:", g.port("https"), "/mqtt"), true}};
  for (const auto& [url, tls] : urls) {
    for (const char* version : {"4", "5"}) {
      SCOPED_TRACE(absl::StrCat(url, " MQTT protocol level ", version));
      std::vector<std::string> args{"roundtrip", "--url", url, "--version", version};
      if (tls) args.insert(args.end(), {"--ca", g.ca()});
      ExpectScenario(MqttJs(args), "roundtrip");
    }
  }
}

TEST_F(GatewayMqttJsTest, TopicAliasesAssignedByTheClient) {
  ASSERT_NE(gateway_, nullptr);
  ExpectScenario(MqttJs({"aliases", "--url",
                         absl::StrCat("mqtt://127.0.0.1:", gateway_->port("mqtt")), "--version",
                         "5"}),
                 "aliases");
}

// --- mosquitto_pub / mosquitto_sub ------------------------------------------------------

class GatewayMosquittoTest : public GatewayClientsTest {
 protected:
  std::unique_ptr<testing::Subprocess> Sub(std::vector<std::string> args,
                                           const std::string& client_id) {
    return StartSubscriber(Ctl(), std::move(args), client_id);
  }
  Fleetctl Ctl() const {
    return Fleetctl(kToken, {{"FLEETCORE_GATEWAY_ENDPOINT", gateway_->service.endpoint}});
  }
  std::string Port(const std::string& name) const {
    return std::to_string(gateway_->port(name));
  }
};

TEST_F(GatewayMosquittoTest, PublishAndSubscribeOverTcpAndTls) {
  ASSERT_NE(gateway_, nullptr);
  const Gateway& g = *gateway_;
  auto sub = Sub({"-p", Port("mqtts"), "-h", "localhost", "--cafile", g.ca(), "-t",
                  "e2e/mosq/#", "-q", "1", "-v", "-C", "3", "-V", "mqttv5", "-F", "%t %p %P"},
                 "mosq-sub");
  ASSERT_NE(sub, nullptr);
  // Plain TCP, 3.1.1.
  ASSERT_OK_AND_ASSIGN(testing::RunResult r,
                       testing::Run({Tool("mosquitto_pub"), "-p", Port("mqtt"), "-t", "e2e/mosq/a",
                                     "-m", "plain", "-q", "1"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // TLS, MQTT 5 with a user property.
  ASSERT_OK_AND_ASSIGN(r, testing::Run({Tool("mosquitto_pub"), "-p", Port("mqtts"), "-h", "localhost",
                                        "--cafile", g.ca(), "-t", "e2e/mosq/b", "-m", "secure",
                                        "-q", "2", "-V", "mqttv5", "-D", "publish",
                                        "user-property", "unit", "C"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_OK_AND_ASSIGN(r, testing::Run({Tool("mosquitto_pub"), "-p", Port("mqtts"), "-h",
                                        "localhost", "--cafile", g.ca(), "-t", "e2e/mosq/c",
                                        "-m", "third", "-q", "1"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_OK_AND_ASSIGN(int code, sub->Wait(absl::Seconds(15)));
  EXPECT_EQ(code, 0) << sub->output();
  const std::string out = sub->output();
  EXPECT_THAT(out, HasSubstr("e2e/mosq/a plain"));
  EXPECT_THAT(out, HasSubstr("e2e/mosq/b secure unit:C"));
  EXPECT_THAT(out, HasSubstr("e2e/mosq/c third"));
}

TEST_F(GatewayMosquittoTest, KilledClientsWillReachesSubscribers) {
  ASSERT_NE(gateway_, nullptr);
  auto watcher = Sub({"-p", Port("mqtt"), "-t", "e2e/mosq/status/+", "-v", "-C", "1"},
                     "mosq-watcher");
  ASSERT_NE(watcher, nullptr);
  auto dying = Sub({"-p", Port("mqtt"), "-t", "e2e/mosq/nothing", "--will-topic",
                    "e2e/mosq/status/dev-9", "--will-payload", "offline", "--will-qos", "1"},
                   "mosq-dying");
  ASSERT_NE(dying, nullptr);
  dying->Signal(SIGKILL);
  ASSERT_OK_AND_ASSIGN(int code, watcher->Wait(absl::Seconds(15)));
  EXPECT_EQ(code, 0);
  EXPECT_THAT(watcher->output(), HasSubstr("e2e/mosq/status/dev-9 offline"));
}

// --- HTTPS publish with curl ---------------------------------------------------------------

TEST_F(GatewayMosquittoTest, HttpsPublishWithCurl) {
  ASSERT_NE(gateway_, nullptr);
  const Gateway& g = *gateway_;
  auto sub = Sub({"-p", Port("mqtt"), "-t", "e2e/http/#", "-v", "-C", "2"}, "http-sub");
  ASSERT_NE(sub, nullptr);
  EXPECT_THAT(g.PostHttps("/topics/e2e/http/t1?qos=1", R"({"t":21})"), HasSubstr("\n200"));
  EXPECT_THAT(g.PostHttps("/topics/e2e/http/state?qos=1&retain=true", "on"), HasSubstr("\n200"));
  // Wildcards and over-long payloads are refused with a reason.
  EXPECT_THAT(g.PostHttps("/topics/e2e/http/%2B", "x"), HasSubstr("\n400"));
  // A topic that is not UTF-8 once decoded: refused, and the gateway serves on.
  EXPECT_THAT(g.PostHttps("/topics/e2e/http/%FF", "x"), HasSubstr("\n400"));
  EXPECT_THAT(g.PostHttps("/topics/e2e/http/big", std::string(131073, 'x')), HasSubstr("\n413"));
  // A body far over the limit, still coming after the 413: the client can send on and read
  // the answer (the gateway reads and drops the rest a while before it closes).
  ExpectScenario(Paho(g, "https_body_after_refusal",
                      {"--https-port", std::to_string(g.port("https"))}),
                 "https_body_after_refusal");
  ASSERT_OK_AND_ASSIGN(int code, sub->Wait(absl::Seconds(15)));
  EXPECT_EQ(code, 0);
  EXPECT_THAT(sub->output(), HasSubstr("e2e/http/t1 {\"t\":21}"));
  EXPECT_THAT(sub->output(), HasSubstr("e2e/http/state on"));
  // Plain HTTP on the development listener works the same way.
  ASSERT_OK_AND_ASSIGN(testing::RunResult r,
                       testing::Run({Tool("curl"), "-s", "-w", "\n%{http_code}", "--data-binary", "x",
                                     absl::StrCat("http://127.0.0.1:", g.port("http"),
                                                  "/topics/e2e/http/plain")}));
  EXPECT_THAT(r.out, HasSubstr("\n200"));
  // The retained one is visible through the API, payload in base64 as the AWS CLI prints.
  json got = Ctl().Json({"get-retained-message", "--topic", "e2e/http/state"});
  EXPECT_EQ(got.value("payload", ""), "b24=");
  EXPECT_EQ(got.value("qos", 0), 1);
}

// --- the Broker gRPC API through fleetctl --------------------------------------------------

TEST_F(GatewayMosquittoTest, FleetctlConnectionsPublishAndRetained) {
  ASSERT_NE(gateway_, nullptr);
  const Gateway& g = *gateway_;
  ASSERT_OK_AND_ASSIGN(
      auto waiter,
      testing::Subprocess::Start({"/usr/bin/python3",
                                  SourcePath("tests/e2e/clients/paho_scenarios.py"),
                                  "wait_message", "--port", Port("mqtt"), "--topic",
                                  "e2e/api/cmd", "--client-id", "api-device"}));
  ASSERT_OK(waiter->WaitForLine([](absl::string_view l) { return l == "subscribed"; }).status());

  json list = Ctl().Json({"list-connections"});
  bool found = false;
  for (const json& c : list["connections"]) found |= c.value("clientId", "") == "api-device";
  EXPECT_TRUE(found) << list.dump();
  json d = Ctl().Json({"describe-connection", "--client-id", "api-device"});
  EXPECT_TRUE(d.value("connected", false)) << d.dump();
  EXPECT_EQ(d["connection"].value("protocolVersion", ""), "5");
  EXPECT_EQ(d["connection"].value("listener", ""), "mqtt");
  EXPECT_EQ(d["session"]["subscriptions"][0].value("topicFilter", ""), "e2e/api/cmd");

  // Publish reaches the device with its properties.
  json p = Ctl().Json({"publish", "--topic", "e2e/api/cmd", "--payload", "reboot", "--qos", "1",
                       "--user-properties", R"([{"key":"origin","value":"ops"}])"});
  EXPECT_EQ(p.value("matchedSessions", 0), 1) << p.dump();
  ASSERT_OK_AND_ASSIGN(std::string line, waiter->WaitForLine([](absl::string_view l) {
    return absl::StartsWith(l, "message ");
  }));
  EXPECT_EQ(line, "message e2e/api/cmd reboot qos=1 props=[('origin', 'ops')]");
  ASSERT_OK_AND_ASSIGN(int code, waiter->Wait());
  EXPECT_EQ(code, 0) << waiter->output();

  // Retained messages: publish, list, get, delete with an empty payload.
  Ctl().Json({"publish", "--topic", "e2e/api/state", "--payload", "idle", "--retain", "--qos",
              "1"});
  json retained = Ctl().Json({"list-retained-messages"});
  found = false;
  for (const json& r : retained["retainedTopics"]) {
    found |= r.value("topic", "") == "e2e/api/state" && r.value("payloadSize", 0) == 4;
  }
  EXPECT_TRUE(found) << retained.dump();
  Ctl().Json({"publish", "--topic", "e2e/api/state", "--retain", "--qos", "1"});
  Ctl().ExpectFailure({"get-retained-message", "--topic", "e2e/api/state"}, "NOT_FOUND",
                      "e2e/api/state");

  // Bad requests get a reason; unknown clients NOT_FOUND; a missing token UNAUTHENTICATED.
  Ctl().ExpectFailure({"publish", "--topic", "e2e/+/x", "--payload", "x"}, "INVALID_ARGUMENT",
                      "topic");
  Ctl().ExpectFailure({"delete-connection", "--client-id", "nobody-here"}, "NOT_FOUND",
                      "nobody-here");

  // aws iot describe-endpoint: the DNS name of the endpoint certificate (localhost here).
  EXPECT_EQ(Ctl().Json({"describe-endpoint", "--endpoint-type", "iot:Data-ATS"}),
            json::parse(R"({"endpointAddress": "localhost"})"));
  Ctl().ExpectFailure({"describe-endpoint", "--endpoint-type", "iot:Jobs"}, "INVALID_ARGUMENT",
                      "no jobs service");
  ASSERT_OK_AND_ASSIGN(testing::RunResult r,
                       testing::Run({testing::BuildPath("tools/fleetctl/fleetctl"), "--endpoint",
                                     g.service.endpoint, "list-connections"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAUTHENTICATED"));
}

TEST_F(GatewayMosquittoTest, FleetctlDeleteConnectionDisconnectsAndCleans) {
  ASSERT_NE(gateway_, nullptr);
  auto sub = Sub({"-p", Port("mqtt"), "-t", "e2e/del/#", "-q", "1", "-c", "-V", "mqttv5", "-x",
                  "600"},
                 "del-device");
  ASSERT_NE(sub, nullptr);
  Ctl().Json({"delete-connection", "--client-id", "del-device", "--clean-session"});
  // mosquitto_sub ends once the broker disconnects it (it does not reconnect).
  ASSERT_OK(sub->Wait(absl::Seconds(15)).status());
  Ctl().ExpectFailure({"describe-connection", "--client-id", "del-device"}, "NOT_FOUND",
                      "del-device");
}

// AWS's SendDirectMessage: one client gets the message on a topic it never subscribed to,
// over the data plane's HTTP API (as the AWS SDKs send it) and over gRPC (fleetctl); with
// confirmation the answer waits for the client's PUBACK, and a client that never sends one
// makes it time out (504), at once when it disconnects first; a client that is not
// connected gets nothing queued (404).
TEST_F(GatewayMosquittoTest, DirectMessagesReachOneClientWithoutASubscription) {
  ASSERT_NE(gateway_, nullptr);
  const Gateway& g = *gateway_;
  auto device = Sub({"-p", Port("mqtt"), "-t", "e2e/dm/unused", "-q", "1", "-v", "-C", "2",
                     "-V", "mqttv5"},
                    "dm-device");
  ASSERT_NE(device, nullptr);
  auto other = Sub({"-p", Port("mqtt"), "-t", "e2e/dm/#", "-q", "1", "-v", "-W", "5"},
                   "dm-other");
  ASSERT_NE(other, nullptr);
  auto post = [&](const std::string& path, const std::string& body) {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        {Tool("curl"), "-s", "-i", "--data-binary", body,
         absl::StrCat("http://127.0.0.1:", g.port("http"), path)},
        {}, absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->out : std::string();
  };
  std::string answer =
      post("/connections/dm-device/messages?topic=e2e/dm/reboot&confirmation=true&timeout=5",
           "now");
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 200")) << answer;
  EXPECT_THAT(answer, HasSubstr(R"("message":"OK")"));
  json sent = Ctl().Json({"send-direct-message", "--client-id", "dm-device", "--topic",
                          "e2e/dm/update", "--payload", "v2", "--confirmation"});
  EXPECT_EQ(sent.value("message", ""), "OK") << sent.dump();
  ASSERT_OK_AND_ASSIGN(int code, device->Wait(absl::Seconds(15)));
  EXPECT_EQ(code, 0) << device->output();
  EXPECT_THAT(device->output(), HasSubstr("e2e/dm/reboot now"));
  EXPECT_THAT(device->output(), HasSubstr("e2e/dm/update v2"));
  // Not routed: a subscriber of the topic got neither.
  ASSERT_OK(other->Wait(absl::Seconds(15)).status());
  EXPECT_THAT(other->output(), ::testing::Not(HasSubstr("e2e/dm/")));

  // Not connected: nothing queued, AWS's error type.
  answer = post("/connections/dm-nobody/messages?topic=e2e/dm/reboot", "x");
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 404"));
  EXPECT_THAT(answer, HasSubstr("x-amzn-ErrorType: ResourceNotFoundException"));
  Ctl().ExpectFailure({"send-direct-message", "--client-id", "dm-nobody", "--topic", "a",
                       "--payload", "x"},
                      "NOT_FOUND", "not connected");
  EXPECT_THAT(post("/connections/dm-device/messages?topic=%24aws/x", "x"),
              HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(post("/connections/dm-device/messages", "x"), HasSubstr("topic parameter"));

  // A client that never acknowledges: the sender waiting for the PUBACK gets 504.
  ASSERT_OK_AND_ASSIGN(
      auto mute, testing::Subprocess::Start({"/usr/bin/python3",
                                             SourcePath("tests/e2e/clients/paho_scenarios.py"),
                                             "direct_no_ack", "--port", Port("mqtt"),
                                             "--client-id", "dm-mute"}));
  ASSERT_OK(mute->WaitForLine([](absl::string_view l) { return l == "connected"; }).status());
  answer = post("/connections/dm-mute/messages?topic=e2e/dm/ping&confirmation=true&timeout=1",
                "p");
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 504"));
  EXPECT_THAT(answer, HasSubstr("x-amzn-ErrorType: GatewayTimeoutException"));
  EXPECT_THAT(answer, HasSubstr("did not acknowledge"));
  ASSERT_OK_AND_ASSIGN(std::string line, mute->WaitForLine([](absl::string_view l) {
    return absl::StartsWith(l, "message ");
  }));
  EXPECT_EQ(line, "message e2e/dm/ping p qos=1 retain=False");
  // Its connection ends while a sender waits: the sender is told at once (504, not
  // confirmed), and the message is dropped rather than kept for the client's return.
  ASSERT_OK_AND_ASSIGN(
      auto waiting,
      testing::Subprocess::Start(
          {Tool("curl"), "-s", "-i", "--data-binary", "again",
           absl::StrCat("http://127.0.0.1:", g.port("http"),
                        "/connections/dm-mute/messages?topic=e2e/dm/again&confirmation=true"
                        "&timeout=60")}));
  ASSERT_OK(mute->WaitForLine([](absl::string_view l) {
                  return absl::StartsWith(l, "message e2e/dm/again");
                }).status());
  Ctl().Json({"delete-connection", "--client-id", "dm-mute"});
  ASSERT_OK(mute->Wait(absl::Seconds(15)).status());
  ASSERT_OK_AND_ASSIGN(int curl_exit, waiting->Wait(absl::Seconds(15)));
  EXPECT_EQ(curl_exit, 0);
  EXPECT_THAT(waiting->output(), HasSubstr("HTTP/1.1 504"));
  EXPECT_THAT(waiting->output(), HasSubstr("disconnected before acknowledging"));
  const std::string unconfirmed =
      R"(fleetcore_gateway_direct_messages_total{result="unconfirmed"} 1)";
  const std::string disconnected =
      R"(fleetcore_gateway_direct_messages_total{result="disconnected"} 1)";
  const std::string metrics = MetricsWith(g.service.metrics_port, {unconfirmed, disconnected});
  EXPECT_THAT(metrics, HasSubstr(unconfirmed));
  EXPECT_THAT(metrics, HasSubstr(disconnected));
}

// The rest of AWS's connection management on the data plane, as the SDKs' iot-data
// clients call it: GetConnection, ListSubscriptions and DeleteConnection over HTTP.
TEST_F(GatewayMosquittoTest, DataPlaneConnectionManagementWithCurl) {
  ASSERT_NE(gateway_, nullptr);
  const Gateway& g = *gateway_;
  auto device = Sub({"-p", Port("mqtt"), "-t", "e2e/cm/b", "-t", "e2e/cm/a/#", "-q", "1",
                     "-k", "45", "-V", "mqttv5", "-c", "-x", "600"},
                    "cm-device");
  ASSERT_NE(device, nullptr);
  auto call = [&](const std::string& method, const std::string& path) {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        {Tool("curl"), "-s", "-X", method, "-w", "\n%{http_code}",
         absl::StrCat("http://127.0.0.1:", g.port("http"), path)});
    EXPECT_TRUE(r.ok()) << r.status();
    const std::string out = r.ok() ? r->out : "";
    const size_t nl = out.rfind('\n');
    return std::pair<std::string, json>(out.substr(nl + 1),
                                        json::parse(out.substr(0, nl), nullptr, false));
  };
  auto [code, got] = call("GET", "/connections/cm-device?includeSocketInformation=true");
  EXPECT_EQ(code, "200") << got.dump();
  EXPECT_EQ(got["connected"], true);
  EXPECT_EQ(got["cleanSession"], false);
  EXPECT_EQ(got["keepAliveDuration"], 45);
  EXPECT_EQ(got["sessionExpiry"], 600);
  EXPECT_EQ(got["sourceIp"], "127.0.0.1");
  EXPECT_GT(got.value("sourcePort", 0), 0);
  EXPECT_EQ(got["targetIp"], "127.0.0.1");
  EXPECT_EQ(absl::StrCat(got.value("targetPort", 0)), Port("mqtt")) << "the listener it reached";
  EXPECT_GT(got.value("connectedSince", int64_t{0}), int64_t{1700000000000}) << "Unix ms";
  auto [lcode, listed] = call("GET", "/connections/cm-device/subscriptions");
  EXPECT_EQ(lcode, "200");
  EXPECT_EQ(listed["subscriptions"],
            json::parse(R"([{"topicFilter":"e2e/cm/a/#","qos":1},
                            {"topicFilter":"e2e/cm/b","qos":1}])"));
  // Disconnected, its persistent session kept: GetConnection says why it ended.
  auto [dcode, deleted] = call("DELETE", "/connections/cm-device");
  EXPECT_EQ(dcode, "200") << deleted.dump();
  ASSERT_OK(device->Wait(absl::Seconds(15)).status());
  auto [ocode, offline] = call("GET", "/connections/cm-device?includeSocketInformation=true");
  EXPECT_EQ(ocode, "200") << offline.dump();
  EXPECT_EQ(offline["connected"], false);
  EXPECT_EQ(offline["disconnectReason"], "API_INITIATED_DISCONNECT");
  EXPECT_FALSE(offline.contains("sourceIp")) << "no socket while disconnected";
  // cleanSession=true ends the session as well. DeleteConnection is one a second per client
  // id: sooner, the call is answered 429 ThrottlingException (as on AWS), so it is retried.
  std::pair<std::string, json> clean;
  for (int attempt = 0; attempt < 50; ++attempt) {
    clean = call("DELETE", "/connections/cm-device?cleanSession=true");
    if (clean.first != "429") break;
    EXPECT_THAT(clean.second.value("message", ""), HasSubstr("one a second per client id"));
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(clean.first, "200") << clean.second.dump();
  EXPECT_EQ(call("GET", "/connections/cm-device").first, "404");
}

TEST_F(GatewayMosquittoTest, MetricsCountTheTraffic) {
  ASSERT_NE(gateway_, nullptr);
  ASSERT_OK_AND_ASSIGN(testing::RunResult r,
                       testing::Run({Tool("mosquitto_pub"), "-p", Port("mqtt"), "-t", "e2e/metrics",
                                     "-m", "x", "-q", "1"}));
  ASSERT_EQ(r.exit_code, 0);
  const std::string metrics = testing::HttpGet(gateway_->service.metrics_port, "/metrics");
  for (const char* family :
       {"fleetcore_gateway_connections{", "fleetcore_gateway_connects_total{",
        "fleetcore_gateway_messages_received_total{qos=\"1\"}", "fleetcore_gateway_bytes_total{",
        "fleetcore_gateway_delivery_latency_seconds_bucket", "fleetcore_gateway_sessions "}) {
    EXPECT_THAT(metrics, HasSubstr(family));
  }
}

// --- limits, on a gateway configured small -------------------------------------------------

class GatewayLimitsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GatewayLimitsTest, Enforced) {
  ASSERT_OK_AND_ASSIGN(
      Gateway g,
      Gateway::Start({"--max-payload-size=1024", "--max-topic-length=32",
                      "--max-filters-per-subscribe=2", "--max-subscriptions-per-connection=3",
                      "--max-client-id-length=16", "--max-qos=1", "--max-inflight=5",
                      "--max-queued-messages=10", "--max-topic-aliases=2"}));
  ExpectScenario(Paho(g, GetParam(), {"--prefix", "l"}), GetParam());
  // What was refused is counted, by reason.
  const std::string metrics = testing::HttpGet(g.service.metrics_port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr(GetParam() == "limits"
                                     ? "fleetcore_gateway_protocol_errors_total{reason=\"payload_too_large\"} 2"
                                     : "fleetcore_gateway_dropped_messages_total{reason=\"queue_full\"} 24"));
}

INSTANTIATE_TEST_SUITE_P(Scenarios, GatewayLimitsTest,
                         ::testing::Values("limits", "inflight_and_queue"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// At --max-retained-messages, a new topic's retained message is refused to MQTT 5 (0x97) and
// delivered unretained to MQTT 3.1.1; replacing and deleting still work.
TEST(GatewayRetainedLimitTest, RetainedMessagesBeyondTheLimitAreNotKept) {
  ASSERT_OK_AND_ASSIGN(Gateway g, Gateway::Start({"--max-retained-messages=2"}));
  ExpectScenario(Paho(g, "retained_limit", {"--prefix", "rl"}), "retained_limit");
  // The Broker API says why.
  Fleetctl(kToken, {{"FLEETCORE_GATEWAY_ENDPOINT", g.service.endpoint}})
      .ExpectFailure({"publish", "--topic", "rl/e", "--payload", "e", "--retain"},
                     "RESOURCE_EXHAUSTED",
                     "holds 2 retained messages, its --max-retained-messages");
  // So does HTTPS publish, with AWS's answer to a request over a quota; a message that is
  // not retained, or empties a retained topic, still goes.
  EXPECT_THAT(g.PostHttps("/topics/rl/h?retain=true", "h"),
              AllOf(HasSubstr("as many retained messages as it may"), HasSubstr("\n429")));
  EXPECT_THAT(g.PostHttps("/topics/rl/h", "h"), HasSubstr("\n200"));
  EXPECT_THAT(g.PostHttps("/topics/rl/h?retain=true", ""), HasSubstr("\n200"));
  // The broker's counters reach /metrics once a second.
  auto refused = [&] {
    return MetricValue(testing::HttpGet(g.service.metrics_port, "/metrics"),
                       "fleetcore_gateway_retained_refused_total");
  };
  for (const absl::Time until = absl::Now() + absl::Seconds(10);
       refused() < 4 && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  // The MQTT 5 refusal, the 3.1.1 message delivered unretained, the API's and HTTPS's
  // refusals.
  EXPECT_EQ(refused(), 4);
}

// --- inbound rate limits: a client over them is read more slowly, losing nothing -------------

TEST(GatewayThrottleTest, ClientsOverTheirRateAreSlowedNotDropped) {
  ASSERT_OK_AND_ASSIGN(
      Gateway g,
      Gateway::Start({"--max-publishes-per-second=50", "--max-inbound-kb-per-second=64",
                      "--endpoint-address=iot.example.test"}));
  // (A gateway set up for its devices' own name answers describe-endpoint with it.)
  EXPECT_EQ(Fleetctl(kToken, {{"FLEETCORE_GATEWAY_ENDPOINT", g.service.endpoint}})
                .Json({"describe-endpoint"}),
            json::parse(R"({"endpointAddress": "iot.example.test"})"));
  for (const char* scenario : {"throttled_tcp", "throttled_tls", "throttled_ws"}) {
    ExpectScenario(
        Paho(g, scenario, {"--prefix", "thr", "--ws-port", std::to_string(g.port("http"))}),
        scenario);
  }
  // Each limit paused the publisher at least once.
  const std::string metrics = testing::HttpGet(g.service.metrics_port, "/metrics");
  for (const char* limit : {"publishes", "bytes"}) {
    EXPECT_GT(MetricValue(metrics,
                          absl::StrCat("fleetcore_gateway_throttled_total{limit=\"", limit, "\"}")),
              0)
        << limit << "\n"
        << metrics;
  }
}

// --- the endpoint certificate renewed in place ------------------------------------------------

// Whether a TLS client trusting `ca` completes a handshake with the gateway on `port`.
bool TrustedBy(int port, const std::string& ca) {
  absl::StatusOr<testing::RunResult> r =
      testing::Run({"/usr/bin/openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port),
                    "-servername", "localhost", "-CAfile", ca, "-verify_return_error", "-brief"},
                   {}, absl::Seconds(20));
  return r.ok() && r->exit_code == 0;
}

// Replaces `to` with a copy of `from` in one step (a renewal tool writes, then renames).
void ReplaceFile(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to + ".new",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(to + ".new", to);
}

// A renewal (certbot, cert-manager) rewrites the files: new handshakes present the new
// certificate within seconds, devices already connected stay, a pair that does not match is
// refused with the one in use kept, and SIGHUP reloads at once instead of ending the gateway.
TEST(GatewayCertificateTest, ARenewedEndpointCertificateIsServedWithoutARestart) {
  ASSERT_OK_AND_ASSIGN(Gateway g, Gateway::Start({}));
  const int port = g.port("mqtts");
  const std::string cert = g.dir->path() + "/endpoint.pem";
  const std::string key = g.dir->path() + "/endpoint.key";
  TempDir renewed;  // the same names, signed by another CA
  ASSERT_OK_AND_ASSIGN(testing::RunResult made,
                       testing::Run({SourcePath("tools/dev/endpoint-cert.sh"), renewed.path()}));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string old_ca = g.ca();
  const std::string new_ca = renewed.path() + "/ca.pem";
  ASSERT_TRUE(TrustedBy(port, old_ca));
  ASSERT_FALSE(TrustedBy(port, new_ca));
  auto metrics = [&] { return testing::HttpGet(g.service.metrics_port, "/metrics"); };
  const std::string ok = R"(fleetcore_gateway_endpoint_certificate_reloads_total{result="ok"})";
  const std::string failed =
      R"(fleetcore_gateway_endpoint_certificate_reloads_total{result="failed"})";
  const std::string expiry = "fleetcore_gateway_endpoint_certificate_expiry_timestamp_seconds";
  const double first_expiry = MetricValue(metrics(), expiry);
  EXPECT_GT(first_expiry, absl::ToUnixSeconds(absl::Now()));

  // A device connected over TLS before the renewal.
  ASSERT_OK_AND_ASSIGN(
      auto device,
      testing::Subprocess::Start({"/usr/bin/stdbuf", "-oL", Tool("mosquitto_sub"), "-h",
                                  "localhost", "-p", std::to_string(port), "--cafile", old_ca,
                                  "-i", "renew-dev", "-t", "renew/x", "-C", "1", "-d"}));
  ASSERT_OK(device
                ->WaitForLine([](absl::string_view l) { return absl::StrContains(l, "SUBACK"); })
                .status());

  std::filesystem::copy_file(key, renewed.path() + "/old.key");
  ReplaceFile(renewed.path() + "/endpoint.key", key);
  ReplaceFile(renewed.path() + "/endpoint.pem", cert);
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (!TrustedBy(port, new_ca) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(TrustedBy(port, new_ca));
  EXPECT_FALSE(TrustedBy(port, old_ca));
  EXPECT_TRUE(TrustedBy(g.port("https"), new_ca));  // HTTPS and WSS share the context
  EXPECT_GE(MetricValue(metrics(), ok), 1);
  EXPECT_GT(MetricValue(metrics(), expiry), 0);

  // The device connected before still gets its messages.
  ASSERT_OK_AND_ASSIGN(testing::RunResult pub,
                       testing::Run({Tool("mosquitto_pub"), "-h", "127.0.0.1", "-p",
                                     std::to_string(g.port("mqtt")), "-t", "renew/x", "-m",
                                     "still here"}));
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
  ASSERT_OK_AND_ASSIGN(int code, device->Wait(absl::Seconds(15)));
  EXPECT_EQ(code, 0) << device->output();
  EXPECT_THAT(device->output(), HasSubstr("still here"));

  // A key that does not match the certificate: refused, the renewed pair stays in use.
  const double failed_before = MetricValue(metrics(), failed);
  ReplaceFile(renewed.path() + "/old.key", key);
  absl::Time until = absl::Now() + absl::Seconds(15);
  while (MetricValue(metrics(), failed) <= failed_before && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_GT(MetricValue(metrics(), failed), failed_before);
  EXPECT_TRUE(TrustedBy(port, new_ca));

  // SIGHUP reads the files again at once (they still do not make a pair), and the gateway
  // serves on.
  const double failed_after = MetricValue(metrics(), failed);
  g.service.process->Signal(SIGHUP);
  until = absl::Now() + absl::Seconds(15);
  while (MetricValue(metrics(), failed) <= failed_after && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_GT(MetricValue(metrics(), failed), failed_after);
  ReplaceFile(renewed.path() + "/endpoint.key", key);
  until = absl::Now() + absl::Seconds(15);
  const double ok_before = MetricValue(metrics(), ok);
  while (MetricValue(metrics(), ok) <= ok_before && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_GT(MetricValue(metrics(), ok), ok_before);
  EXPECT_TRUE(TrustedBy(port, new_ca));
  EXPECT_OK(g.service.process
                ->WaitForLine([](absl::string_view l) {
                  return absl::StrContains(l, "endpoint certificate was not reloaded");
                }, absl::Seconds(5))
                .status());
}

// --tls-min-version 1.3 refuses TLS 1.2 handshakes on every TLS listener; 1.3 goes on.
TEST(GatewayTlsVersionTest, TlsOlderThanTheMinimumIsRefused) {
  ASSERT_OK_AND_ASSIGN(Gateway g, Gateway::Start({"--tls-min-version=1.3"}));
  for (const char* listener : {"mqtts", "https"}) {
    auto handshake = [&](const char* version) {
      absl::StatusOr<testing::RunResult> r = testing::Run(
          {"/usr/bin/openssl", "s_client", "-connect",
           absl::StrCat("127.0.0.1:", g.port(listener)), "-servername", "localhost", "-CAfile",
           g.ca(), "-verify_return_error", "-brief", version},
          {}, absl::Seconds(20));
      return r.ok() && r->exit_code == 0;
    };
    EXPECT_FALSE(handshake("-tls1_2")) << listener;
    EXPECT_TRUE(handshake("-tls1_3")) << listener;
  }
}

// --- --max-connections ---------------------------------------------------------------------

// Over the limit a connection is closed at accept on every transport, and counted; once a
// client leaves, the next gets in.
TEST(GatewayConnectionLimitTest, ConnectionsOverTheLimitAreRefused) {
  ASSERT_OK_AND_ASSIGN(Gateway g, Gateway::Start({"--max-connections=2"}));
  auto subscriber = [&](const std::string& id, bool tls) {
    std::vector<std::string> argv{"/usr/bin/stdbuf", "-oL", Tool("mosquitto_sub"), "-h",
                                  "localhost", "-t", "limit/x", "-i", id, "-d", "-p",
                                  std::to_string(g.port(tls ? "mqtts" : "mqtt"))};
    if (tls) argv.insert(argv.end(), {"--cafile", g.ca()});
    auto p = testing::Subprocess::Start(argv);
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) {
      EXPECT_OK((*p)->WaitForLine([](absl::string_view l) {
                   return absl::StrContains(l, "SUBACK");
                 }).status());
    }
    return p.ok() ? *std::move(p) : nullptr;
  };
  auto a = subscriber("limit-a", false);
  auto b = subscriber("limit-b", true);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto publish = [&] {
    absl::StatusOr<testing::RunResult> r =
        testing::Run({Tool("mosquitto_pub"), "-h", "127.0.0.1", "-p",
                      std::to_string(g.port("mqtt")), "-t", "limit/x", "-m", "hi"});
    return r.ok() ? r->exit_code : -1;
  };
  EXPECT_NE(publish(), 0);
  // A WebSocket upgrade is answered 503.
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult ws,
      testing::Run({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                    "Connection: Upgrade", "-H", "Upgrade: websocket", "-H",
                    "Sec-WebSocket-Version: 13", "-H",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H",
                    "Sec-WebSocket-Protocol: mqtt",
                    absl::StrCat("http://127.0.0.1:", g.port("http"), "/mqtt")}));
  EXPECT_EQ(ws.out, "503");
  const std::string metrics = testing::HttpGet(g.service.metrics_port, "/metrics");
  EXPECT_EQ(MetricValue(metrics, "fleetcore_gateway_max_connections"), 2);
  for (const char* listener : {"mqtt", "ws"}) {
    EXPECT_GE(MetricValue(metrics, absl::StrCat("fleetcore_gateway_connects_total{listener=\"",
                                                listener, "\",result=\"max_connections\"}")),
              1)
        << listener;
  }
  // One leaves: the next gets in.
  a->Signal(SIGTERM);
  ASSERT_OK(a->Wait().status());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  int code = publish();
  while (code != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    code = publish();
  }
  EXPECT_EQ(code, 0);
}

// --- --max-connects-per-client-id-per-second ------------------------------------------------

// AWS's one CONNECT a second per client id: a second CONNECT within the second is refused
// (MQTT 5: connection rate exceeded; 3.1.1: server unavailable), another client id is not,
// and a second later the first gets in again.
TEST(GatewayConnectThrottleTest, OneConnectASecondPerClientId) {
  ASSERT_OK_AND_ASSIGN(Gateway g, Gateway::Start({"--max-connects-per-client-id-per-second=1"}));
  auto publish = [&](const std::string& id, const std::string& version) {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        {Tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", std::to_string(g.port("mqtt")), "-V",
         version, "-i", id, "-t", "throttle/x", "-m", "hi"});
    return r.ok() ? *r : testing::RunResult{.exit_code = -1, .err = r.status().ToString()};
  };
  const absl::Time first = absl::Now();
  testing::RunResult r = publish("throttled-1", "mqttv5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = publish("throttled-1", "mqttv5");
  if (absl::Now() - first < absl::Milliseconds(900)) {  // within the second, as meant
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr("rate exceeded")) << r.err;
  }
  EXPECT_EQ(publish("throttled-2", "mqttv5").exit_code, 0);
  absl::SleepFor(absl::Seconds(1) - (absl::Now() - first) + absl::Milliseconds(50));
  const absl::Time second = absl::Now();
  EXPECT_EQ(publish("throttled-1", "mqttv311").exit_code, 0);
  r = publish("throttled-1", "mqttv311");
  if (absl::Now() - second < absl::Milliseconds(900)) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr("unavailable")) << r.err;
  }
  const std::string metrics = testing::HttpGet(g.service.metrics_port, "/metrics");
  EXPECT_GE(MetricValue(metrics,
                        "fleetcore_gateway_connects_total{listener=\"mqtt\",result=\"throttled\"}"),
            1);
}

// --- --max-accepts-per-second --------------------------------------------------------------

// Twelve clients at once against 4 accepts a second: all get in (none refused), the first
// four at once and the rest no faster than the rate allows, and the pauses are counted.
TEST(GatewayAcceptRateTest, AReconnectStormIsTakenAtThePaceSet) {
  ASSERT_OK_AND_ASSIGN(Gateway g, Gateway::Start({"--max-accepts-per-second=4"}));
  const std::string script = R"(
import socket, sys, time
port = int(sys.argv[1])
start = time.monotonic()
socks = []
for i in range(12):
    s = socket.create_connection(("127.0.0.1", port))
    cid = ("storm-%02d" % i).encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    s.sendall(bytes([0x10, len(body)]) + body)
    socks.append(s)
for s in socks:
    s.settimeout(20)
    ack = s.recv(4)
    assert ack == b"\x20\x02\x00\x00", ack
print("all 12 accepted after %.2f s" % (time.monotonic() - start))
)";
  ASSERT_OK_AND_ASSIGN(testing::RunResult r,
                       testing::Run({"/usr/bin/python3", "-c", script,
                                     std::to_string(g.port("mqtt"))},
                                    {}, absl::Seconds(60)));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  double seconds = 0;
  ASSERT_TRUE(absl::SimpleAtod(
      absl::StripSuffix(absl::StripPrefix(absl::StripTrailingAsciiWhitespace(r.out),
                                          "all 12 accepted after "),
                        " s"),
      &seconds))
      << r.out;
  // A lower bound only: (12 - 4) / 4 = 2 s at the earliest; slowness cannot make it fail.
  EXPECT_GE(seconds, 1.8) << r.out;
  const std::string metrics = testing::HttpGet(g.service.metrics_port, "/metrics");
  EXPECT_GE(MetricValue(metrics, R"(fleetcore_gateway_throttled_total{limit="accepts"})"), 1);
}

// --- restart: drain, then sessions and retained messages come back from Postgres ------------

TEST(GatewayRestartTest, DrainsThenRestoresSessionsFromPostgres) {
  ASSERT_OK_AND_ASSIGN(Gateway first, Gateway::Start({}));
  ExpectScenario(Paho(first, "persist_subscribe", {"--prefix", "restart"}), "persist_subscribe");
  ASSERT_OK_AND_ASSIGN(
      auto watcher,
      testing::Subprocess::Start({"/usr/bin/python3",
                                  SourcePath("tests/e2e/clients/paho_scenarios.py"),
                                  "drain_watch", "--port", std::to_string(first.port("mqtt"))}));
  ASSERT_OK(watcher->WaitForLine([](absl::string_view l) { return l == "connected"; }).status());
  first.service.process->Signal(SIGTERM);
  ASSERT_OK_AND_ASSIGN(int watcher_code, watcher->Wait());
  EXPECT_EQ(watcher_code, 0) << watcher->output();
  ASSERT_OK_AND_ASSIGN(int gateway_code, first.service.process->Wait());
  EXPECT_EQ(gateway_code, 0) << first.service.process->output();

  ASSERT_OK_AND_ASSIGN(Gateway second,
                       Gateway::Start({}, std::move(first.db), std::move(first.dir)));
  // Why the session's connection ended survives the restart (GetConnection's
  // disconnectReason): its client disconnected itself.
  json d = Fleetctl(kToken, {{"FLEETCORE_GATEWAY_ENDPOINT", second.service.endpoint}})
               .Json({"describe-connection", "--client-id", "restart-sub"});
  EXPECT_FALSE(d.contains("connection")) << d.dump();
  EXPECT_EQ(d["session"].value("disconnectReason", ""), "CLIENT_INITIATED_DISCONNECT") << d.dump();
  ExpectScenario(Paho(second, "persist_receive", {"--prefix", "restart"}), "persist_receive");
}

}  // namespace
}  // namespace fleetcore::e2e
