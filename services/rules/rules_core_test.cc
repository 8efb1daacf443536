// RulesCore over the fake store: validation with messages that say what to fix, the
// rule's life (create, get, list by topic, replace, disable, delete) and EvaluateRule.
#include "services/rules/rules_core.h"

#include "absl/strings/str_cat.h"
#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "services/rules/fake_rules_store.h"

namespace fleetcore::rules {
namespace {

using ::testing::HasSubstr;

pb::TopicRulePayload Payload(const std::string& json) {
  pb::TopicRulePayload p;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &p).ok()) << json;
  return p;
}

const char kHighTemp[] = R"({
  "sql": "SELECT *, topic(2) AS device FROM 'sensors/+/data' WHERE temperature > 30",
  "actions": [{"postgres": {"tableName": "public.high_temperatures"}},
              {"republish": {"topic": "alerts/${topic(2)}", "qos": 1}}],
  "errorAction": {"republish": {"topic": "rules/errors"}}})";

class RulesCoreTest : public ::testing::Test {
 protected:
  FakeRulesStore store_;
  aws::Arns arns_{"us-east-1", "000000000000"};
  testing::FakeClock clock_;
  RulesCore core_{&store_, &arns_, &clock_};
};

TEST_F(RulesCoreTest, CreateGetListReplaceDisableDelete) {
  ASSERT_OK(core_.Create("high_temp", Payload(kHighTemp)));
  EXPECT_EQ(core_.Create("high_temp", Payload(kHighTemp)).code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(pb::GetTopicRuleResponse got, core_.Get("high_temp"));
  EXPECT_EQ(got.rule_arn(), "arn:aws:iot:us-east-1:000000000000:rule/high_temp");
  EXPECT_EQ(got.rule().actions_size(), 2);
  EXPECT_EQ(got.rule().aws_iot_sql_version(), "2016-03-23");
  EXPECT_FALSE(got.rule().rule_disabled());

  ASSERT_OK(core_.Create("other", Payload(R"({"sql": "SELECT * FROM 'x/#'",
      "actions": [{"http": {"url": "https://example.com/in"}}]})")));
  pb::ListTopicRulesRequest by_topic;
  by_topic.set_topic("sensors/+/data");
  ASSERT_OK_AND_ASSIGN(pb::ListTopicRulesResponse list, core_.List(by_topic));
  ASSERT_EQ(list.rules_size(), 1);
  EXPECT_EQ(list.rules(0).rule_name(), "high_temp");
  EXPECT_EQ(list.rules(0).topic_pattern(), "sensors/+/data");
  pb::ListTopicRulesRequest page;
  page.set_max_results(1);
  ASSERT_OK_AND_ASSIGN(pb::ListTopicRulesResponse first, core_.List(page));
  ASSERT_EQ(first.rules_size(), 1);
  page.set_next_token(first.next_token());
  ASSERT_OK_AND_ASSIGN(pb::ListTopicRulesResponse second, core_.List(page));
  ASSERT_EQ(second.rules_size(), 1);
  EXPECT_NE(first.rules(0).rule_name(), second.rules(0).rule_name());

  ASSERT_OK(core_.SetDisabled("high_temp", true));
  ASSERT_OK_AND_ASSIGN(got, core_.Get("high_temp"));
  EXPECT_TRUE(got.rule().rule_disabled());
  pb::ListTopicRulesRequest disabled;
  disabled.set_rule_disabled(true);
  ASSERT_OK_AND_ASSIGN(list, core_.List(disabled));
  ASSERT_EQ(list.rules_size(), 1);

  ASSERT_OK(core_.Replace("high_temp", Payload(R"({"sql": "SELECT * FROM 'sensors/#'",
      "actions": [{"republish": {"topic": "all"}}]})")));
  ASSERT_OK_AND_ASSIGN(got, core_.Get("high_temp"));
  EXPECT_EQ(got.rule().sql(), "SELECT * FROM 'sensors/#'");
  EXPECT_EQ(core_.Replace("nope", Payload(kHighTemp)).code(), absl::StatusCode::kNotFound);

  ASSERT_OK(core_.Delete("high_temp"));
  EXPECT_EQ(core_.Get("high_temp").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(core_.Delete("high_temp").code(), absl::StatusCode::kNotFound);
}

TEST_F(RulesCoreTest, InvalidRulesAreRefusedWithTheReason) {
  auto refused = [&](const std::string& name, const std::string& json) {
    absl::Status s = core_.Create(name, Payload(json));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << json;
    return std::string(s.message());
  };
  EXPECT_THAT(refused("bad-name", kHighTemp), HasSubstr("only a-z, A-Z, 0-9 and _"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't' WHERE temperature >",
                              "actions": [{"republish": {"topic": "x"}}]})"),
              HasSubstr("sql: line 1, column"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'", "actions": [{"postgres": {
      "tableName": "t", "databaseUrl": "postgresql://u:secret@db/x"}}]})"),
              HasSubstr("must not carry a password"));
  // Without FROM: a Basic-Ingest-only rule.
  EXPECT_OK(core_.Create("ingest_only", Payload(R"({"sql": "SELECT 1 AS one",
      "actions": [{"republish": {"topic": "x"}}]})")));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'"})"), HasSubstr("at least one action"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'", "actions": [{}]})"),
              HasSubstr("actions[0]: needs exactly one of"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'",
                              "actions": [{"republish": {"topic": "a/${topic("}}]})"),
              HasSubstr("actions[0].republish.topic"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'", "actions": [{"republish": {
                                  "topic": "$$aws/things/lamp-1/jobs/notify-next"}}]})"),
              HasSubstr("actions[0].republish.topic: AWS IoT Jobs' topics"));
  EXPECT_TRUE(RepublishTopicAllowed("$aws/things/lamp-1/shadow/update"));
  EXPECT_TRUE(RepublishTopicAllowed("$aws/things/lamp-1/jobsx"));
  EXPECT_TRUE(RepublishTopicAllowed("things/lamp-1/jobs/x"));
  EXPECT_FALSE(RepublishTopicAllowed("$aws/things/lamp-1/jobs"));
  EXPECT_FALSE(RepublishTopicAllowed("$aws/things/lamp-1/jobs/j1/update"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'", "actions": [{"http": {
                                  "url": "https://x", "headers": [{"value": "v"}]}}]})"),
              HasSubstr("actions[0].http.headers[0].key: is 1 to 256 bytes"));
  EXPECT_THAT(refused("r", absl::StrCat(R"({"sql": "SELECT * FROM 't'", "description": ")",
                                        std::string(130 * 1024, 'd'),
                                        R"(", "actions": [{"republish": {"topic": "x"}}]})")),
              HasSubstr("topicRulePayload: is over 128 KB"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'",
                              "actions": [{"http": {"url": "ftp://x"}}]})"),
              HasSubstr("actions[0].http.url: must be an http:// or https:// URL"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'",
                              "actions": [{"http": {"url": "https://x", "auth": {"sigv4": {
                                  "serviceName": "execute-api"}}}}]})"),
              HasSubstr("actions[0].http.auth.sigv4.signingRegion: is required"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'",
                              "actions": [{"http": {"url": "https://x", "auth": {"sigv4": {
                                  "signingRegion": "eu-west-1"}}}}]})"),
              HasSubstr("actions[0].http.auth.sigv4.serviceName: is required"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'",
                              "actions": [{"http": {"url": "https://x", "auth": {}}}]})"),
              HasSubstr("actions[0].http.auth: sigv4 is the one method"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'",
                              "actions": [{"postgres": {"tableName": "x; drop"}}]})"),
              HasSubstr("actions[0].postgres.tableName"));
  for (const char* own : {"rules.destinations", "CA.certificates", "fleetcore_migrate.applied"}) {
    EXPECT_THAT(refused("r", absl::StrCat(R"({"sql": "SELECT * FROM 't'",
                              "actions": [{"postgres": {"tableName": ")", own, R"("}}]})")),
                HasSubstr("is a schema of fleetcore's own"))
        << own;
  }
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'", "awsIotSqlVersion": "beta",
                              "actions": [{"republish": {"topic": "x"}}]})"),
              HasSubstr("awsIotSqlVersion"));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'", "actions": [{"republish": {"topic": "x"}}],
                              "errorAction": {"s3": {"bucketName": "b"}}})"),
              HasSubstr("errorAction.s3.key: is required"));
  // Templates parse in the rule's SQL version, and are not evaluated: one that reads a shadow
  // needs none at creation.
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'", "awsIotSqlVersion": "2015-10-08",
      "actions": [{"republish": {"topic": "a/${get_thing_shadow('lamp-1', 'r').state.reported.room}"}}]})"),
              HasSubstr("actions[0].republish.topic: line 1, column 1: get_thing_shadow() needs "
                        "SQL version 2016-03-23"));
  EXPECT_OK(core_.Create("shadow_topic", Payload(R"({"sql": "SELECT * FROM 't'",
      "actions": [{"republish": {"topic": "a/${get_thing_shadow('lamp-1', 'r').state.reported.room}"}}]})")));
  EXPECT_THAT(refused("r", R"({"sql": "SELECT * FROM 't'",
                              "actions": [{"republish": {"topic": "a/${topic(2) topic(3)}"}}]})"),
              HasSubstr("expected } after the expression"));
}

TEST_F(RulesCoreTest, RepublishHeadersAreCheckedWhereTheyCanBe) {
  auto refused = [&](const std::string& headers) {
    absl::Status s = core_.Create("r", Payload(absl::StrCat(
        R"({"sql": "SELECT * FROM 't'", "actions": [{"republish": {"topic": "x", "headers": )",
        headers, "}}]}")));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << headers;
    return std::string(s.message());
  };
  EXPECT_THAT(refused(R"({"payloadFormatIndicator": "TEXT"})"),
              HasSubstr("actions[0].republish.headers.payloadFormatIndicator: is UTF8_DATA or "
                        "UNSPECIFIED_BYTES, not \"TEXT\""));
  EXPECT_THAT(refused(R"({"messageExpiry": "soon"})"),
              HasSubstr("headers.messageExpiry: is a number of seconds"));
  EXPECT_THAT(refused(R"({"correlationData": "not base64!"})"),
              HasSubstr("headers.correlationData: is base64"));
  EXPECT_THAT(refused(R"({"contentType": "${upper(}"})"), HasSubstr("headers.contentType"));
  EXPECT_THAT(refused(R"({"userProperties": [{"value": "v"}]})"),
              HasSubstr("headers.userProperties[0].key: is required"));
  // Templates are judged when they are substituted.
  EXPECT_OK(core_.Create("with_headers", Payload(R"({"sql": "SELECT * FROM 't'",
      "actions": [{"republish": {"topic": "x", "headers": {
        "payloadFormatIndicator": "UTF8_DATA", "contentType": "application/json",
        "responseTopic": "replies/${topic(2)}", "correlationData": "AQL/",
        "messageExpiry": "${60 * 5}",
        "userProperties": [{"key": "site", "value": "${get_user_properties('site')[0]}"}]}}}]})")));
}

TEST_F(RulesCoreTest, EvaluateRuleIsADryRun) {
  pb::EvaluateRuleRequest req;
  req.set_sql("SELECT temperature, topic(2) AS device FROM 'sensors/+/data' WHERE temperature > 30");
  req.set_topic("sensors/lamp-1/data");
  req.set_payload(R"({"temperature": 31})");
  ASSERT_OK_AND_ASSIGN(pb::EvaluateRuleResponse r, core_.Evaluate(req));
  EXPECT_TRUE(r.selected());
  EXPECT_EQ(r.output(), R"({"device":"lamp-1","temperature":31})");
  req.set_payload(R"({"temperature": 20})");
  ASSERT_OK_AND_ASSIGN(r, core_.Evaluate(req));
  EXPECT_FALSE(r.selected());
  // With MQTT 5 properties, as a device would publish them.
  req.set_sql("SELECT get_mqtt_property('content_type') AS ct, get_user_properties('site') AS s "
              "FROM 'sensors/#'");
  req.mutable_properties()->set_content_type("text/plain");
  pb::MqttUserProperty* site = req.mutable_properties()->add_user_properties();
  site->set_key("site");
  site->set_value("north");
  ASSERT_OK_AND_ASSIGN(r, core_.Evaluate(req));
  EXPECT_EQ(r.output(), R"({"ct":"text/plain","s":["north"]})");
  req.set_sql("SELECT FROM");
  EXPECT_EQ(core_.Evaluate(req).status().code(), absl::StatusCode::kInvalidArgument);
  // The publisher's address, as a device's message would carry it.
  req.set_sql("SELECT sourceip() AS ip FROM 'sensors/#'");
  req.set_source_ip("192.0.2.1");
  ASSERT_OK_AND_ASSIGN(r, core_.Evaluate(req));
  EXPECT_EQ(r.output(), R"({"ip":"192.0.2.1"})");
  // A shadow that cannot be read is the dry run's error, naming the call.
  req.set_sql("SELECT get_thing_shadow(topic(2), 'role') AS s FROM 'sensors/#'");
  EXPECT_THAT(core_.Evaluate(req).status(),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("get_thing_shadow(lamp-1): ")));
}

}  // namespace
}  // namespace fleetcore::rules
