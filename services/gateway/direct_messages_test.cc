// Direct messages (AWS's SendDirectMessage) through the broker: to the connected client
// only, at QoS 0, or at QoS 1 answered at its PUBACK or the timeout; refusals as AWS's.
#include "services/gateway/direct_messages.h"

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/gateway/fake_gateway_store.h"

namespace fleetcore::gateway {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using Code = absl::StatusCode;

class FakeOutlet final : public Outlet {
 public:
  void Wake() override {}
  void Kick(uint8_t, WillPolicy) override {}
};

class OnlyTopic final : public Session::ReceiveCheck {
 public:
  explicit OnlyTopic(std::string topic) : topic_(std::move(topic)) {}
  bool MayReceive(absl::string_view topic) const override { return topic == topic_; }

 private:
  std::string topic_;
};

class DirectMessagesTest : public ::testing::Test {
 protected:
  DirectMessagesTest() : broker_(BrokerLimits{}, &store_, &clock_), direct_(&broker_, nullptr,
                                                                            &metrics_) {}

  std::shared_ptr<Session> Connect(const std::string& id, uint32_t expiry = 0) {
    outlets_.push_back(std::make_shared<FakeOutlet>());
    return broker_
        .Attach(outlets_.back(), {.client_id = id, .version = mqtt::Version::kV5,
                                  .clean_start = true, .expiry_interval = expiry})
        .session;
  }
  static std::vector<Outgoing> Take(Session& s, int64_t now_ms) {
    std::vector<Outgoing> out;
    size_t expired = 0;
    s.TakeSendable(100, now_ms, &out, &expired);
    return out;
  }
  static v1::SendDirectMessageRequest Request(const std::string& client, const std::string& topic,
                                              bool confirm = false, int timeout = 0) {
    v1::SendDirectMessageRequest r;
    r.set_client_id(client);
    r.set_topic(topic);
    r.set_payload("reboot");
    r.set_confirmation(confirm);
    r.set_timeout_seconds(timeout);
    return r;
  }
  // Sends and returns the answer's future.
  std::future<absl::Status> Send(const v1::SendDirectMessageRequest& r) {
    auto answered = std::make_shared<std::promise<absl::Status>>();
    std::future<absl::Status> f = answered->get_future();
    direct_.Send(r, [answered](absl::Status s) { answered->set_value(std::move(s)); });
    return f;
  }
  static absl::Status Wait(std::future<absl::Status>& f) {
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      return absl::InternalError("no answer within 10 s");
    }
    return f.get();
  }
  double Counted(const std::string& result) {
    for (const prometheus::MetricFamily& f : metrics_.Collect()) {
      if (f.name != "fleetcore_gateway_direct_messages_total") continue;
      for (const prometheus::ClientMetric& m : f.metric) {
        if (m.label.size() == 1 && m.label[0].value == result) return m.counter.value;
      }
    }
    return 0;
  }

  FakeGatewayStore store_;
  testing::FakeClock clock_;
  prometheus::Registry metrics_;
  Broker broker_;
  std::vector<std::shared_ptr<FakeOutlet>> outlets_;
  DirectMessages direct_;
};

TEST_F(DirectMessagesTest, WithoutConfirmationAQos0MessageToTheClientOnlyWhateverItSubscribes) {
  std::shared_ptr<Session> device = Connect("device");
  std::shared_ptr<Session> other = Connect("other");
  mqtt::ParsedFilter parsed;
  ASSERT_TRUE(mqtt::ParseSharedFilter("#", &parsed));
  broker_.Subscribe(other, "#", parsed, {.qos = 1});

  std::future<absl::Status> f = Send(Request("device", "commands/reboot"));
  ASSERT_OK(Wait(f));
  std::vector<Outgoing> out = Take(*device, broker_.NowMs());
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0].message->topic, "commands/reboot");
  EXPECT_EQ(out[0].message->payload, "reboot");
  EXPECT_EQ(out[0].qos, 0);
  EXPECT_FALSE(out[0].retain);
  EXPECT_THAT(Take(*other, broker_.NowMs()), SizeIs(0)) << "a direct message is not routed";
  EXPECT_EQ(broker_.retained().Get("commands/reboot"), nullptr);
  EXPECT_EQ(Counted("sent"), 1);
}

TEST_F(DirectMessagesTest, ConfirmationWaitsForThePuback) {
  std::shared_ptr<Session> device = Connect("device");
  std::future<absl::Status> f = Send(Request("device", "commands/reboot", true, 30));
  std::vector<Outgoing> out = Take(*device, broker_.NowMs());
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0].qos, 1);
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
      << "answered before the client acknowledged";
  ASSERT_TRUE(device->Puback(out[0].packet_id));
  EXPECT_OK(Wait(f));
  EXPECT_EQ(Counted("confirmed"), 1);
}

TEST_F(DirectMessagesTest, NoPubackInTimeIsDeadlineExceeded) {
  std::shared_ptr<Session> device = Connect("device");
  std::future<absl::Status> f = Send(Request("device", "commands/reboot", true, 1));
  ASSERT_THAT(Take(*device, broker_.NowMs()), SizeIs(1));
  EXPECT_THAT(Wait(f), StatusIs(Code::kDeadlineExceeded, HasSubstr("did not acknowledge")));
  EXPECT_EQ(Counted("unconfirmed"), 1);
}

TEST_F(DirectMessagesTest, ADisconnectBeforeThePubackDropsItAndTellsTheSender) {
  // A persistent session: its other QoS 1 messages outlive the connection, the direct
  // message does not.
  std::shared_ptr<Session> device = Connect("device", /*expiry=*/3600);
  mqtt::ParsedFilter parsed;
  ASSERT_TRUE(mqtt::ParseSharedFilter("telemetry/#", &parsed));
  broker_.Subscribe(device, "telemetry/#", parsed, {.qos = 1});
  std::future<absl::Status> sent = Send(Request("device", "commands/reboot", true, 60));
  auto m = std::make_shared<Message>();
  m->topic = "telemetry/1";
  m->qos = 1;
  broker_.Publish(m);
  ASSERT_THAT(Take(*device, broker_.NowMs()), SizeIs(2)) << "both in flight";
  std::future<absl::Status> queued = Send(Request("device", "commands/update", true, 60));

  broker_.Detach(device, outlets_.back().get(), nullptr, 0, WillPolicy::kPublish);
  EXPECT_THAT(Wait(sent), StatusIs(Code::kDeadlineExceeded, HasSubstr("disconnected before")));
  EXPECT_THAT(Wait(queued), StatusIs(Code::kDeadlineExceeded, HasSubstr("disconnected before")));
  EXPECT_EQ(Counted("disconnected"), 2);

  outlets_.push_back(std::make_shared<FakeOutlet>());
  device = broker_
               .Attach(outlets_.back(), {.client_id = "device", .version = mqtt::Version::kV5,
                                         .clean_start = false, .expiry_interval = 3600})
               .session;
  std::vector<Outgoing> again = Take(*device, broker_.NowMs());
  ASSERT_THAT(again, SizeIs(1)) << "only the published message is sent again";
  EXPECT_EQ(again[0].message->topic, "telemetry/1");
}

// A session moving to another replica (its client resumed it there) goes without the
// direct message, whose sender is answered then rather than at its timeout.
TEST_F(DirectMessagesTest, ASessionMovingAwayLeavesItsDirectMessageBehind) {
  std::shared_ptr<Session> device = Connect("device", /*expiry=*/3600);
  std::future<absl::Status> sent = Send(Request("device", "commands/reboot", true, 60));
  auto m = std::make_shared<Message>();
  m->topic = "telemetry/1";
  m->qos = 1;
  ASSERT_EQ(device->Deliver(m, 1, false, {}, broker_.NowMs()), Session::DeliverResult::kQueued);
  ASSERT_THAT(Take(*device, broker_.NowMs()), SizeIs(2));
  std::shared_ptr<Outlet> kicked;
  StoredSession moved = device->MoveOut(broker_.NowMs(), nullptr, &kicked);
  EXPECT_THAT(Wait(sent), StatusIs(Code::kDeadlineExceeded, HasSubstr("disconnected before")));
  ASSERT_THAT(moved.messages, SizeIs(1));
  EXPECT_EQ(moved.messages[0].message->topic, "telemetry/1");
}

TEST_F(DirectMessagesTest, StopAnswersWhatStillWaits) {
  std::shared_ptr<Session> device = Connect("device");
  std::future<absl::Status> f = Send(Request("device", "commands/reboot", true, 60));
  direct_.Stop();
  EXPECT_THAT(Wait(f), StatusIs(Code::kUnavailable));
  std::future<absl::Status> after = Send(Request("device", "commands/reboot", true, 60));
  EXPECT_THAT(Wait(after), StatusIs(Code::kUnavailable));
}

TEST_F(DirectMessagesTest, NotConnectedIsNotFoundAndNothingIsQueued) {
  std::future<absl::Status> nobody = Send(Request("nobody", "commands/reboot"));
  EXPECT_THAT(Wait(nobody), StatusIs(Code::kNotFound, HasSubstr("\"nobody\" is not connected")));

  // A persistent session without its connection: not queued for later either.
  std::shared_ptr<Session> device = Connect("device", /*expiry=*/3600);
  broker_.Detach(device, outlets_.back().get(), nullptr, 0, WillPolicy::kPublish);
  std::future<absl::Status> gone = Send(Request("device", "commands/reboot", true, 5));
  EXPECT_THAT(Wait(gone), StatusIs(Code::kNotFound));
  EXPECT_EQ(device->stats().queued, 0u);
  EXPECT_EQ(Counted("not_connected"), 2);
}

TEST_F(DirectMessagesTest, TheClientMustBeAllowedToReceiveOnTheTopic) {
  std::shared_ptr<Session> device = Connect("device");
  device->SetReceiveCheck(std::make_shared<OnlyTopic>("commands/update"));
  std::future<absl::Status> refused = Send(Request("device", "commands/reboot"));
  EXPECT_THAT(Wait(refused),
              StatusIs(Code::kPermissionDenied, HasSubstr("do not allow iot:Receive")));
  std::future<absl::Status> allowed = Send(Request("device", "commands/update"));
  EXPECT_OK(Wait(allowed));
  EXPECT_EQ(Counted("not_allowed"), 1);
}

TEST_F(DirectMessagesTest, RefusesWhatCannotBeSent) {
  Connect("device");
  struct Case {
    v1::SendDirectMessageRequest request;
    Code code;
    std::string says;
  };
  std::vector<Case> cases = {
      {Request("$device", "t"), Code::kInvalidArgument, "clientId"},
      {Request("", "t"), Code::kInvalidArgument, "clientId"},
      {Request(std::string(129, 'c'), "t"), Code::kInvalidArgument, "clientId"},
      {Request("device", "$aws/things/x/shadow/get"), Code::kInvalidArgument, "reserved"},
      {Request("device", "a/+/b"), Code::kInvalidArgument, "not a valid topic"},
      {Request("device", ""), Code::kInvalidArgument, "not a valid topic"},
      {Request("device", "t", true, 61), Code::kInvalidArgument, "timeout must be 1 to 60"},
  };
  Case big{Request("device", "t"), Code::kResourceExhausted, "over the limit"};
  big.request.set_payload(std::string(BrokerLimits{}.max_payload_bytes + 1, 'x'));
  cases.push_back(big);
  for (const Case& c : cases) {
    std::future<absl::Status> f = Send(c.request);
    EXPECT_THAT(Wait(f), StatusIs(c.code, HasSubstr(c.says)))
        << c.request.client_id().substr(0, 10) << " " << c.request.topic();
  }
}

TEST_F(DirectMessagesTest, ConfirmationOnAGatewayWithoutQos1SaysWhy) {
  BrokerLimits limits;
  limits.max_qos = 0;
  Broker broker(limits, &store_, &clock_);
  auto outlet = std::make_shared<FakeOutlet>();
  std::shared_ptr<Session> device =
      broker.Attach(outlet, {.client_id = "device", .version = mqtt::Version::kV5,
                             .clean_start = true})
          .session;
  DirectMessages direct(&broker, nullptr, nullptr);
  std::promise<absl::Status> confirmed;
  direct.Send(Request("device", "t", true, 1), [&](absl::Status s) { confirmed.set_value(s); });
  EXPECT_THAT(confirmed.get_future().get(),
              StatusIs(Code::kInvalidArgument, HasSubstr("--max-qos 0")));
  EXPECT_THAT(Take(*device, broker.NowMs()), SizeIs(0));

  std::promise<absl::Status> sent;
  direct.Send(Request("device", "t"), [&](absl::Status s) { sent.set_value(s); });
  EXPECT_OK(sent.get_future().get());
  EXPECT_THAT(Take(*device, broker.NowMs()), SizeIs(1));
  direct.Stop();
}

}  // namespace
}  // namespace fleetcore::gateway
