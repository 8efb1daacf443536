// AWS IoT Jobs' device requests, answered with nothing pending: which topics are requests,
// and what a subscriber of the answer topics receives.
#include "services/gateway/jobs_responder.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/gateway/broker_limits.h"
#include "services/gateway/fake_gateway_store.h"

namespace fleetcore::gateway {
namespace {

using json = nlohmann::json;

TEST(JobsTopics, RequestsAndNotRequests) {
  std::optional<JobsTopic> t = ParseJobsTopic("$aws/things/lamp-1/jobs/get");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->thing_name, "lamp-1");
  EXPECT_EQ(t->operation, "get");
  t = ParseJobsTopic("$aws/things/lamp-1/jobs/start-next");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->operation, "start-next");
  t = ParseJobsTopic("$aws/things/lamp-1/jobs/fw-2_1/update");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->job_id, "fw-2_1");
  EXPECT_EQ(t->operation, "update");
  t = ParseJobsTopic("$aws/things/lamp-1/jobs/$next/get");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->operation, "describe");
  EXPECT_TRUE(ClientMayPublishTo("$aws/things/lamp-1/jobs/start-next"));
  // Answers and notifications are the service's to publish.
  for (const char* topic :
       {"$aws/things/lamp-1/jobs/get/accepted", "$aws/things/lamp-1/jobs/notify",
        "$aws/things/lamp-1/jobs/notify-next", "$aws/things/lamp-1/jobs/x/update/accepted",
        "$aws/things/lamp-1/jobs/a.b/get", "$aws/things//jobs/get", "$aws/things/lamp-1/jobs",
        "$aws/things/lamp-1/jobs//get"}) {
    EXPECT_FALSE(ParseJobsTopic(topic).has_value()) << topic;
    EXPECT_FALSE(ClientMayPublishTo(topic)) << topic;
  }
}

class JobsResponderTest : public ::testing::Test {
 protected:
  JobsResponderTest() : broker_(BrokerLimits{}, &store_, &clock_), jobs_(&broker_, nullptr) {
    broker_.SetServiceHook([this](const MessagePtr& m) { jobs_.MaybeAnswer(m); });
    broker_.SetRulesHook([this](const MessagePtr& m) {
      if (absl::EndsWith(m->topic, "/accepted") || absl::EndsWith(m->topic, "/rejected")) {
        answers_.push_back(m);
      }
    });
  }

  // Publishes a request as a device would; the answer that went out.
  std::pair<std::string, json> Ask(const std::string& topic, const std::string& payload) {
    answers_.clear();
    auto m = std::make_shared<Message>();
    m->topic = topic;
    m->payload = payload;
    broker_.Publish(m);
    if (answers_.size() != 1) return {"no answer", json()};
    return {answers_[0]->topic, json::parse(answers_[0]->payload)};
  }

  FakeGatewayStore store_;
  SystemClock clock_;
  Broker broker_;
  JobsResponder jobs_;
  std::vector<MessagePtr> answers_;
};

TEST_F(JobsResponderTest, NothingIsEverPending) {
  auto [topic, doc] = Ask("$aws/things/lamp-1/jobs/get", R"({"clientToken": "c1"})");
  EXPECT_EQ(topic, "$aws/things/lamp-1/jobs/get/accepted");
  EXPECT_EQ(doc["inProgressJobs"], json::array());
  EXPECT_EQ(doc["queuedJobs"], json::array());
  EXPECT_EQ(doc["clientToken"], "c1");
  EXPECT_TRUE(doc["timestamp"].is_number_integer());

  std::tie(topic, doc) = Ask("$aws/things/lamp-1/jobs/start-next", "");
  EXPECT_EQ(topic, "$aws/things/lamp-1/jobs/start-next/accepted");
  EXPECT_FALSE(doc.contains("execution"));
  EXPECT_FALSE(doc.contains("clientToken"));

  std::tie(topic, doc) = Ask("$aws/things/lamp-1/jobs/$next/get", "{}");
  EXPECT_EQ(topic, "$aws/things/lamp-1/jobs/$next/get/accepted");
  EXPECT_FALSE(doc.contains("execution"));
}

TEST_F(JobsResponderTest, NamedJobsAreNotFoundAndBadJsonIsSaid) {
  auto [topic, doc] =
      Ask("$aws/things/lamp-1/jobs/fw-2/update", R"({"status": "SUCCEEDED", "clientToken": "u"})");
  EXPECT_EQ(topic, "$aws/things/lamp-1/jobs/fw-2/update/rejected");
  EXPECT_EQ(doc["code"], "ResourceNotFound");
  EXPECT_EQ(doc["clientToken"], "u");
  std::tie(topic, doc) = Ask("$aws/things/lamp-1/jobs/fw-2/get", "");
  EXPECT_EQ(topic, "$aws/things/lamp-1/jobs/fw-2/get/rejected");
  EXPECT_EQ(doc["code"], "ResourceNotFound");
  std::tie(topic, doc) = Ask("$aws/things/lamp-1/jobs/get", "not json");
  EXPECT_EQ(topic, "$aws/things/lamp-1/jobs/get/rejected");
  EXPECT_EQ(doc["code"], "InvalidJson");
  // A request nested 60,000 levels deep (what fits a payload) is refused unparsed.
  std::tie(topic, doc) = Ask("$aws/things/lamp-1/jobs/start-next",
                             R"({"statusDetails": )" + std::string(60000, '[') +
                                 std::string(60000, ']') + "}");
  EXPECT_EQ(topic, "$aws/things/lamp-1/jobs/start-next/rejected");
  EXPECT_EQ(doc["code"], "InvalidJson");
}

}  // namespace
}  // namespace fleetcore::gateway
