// Which topics are shadow requests, and the broker's hook that hands them over.
#include "services/gateway/shadow_forwarder.h"

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/gateway/broker_limits.h"
#include "services/gateway/fake_gateway_store.h"

namespace fleetcore::gateway {
namespace {

TEST(ShadowForwarder, ParsesClassicAndNamedRequestTopics) {
  std::optional<ShadowTopic> r = ParseShadowTopic("$aws/things/lamp-1/shadow/update");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->thing_name, "lamp-1");
  EXPECT_EQ(r->shadow_name, "");
  EXPECT_EQ(r->operation, "update");
  EXPECT_EQ(r->prefix, "$aws/things/lamp-1/shadow");
  r = ParseShadowTopic("$aws/things/lamp-1/shadow/name/cfg/delete");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->shadow_name, "cfg");
  EXPECT_EQ(r->operation, "delete");
  EXPECT_EQ(r->prefix, "$aws/things/lamp-1/shadow/name/cfg");
  r = ParseShadowTopic("$aws/things/t/shadow/get");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->operation, "get");
  EXPECT_TRUE(ClientMayPublishTo("$aws/things/t/shadow/get"));
}

TEST(ShadowForwarder, AnswersAndOtherTopicsAreNotRequests) {
  for (const char* topic :
       {"$aws/things/lamp-1/shadow/update/accepted", "$aws/things/lamp-1/shadow/get/rejected",
        "$aws/things/lamp-1/shadow/name/cfg/update/delta", "$aws/things/lamp-1/shadow/list",
        "$aws/things/lamp-1/shadow", "things/lamp-1/shadow/get",
        "$aws/things/lamp-1/shadow/name/cfg", "$aws/things/lamp-1/shadow/x/cfg/get",
        // Names are not empty (found by gateway_input_fuzzer: these were requests here, but
        // topics clients may not publish to).
        "$aws/things/-1/shadow/name//update", "$aws/things//shadow/get"}) {
    EXPECT_FALSE(ParseShadowTopic(topic).has_value()) << topic;
    if (topic[0] == '$') {
      EXPECT_FALSE(ClientMayPublishTo(topic)) << topic;
    }
  }
}

TEST(ShadowForwarder, RestTargets) {
  // A channel to nowhere: Handles only looks at the path.
  ShadowForwarder f(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()), "",
                    nullptr, nullptr, 20);
  EXPECT_TRUE(f.Handles("/things/lamp-1/shadow"));
  EXPECT_TRUE(f.Handles("/things/lamp-1/shadow?name=cfg"));
  EXPECT_TRUE(f.Handles("/things/lamp%3A1/shadow"));
  EXPECT_TRUE(f.Handles("/api/things/shadow/ListNamedShadowsForThing/lamp-1?pageSize=5"));
  EXPECT_FALSE(f.Handles("/topics/things/lamp-1/shadow"));
  EXPECT_FALSE(f.Handles("/things/lamp-1"));
  EXPECT_FALSE(f.Handles("/things/lamp-1/shadow/extra"));
  EXPECT_FALSE(f.Handles("/mqtt"));
}

TEST(ShadowForwarder, TheBrokerHandsOverOnlyAwsTopicsAfterRouting) {
  FakeGatewayStore store;
  SystemClock clock;
  Broker broker(BrokerLimits{}, &store, &clock);
  std::vector<std::string> seen;
  std::vector<std::string> rules;
  broker.SetServiceHook([&](const MessagePtr& m) { seen.push_back(m->topic); });
  broker.SetRulesHook([&](const MessagePtr& m) { rules.push_back(m->topic); });
  for (const char* topic : {"$aws/things/t/shadow/update", "sensors/t",
                            "$aws/events/presence/connected/c", "$aws/rules/r/x"}) {
    auto m = std::make_shared<Message>();
    m->topic = topic;
    broker.Publish(m);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"$aws/things/t/shadow/update",
                                            "$aws/events/presence/connected/c"}));
  // The rules see everything; Basic Ingest goes to them alone.
  EXPECT_EQ(rules, (std::vector<std::string>{"$aws/things/t/shadow/update", "sensors/t",
                                             "$aws/events/presence/connected/c",
                                             "$aws/rules/r/x"}));
}

}  // namespace
}  // namespace fleetcore::gateway
