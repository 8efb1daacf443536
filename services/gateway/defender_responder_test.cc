// Device Defender's metrics reports: which topics are reports, which reports are
// well-formed (in both key forms, JSON and CBOR), and what the device hears back.
#include "services/gateway/defender_responder.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/gateway/broker_limits.h"
#include "services/gateway/defender_report.h"
#include "services/gateway/fake_gateway_store.h"

namespace fleetcore::gateway {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

// A report as the AWS IoT Device SDK's Device Defender client (aws-c-iot) writes one.
json LongReport() {
  return json::parse(R"({
    "header": {"report_id": 1700000000, "version": "1.0"},
    "metrics": {
      "listening_tcp_ports": {"ports": [{"interface": "eth0", "port": 22}], "total": 1},
      "listening_udp_ports": {"ports": [{"interface": "eth0", "port": 5353}], "total": 1},
      "network_stats": {"bytes_in": 29358693, "bytes_out": 26485035, "packets_in": 10013573,
                        "packets_out": 11382615},
      "tcp_connections": {"established_connections": {
          "connections": [{"local_interface": "eth0", "local_port": 80,
                           "remote_addr": "192.168.0.1:8000"}],
          "total": 1}}},
    "custom_metrics": {
      "cpu_usage": [{"number": 12.5}],
      "tasks": [{"number_list": [1, 2, 3]}],
      "modes": [{"string_list": ["eco", "boost"]}],
      "peers": [{"ip_list": ["10.0.0.1", "2001:db8::1"]}]}})");
}

// The same in the short keys FreeRTOS's defender library writes by default.
json ShortReport() {
  return json::parse(R"({
    "hed": {"rid": 42, "v": "1.0"},
    "met": {
      "tp": {"pts": [{"pt": 443}], "t": 1},
      "up": {"pts": [], "t": 0},
      "ns": {"bi": 1, "bo": 2, "pi": 3, "po": 4},
      "tc": {"ec": {"cs": [{"rad": "10.1.1.1:443", "lp": 50000}], "t": 1}}}})");
}

TEST(DefenderTopics, ReportsAndNotReports) {
  std::optional<DefenderTopic> t = ParseDefenderTopic("$aws/things/lamp-1/defender/metrics/json");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->thing_name, "lamp-1");
  EXPECT_FALSE(t->cbor);
  t = ParseDefenderTopic("$aws/things/lamp-1/defender/metrics/cbor");
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(t->cbor);
  EXPECT_TRUE(ClientMayPublishTo("$aws/things/lamp-1/defender/metrics/json"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/things/lamp-1/defender/metrics/cbor"));
  // The answers are the service's to publish.
  for (const char* topic :
       {"$aws/things/lamp-1/defender/metrics/json/accepted",
        "$aws/things/lamp-1/defender/metrics/cbor/rejected",
        "$aws/things/lamp-1/defender/metrics/xml", "$aws/things//defender/metrics/json",
        "$aws/things/lamp-1/defender/metrics", "$aws/things/lamp-1/defender/json"}) {
    EXPECT_FALSE(ParseDefenderTopic(topic).has_value()) << topic;
    EXPECT_FALSE(ClientMayPublishTo(topic)) << topic;
  }
}

TEST(DefenderReports, BothKeyFormsAndBothEncodingsAreWellFormed) {
  DefenderReportCheck c = CheckDefenderReport(LongReport().dump(), false);
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(c.report_id, 1700000000);
  c = CheckDefenderReport(ShortReport().dump(), false);
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(c.report_id, 42);
  const std::vector<uint8_t> cbor = json::to_cbor(ShortReport());
  c = CheckDefenderReport(std::string(cbor.begin(), cbor.end()), true);
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(c.report_id, 42);
  // Every metrics block is optional.
  c = CheckDefenderReport(R"({"header": {"report_id": 1, "version": "1.0"}, "metrics": {}})",
                          false);
  EXPECT_EQ(c.error, "");
}

// The first problem of a report made from LongReport() by `change`.
DefenderReportCheck CheckChanged(const std::function<void(json&)>& change) {
  json report = LongReport();
  change(report);
  return CheckDefenderReport(report.dump(), false);
}

TEST(DefenderReports, EachProblemIsNamedByItsPath) {
  struct Case {
    std::function<void(json&)> change;
    std::string says;
  };
  const std::vector<Case> cases = {
      {[](json& r) { r.erase("header"); }, "needs a header object"},
      {[](json& r) { r["header"]["report_id"] = "7"; }, "header needs report_id"},
      {[](json& r) { r["header"]["report_id"] = -1; }, "header needs report_id"},
      {[](json& r) { r["header"]["version"] = "2.0"; }, "header needs version \"1.0\""},
      {[](json& r) { r["header"].erase("version"); }, "header needs version"},
      {[](json& r) { r.erase("metrics"); }, "needs a metrics object"},
      {[](json& r) { r["metrics"]["listening_tcp_ports"]["ports"][0]["port"] = 70000; },
       "metrics.listening_tcp_ports.ports[0].port must be an integer from 0 to 65535"},
      {[](json& r) { r["metrics"]["listening_udp_ports"]["ports"][0].erase("port"); },
       "metrics.listening_udp_ports.ports[0] has no port"},
      {[](json& r) { r["metrics"]["listening_tcp_ports"]["ports"] = 3; },
       "metrics.listening_tcp_ports.ports must be an array"},
      {[](json& r) { r["metrics"]["network_stats"]["bytes_in"] = -5; },
       "metrics.network_stats.bytes_in must be a non-negative number"},
      {[](json& r) { r["metrics"]["listening_tcp_ports"]["total"] = "one"; },
       "metrics.listening_tcp_ports.total must be a non-negative number"},
      {[](json& r) {
         r["metrics"]["tcp_connections"]["established_connections"]["connections"][0].erase(
             "remote_addr");
       },
       "metrics.tcp_connections.established_connections.connections[0] needs remote_addr"},
      {[](json& r) { r["metrics"]["network_stats"] = json::array(); },
       "metrics.network_stats must be an object"},
      {[](json& r) { r["custom_metrics"]["aws:cpu"] = json::parse(R"([{"number": 1}])"); },
       "custom_metrics names \"aws:cpu\""},
      {[](json& r) { r["custom_metrics"]["cpu_usage"] = json::parse(R"({"number": 1})"); },
       "custom_metrics.cpu_usage must be an array of one object"},
      {[](json& r) { r["custom_metrics"]["peers"][0]["ip_list"][1] = "10.0.0.300"; },
       "custom_metrics.peers[0].ip_list must be an array of IP addresses"},
      {[](json& r) {
         r["custom_metrics"]["peers"][0]["ip_list"][0] = std::string("10.0.0.1\0x", 10);
       },
       "custom_metrics.peers[0].ip_list must be an array of IP addresses"},
      {[](json& r) { r["custom_metrics"]["tasks"][0] = json::parse(R"({"count": 3})"); },
       "custom_metrics.tasks[0] has \"count\""},
  };
  for (const Case& c : cases) {
    const DefenderReportCheck got = CheckChanged(c.change);
    EXPECT_EQ(got.error_code, "InvalidReport") << c.says;
    EXPECT_THAT(got.error, HasSubstr(c.says));
  }
  // A report that is not a map at all, or nests beyond any report, is refused unparsed.
  for (const std::string& payload :
       {std::string("not json"), std::string("[1, 2]"),
        R"({"header": )" + std::string(60000, '[') + std::string(60000, ']') + "}"}) {
    const DefenderReportCheck got = CheckDefenderReport(payload, false);
    EXPECT_EQ(got.error_code, "InvalidJson");
    EXPECT_THAT(got.error, HasSubstr("not a JSON object"));
  }
  EXPECT_EQ(CheckDefenderReport(LongReport().dump(), true).error_code, "InvalidJson");
}

class DefenderResponderTest : public ::testing::Test {
 protected:
  DefenderResponderTest()
      : broker_(BrokerLimits{}, &store_, &clock_), defender_(&broker_, nullptr) {
    broker_.SetServiceHook([this](const MessagePtr& m) { defender_.MaybeAnswer(m); });
    broker_.SetRulesHook([this](const MessagePtr& m) { seen_.push_back(m); });
  }

  // Publishes a report as a device would; the messages that went out (the report itself,
  // then its answer).
  std::vector<MessagePtr> Report(const std::string& topic, const std::string& payload) {
    seen_.clear();
    auto m = std::make_shared<Message>();
    m->topic = topic;
    m->payload = payload;
    broker_.Publish(m);
    return seen_;
  }

  FakeGatewayStore store_;
  SystemClock clock_;
  Broker broker_;
  DefenderResponder defender_;
  std::vector<MessagePtr> seen_;
};

TEST_F(DefenderResponderTest, AWellFormedReportIsAcceptedAndGoesOn) {
  const std::string topic = "$aws/things/lamp-1/defender/metrics/json";
  std::vector<MessagePtr> out = Report(topic, LongReport().dump());
  ASSERT_EQ(out.size(), 2u);
  // The answer is published from within the report's own publish, so the rules engine
  // sees it first.
  const MessagePtr& answer = absl::EndsWith(out[0]->topic, "/accepted") ? out[0] : out[1];
  const MessagePtr& report = answer == out[0] ? out[1] : out[0];
  EXPECT_EQ(report->topic, topic);
  EXPECT_EQ(answer->topic, topic + "/accepted");
  const json doc = json::parse(answer->payload);
  EXPECT_EQ(doc["thingName"], "lamp-1");
  EXPECT_EQ(doc["reportId"], 1700000000);
  EXPECT_EQ(doc["status"], "ACCEPTED");
  EXPECT_TRUE(doc["timestamp"].is_number_integer());
  EXPECT_FALSE(doc.contains("statusDetails"));
}

TEST_F(DefenderResponderTest, AMalformedReportIsRejectedWithWhy) {
  const std::string topic = "$aws/things/lamp-1/defender/metrics/json";
  json report = LongReport();
  report["header"]["version"] = "3.1";
  std::vector<MessagePtr> out = Report(topic, report.dump());
  ASSERT_EQ(out.size(), 2u);
  const MessagePtr& answer = absl::EndsWith(out[0]->topic, "/rejected") ? out[0] : out[1];
  EXPECT_EQ(answer->topic, topic + "/rejected");
  const json doc = json::parse(answer->payload);
  EXPECT_EQ(doc["status"], "REJECTED");
  EXPECT_EQ(doc["reportId"], 1700000000);
  EXPECT_EQ(doc["statusDetails"]["ErrorCode"], "InvalidReport");
  EXPECT_THAT(doc["statusDetails"]["ErrorMessage"].get<std::string>(),
              HasSubstr("header needs version"));

  out = Report(topic, "{");
  ASSERT_EQ(out.size(), 2u);
  const MessagePtr& bad = absl::EndsWith(out[0]->topic, "/rejected") ? out[0] : out[1];
  const json bad_doc = json::parse(bad->payload);
  EXPECT_EQ(bad_doc["statusDetails"]["ErrorCode"], "InvalidJson");
  EXPECT_FALSE(bad_doc.contains("reportId"));
}

TEST_F(DefenderResponderTest, ACborReportIsAnsweredInCbor) {
  const std::string topic = "$aws/things/lamp-1/defender/metrics/cbor";
  const std::vector<uint8_t> cbor = json::to_cbor(ShortReport());
  std::vector<MessagePtr> out = Report(topic, std::string(cbor.begin(), cbor.end()));
  ASSERT_EQ(out.size(), 2u);
  const MessagePtr& answer = absl::EndsWith(out[0]->topic, "/accepted") ? out[0] : out[1];
  EXPECT_EQ(answer->topic, topic + "/accepted");
  const json doc = json::from_cbor(answer->payload);
  EXPECT_EQ(doc["reportId"], 42);
  EXPECT_EQ(doc["status"], "ACCEPTED");
}

// CBOR strings are not checked as they are read: a name that is not UTF-8 is said as
// U+FFFD, and the JSON answer of a JSON-topic report stays JSON (nlohmann's dump() throws).
TEST_F(DefenderResponderTest, NamesThatAreNotUtf8AreRefusedNotThrown) {
  json report = ShortReport();
  report["cmet"]["aws:\xff\xfe"] = json::parse(R"([{"number": 1}])");
  const std::vector<uint8_t> cbor = json::to_cbor(report);
  const std::string bytes(cbor.begin(), cbor.end());
  const DefenderReportCheck c = CheckDefenderReport(bytes, true);
  EXPECT_EQ(c.error_code, "InvalidReport");
  EXPECT_THAT(c.error, HasSubstr("cmet names \"aws:\xef\xbf\xbd"));
  report["cmet"] = json::object();
  report["cmet"]["ok"] = json::array({json::object({{"\xff", 1}})});
  const std::vector<uint8_t> kind = json::to_cbor(report);
  EXPECT_THAT(CheckDefenderReport(std::string(kind.begin(), kind.end()), true).error,
              HasSubstr("has \"\xef\xbf\xbd\""));
  std::vector<MessagePtr> out = Report("$aws/things/lamp-1/defender/metrics/cbor", bytes);
  ASSERT_EQ(out.size(), 2u);
}

TEST_F(DefenderResponderTest, OtherTopicsAreNotAnswered) {
  EXPECT_EQ(Report("$aws/things/lamp-1/jobs/get", "{}").size(), 1u);
  EXPECT_EQ(Report("things/lamp-1/defender/metrics/json", LongReport().dump()).size(), 1u);
}

}  // namespace
}  // namespace fleetcore::gateway
