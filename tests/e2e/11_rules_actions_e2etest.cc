// Topic rules end to end: fleetcore-gateway feeding fleetcore-rules, devices publishing with
// mosquitto_pub, and each action against a real target: the seed's high-temperature rule
// into a Postgres table (only readings above the threshold become rows), republish to a
// subscriber, http to a local server (with retries, then the errorAction's AWS error
// payload), Basic Ingest, a disabled rule that no longer fires, and get_thing_shadow() and
// get_registry_data() reading a real shadow service and registry.
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/testing/http.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pqxx/pqxx"
#include "tests/e2e/e2e_util.h"

namespace fleetcore::e2e {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kToken[] = "e2e-admin-token";
// The rules service's S3 credentials, accepted by the test's S3 endpoint only.
constexpr char kS3KeyId[] = "AKIDFLEETCORETEST";
constexpr char kS3Secret[] = "test-only-secret-for-the-local-s3-endpoint";

// mosquitto_sub -v output: (topic, JSON payload) per line.
std::vector<std::pair<std::string, json>> Lines(const std::string& out) {
  std::vector<std::pair<std::string, json>> lines;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    const size_t space = line.find(' ');
    if (space == absl::string_view::npos) continue;
    lines.emplace_back(std::string(line.substr(0, space)),
                       json::parse(line.substr(space + 1), nullptr, false));
  }
  return lines;
}

class RulesActionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    const int rules_port = FreePort();
    const std::string anonymous =
        WriteAllowAllPolicy(::testing::TempDir() + "rules-e2e-anonymous-policy.json");
    ASSERT_OK_AND_ASSIGN(
        gateway_,
        StartService("services/gateway/fleetcore-gateway",
                     {"--db-url=" + db_->url(), "--mqtt-listen=127.0.0.1:0", "--mqtts-listen=",
                      "--http-listen=127.0.0.1:0", "--anonymous-policy-file=" + anonymous,
                      "--shadow-endpoint=", absl::StrCat("--rules-endpoint=127.0.0.1:", rules_port)},
                     {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
    // Postgres actions into other databases find their password in the service's libpq
    // password file, never in the rule.
    const testing::TestPostgres& pg = db_->server();
    const std::string passfile = ::testing::TempDir() + "rules-e2e-pgpass";
    std::ofstream(passfile) << pg.host << ":" << pg.port << ":*:" << pg.user << ":"
                            << pg.password << "\n";
    ASSERT_EQ(chmod(passfile.c_str(), 0600), 0);
    std::vector<std::string> flags{"--db-url=" + db_->url(),
                                   absl::StrCat("--listen=127.0.0.1:", rules_port),
                                   "--gateway-endpoint=" + gateway_.endpoint,
                                   "--http-attempts=2",
                                   std::string("--s3-access-key-id=") + kS3KeyId};
    for (std::string& f : ExtraRulesFlags()) flags.push_back(std::move(f));
    ASSERT_OK_AND_ASSIGN(
        rules_, StartService("services/rules/fleetcore-rules", flags,
                             {{"FLEETCORE_ADMIN_TOKEN", kToken},
                              {"FLEETCORE_S3_SECRET_ACCESS_KEY", kS3Secret},
                              {"PGPASSFILE", passfile}}));
    CreateTableForRules(
        "CREATE TABLE public.high_temperatures (id bigserial PRIMARY KEY, "
        "payload jsonb NOT NULL)",
        "public.high_temperatures");
  }

  // More flags for the rules service (a subclass's).
  virtual std::vector<std::string> ExtraRulesFlags() const { return {}; }

  Fleetctl Ctl() const {
    return Fleetctl(kToken, {{"FLEETCORE_RULES_ENDPOINT", rules_.endpoint},
                             {"FLEETCORE_GATEWAY_ENDPOINT", gateway_.endpoint}});
  }

  void Exec(const std::string& sql) { Exec(db_->url(), sql); }
  // A table of the operator's for postgres actions, which the rules service's role must be
  // granted (as an AWS rule's role must allow dynamodb:PutItem).
  void CreateTableForRules(const std::string& sql, const std::string& table) {
    Exec(sql);
    Exec(absl::StrCat("GRANT SELECT, INSERT, UPDATE ON ", table, " TO fleetcore_rules; ",
                      "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO fleetcore_rules"));
  }
  void Exec(const std::string& url, const std::string& sql) {
    pqxx::connection c(url);
    pqxx::work tx(c);
    tx.exec(sql);
    tx.commit();
  }
  std::vector<json> Rows(const std::string& sql) { return Rows(db_->url(), sql); }
  std::vector<json> Rows(const std::string& url, const std::string& sql) {
    pqxx::connection c(url);
    pqxx::nontransaction tx(c);
    std::vector<json> out;
    for (const pqxx::row& r : tx.exec(sql)) out.push_back(json::parse(r[0].c_str()));
    return out;
  }

  // Creates a rule and waits until the gateway has its FROM filter (or, for a rule without
  // one, until the gateway refreshed), so what is published next is fed to it.
  void CreateRule(const std::string& name, const json& payload, int filters_expected) {
    Ctl().Json({"create-topic-rule", "--rule-name", name, "--topic-rule-payload",
                payload.dump()});
    WaitForFilters(filters_expected);
  }
  void WaitForFilters(int n) {
    const std::string line = absl::StrCat("fleetcore_gateway_rule_filters ", n);
    if (!absl::StrContains(MetricsWith(gateway_.metrics_port, {line}), line)) {
      ADD_FAILURE() << "the gateway never had " << n << " rule filters";
    }
  }

  void Publish(const std::string& topic, const std::string& payload,
               const std::string& client_id = "sensor-pub") {
    ASSERT_OK_AND_ASSIGN(
        testing::RunResult r,
        testing::Run({Tool("mosquitto_pub"), "-p",
                      std::to_string(gateway_.ports.at("mqtt_port")), "-i", client_id, "-t",
                      topic, "-m", payload, "-q", "1"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }

  // mosquitto_sub printing "topic payload" lines (`count` of them, or until stopped when 0),
  // once the gateway has its subscriptions.
  std::unique_ptr<testing::Subprocess> Subscribe(const std::vector<std::string>& filters,
                                                 int count, const std::string& client_id) {
    std::vector<std::string> args{"-p", std::to_string(gateway_.ports.at("mqtt_port")), "-v"};
    for (const std::string& f : filters) args.insert(args.end(), {"-t", f});
    if (count > 0) args.insert(args.end(), {"-C", std::to_string(count)});
    return StartSubscriber(Ctl(), args, client_id);
  }

  // Polls `sql` (one jsonb column) until it has `n` rows.
  std::vector<json> WaitForRows(const std::string& sql, size_t n) {
    return WaitForRows(db_->url(), sql, n);
  }
  std::vector<json> WaitForRows(const std::string& url, const std::string& sql, size_t n) {
    std::vector<json> rows;
    for (int i = 0; i < 200; ++i) {
      rows = Rows(url, sql);
      if (rows.size() >= n) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return rows;
  }

  // The rules service's metrics once they have every one of `lines` (or after 10 s).
  std::string RulesMetricsWith(const std::vector<std::string>& lines) {
    return MetricsWith(rules_.metrics_port, lines);
  }

  // The last request `server` logged that `match` accepts, as JSON, waiting up to `wait`
  // for one; null when none came.
  static json LastRequest(const testing::HttpTestServer& server,
                          const std::function<bool(const json&)>& match,
                          absl::Duration wait = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + wait;
    for (;;) {
      json found;
      for (const std::string& line : server.Requests()) {
        json r = json::parse(line);
        if (match(r)) found = r;
      }
      if (!found.is_null() || absl::Now() >= deadline) return found;
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // The confirmation request `server` last received (a rule's http action created its
  // destination; the request follows the rule's creation, as on AWS); null when none
  // came within 10 s.
  static json ConfirmationRequest(const testing::HttpTestServer& server) {
    return LastRequest(
        server,
        [](const json& r) {
          return absl::StrContains(r["path"].get<std::string>(), "?confirmationToken=");
        },
        absl::Seconds(10));
  }

  // Confirms, as its owner would with fleetctl, the destination `server` was asked to
  // confirm, and waits until the rules engine has `enabled` ENABLED destinations.
  void ConfirmDestination(const testing::HttpTestServer& server, int enabled) {
    json request = ConfirmationRequest(server);
    ASSERT_FALSE(request.is_null()) << "no confirmation request reached " << server.base_url;
    json body = json::parse(request["body"].get<std::string>());
    Ctl().Json({"confirm-topic-rule-destination", "--confirmation-token",
                body["confirmationToken"].get<std::string>()});
    WaitForEnabledDestinations(enabled);
  }
  void WaitForEnabledDestinations(int n) {
    const std::string line = absl::StrCat(R"(fleetcore_rules_destinations{status="ENABLED"} )", n);
    EXPECT_THAT(RulesMetricsWith({line}), HasSubstr(line));
  }

  std::unique_ptr<testing::TestDatabase> db_;
  RunningService gateway_;
  RunningService rules_;
};

TEST_F(RulesActionsTest, HighTemperatureReadingsBecomeRows) {
  // The seed's hands-on rule, as a file and fleetctl, as with `aws iot create-topic-rule`.
  const std::string file = ::testing::TempDir() + "high-temp.json";
  std::ofstream(file) << R"({
    "sql": "SELECT *, topic(2) AS device, clientid() AS client FROM 'sensors/+/data' WHERE temperature > 30",
    "actions": [{"postgres": {"tableName": "public.high_temperatures"}}]})";
  Ctl().Json({"create-topic-rule", "--rule-name", "high_temp", "--topic-rule-payload",
              "file://" + file});
  WaitForFilters(1);

  Publish("sensors/t1/data", R"({"temperature": 25})", "t1");
  Publish("sensors/t1/data", R"({"temperature": 35})", "t1");
  Publish("sensors/t2/data", R"({"temperature": 41.5, "humidity": 70})", "t2");
  Publish("sensors/t2/status", R"({"temperature": 99})", "t2");  // another topic
  Publish("sensors/t3/data", "not json", "t3");

  // (Actions run in parallel: rows come in no promised order.)
  std::vector<json> rows = WaitForRows(
      "SELECT payload::text FROM public.high_temperatures "
      "ORDER BY (payload->>'temperature')::numeric",
      2);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], json::parse(R"({"temperature": 35, "device": "t1", "client": "t1"})"));
  EXPECT_EQ(rows[1], json::parse(
                         R"({"temperature": 41.5, "humidity": 70, "device": "t2", "client": "t2"})"));
  // Nothing else arrives: a barrier rule on the same evaluator thread proves the last
  // messages were evaluated.
  CreateRule("barrier", {{"sql", "SELECT 1 AS done FROM 'barrier'"},
                         {"actions", {{{"postgres", {{"tableName", "public.high_temperatures"}}}}}}},
             2);
  Publish("barrier", "{}");
  rows = WaitForRows("SELECT payload::text FROM public.high_temperatures ORDER BY id", 3);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2], json::parse(R"({"done": 1})"));

  const std::vector<std::string> expected = {
      R"(fleetcore_rules_matched_messages_total{rule="high_temp"} 4)",
      R"(fleetcore_rules_fired_total{rule="high_temp"} 2)",
      R"(fleetcore_rules_actions_total{action="postgres",error_action="false",result="ok"} 3)",
      "fleetcore_rules_evaluation_seconds_count"};
  const std::string metrics = RulesMetricsWith(expected);
  for (const std::string& line : expected) EXPECT_THAT(metrics, HasSubstr(line));
}

// A device's reading as a string of 100,000 digits is a number to the SQL, as on AWS (it
// used to overflow the rules service's stack in the numeric check).
TEST_F(RulesActionsTest, AHugeNumericStringIsANumber) {
  CreateRule("hot", {{"sql", "SELECT topic(2) AS device FROM 'long/+' WHERE t > 30"},
                     {"actions", {{{"postgres", {{"tableName", "public.high_temperatures"}}}}}}},
             1);
  Publish("long/a", absl::StrCat(R"({"t": ")", std::string(100000, '9'), R"("})"));
  Publish("long/b", R"({"t": 31})");
  std::vector<json> rows = WaitForRows(
      "SELECT payload::text FROM public.high_temperatures ORDER BY payload->>'device'", 2);
  EXPECT_EQ(json(rows), json::parse(R"([{"device": "a"}, {"device": "b"}])"));
}

TEST_F(RulesActionsTest, RepublishUpsertAndBasicIngest) {
  CreateTableForRules(
      "CREATE TABLE public.latest (device text PRIMARY KEY, doc jsonb NOT NULL)",
      "public.latest");
  CreateRule("alerts",
             {{"sql", "SELECT temperature, topic(2) AS device FROM 'sensors/+/data' WHERE "
                      "temperature > 30"},
              {"actions",
               {{{"republish", {{"topic", "alerts/${topic(2)}"}, {"qos", 1}}}},
                {{"postgres",
                  {{"tableName", "latest"},
                   {"payloadColumn", "doc"},
                   {"keyColumn", "device"},
                   {"keyValue", "${topic(2)}"}}}}}}},
             1);
  // Basic Ingest: no FROM needed; the rule sees the topic without $aws/rules/ingest/.
  CreateRule("ingest",
             {{"sql", "SELECT topic() AS t, topic(1) AS first, sourceip() AS ip, * WHERE n > 0"},
              {"actions", {{{"republish", {{"topic", "ingested"}, {"qos", 0}}}}}}},
             1);
  auto alerts = Subscribe({"alerts/#"}, 2, "alert-watcher");
  auto ingested = Subscribe({"ingested"}, 1, "ingest-watcher");
  // Nobody sees a Basic Ingest message itself, even subscribed to its topic.
  auto snoop = Subscribe({"$aws/rules/#", "alerts/#"}, 0, "snoop");
  ASSERT_NE(snoop, nullptr);
  ASSERT_NE(alerts, nullptr);
  ASSERT_NE(ingested, nullptr);

  // Actions run in parallel, in no promised order (as on AWS): the second reading goes once
  // the first one's row is there, so the upsert's last write is known.
  Publish("sensors/t1/data", R"({"temperature": 31})");
  ASSERT_EQ(WaitForRows("SELECT doc::text FROM public.latest", 1).size(), 1u);
  Publish("sensors/t1/data", R"({"temperature": 33})");
  Publish("$aws/rules/ingest/plant/line-4", R"({"n": 0})");
  Publish("$aws/rules/ingest/plant/line-4", R"({"n": 7})");

  ASSERT_OK_AND_ASSIGN(int code, alerts->Wait(absl::Seconds(15)));
  EXPECT_EQ(code, 0) << alerts->output();
  std::vector<std::pair<std::string, json>> alert_lines = Lines(alerts->output());
  std::sort(alert_lines.begin(), alert_lines.end(), [](const auto& a, const auto& b) {
    return a.second.dump() < b.second.dump();
  });
  EXPECT_EQ(alert_lines,
            (std::vector<std::pair<std::string, json>>{
                {"alerts/t1", json::parse(R"({"temperature": 31, "device": "t1"})")},
                {"alerts/t1", json::parse(R"({"temperature": 33, "device": "t1"})")}}));
  ASSERT_OK_AND_ASSIGN(code, ingested->Wait(absl::Seconds(15)));
  EXPECT_EQ(code, 0) << ingested->output();
  EXPECT_EQ(Lines(ingested->output()),
            (std::vector<std::pair<std::string, json>>{
                {"ingested", json::parse(R"({"t": "plant/line-4", "first": "plant",
                                             "ip": "127.0.0.1", "n": 7})")}}));

  // The upsert kept one row per device, with the last reading.
  std::vector<json> rows = WaitForRows("SELECT doc::text FROM public.latest", 1);
  ASSERT_EQ(rows.size(), 1u);
  for (int i = 0; i < 100 && rows[0]["temperature"] != 33; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    rows = Rows("SELECT doc::text FROM public.latest");
  }
  EXPECT_EQ(rows[0], json::parse(R"({"temperature": 33, "device": "t1"})"));

  // DynamoDB's hash and range keys: one row per device and day.
  CreateTableForRules(
      "CREATE TABLE daily (device text, day text, doc jsonb, PRIMARY KEY (device, day))",
      "daily");
  CreateRule("daily",
             {{"sql", "SELECT temperature FROM 'plants/+/data'"},
              {"actions",
               {{{"postgres",
                  {{"tableName", "daily"},
                   {"payloadColumn", "doc"},
                   {"keyColumn", "device"},
                   {"keyValue", "${topic(2)}"},
                   {"rangeKeyColumn", "day"},
                   {"rangeKeyValue", "${day}"}}}}}}},
             2);
  Publish("plants/p1/data", R"({"temperature": 1, "day": "mon"})");
  ASSERT_EQ(WaitForRows("SELECT doc::text FROM daily", 1).size(), 1u);
  Publish("plants/p1/data", R"({"temperature": 2, "day": "mon"})");
  Publish("plants/p1/data", R"({"temperature": 3, "day": "tue"})");
  std::vector<json> daily;
  for (int i = 0; i < 200; ++i) {
    daily = Rows("SELECT json_build_array(device, day, doc)::text FROM daily ORDER BY day");
    if (daily.size() == 2 && daily[0][2]["temperature"] == 2) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(json(daily), json::parse(R"([["p1", "mon", {"temperature": 2}],
                                          ["p1", "tue", {"temperature": 3}]])"));

  snoop->Signal(SIGTERM);
  (void)snoop->Wait(absl::Seconds(5));
  EXPECT_THAT(snoop->output(), ::testing::Not(HasSubstr("$aws/rules")));
  EXPECT_THAT(snoop->output(), HasSubstr("alerts/t1"));
}

// A rule on a reserved topic, as AWS's rules on shadow topics: a Device Defender report,
// which the gateway answers, reaches the rules like any message (fleetcore has no Detect,
// so this is how its reports are kept), here one row per thing.
TEST_F(RulesActionsTest, ARuleKeepsDeviceDefenderReports) {
  CreateTableForRules("CREATE TABLE public.defender (thing text PRIMARY KEY, doc jsonb NOT NULL)",
                      "public.defender");
  CreateRule("defender",
             {{"sql",
               "SELECT header.report_id AS report_id, metrics.network_stats.bytes_in AS "
               "bytes_in, topic(3) AS thing FROM '$aws/things/+/defender/metrics/json'"},
              {"actions",
               {{{"postgres",
                  {{"tableName", "defender"},
                   {"payloadColumn", "doc"},
                   {"keyColumn", "thing"},
                   {"keyValue", "${topic(3)}"}}}}}}},
             1);
  Publish("$aws/things/lamp-9/defender/metrics/json",
          R"({"header": {"report_id": 1700000001, "version": "1.0"},
              "metrics": {"network_stats": {"bytes_in": 42}}})");
  std::vector<json> rows = WaitForRows("SELECT doc::text FROM public.defender", 1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0],
            json::parse(R"({"report_id": 1700000001, "bytes_in": 42, "thing": "lamp-9"})"));
}

// MQTT 5 end to end: the rule reads the publisher's properties (get_mqtt_property,
// get_user_properties) and republishes with headers of its own, which an MQTT 5 subscriber
// receives as properties.
TEST_F(RulesActionsTest, Mqtt5PropertiesInTheSqlAndRepublishHeaders) {
  CreateRule("mqtt5",
             {{"sql", "SELECT v, get_mqtt_property('content_type') AS ct, "
                      "get_mqtt_property('format_indicator') AS format, "
                      "get_user_properties('site') AS sites FROM 'mqtt5/+'"},
              {"actions",
               {{{"republish",
                  {{"topic", "mqtt5-out/${topic(2)}"},
                   {"qos", 1},
                   {"headers",
                    {{"payloadFormatIndicator", "UTF8_DATA"},
                     {"contentType", "application/json"},
                     {"responseTopic", "replies/${topic(2)}"},
                     {"messageExpiry", "${60 * 5}"},
                     {"userProperties",
                      {{{"key", "from-site"}, {"value", "${get_user_properties('site')[1]}"}},
                       {{"key", "rule"}, {"value", "mqtt5"}}}}}}}}}}}},
             1);
  auto out = StartSubscriber(
      Ctl(),
      {"-p", std::to_string(gateway_.ports.at("mqtt_port")), "-V", "5", "-t", "mqtt5-out/#",
       "-C", "1", "-F", "%t|%C|%R|%F|%P|%p"},
      "mqtt5-watcher");
  ASSERT_NE(out, nullptr);
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult r,
      testing::Run({Tool("mosquitto_pub"), "-p", std::to_string(gateway_.ports.at("mqtt_port")),
                    "-V", "5", "-i", "mqtt5-pub", "-t", "mqtt5/d1", "-m", R"({"v": 1})", "-q",
                    "1", "-D", "publish", "user-property", "site", "north", "-D", "publish",
                    "user-property", "site", "annex", "-D", "publish", "content-type",
                    "text/x-reading", "-D", "publish", "payload-format-indicator", "1"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_OK_AND_ASSIGN(int code, out->Wait(absl::Seconds(15)));
  ASSERT_EQ(code, 0) << out->output();
  std::vector<std::string> f =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(out->output()), absl::MaxSplits('|', 5));
  ASSERT_EQ(f.size(), 6u) << out->output();
  EXPECT_EQ(f[0], "mqtt5-out/d1");
  EXPECT_EQ(f[1], "application/json");
  EXPECT_EQ(f[2], "replies/d1");
  EXPECT_EQ(f[3], "1");
  EXPECT_EQ(f[4], "from-site:annex rule:mqtt5");
  EXPECT_EQ(json::parse(f[5]), json::parse(R"({"v": 1, "ct": "text/x-reading",
      "format": "UTF8_DATA", "sites": ["north", "annex"]})"));
}

TEST_F(RulesActionsTest, HttpActionRetriesAndTheErrorActionGetsAwsErrorPayload) {
  ASSERT_OK_AND_ASSIGN(testing::HttpTestServer server, testing::HttpTestServer::Start());
  CreateRule("to_http",
             {{"sql", "SELECT * FROM 'devices/+/events'"},
              {"actions",
               {{{"http",
                  {{"url", server.base_url + "/hook/${topic(2)}"},
                   {"confirmationUrl", server.base_url + "/hook"},
                   {"headers", {{{"key", "x-device"}, {"value", "${topic(2)}"}}}}}}}}}},
             1);
  // Under the destination the first rule created.
  CreateRule("to_broken_http",
             {{"sql", "SELECT * FROM 'devices/+/alarms'"},
              {"actions", {{{"http", {{"url", server.base_url + "/hook?status=503"}}}}}},
              {"errorAction", {{"republish", {{"topic", "errors/${topic(2)}"}}}}}},
             2);
  ConfirmDestination(server, 1);
  auto errors = Subscribe({"errors/#"}, 1, "error-watcher");
  ASSERT_NE(errors, nullptr);

  Publish("devices/d7/events", R"({"door": "open"})", "d7");
  Publish("devices/d7/alarms", R"({"smoke": true})", "d7");

  ASSERT_OK_AND_ASSIGN(int code, errors->Wait(absl::Seconds(20)));
  EXPECT_EQ(code, 0) << errors->output();
  std::vector<std::pair<std::string, json>> lines = Lines(errors->output());
  ASSERT_EQ(lines.size(), 1u) << errors->output();
  EXPECT_EQ(lines[0].first, "errors/d7");
  const json& error = lines[0].second;
  EXPECT_EQ(error["ruleName"], "to_broken_http");
  EXPECT_EQ(error["topic"], "devices/d7/alarms");
  EXPECT_EQ(error["clientId"], "d7");
  EXPECT_EQ(error["base64OriginalPayload"], "eyJzbW9rZSI6IHRydWV9");  // {"smoke": true}
  ASSERT_EQ(error["failures"].size(), 1u);
  EXPECT_EQ(error["failures"][0]["failedAction"], "HttpAction");
  EXPECT_THAT(error["failures"][0]["errorMessage"].get<std::string>(), HasSubstr("HTTP 503"));
  EXPECT_THAT(error["failures"][0]["errorMessage"].get<std::string>(),
              HasSubstr("after 2 attempts"));

  // The good hook got the document with its header; the broken one was tried twice.
  std::vector<std::string> requests = server.Requests();
  int good = 0, broken = 0;
  for (const std::string& line : requests) {
    json r = json::parse(line);
    if (r["path"] == "/hook/d7") {
      ++good;
      EXPECT_EQ(json::parse(r["body"].get<std::string>()), json::parse(R"({"door": "open"})"));
      EXPECT_EQ(r["headers"]["x-device"], "d7") << line;
      EXPECT_EQ(r["method"], "POST");
    } else if (absl::StartsWith(r["path"].get<std::string>(), "/hook?status=503")) {
      ++broken;
    }
  }
  EXPECT_EQ(good, 1);
  EXPECT_EQ(broken, 2);
  const std::vector<std::string> expected = {
      R"(fleetcore_rules_actions_total{action="http",error_action="false",result="failed"} 1)",
      R"(fleetcore_rules_actions_total{action="republish",error_action="true",result="ok"} 1)"};
  const std::string metrics = RulesMetricsWith(expected);
  for (const std::string& line : expected) EXPECT_THAT(metrics, HasSubstr(line));
}

// AWS's destination lifecycle: a rule's http action to a new URL creates a destination and
// POSTs its confirmation request there; nothing is sent until the endpoint's owner confirms
// (here by a GET of the enableUrl); a DISABLED destination sends nothing again.
TEST_F(RulesActionsTest, AnHttpEndpointGetsNothingUntilItsOwnerConfirms) {
  ASSERT_OK_AND_ASSIGN(testing::HttpTestServer server, testing::HttpTestServer::Start());
  CreateRule("to_webhook",
             {{"sql", "SELECT * FROM 'webhook/+'"},
              {"actions", {{{"http", {{"url", server.base_url + "/iot/in"}}}}}},
              {"errorAction", {{"republish", {{"topic", "errors/${topic(2)}"}}}}}},
             1);
  const json request = ConfirmationRequest(server);
  ASSERT_FALSE(request.is_null()) << "no confirmation request";
  const json body = json::parse(request["body"].get<std::string>());
  const std::string token = body["confirmationToken"];
  const std::string arn = body["arn"];
  EXPECT_EQ(request["method"], "POST");
  EXPECT_EQ(request["path"], "/iot/in/?confirmationToken=" + token);
  EXPECT_EQ(request["headers"]["x-amz-rules-engine-message-type"], "DestinationConfirmation");
  EXPECT_EQ(request["headers"]["x-amz-rules-engine-destination-arn"], arn);
  EXPECT_EQ(body["messageType"], "DestinationConfirmation");
  const std::string enable_url = body["enableUrl"];
  EXPECT_EQ(enable_url, absl::StrCat("http://127.0.0.1:", rules_.ports.at("confirm_port"),
                                     "/confirmdestination/", token));

  json listed = Ctl().Json({"list-topic-rule-destinations"});
  ASSERT_EQ(listed["destinationSummaries"].size(), 1u) << listed;
  EXPECT_EQ(listed["destinationSummaries"][0]["arn"], arn);
  EXPECT_EQ(listed["destinationSummaries"][0]["status"], "IN_PROGRESS");
  EXPECT_EQ(listed["destinationSummaries"][0]["httpUrlSummary"]["confirmationUrl"],
            server.base_url + "/iot/in");

  // Unconfirmed: the message is not sent, and the errorAction says why.
  auto publish_and_expect_error = [&](const std::string& payload) {
    auto errors = Subscribe({"errors/#"}, 1, "error-watcher");
    ASSERT_NE(errors, nullptr);
    Publish("webhook/d1", payload, "d1");
    ASSERT_OK_AND_ASSIGN(int code, errors->Wait(absl::Seconds(20)));
    EXPECT_EQ(code, 0) << errors->output();
    std::vector<std::pair<std::string, json>> lines = Lines(errors->output());
    ASSERT_EQ(lines.size(), 1u) << errors->output();
    EXPECT_THAT(lines[0].second["failures"][0]["errorMessage"].get<std::string>(),
                HasSubstr("no ENABLED topic rule destination covers " + server.base_url +
                          "/iot/in"));
  };
  publish_and_expect_error(R"({"n": 1})");

  // The owner follows the enableUrl; the token works once.
  ASSERT_OK_AND_ASSIGN(testing::RunResult get, testing::Run({Tool("curl"), "-s", enable_url}));
  EXPECT_THAT(get.out, HasSubstr(arn + " confirmed: ENABLED"));
  ASSERT_OK_AND_ASSIGN(get, testing::Run({Tool("curl"), "-s", "-w", "\n%{http_code}",
                                          enable_url}));
  EXPECT_THAT(get.out, AllOf(HasSubstr("no topic rule destination awaits"), HasSubstr("\n404")));
  WaitForEnabledDestinations(1);
  Publish("webhook/d1", R"({"n": 2})", "d1");
  const json delivered = LastRequest(server, [](const json& r) {
    return r["path"] == "/iot/in" && json::parse(r["body"].get<std::string>())["n"] == 2;
  });
  EXPECT_FALSE(delivered.is_null()) << "the confirmed destination never got the message";

  // DISABLED: nothing is sent again, without a new confirmation.
  Ctl().Json({"update-topic-rule-destination", "--arn", arn, "--status", "DISABLED"});
  WaitForEnabledDestinations(0);
  publish_and_expect_error(R"({"n": 3})");
  EXPECT_EQ(Ctl().Json({"get-topic-rule-destination", "--arn", arn})["topicRuleDestination"]
                      ["status"],
            "DISABLED");
  Ctl().ExpectFailure({"update-topic-rule-destination", "--arn", arn, "--status", "DISABLED"},
                      "FAILED_PRECONDITION", "only an ENABLED destination can be disabled");
  Ctl().Json({"delete-topic-rule-destination", "--arn", arn});
  Ctl().ExpectFailure({"get-topic-rule-destination", "--arn", arn}, "NOT_FOUND",
                      "no topic rule destination");
  const std::string metric =
      R"(fleetcore_rules_destination_confirmations_total{result="confirmed"} 1)";
  EXPECT_THAT(RulesMetricsWith({metric}), HasSubstr(metric));
}

// An http action with auth.sigv4 (an API behind IAM authorization): the endpoint checks
// the signature with its own SigV4 code, for the rule's region and service.
TEST_F(RulesActionsTest, HttpActionSignedWithSigV4) {
  ASSERT_OK_AND_ASSIGN(testing::HttpTestServer api,
                       testing::HttpTestServer::StartS3(kS3KeyId, kS3Secret));
  CreateRule("to_signed_api",
             {{"sql", "SELECT * FROM 'signed/+'"},
              {"actions",
               {{{"http",
                  {{"url", api.base_url + "/api/readings/${topic(2)}?site=north&b=1"},
                   {"confirmationUrl", api.base_url + "/api"},
                   {"headers", {{{"key", "x-device"}, {"value", "${topic(2)}"}}}},
                   {"auth",
                    {{"sigv4",
                      {{"signingRegion", "eu-west-1"},
                       {"serviceName", "execute-api"},
                       {"roleArn", "arn:aws:iam::000000000000:role/iot-http"}}}}}}}}}}},
             1);
  ConfirmDestination(api, 1);
  Publish("signed/d9", R"({"t": 7})", "d9");
  const json got = LastRequest(
      api, [](const json& r) { return r["path"] == "/api/readings/d9?site=north&b=1"; });
  ASSERT_FALSE(got.is_null()) << "the signed request never came";
  EXPECT_EQ(got["signature"], "ok") << got;
  EXPECT_EQ(got["service"], "execute-api");
  EXPECT_EQ(got["method"], "POST");
  EXPECT_EQ(json::parse(got["body"].get<std::string>()), json::parse(R"({"t": 7})"));
}

TEST_F(RulesActionsTest, S3ActionPutsSignedObjects) {
  // A local S3-compatible endpoint that checks each request's SigV4 signature itself.
  ASSERT_OK_AND_ASSIGN(testing::HttpTestServer s3,
                       testing::HttpTestServer::StartS3(kS3KeyId, kS3Secret));
  CreateRule("archive",
             {{"sql", "SELECT *, clientid() AS device FROM 'sensors/+/data'"},
              {"actions",
               {{{"s3",
                  {{"bucketName", "telemetry"},
                   {"key", "readings/${topic(2)}/a b+c.json"},
                   {"endpoint", s3.base_url}}}}}}},
             1);
  Publish("sensors/t9/data", R"({"temperature": 19})", "t9");
  std::vector<std::string> requests;
  for (int i = 0; i < 200 && requests.empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    requests = s3.Requests();
  }
  ASSERT_EQ(requests.size(), 1u);
  json put = json::parse(requests[0]);
  EXPECT_EQ(put["method"], "PUT");
  EXPECT_EQ(put["path"], "/telemetry/readings/t9/a%20b%2Bc.json");
  EXPECT_EQ(put["signature"], "ok") << requests[0];
  EXPECT_EQ(put["headers"]["content-type"], "application/json");
  EXPECT_EQ(json::parse(put["body"].get<std::string>()),
            json::parse(R"({"temperature": 19, "device": "t9"})"));
  EXPECT_EQ(put["headers"].value("authorization", "").find(kS3Secret), std::string::npos);

  // The endpoint does check: an unsigned PUT is refused with S3's error.
  ASSERT_OK_AND_ASSIGN(testing::RunResult r,
                       testing::Run({Tool("curl"), "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                     "-X", "PUT", "--data", "{}",
                                     s3.base_url + "/telemetry/forged.json"}));
  EXPECT_EQ(r.out, "403");
  const std::string s3_ok =
      R"(fleetcore_rules_actions_total{action="s3",error_action="false",result="ok"} 1)";
  EXPECT_THAT(RulesMetricsWith({s3_ok}), HasSubstr(s3_ok));
}

TEST_F(RulesActionsTest, ADisabledRuleStopsFiring) {
  CreateRule("high_temp",
             {{"sql", "SELECT * FROM 'sensors/+/data' WHERE temperature > 30"},
              {"actions", {{{"postgres", {{"tableName", "high_temperatures"}}}}}}},
             1);
  Publish("sensors/t1/data", R"({"temperature": 35})");
  ASSERT_EQ(WaitForRows("SELECT payload::text FROM high_temperatures", 1).size(), 1u);

  Ctl().Json({"disable-topic-rule", "--rule-name", "high_temp"});
  WaitForFilters(0);
  Publish("sensors/t1/data", R"({"temperature": 36})");
  // A barrier rule, enabled after the publish, proves the reading was not fed and fired.
  CreateRule("barrier", {{"sql", "SELECT 1 AS done FROM 'barrier'"},
                         {"actions", {{{"postgres", {{"tableName", "high_temperatures"}}}}}}},
             1);
  Publish("barrier", "{}");
  std::vector<json> rows = WaitForRows("SELECT payload::text FROM high_temperatures ORDER BY id", 2);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], json::parse(R"({"done": 1})"));

  Ctl().Json({"enable-topic-rule", "--rule-name", "high_temp"});
  WaitForFilters(2);
  Publish("sensors/t1/data", R"({"temperature": 37})");
  rows = WaitForRows("SELECT payload::text FROM high_temperatures ORDER BY id", 3);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2], json::parse(R"({"temperature": 37})"));
}

TEST_F(RulesActionsTest, PostgresActionIntoAnotherDatabase) {
  ASSERT_OK_AND_ASSIGN(auto other, testing::TestDatabase::Create(/*migrate=*/false));
  Exec(other->url(), "CREATE SCHEMA telemetry");
  Exec(other->url(), "CREATE TABLE telemetry.readings (id serial PRIMARY KEY, body jsonb)");
  const testing::TestPostgres& pg = other->server();
  const std::string url = absl::StrCat("postgresql://", pg.user, "@", pg.host, ":", pg.port, "/",
                                       other->name());
  CreateRule("archive",
             {{"sql", "SELECT temperature, timestamp() AS at FROM 'sensors/+/data'"},
              {"actions",
               {{{"postgres",
                  {{"databaseUrl", url},
                   {"tableName", "telemetry.readings"},
                   {"payloadColumn", "body"}}}}}}},
             1);
  Publish("sensors/t1/data", R"({"temperature": 21})");
  std::vector<json> rows = WaitForRows(other->url(), "SELECT body::text FROM telemetry.readings", 1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["temperature"], 21);
  EXPECT_GT(rows[0]["at"].get<int64_t>(), 1700000000000);
  // A URL with a password is refused: it would be readable in the rule.
  Ctl().ExpectFailure({"create-topic-rule", "--rule-name", "leaky", "--topic-rule-payload",
                       json{{"sql", "SELECT * FROM 'x'"},
                            {"actions", {{{"postgres", {{"databaseUrl", other->url()},
                                                         {"tableName", "t"}}}}}}}
                           .dump()},
                      "INVALID_ARGUMENT", "must not carry a password");
}

TEST_F(RulesActionsTest, AFailedPostgresActionNamesTheTable) {
  CreateRule("to_missing_table",
             {{"sql", "SELECT * FROM 'sensors/+/data'"},
              {"actions", {{{"postgres", {{"tableName", "no_such_table"}}}}}},
              {"errorAction", {{"postgres", {{"tableName", "high_temperatures"}}}}}},
             1);
  Publish("sensors/t1/data", R"({"temperature": 35})", "t1");
  std::vector<json> rows = WaitForRows("SELECT payload::text FROM high_temperatures", 1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["ruleName"], "to_missing_table");
  EXPECT_EQ(rows[0]["failures"][0]["failedAction"], "PostgresAction");
  EXPECT_EQ(rows[0]["failures"][0]["failedResource"], "no_such_table");
  EXPECT_THAT(rows[0]["failures"][0]["errorMessage"].get<std::string>(),
              HasSubstr("no_such_table"));
  EXPECT_OK(rules_.process
                ->WaitForLine([](absl::string_view l) {
                  return absl::StrContains(l, "rule action failed");
                }, absl::Seconds(10))
                .status());
}

// Small queues and one action thread against a target that takes two seconds an answer.
class RulesBackpressureTest : public RulesActionsTest {
 protected:
  std::vector<std::string> ExtraRulesFlags() const override {
    return {"--queue=100", "--action-queue=100", "--action-workers=1", "--http-attempts=1"};
  }
};

TEST_F(RulesBackpressureTest, ASlowTargetDropsRuleWorkButNeverHoldsUpDevices) {
  ASSERT_OK_AND_ASSIGN(testing::HttpTestServer slow, testing::HttpTestServer::Start());
  CreateRule("to_slow_http",
             {{"sql", "SELECT * FROM 'flood/+'"},
              {"actions", {{{"http", {{"url", slow.base_url + "/hook?delay=2"},
                                      {"timeoutMs", 5000}}}}}}},
             1);
  ConfirmDestination(slow, 1);
  auto watcher = Subscribe({"flood/#"}, 1000, "flood-watcher");
  ASSERT_NE(watcher, nullptr);
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult r,
      testing::Run({Tool("mosquitto_pub"), "-p", std::to_string(gateway_.ports.at("mqtt_port")),
                    "-i", "flooder", "-t", "flood/1", "-m", R"({"n": 1})", "-q", "1", "--repeat",
                    "1000"},
                   {}, absl::Seconds(60)));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Every message reached the subscriber, while the rule's target answered one in 2 s.
  ASSERT_OK_AND_ASSIGN(int code, watcher->Wait(absl::Seconds(30)));
  EXPECT_EQ(code, 0);
  // The surplus was dropped, counted and logged, not queued without bound.
  const std::string dropped = R"(fleetcore_rules_dropped_total{queue="actions"})";
  EXPECT_THAT(RulesMetricsWith({dropped}), HasSubstr(dropped));
  EXPECT_OK(rules_.process
                ->WaitForLine([](absl::string_view l) {
                  return absl::StrContains(l, "rule actions dropped: the action queue is full");
                }, absl::Seconds(10))
                .status());
  EXPECT_LT(slow.Requests().size(), 10u);
}

// With a shadow service and a registry for get_thing_shadow() and get_registry_data() to
// read (with the admin token they check).
class RulesWithPeersTest : public RulesActionsTest {
 protected:
  void SetUp() override {
    RulesActionsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(
        shadow_, StartService("services/shadow/fleetcore-shadow",
                              {"--db-url=" + db_->url(),
                               absl::StrCat("--listen=127.0.0.1:", shadow_port_),
                               "--gateway-endpoint=" + gateway_.endpoint},
                              {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
    ASSERT_OK_AND_ASSIGN(
        registry_, StartService("services/registry/fleetcore-registry",
                                {"--db-url=" + db_->url(),
                                 absl::StrCat("--listen=127.0.0.1:", registry_port_)},
                                {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  }
  std::vector<std::string> ExtraRulesFlags() const override {
    return {absl::StrCat("--shadow-endpoint=127.0.0.1:", shadow_port_),
            absl::StrCat("--registry-endpoint=127.0.0.1:", registry_port_)};
  }
  Fleetctl PeersCtl() const {
    return Fleetctl(kToken, {{"FLEETCORE_SHADOW_ENDPOINT", shadow_.endpoint},
                             {"FLEETCORE_REGISTRY_ENDPOINT", registry_.endpoint},
                             {"FLEETCORE_RULES_ENDPOINT", rules_.endpoint}});
  }

  const int shadow_port_ = FreePort();
  const int registry_port_ = FreePort();
  RunningService shadow_;
  RunningService registry_;
};

// AWS's get_registry_data() example: each device's threshold is an attribute of its thing,
// and the reading is tagged with the thing's group.
TEST_F(RulesWithPeersTest, GetRegistryDataReadsEachThingsThresholdAndGroups) {
  CreateTableForRules(
      "CREATE TABLE public.over_threshold (id bigserial PRIMARY KEY, payload jsonb NOT NULL)",
      "public.over_threshold");
  PeersCtl().Json({"create-thing-group", "--thing-group-name", "cold-room"});
  for (const auto& [thing, threshold] : {std::pair("s1", "30"), std::pair("s2", "20")}) {
    PeersCtl().Json({"create-thing", "--thing-name", thing, "--attribute-payload",
                     absl::StrCat(R"({"attributes":{"threshold":")", threshold, R"("}})")});
  }
  PeersCtl().Json(
      {"add-thing-to-thing-group", "--thing-group-name", "cold-room", "--thing-name", "s2"});
  CreateRule(
      "over_threshold",
      {{"sql",
        "SELECT t, topic(2) AS sensor, get_registry_data('ListThingGroupsForThing', topic(2), "
        "'arn:aws:iam::123456789012:role/RegistryRead').thingGroups[0].groupName AS room FROM "
        "'sensors/+/temp' WHERE t > get_registry_data('DescribeThing', topic(2), "
        "'arn:aws:iam::123456789012:role/RegistryRead').attributes.threshold"},
       {"actions", {{{"postgres", {{"tableName", "over_threshold"}}}}}}},
      1);
  Publish("sensors/s1/temp", R"({"t": 25})");  // below s1's 30
  Publish("sensors/s3/temp", R"({"t": 99})");  // no such thing: no threshold
  Publish("sensors/s2/temp", R"({"t": 25})");  // above s2's 20
  Publish("sensors/s1/temp", R"({"t": 31})");
  std::vector<json> rows =
      WaitForRows("SELECT payload::text FROM public.over_threshold ORDER BY id", 2);
  const std::string missing =
      R"(fleetcore_rules_lookups_total{function="get_registry_data",result="not_found"} 1)";
  EXPECT_THAT(RulesMetricsWith({missing}), HasSubstr(missing));
  rows = Rows("SELECT payload::text FROM public.over_threshold");
  std::sort(rows.begin(), rows.end(),
            [](const json& a, const json& b) { return a["sensor"] < b["sensor"]; });
  EXPECT_EQ(json(rows), json::parse(R"([{"t": 31, "sensor": "s1"},
                                        {"t": 25, "sensor": "s2", "room": "cold-room"}])"));
}

// AWS's get_thing_shadow() example: an opened door raises an alarm only while its shadow
// reports the alarm armed. Doors without a shadow raise none; when the shadow service
// cannot answer, the errorAction gets AWS's error payload naming the call.
TEST_F(RulesWithPeersTest, GetThingShadowGatesTheRuleOnTheDevicesReportedState) {
  CreateTableForRules(
      "CREATE TABLE public.alarms (id bigserial PRIMARY KEY, payload jsonb NOT NULL)",
      "public.alarms");
  CreateTableForRules(
      "CREATE TABLE public.rule_errors (id bigserial PRIMARY KEY, payload jsonb NOT NULL)",
      "public.rule_errors");
  const std::string sql =
      "SELECT *, topic(2) AS door FROM 'doors/+/opened' WHERE get_thing_shadow(topic(2), "
      "'arn:aws:iam::123456789012:role/ShadowRead').state.reported.armed = true";
  CreateRule("door_alarm",
             {{"sql", sql},
              {"awsIotSqlVersion", "2016-03-23"},
              {"actions", {{{"postgres", {{"tableName", "alarms"}}}}}},
              {"errorAction", {{"postgres", {{"tableName", "rule_errors"}}}}}},
             1);
  PeersCtl().Json({"update-thing-shadow", "--thing-name", "door-1", "--payload",
                    R"({"state":{"reported":{"armed":true}}})"});
  PeersCtl().Json({"update-thing-shadow", "--thing-name", "door-2", "--payload",
                    R"({"state":{"reported":{"armed":false}}})"});
  Publish("doors/door-2/opened", R"({"at": 2})");
  Publish("doors/door-3/opened", R"({"at": 3})");
  Publish("doors/door-1/opened", R"({"at": 1})");
  // Every message was evaluated (two shadows found, one missing) and one alarm raised.
  const std::string found =
      R"(fleetcore_rules_lookups_total{function="get_thing_shadow",result="found"} 2)";
  const std::string missing =
      R"(fleetcore_rules_lookups_total{function="get_thing_shadow",result="not_found"} 1)";
  EXPECT_THAT(RulesMetricsWith({found, missing}), AllOf(HasSubstr(found), HasSubstr(missing)));
  std::vector<json> alarms = WaitForRows("SELECT payload::text FROM public.alarms", 1);
  EXPECT_EQ(alarms, std::vector<json>{json::parse(R"({"at": 1, "door": "door-1"})")});
  EXPECT_TRUE(Rows("SELECT payload::text FROM public.rule_errors").empty());

  // The dry run reads the shadow too.
  json r = PeersCtl().Json({"evaluate-rule", "--sql", sql, "--topic", "doors/door-1/opened",
                             "--payload", "{}"});
  EXPECT_EQ(r["selected"], true) << r.dump();
  r = PeersCtl().Json({"evaluate-rule", "--sql", sql, "--topic", "doors/door-2/opened",
                        "--payload", "{}"});
  EXPECT_FALSE(r.contains("selected")) << r.dump();

  // Without the shadow service the rule cannot be decided: the errorAction runs.
  shadow_.process->Signal(SIGTERM);
  ASSERT_OK(shadow_.process->Wait(absl::Seconds(20)).status());
  Publish("doors/door-1/opened", R"({"at": 4})");
  std::vector<json> errors = WaitForRows("SELECT payload::text FROM public.rule_errors", 1);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["ruleName"], "door_alarm");
  EXPECT_EQ(errors[0]["topic"], "doors/door-1/opened");
  ASSERT_EQ(errors[0]["failures"].size(), 1u) << errors[0];
  EXPECT_EQ(errors[0]["failures"][0]["failedAction"], "get_thing_shadow");
  EXPECT_EQ(errors[0]["failures"][0]["failedResource"], "door-1");
  EXPECT_THAT(errors[0]["failures"][0]["errorMessage"].get<std::string>(),
              HasSubstr("the shadow service"));
  EXPECT_EQ(Rows("SELECT payload::text FROM public.alarms").size(), 1u);
  EXPECT_OK(rules_.process
                ->WaitForLine([](absl::string_view l) {
                  return absl::StrContains(l, "rule not run: its SQL could not read");
                }, absl::Seconds(10))
                .status());
  // get_or_default() turns the unanswered call into its default, and the rule runs.
  r = PeersCtl().Json(
      {"evaluate-rule", "--sql",
       "SELECT get_or_default(get_thing_shadow(topic(2), 'r').state.reported.armed, true) AS "
       "armed FROM 'doors/+/opened'",
       "--topic", "doors/door-2/opened", "--payload", "{}"});
  EXPECT_EQ(r["selected"], true) << r.dump();
  EXPECT_EQ(r["output"], json::parse(R"({"armed": true})")) << r.dump();
}

TEST_F(RulesActionsTest, ADeadRulesServiceCostsOnlyTheRulesTheirMessages) {
  CreateRule("high_temp",
             {{"sql", "SELECT * FROM 'sensors/+/data' WHERE temperature > 30"},
              {"actions", {{{"postgres", {{"tableName", "high_temperatures"}}}}}}},
             1);
  rules_.process->Signal(SIGTERM);
  ASSERT_OK(rules_.process->Wait(absl::Seconds(20)).status());
  auto watcher = Subscribe({"sensors/#"}, 1, "still-here");
  ASSERT_NE(watcher, nullptr);
  Publish("sensors/t1/data", R"({"temperature": 35})");
  ASSERT_OK_AND_ASSIGN(int code, watcher->Wait(absl::Seconds(15)));
  EXPECT_EQ(code, 0);  // devices are served as before
  const std::string dropped = R"(fleetcore_gateway_rules_messages_total{result="dropped"} 1)";
  EXPECT_THAT(MetricsWith(gateway_.metrics_port, {dropped}), HasSubstr(dropped));
  EXPECT_OK(gateway_.process
                ->WaitForLine([](absl::string_view l) {
                  return absl::StrContains(l, "the rules service did not take them");
                }, absl::Seconds(10))
                .status());
}

}  // namespace
}  // namespace fleetcore::e2e
