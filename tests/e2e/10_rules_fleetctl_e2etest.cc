// The rules service with fleetctl, as `aws iot` is used: the seed's high-temperature rule
// created from a file, read back, listed by topic, disabled and enabled, replaced, deleted;
// invalid SQL refused with its line and column; evaluate-rule as a dry run.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/e2e_util.h"

namespace fleetcore::e2e {
namespace {

using json = nlohmann::json;
constexpr char kToken[] = "e2e-admin-token";

class RulesFleetctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    ASSERT_OK_AND_ASSIGN(rules_, StartService("services/rules/fleetcore-rules",
                                              {"--db-url=" + db_->url()},
                                              {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  }
  Fleetctl Ctl() const { return Fleetctl(kToken, {{"FLEETCORE_RULES_ENDPOINT", rules_.endpoint}}); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = ::testing::TempDir() + name;
    std::ofstream(path) << text;
    return path;
  }

  std::unique_ptr<testing::TestDatabase> db_;
  RunningService rules_;
};

TEST_F(RulesFleetctlTest, TopicRuleLifecycle) {
  const std::string rule = Write("high-temp-rule.json", R"({
    "sql": "SELECT *, topic(2) AS device FROM 'sensors/+/data' WHERE temperature > 30",
    "description": "readings above 30 degrees",
    "actions": [{"postgres": {"tableName": "public.high_temperatures"}}],
    "awsIotSqlVersion": "2016-03-23"})");
  Ctl().Json({"create-topic-rule", "--rule-name", "high_temp", "--topic-rule-payload",
              "file://" + rule});
  Ctl().ExpectFailure({"create-topic-rule", "--rule-name", "high_temp", "--topic-rule-payload",
                       "file://" + rule},
                      "ALREADY_EXISTS", "high_temp");
  json got = Ctl().Json({"get-topic-rule", "--rule-name", "high_temp"});
  EXPECT_EQ(got["ruleArn"], "arn:aws:iot:us-east-1:000000000000:rule/high_temp");
  EXPECT_EQ(got["rule"]["description"], "readings above 30 degrees");
  EXPECT_EQ(got["rule"]["actions"][0]["postgres"]["tableName"], "public.high_temperatures");

  json list = Ctl().Json({"list-topic-rules", "--topic", "sensors/+/data"});
  ASSERT_EQ(list["rules"].size(), 1u) << list.dump();
  EXPECT_EQ(list["rules"][0]["topicPattern"], "sensors/+/data");
  EXPECT_TRUE(Ctl().Json({"list-topic-rules", "--topic", "other"})["rules"].empty());

  Ctl().Json({"disable-topic-rule", "--rule-name", "high_temp"});
  EXPECT_EQ(Ctl().Json({"get-topic-rule", "--rule-name", "high_temp"})["rule"]["ruleDisabled"],
            true);
  Ctl().Json({"enable-topic-rule", "--rule-name", "high_temp"});
  EXPECT_FALSE(
      Ctl().Json({"get-topic-rule", "--rule-name", "high_temp"})["rule"].contains("ruleDisabled"));

  Ctl().Json({"replace-topic-rule", "--rule-name", "high_temp", "--topic-rule-payload",
              R"({"sql": "SELECT * FROM 'sensors/#'", "actions": [{"republish": {"topic": "all"}}]})"});
  EXPECT_EQ(Ctl().Json({"get-topic-rule", "--rule-name", "high_temp"})["rule"]["sql"],
            "SELECT * FROM 'sensors/#'");
  Ctl().Json({"delete-topic-rule", "--rule-name", "high_temp"});
  Ctl().ExpectFailure({"get-topic-rule", "--rule-name", "high_temp"}, "NOT_FOUND", "high_temp");
}

TEST_F(RulesFleetctlTest, InvalidSqlIsRefusedWithWhereAndWhat) {
  Ctl().ExpectFailure(
      {"create-topic-rule", "--rule-name", "broken", "--topic-rule-payload",
       R"({"sql": "SELECT * FROM 'sensors/+/data' WHERE temperature >", "actions": [{"republish": {"topic": "x"}}]})"},
      "INVALID_ARGUMENT", "sql: line 1, column 51: expected a value, a field or a function");
  Ctl().ExpectFailure({"create-topic-rule", "--rule-name", "no-dashes", "--topic-rule-payload",
                       R"({"sql": "SELECT * FROM 't'", "actions": [{"republish": {"topic": "x"}}]})"},
                      "INVALID_ARGUMENT", "ruleName");
}

TEST_F(RulesFleetctlTest, EvaluateRuleDryRun) {
  json r = Ctl().Json({"evaluate-rule", "--sql",
                       "SELECT temperature, topic(2) AS device FROM 'sensors/+/data' WHERE "
                       "temperature > 30",
                       "--topic", "sensors/lamp-1/data", "--payload", R"({"temperature": 35})"});
  EXPECT_EQ(r["selected"], true);
  EXPECT_EQ(r["output"], json::parse(R"({"device": "lamp-1", "temperature": 35})"));
  r = Ctl().Json({"evaluate-rule", "--sql",
                  "SELECT * FROM 'sensors/+/data' WHERE temperature > 30", "--topic",
                  "sensors/lamp-1/data", "--payload", R"({"temperature": 20})"});
  EXPECT_FALSE(r.contains("selected")) << r.dump();
}

}  // namespace
}  // namespace fleetcore::e2e
