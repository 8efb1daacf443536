// The data plane's connection management over HTTP (GetConnection, ListSubscriptions,
// DeleteConnection, SendDirectMessage): AWS's paths, answers and policy actions.
#include "services/gateway/connections_api.h"

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "common/policy/policy.h"
#include "common/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/gateway/authenticator.h"
#include "services/gateway/fake_gateway_store.h"

namespace fleetcore::gateway {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

class FakeOutlet final : public Outlet {
 public:
  void Wake() override {}
  void Kick(uint8_t, WillPolicy) override {}
};

class FixedIds final : public IdGenerator {
 public:
  std::string NewUuid() override { return "00000000-0000-4000-8000-000000000001"; }
};

const HeaderLookup NoHeaders = [](absl::string_view) { return std::string(); };

class ConnectionsApiTest : public ::testing::Test {
 protected:
  ConnectionsApiTest()
      : broker_(BrokerLimits{}, &store_, &clock_),
        executor_(1, 10),
        calls_(&executor_, nullptr),
        direct_(&broker_, nullptr, nullptr),
        service_(&broker_, &calls_, [] { return std::string("localhost"); }, nullptr, &direct_),
        api_(&service_, &direct_, &ids_) {}

  // A connected client (its connection a fake).
  std::shared_ptr<Session> Connect(const std::string& id) {
    outlets_.push_back(std::make_shared<FakeOutlet>());
    return broker_.Attach(outlets_.back(), {.client_id = id, .version = mqtt::Version::kV5})
        .session;
  }
  // A persistent session whose client went away, subscribed to `filters`.
  std::shared_ptr<Session> Offline(const std::string& id, const std::vector<std::string>& filters) {
    auto outlet = std::make_shared<FakeOutlet>();
    std::shared_ptr<Session> s =
        broker_
            .Attach(outlet, {.client_id = id, .version = mqtt::Version::kV5,
                             .clean_start = true, .expiry_interval = 3600})
            .session;
    for (const std::string& f : filters) {
      mqtt::ParsedFilter parsed;
      EXPECT_TRUE(mqtt::ParseSharedFilter(f, &parsed));
      broker_.Subscribe(s, f, parsed, {.qos = 1});
    }
    broker_.Detach(s, outlet.get(), nullptr, 0, WillPolicy::kPublish, "MQTT_KEEP_ALIVE_TIMEOUT");
    return s;
  }
  std::pair<int, json> Call(const std::string& method, const std::string& target,
                            const Identity* identity = nullptr, std::string body = "") {
    auto answered = std::make_shared<std::promise<std::pair<int, std::string>>>();
    std::future<std::pair<int, std::string>> f = answered->get_future();
    api_.Handle(method, target, NoHeaders, std::move(body), identity,
                [answered](int status, std::string b) {
                  answered->set_value({status, std::move(b)});
                });
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return {0, json()};
    auto [status, text] = f.get();
    return {status, json::parse(text, nullptr, false)};
  }
  static std::unique_ptr<Identity> Caller(const std::string& policy) {
    auto doc = policy::PolicyDocument::Parse(policy);
    EXPECT_TRUE(doc.ok()) << doc.status();
    std::vector<policy::PolicySet::Policy> policies;
    if (doc.ok()) policies.push_back({"p", "1", *doc});
    return std::make_unique<Identity>(
        "arn:aws:iot:us-east-1:000000000000:cert/abc", "backend", "127.0.0.1", std::nullopt,
        std::nullopt,
        std::make_shared<const policy::PolicySet>(std::move(policies),
                                                  aws::Arns("us-east-1", "000000000000")));
  }

  FakeGatewayStore store_;
  testing::FakeClock clock_;
  Broker broker_;
  grpc_util::Executor executor_;
  grpc_util::CallRunner calls_;
  DirectMessages direct_;
  GatewayService service_;
  FixedIds ids_;
  ConnectionsApi api_;
  std::vector<std::shared_ptr<FakeOutlet>> outlets_;
};

TEST_F(ConnectionsApiTest, GetConnectionOfAnOfflinePersistentSession) {
  Offline("lamp-1", {"cmd/#"});
  auto [status, body] = Call("GET", "/connections/lamp-1");
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["clientId"], "lamp-1");
  EXPECT_EQ(body["connected"], false);
  EXPECT_EQ(body["cleanSession"], false);
  EXPECT_EQ(body["sessionExpiry"], 3600);
  EXPECT_TRUE(body.contains("disconnectedSince")) << body.dump();
  EXPECT_EQ(body["disconnectReason"], "MQTT_KEEP_ALIVE_TIMEOUT");
  auto [none, error] = Call("GET", "/connections/nobody");
  EXPECT_EQ(none, 404);
  EXPECT_THAT(error.value("message", ""), HasSubstr("no connection and no session"));
  EXPECT_EQ(error.value("traceId", ""), "00000000-0000-4000-8000-000000000001");
}

TEST_F(ConnectionsApiTest, ListSubscriptionsPagesInFilterOrder) {
  Offline("lamp-1", {"c/3", "a/1", "b/2/#"});
  auto [status, page] = Call("GET", "/connections/lamp-1/subscriptions?maxResults=2");
  ASSERT_EQ(status, 200) << page.dump();
  EXPECT_EQ(page["subscriptions"],
            json::parse(R"([{"topicFilter":"a/1","qos":1},{"topicFilter":"b/2/#","qos":1}])"));
  ASSERT_TRUE(page.contains("nextToken"));
  auto [s2, rest] = Call("GET", "/connections/lamp-1/subscriptions?maxResults=2&nextToken=" +
                                    page["nextToken"].get<std::string>());
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(rest["subscriptions"], json::parse(R"([{"topicFilter":"c/3","qos":1}])"));
  EXPECT_FALSE(rest.contains("nextToken"));
  EXPECT_EQ(Call("GET", "/connections/lamp-1/subscriptions?maxResults=0").first, 400);
  EXPECT_EQ(Call("GET", "/connections/lamp-1/subscriptions?nextToken=forged").first, 400);
}

TEST_F(ConnectionsApiTest, DeleteConnectionWithCleanSessionDiscardsTheSession) {
  Offline("lamp-1", {"cmd/#"});
  // Not connected: without cleanSession there is nothing to end.
  EXPECT_EQ(Call("DELETE", "/connections/lamp-1").first, 404);
  clock_.Advance(absl::Seconds(1));
  auto [status, body] = Call("DELETE", "/connections/lamp-1?cleanSession=true");
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_EQ(Call("GET", "/connections/lamp-1").first, 404);
  EXPECT_EQ(Call("DELETE", "/connections/lamp-1?cleanSession=maybe").first, 400);
}

// AWS IoT's quota: one DeleteConnection a second per client id, answered 429 beyond it
// (whatever the call's outcome would be), and other client ids are not held up.
TEST_F(ConnectionsApiTest, DeleteConnectionIsOneASecondPerClientId) {
  Connect("lamp-1");
  Connect("lamp-2");
  EXPECT_EQ(Call("DELETE", "/connections/lamp-1").first, 200);
  auto [status, body] = Call("DELETE", "/connections/lamp-1?cleanSession=true");
  EXPECT_EQ(status, 429);
  EXPECT_THAT(body.value("message", ""), HasSubstr("one a second per client id"));
  EXPECT_EQ(Call("DELETE", "/connections/lamp-2").first, 200);
  clock_.Advance(absl::Milliseconds(999));
  EXPECT_EQ(Call("DELETE", "/connections/lamp-1?cleanSession=true").first, 429);
  // A refused call does not restart the second.
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(Call("DELETE", "/connections/lamp-1?cleanSession=true").first, 200);
  EXPECT_EQ(Call("GET", "/connections/lamp-1").first, 404);
}

TEST_F(ConnectionsApiTest, RefusesWhatAwsRefuses) {
  EXPECT_EQ(Call("GET", "/connections/%24aws").first, 400);
  EXPECT_EQ(Call("GET", "/connections/").first, 400);
  EXPECT_EQ(Call("GET", "/connections/a%FF").first, 400);
  EXPECT_EQ(Call("GET", "/connections/" + std::string(129, 'c')).first, 400);
  EXPECT_EQ(Call("GET", "/connections/x?color=red").first, 400);
  EXPECT_EQ(Call("POST", "/connections/x").first, 405);
  EXPECT_EQ(Call("GET", "/connections/x/messages").first, 405);
  EXPECT_EQ(Call("GET", "/connections/x/other").first, 404);
  EXPECT_EQ(Call("POST", "/connections/x/messages").first, 400);  // no topic
  // contentType becomes an MQTT 5 UTF-8 string: checked as a publish's.
  Connect("x");
  EXPECT_EQ(Call("POST", "/connections/x/messages?topic=t&contentType=%FF").first, 400);
  EXPECT_EQ(Call("POST", "/connections/x/messages?topic=t&contentType=text%2Fplain").first, 200);
}

// Each call needs its own action on client/{clientId}; a direct message's topic is
// iot:Topic, as in AWS's examples.
TEST_F(ConnectionsApiTest, EachCallIsAuthorizedByItsAction) {
  Offline("lamp-1", {"cmd/#"});
  auto outlet = std::make_shared<FakeOutlet>();
  std::shared_ptr<Session> live =
      broker_.Attach(outlet, {.client_id = "lamp-2", .version = mqtt::Version::kV5}).session;
  const auto reader = Caller(R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":["iot:GetConnection","iot:ListSubscriptions"],
       "Resource":"arn:aws:iot:us-east-1:000000000000:client/lamp-*"},
      {"Effect":"Allow","Action":"iot:SendDirectMessage",
       "Resource":"arn:aws:iot:us-east-1:000000000000:client/lamp-2",
       "Condition":{"StringEquals":{"iot:Topic":"cmd/reboot"}}}]})");
  EXPECT_EQ(Call("GET", "/connections/lamp-1", reader.get()).first, 200);
  EXPECT_EQ(Call("GET", "/connections/lamp-1/subscriptions", reader.get()).first, 200);
  auto [denied, why] = Call("DELETE", "/connections/lamp-1?cleanSession=true", reader.get());
  EXPECT_EQ(denied, 403);
  EXPECT_THAT(why.value("message", ""), HasSubstr("iot:DeleteConnection"));
  EXPECT_EQ(Call("GET", "/connections/other", reader.get()).first, 403);

  EXPECT_EQ(Call("POST", "/connections/lamp-2/messages?topic=cmd/reboot", reader.get(), "go")
                .first,
            200);
  auto [wrong_topic, said] =
      Call("POST", "/connections/lamp-2/messages?topic=cmd/erase", reader.get(), "go");
  EXPECT_EQ(wrong_topic, 403);
  EXPECT_THAT(said.value("message", ""), HasSubstr("iot:SendDirectMessage"));
  EXPECT_EQ(Call("POST", "/connections/lamp-1/messages?topic=cmd/reboot", reader.get(), "go")
                .first,
            403);
  std::vector<Outgoing> out;
  size_t expired = 0;
  live->TakeSendable(10, broker_.NowMs(), &out, &expired);
  ASSERT_EQ(out.size(), 1u) << "only the allowed direct message was delivered";
  EXPECT_EQ(out[0].message->topic, "cmd/reboot");
}

}  // namespace
}  // namespace fleetcore::gateway
