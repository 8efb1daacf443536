// RulesEngine with a fake store and a fake HTTP client: which rules a message reaches (FROM
// filters, Basic Ingest, disabled rules), the retry policy, the errorAction's AWS error
// document, and the bounded queues behind a target that does not answer.
#include "services/rules/rules_engine.h"

#include <condition_variable>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/iotsql/iotsql.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "prometheus/registry.h"
#include "services/rules/fake_http_client.h"
#include "services/rules/fake_rules_store.h"

namespace fleetcore::rules {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

// Shadows for get_thing_shadow(): thing -> document, or an error; `Hold` makes calls wait.
class FakeLookups final : public iotsql::ServiceLookups {
 public:
  absl::StatusOr<json> GetThingShadow(absl::string_view thing, absl::string_view) override {
    std::unique_lock<std::mutex> l(mu);
    ++waiting;
    cv.notify_all();
    cv.wait(l, [this] { return !held; });
    --waiting;
    auto it = shadows.find(std::string(thing));
    if (it == shadows.end()) return absl::NotFoundError("No shadow exists");
    return it->second;
  }
  absl::StatusOr<json> GetRegistryData(absl::string_view, absl::string_view) override {
    return absl::NotFoundError("no registry here");
  }
  void Hold(bool on) {
    {
      std::lock_guard<std::mutex> l(mu);
      held = on;
    }
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool held = false;
  int waiting = 0;
  std::map<std::string, absl::StatusOr<json>> shadows;
};

class RulesEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The fake endpoint's owner confirmed it.
    ASSERT_OK(store_.InsertDestination(
        {.id = "d-x", .confirmation_url = "http://x", .status = "ENABLED"}, ""));
    engine_ = std::make_unique<RulesEngine>(
        &store_, RulesEngine::Options{.http = &http_,
                                      .lookups = &lookups_,
                                      .max_queued_messages = 100,
                                      .action_workers = 2,
                                      .http_attempts = 3,
                                      .http_backoff = absl::Milliseconds(1)});
  }

  void AddRule(const std::string& name, const std::string& payload, bool disabled = false) {
    pb::TopicRulePayload p;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(payload, &p).ok()) << payload;
    std::string text;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(p, &text).ok());
    ASSERT_OK(store_.Insert({.name = name, .payload_json = text, .disabled = disabled}));
    ASSERT_OK(engine_->Reload());
  }

  void Feed(const std::string& topic, const std::string& payload) {
    pb::InboundMessage m;
    m.set_topic(topic);
    m.set_payload(payload);
    m.set_client_id("dev-1");
    m.set_timestamp_ms(1700000000000);
    ASSERT_TRUE(engine_->Enqueue(m));
    engine_->Drain(absl::Seconds(10));
  }

  FakeRulesStore store_;
  FakeHttp http_;
  FakeLookups lookups_;
  std::unique_ptr<RulesEngine> engine_;
};

// AWS's get_thing_shadow() example: the rule fires only while the thing's shadow says so. A
// missing shadow is Undefined (the rule does not fire); a shadow service that cannot answer
// runs the errorAction, naming the function and the thing.
TEST_F(RulesEngineTest, GetThingShadowGatesARuleAndAFailedReadRunsTheErrorAction) {
  lookups_.shadows["door-1"] = json{{"state", {{"reported", {{"armed", true}}}}}};
  lookups_.shadows["door-2"] = json{{"state", {{"reported", {{"armed", false}}}}}};
  lookups_.shadows["door-4"] = absl::UnavailableError("the shadow service: connection refused");
  AddRule("alarm", R"({"sql": "SELECT * FROM 'doors/+' WHERE get_thing_shadow(topic(2), 'arn:aws:iam::123456789012:role/ShadowRead').state.reported.armed = true",
                       "actions": [{"http": {"url": "http://x/alarm/${topic(2)}"}}],
                       "errorAction": {"http": {"url": "http://x/errors"}}})");
  for (const char* door : {"door-1", "door-2", "door-3", "door-4"}) {
    Feed(absl::StrCat("doors/", door), R"({"open": true})");
  }
  ASSERT_THAT(http_.Urls(), ElementsAre("http://x/alarm/door-1", "http://x/errors"));
  json err = json::parse(http_.requests[1].body);
  EXPECT_EQ(err["ruleName"], "alarm");
  EXPECT_EQ(err["topic"], "doors/door-4");
  EXPECT_EQ(err["base64OriginalPayload"], absl::Base64Escape(R"({"open": true})"));
  ASSERT_EQ(err["failures"].size(), 1u) << err;
  EXPECT_EQ(err["failures"][0]["failedAction"], "get_thing_shadow");
  EXPECT_EQ(err["failures"][0]["failedResource"], "door-4");
  EXPECT_THAT(err["failures"][0]["errorMessage"].get<std::string>(),
              HasSubstr("connection refused"));
}

// A rule that reads a shadow waits for the shadow service on an action thread, not on the
// evaluating thread: the other rules keep getting their messages meanwhile.
TEST_F(RulesEngineTest, AShadowReadNeverHoldsUpTheOtherRules) {
  engine_ = std::make_unique<RulesEngine>(
      &store_, RulesEngine::Options{.http = &http_, .lookups = &lookups_, .action_workers = 3});
  lookups_.shadows["door-1"] = json{{"state", {{"reported", {{"armed", true}}}}}};
  AddRule("alarm", R"({"sql": "SELECT * FROM 'doors/+' WHERE get_thing_shadow(topic(2), 'role').state.reported.armed",
                       "actions": [{"http": {"url": "http://x/alarm"}}]})");
  AddRule("log", R"({"sql": "SELECT * FROM 'doors/+'",
                     "actions": [{"http": {"url": "http://x/log"}}]})");
  lookups_.Hold(true);
  for (int i = 0; i < 2; ++i) {
    pb::InboundMessage m;
    m.set_topic("doors/door-1");
    m.set_payload("{}");
    ASSERT_TRUE(engine_->Enqueue(m));
  }
  auto count = [this](const std::string& url) {
    std::vector<std::string> urls = http_.Urls();
    return std::count(urls.begin(), urls.end(), url);
  };
  // Two action threads wait on the shadow; the third runs the other rule's actions for both
  // messages, which the evaluating thread got to without waiting.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (count("http://x/log") < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(count("http://x/log"), 2);
  EXPECT_EQ(count("http://x/alarm"), 0);
  lookups_.Hold(false);
  engine_->Drain(absl::Seconds(10));
  EXPECT_EQ(count("http://x/alarm"), 2);
}

TEST_F(RulesEngineTest, SetVariablesAndPropertiesInTemplates) {
  AddRule("vars", R"({"sql": "SET @site = get_user_properties('site')[0], @f = t * 2 SELECT @f AS f FROM 'sensors/#'",
                      "actions": [{"http": {"url": "http://x/${@site}/${@f}",
                                            "headers": [{"key": "x-ct", "value": "${get_mqtt_property('content_type')}"}]}}]})");
  pb::InboundMessage m;
  m.set_topic("sensors/a");
  m.set_payload(R"({"t": 21})");
  m.mutable_properties()->set_content_type("text/x-reading");
  pb::MqttUserProperty* site = m.mutable_properties()->add_user_properties();
  site->set_key("site");
  site->set_value("north");
  ASSERT_TRUE(engine_->Enqueue(m));
  engine_->Drain(absl::Seconds(10));
  ASSERT_THAT(http_.Urls(), ElementsAre("http://x/north/42"));
  EXPECT_EQ(json::parse(http_.requests[0].body), json::parse(R"({"f": 42})"));
  bool header = false;
  for (const auto& [k, v] : http_.requests[0].headers) header = header || (k == "x-ct" && v == "text/x-reading");
  EXPECT_TRUE(header);
}

TEST_F(RulesEngineTest, FromFiltersBasicIngestAndDisabledRules) {
  AddRule("hot", R"({"sql": "SELECT * FROM 'sensors/+/data' WHERE t > 30",
                     "actions": [{"http": {"url": "http://x/hot/${topic(2)}"}}]})");
  AddRule("ingest", R"({"sql": "SELECT topic() AS t",
                        "actions": [{"http": {"url": "http://x/ingest"}}]})");
  AddRule("off", R"({"sql": "SELECT * FROM 'sensors/#'",
                     "actions": [{"http": {"url": "http://x/off"}}]})",
          /*disabled=*/true);
  EXPECT_THAT(engine_->Filters(), ElementsAre("sensors/+/data"));

  Feed("sensors/a/data", R"({"t": 31})");
  Feed("sensors/b/data", R"({"t": 20})");                // WHERE false
  Feed("sensors/c/status", R"({"t": 99})");              // no filter matches
  Feed("$aws/rules/ingest/plant/4", R"({"n": 1})");      // Basic Ingest, FROM-less rule
  Feed("$aws/rules/hot/sensors/z/data", R"({"t": 50})");  // Basic Ingest ignores FROM
  Feed("$aws/rules/off/sensors/z/data", R"({"t": 50})");  // a disabled rule gets nothing
  EXPECT_THAT(http_.Urls(), ElementsAre("http://x/hot/a", "http://x/ingest", "http://x/hot/z"));
  EXPECT_EQ(json::parse(http_.requests[1].body), json::parse(R"({"t": "plant/4"})"));
}

TEST_F(RulesEngineTest, RetriesOnlyWhatMayPassAndReportsTheRestToTheErrorAction) {
  http_.statuses = {{"http://x/busy", 503}, {"http://x/bad", 400}, {"http://x/down", -1}};
  AddRule("r", R"({"sql": "SELECT * FROM 'in'",
                   "actions": [{"http": {"url": "http://x/busy"}},
                               {"http": {"url": "http://x/bad"}},
                               {"http": {"url": "http://x/ok"}},
                               {"http": {"url": "http://x/down"}}],
                   "errorAction": {"http": {"url": "http://x/errors"}}})");
  Feed("in", R"({"v": 1})");
  std::map<std::string, int> attempts;
  const http::Request* error = nullptr;
  for (const http::Request& r : http_.requests) {
    ++attempts[r.url];
    if (r.url == "http://x/errors") error = &r;
  }
  EXPECT_EQ(attempts["http://x/busy"], 3);  // 5xx: retried
  EXPECT_EQ(attempts["http://x/bad"], 1);   // 4xx: the request is wrong, no retry
  EXPECT_EQ(attempts["http://x/down"], 3);  // transport error: retried
  EXPECT_EQ(attempts["http://x/ok"], 1);
  EXPECT_EQ(attempts["http://x/errors"], 1);  // one error document for the invocation
  ASSERT_NE(error, nullptr);
  json doc = json::parse(error->body);
  EXPECT_EQ(doc["ruleName"], "r");
  EXPECT_EQ(doc["topic"], "in");
  EXPECT_EQ(doc["clientId"], "dev-1");
  EXPECT_EQ(doc["base64OriginalPayload"], absl::Base64Escape(R"({"v": 1})"));
  ASSERT_EQ(doc["failures"].size(), 3u);
  std::set<std::string> failed;
  for (const json& f : doc["failures"]) {
    EXPECT_EQ(f["failedAction"], "HttpAction");
    failed.insert(f["failedResource"].get<std::string>());
  }
  EXPECT_EQ(failed, (std::set<std::string>{"http://x/busy", "http://x/bad", "http://x/down"}));
  for (const json& f : doc["failures"]) {
    const std::string message = f["errorMessage"];
    if (f["failedResource"] == "http://x/bad") {
      EXPECT_THAT(message, HasSubstr("HTTP 400")) << message;
      EXPECT_THAT(message, HasSubstr("after 1 attempt)")) << message;
    } else {
      EXPECT_THAT(message, HasSubstr("after 3 attempts")) << message;
    }
  }
}

TEST_F(RulesEngineTest, ActionsWithoutTheirTargetFailClearly) {
  // No gateway, no database, no S3 credentials in this engine: each says what is missing.
  AddRule("r", R"({"sql": "SELECT * FROM 'in'",
                   "actions": [{"republish": {"topic": "out"}},
                               {"postgres": {"tableName": "t"}},
                               {"s3": {"bucketName": "b", "key": "k"}}],
                   "errorAction": {"http": {"url": "http://x/errors"}}})");
  Feed("in", "{}");
  ASSERT_EQ(http_.requests.size(), 1u);
  const std::string body = http_.requests[0].body;
  EXPECT_THAT(body, HasSubstr("no gateway to publish to"));
  EXPECT_THAT(body, HasSubstr("no database"));
  EXPECT_THAT(body, HasSubstr("no S3 credentials"));
}

// A republish topic that a template turns into an AWS IoT Jobs topic is refused when it is
// rendered (a literal one already at creation).
TEST_F(RulesEngineTest, RepublishNeverReachesJobsTopics) {
  AddRule("r", R"({"sql": "SELECT * FROM 'in/+'",
                   "actions": [{"republish": {"topic": "$$aws/things/${topic(2)}/jobs/notify"}}],
                   "errorAction": {"http": {"url": "http://x/errors"}}})");
  Feed("in/lamp-1", "{}");
  ASSERT_EQ(http_.requests.size(), 1u);
  json err = json::parse(http_.requests[0].body);
  EXPECT_EQ(err["failures"][0]["failedResource"], "$aws/things/lamp-1/jobs/notify");
  EXPECT_THAT(err["failures"][0]["errorMessage"].get<std::string>(),
              HasSubstr("AWS IoT Jobs' topics"));
}

// An http action sends only under an ENABLED destination (prefix at a boundary): the
// others fail, unsent, and the errorAction says why; enabling the destination lets it send.
TEST_F(RulesEngineTest, HttpActionsSendOnlyUnderAnEnabledDestination) {
  AddRule("r", R"({"sql": "SELECT * FROM 'in'",
                   "actions": [{"http": {"url": "http://y/hook"}},
                               {"http": {"url": "http://x.evil/steal"}},
                               {"http": {"url": "http://x/ok?a=1"}}],
                   "errorAction": {"http": {"url": "http://x/errors"}}})");
  Feed("in", "{}");
  ASSERT_THAT(http_.Urls(), ::testing::UnorderedElementsAre("http://x/ok?a=1", "http://x/errors"));
  json err = json::parse(http_.requests.back().body);
  ASSERT_EQ(err["failures"].size(), 2u) << err;
  for (const json& f : err["failures"]) {
    EXPECT_THAT(f["errorMessage"].get<std::string>(),
                HasSubstr("no ENABLED topic rule destination covers"));
  }

  http_.requests.clear();
  ASSERT_OK(store_.InsertDestination(
      {.id = "d-y", .confirmation_url = "http://y", .status = "DISABLED"}, ""));
  ASSERT_OK(engine_->Reload());
  Feed("in", "{}");
  EXPECT_THAT(http_.Urls(), ::testing::Contains("http://x/errors"));  // DISABLED sends nothing

  http_.requests.clear();
  ASSERT_OK_AND_ASSIGN(bool changed, store_.ChangeDestination(
                                         "d-y", {.expected_status = "DISABLED",
                                                 .status = "ENABLED"}));
  ASSERT_TRUE(changed);
  ASSERT_OK(engine_->Reload());
  Feed("in", "{}");
  EXPECT_THAT(http_.Urls(), ::testing::UnorderedElementsAre("http://y/hook", "http://x/ok?a=1",
                                                           "http://x/errors"));
}

// auth.sigv4 signs the POST as sent (its query, headers and body hash) for the configured
// region and service; without credentials the action fails and says what is missing. (The
// signature itself is checked by an independent verifier in e2e 11.)
TEST_F(RulesEngineTest, HttpActionsSignWithSigV4WhenAsked) {
  const char kRule[] = R"({"sql": "SELECT * FROM 'in'",
      "actions": [{"http": {"url": "http://x/api/in?b=2&a=1",
                            "headers": [{"key": "X-Site", "value": "north"}],
                            "auth": {"sigv4": {"signingRegion": "eu-west-1",
                                               "serviceName": "execute-api",
                                               "roleArn": "arn:aws:iam::1:role/r"}}}}],
      "errorAction": {"http": {"url": "http://x/errors"}}})";
  AddRule("signed", kRule);
  Feed("in", R"({"t": 1})");
  ASSERT_THAT(http_.Urls(), ElementsAre("http://x/errors"));
  EXPECT_THAT(http_.requests[0].body, HasSubstr("no AWS credentials to sign with"));

  http_.requests.clear();
  engine_ = std::make_unique<RulesEngine>(
      &store_, RulesEngine::Options{.http = &http_,
                                    .s3_credentials = {.access_key_id = "AKIDEXAMPLE",
                                                       .secret_access_key = "secret",
                                                       .session_token = "token-1"}});
  ASSERT_OK(engine_->Reload());
  Feed("in", R"({"t": 1})");
  ASSERT_THAT(http_.Urls(), ElementsAre("http://x/api/in?b=2&a=1"));
  http::Response sent{.headers = http_.requests[0].headers};
  EXPECT_THAT(sent.Header("authorization"),
              ::testing::StartsWith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
  EXPECT_THAT(sent.Header("authorization"), HasSubstr("/eu-west-1/execute-api/aws4_request, "
                                                      "SignedHeaders=content-type;host;"
                                                      "x-amz-content-sha256;x-amz-date;"
                                                      "x-amz-security-token;x-site, "));
  EXPECT_EQ(sent.Header("x-amz-content-sha256"), aws::Sha256Hex(http_.requests[0].body));
  EXPECT_EQ(sent.Header("x-amz-security-token"), "token-1");
  EXPECT_THAT(sent.Header("x-amz-date"), ::testing::MatchesRegex("[0-9]{8}T[0-9]{6}Z"));
}

// Counter or gauge value of `family`{label=value} in `registry`; 0 when absent.
double Metric(prometheus::Registry& registry, const std::string& family,
              const std::string& label, const std::string& value) {
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != family) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      for (const prometheus::ClientMetric::Label& l : m.label) {
        if (l.name == label && l.value == value) return m.counter.value;
      }
    }
  }
  return 0;
}

TEST(RulesEngineQueues, ASlowTargetFillsTheBoundedQueuesAndTheRestIsDroppedAndCounted) {
  FakeRulesStore store;
  ASSERT_OK(store.InsertDestination(
      {.id = "d-x", .confirmation_url = "http://x", .status = "ENABLED"}, ""));
  FakeHttp http;
  http.gate_closed = true;  // the target does not answer until the gate opens
  prometheus::Registry registry;
  RulesEngine engine(&store, {.http = &http,
                              .metrics = &registry,
                              .max_queued_messages = 100,
                              .max_queued_actions = 100,
                              .action_workers = 2,
                              .http_attempts = 1});
  pb::TopicRulePayload p;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  R"({"sql": "SELECT * FROM 'in'", "actions": [{"http": {"url": "http://x/slow"}}]})",
                  &p)
                  .ok());
  std::string text;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(p, &text).ok());
  ASSERT_OK(store.Insert({.name = "r", .payload_json = text}));
  ASSERT_OK(engine.Reload());

  int refused = 0;
  for (int i = 0; i < 1000; ++i) {
    pb::InboundMessage m;
    m.set_topic("in");
    m.set_payload("{}");
    refused += engine.Enqueue(m) ? 0 : 1;
  }
  http.Open();
  engine.Drain(absl::Seconds(30));
  const double dropped_actions = Metric(registry, "fleetcore_rules_dropped_total", "queue", "actions");
  const double dropped_messages =
      Metric(registry, "fleetcore_rules_dropped_total", "queue", "messages");
  EXPECT_EQ(dropped_messages, refused);
  // Every message is accounted for: sent, or dropped at one of the two bounds.
  EXPECT_EQ(static_cast<double>(http.requests.size()) + dropped_actions + dropped_messages, 1000);
  // At most: 2 in flight and 100 queued while closed, then what up to 101 messages still
  // waiting (or being evaluated) when it opened could add.
  EXPECT_LE(http.requests.size(), 203u);
}

}  // namespace
}  // namespace fleetcore::rules
