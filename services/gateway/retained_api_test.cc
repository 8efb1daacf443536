// The data plane's retained-message API over the broker's memory: which targets are its, the
// answers' shapes, paging, and the refusals (method, escapes, bounds, absent topics).
#include "services/gateway/retained_api.h"

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/gateway/authenticator.h"
#include "services/gateway/broker_limits.h"
#include "services/gateway/fake_gateway_store.h"

namespace fleetcore::gateway {
namespace {

using json = nlohmann::json;

const HeaderLookup NoHeaders = [](absl::string_view) { return std::string(); };

class RetainedApiTest : public ::testing::Test {
 protected:
  RetainedApiTest() : broker_(BrokerLimits{}, &store_, &clock_), api_(&broker_) {
    for (const char* topic : {"home/a", "home/b", "home/c d"}) {
      auto m = std::make_shared<Message>();
      m->topic = topic;
      m->payload = std::string("v:") + topic;
      m->qos = 1;
      m->retain = true;
      m->user_properties = {{"k", "v"}};
      broker_.Publish(m);
    }
  }

  std::pair<int, json> Get(const std::string& target, const std::string& method = "GET") {
    int status = 0;
    std::string body;
    api_.Handle(method, target, NoHeaders, "", nullptr, [&](int s, std::string b) {
      status = s;
      body = std::move(b);
    });
    return {status, json::parse(body, nullptr, false)};
  }

  FakeGatewayStore store_;
  SystemClock clock_;
  Broker broker_;
  RetainedApi api_;
};

TEST_F(RetainedApiTest, GetsOneAndListsThemAll) {
  EXPECT_TRUE(api_.Handles("/retainedMessage"));
  EXPECT_TRUE(api_.Handles("/retainedMessage?maxResults=2"));
  EXPECT_TRUE(api_.Handles("/retainedMessage/home%2Fa"));
  EXPECT_FALSE(api_.Handles("/retainedMessages"));
  EXPECT_FALSE(api_.Handles("/topics/home"));

  auto [status, got] = Get("/retainedMessage/home%2Fc%20d");
  ASSERT_EQ(status, 200) << got.dump();
  EXPECT_EQ(got["topic"], "home/c d");
  EXPECT_EQ(got["payload"], absl::Base64Escape("v:home/c d"));
  EXPECT_EQ(got["qos"], 1);
  EXPECT_TRUE(got["lastModifiedTime"].is_number_integer());
  std::string properties;
  ASSERT_TRUE(absl::Base64Unescape(got["userProperties"].get<std::string>(), &properties));
  EXPECT_EQ(json::parse(properties), json::parse(R"([{"k": "v"}])"));

  auto [s1, first] = Get("/retainedMessage?maxResults=2");
  ASSERT_EQ(s1, 200) << first.dump();
  ASSERT_EQ(first["retainedTopics"].size(), 2u);
  EXPECT_EQ(first["retainedTopics"][0]["topic"], "home/a");
  EXPECT_EQ(first["retainedTopics"][0]["payloadSize"], 8);
  ASSERT_TRUE(first.contains("nextToken"));
  auto [s2, second] =
      Get("/retainedMessage?maxResults=2&nextToken=" + first["nextToken"].get<std::string>());
  ASSERT_EQ(s2, 200) << second.dump();
  ASSERT_EQ(second["retainedTopics"].size(), 1u);
  EXPECT_EQ(second["retainedTopics"][0]["topic"], "home/c d");
  EXPECT_FALSE(second.contains("nextToken"));
}

// A caller whose policies allow nothing is refused in JSON, even when the refusal quotes a
// topic that is not UTF-8 once decoded (nlohmann's dump would have thrown on it).
TEST_F(RetainedApiTest, RefusesACallerItsPoliciesDoNotAllow) {
  const Identity nobody("p", "c", "127.0.0.1", std::nullopt, std::nullopt,
                        std::make_shared<const policy::PolicySet>(
                            std::vector<policy::PolicySet::Policy>{},
                            aws::Arns("us-east-1", "000000000000")));
  for (const std::string& target :
       {std::string("/retainedMessage/home%2Fa"), std::string("/retainedMessage/home%FF"),
        std::string("/retainedMessage")}) {
    int status = 0;
    std::string body;
    api_.Handle("GET", target, NoHeaders, "", &nobody, [&](int s, std::string b) {
      status = s;
      body = std::move(b);
    });
    EXPECT_EQ(status, 403) << target;
    EXPECT_TRUE(json::parse(body, nullptr, false).contains("message")) << body;
  }
}

TEST_F(RetainedApiTest, RefusesWhatAwsRefuses) {
  EXPECT_EQ(Get("/retainedMessage/home%2Fnone").first, 404);
  EXPECT_EQ(Get("/retainedMessage/home%2Fa", "POST").first, 405);
  EXPECT_EQ(Get("/retainedMessage/home%ZZ").first, 400);
  EXPECT_EQ(Get("/retainedMessage/").first, 400);
  EXPECT_EQ(Get("/retainedMessage?maxResults=0").first, 400);
  EXPECT_EQ(Get("/retainedMessage?maxResults=201").first, 400);
  EXPECT_EQ(Get("/retainedMessage?nextToken=garbage").first, 400);
}

}  // namespace
}  // namespace fleetcore::gateway
