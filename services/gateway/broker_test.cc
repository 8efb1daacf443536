// The broker core against fake connections (Outlet), the in-memory store and a fake
// clock: routing, QoS flows, sessions, retained messages, wills, expiry, restarts.
#include "services/gateway/broker.h"

#include <memory>
#include <string>
#include <vector>

#include "common/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/gateway/fake_gateway_store.h"

namespace fleetcore::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

class FakeOutlet final : public Outlet {
 public:
  void Wake() override { ++wakes; }
  void Kick(uint8_t reason, WillPolicy will) override { kicks.push_back({reason, will}); }
  int wakes = 0;
  std::vector<std::pair<uint8_t, WillPolicy>> kicks;
};

MessagePtr Msg(std::string topic, std::string payload, uint8_t qos = 0, bool retain = false) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = qos;
  m->retain = retain;
  Seal(m.get());
  return m;
}

class BrokerTest : public ::testing::Test {
 protected:
  BrokerTest() { Restart(); }

  void Restart() {
    broker_ = std::make_unique<Broker>(limits_, &store_, &clock_);
    ASSERT_TRUE(broker_->Load().ok());
  }

  struct Client {
    std::shared_ptr<FakeOutlet> outlet = std::make_shared<FakeOutlet>();
    std::shared_ptr<Session> session;
    bool present = false;
  };

  Client Connect(const std::string& id, bool clean = true, uint32_t expiry = 0,
                 uint16_t receive_maximum = 0) {
    Client c;
    Broker::Attached a =
        broker_->Attach(c.outlet, {.client_id = id,
                                   .version = mqtt::Version::kV5,
                                   .clean_start = clean,
                                   .expiry_interval = expiry,
                                   .receive_maximum = receive_maximum});
    c.session = a.session;
    c.present = a.session_present;
    return c;
  }

  void Sub(Client& c, const std::string& filter, uint8_t qos, uint32_t id = 0,
           bool no_local = false) {
    mqtt::ParsedFilter parsed;
    ASSERT_TRUE(mqtt::ParseSharedFilter(filter, &parsed));
    broker_->Subscribe(c.session, filter, parsed,
                       {.qos = qos, .no_local = no_local, .subscription_id = id});
    broker_->Persist(*c.session);
  }

  std::vector<Outgoing> Take(Client& c, size_t max = 100) {
    std::vector<Outgoing> out;
    size_t expired = 0;
    c.session->TakeSendable(max, broker_->NowMs(), &out, &expired);
    return out;
  }

  void Leave(Client& c, MessagePtr will = nullptr, uint32_t delay = 0) {
    broker_->Detach(c.session, c.outlet.get(), std::move(will), delay, WillPolicy::kPublish);
  }

  // Members of `filter` with persistent sessions that subscribed and left, in this order.
  void AwayMembers(std::initializer_list<const char*> ids, const std::string& filter) {
    for (const char* id : ids) {
      Client c = Connect(id, false, 3600);
      Sub(c, filter, 1);
      Leave(c);
    }
  }

  BrokerLimits limits_;
  FakeGatewayStore store_;
  testing::FakeClock clock_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(BrokerTest, RoutesToMatchingSubscriptionsAtTheLowerQos) {
  Client a = Connect("a");
  Client b = Connect("b");
  Sub(a, "s/+/t", 1);
  Sub(b, "s/#", 0);
  EXPECT_EQ(broker_->Publish(Msg("s/1/t", "x", 2)), 2u);
  EXPECT_EQ(broker_->Publish(Msg("other", "y", 1)), 0u);
  std::vector<Outgoing> got = Take(a);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].qos, 1);
  EXPECT_NE(got[0].packet_id, 0);
  EXPECT_FALSE(got[0].retain);
  got = Take(b);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].qos, 0);
  EXPECT_EQ(got[0].packet_id, 0);
}

TEST_F(BrokerTest, BasicIngestGoesToTheRulesAndNeverToSubscribers) {
  std::vector<std::string> fed;
  broker_->SetRulesHook([&](const MessagePtr& m) { fed.push_back(m->topic); });
  Client a = Connect("a");
  Sub(a, "$aws/rules/#", 0);
  Sub(a, "s/#", 0);
  EXPECT_EQ(broker_->Publish(Msg("$aws/rules/high_temp/s/1", "x")), 0u);
  EXPECT_EQ(broker_->Publish(Msg("s/1", "y")), 1u);
  std::vector<Outgoing> got = Take(a);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].message->topic, "s/1");
  EXPECT_THAT(fed, ElementsAre("$aws/rules/high_temp/s/1", "s/1"));
}

TEST_F(BrokerTest, OverlappingSubscriptionsDeliverOnceWithEveryIdentifier) {
  Client a = Connect("a");
  Sub(a, "x/+", 0, /*id=*/7);
  Sub(a, "x/#", 1, /*id=*/9);
  broker_->Publish(Msg("x/y", "p", 1));
  std::vector<Outgoing> got = Take(a);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].qos, 1);
  std::vector<uint32_t> ids = got[0].subscription_ids;
  std::sort(ids.begin(), ids.end());
  EXPECT_THAT(ids, ElementsAre(7, 9));
}

TEST_F(BrokerTest, NoLocalSkipsThePublishersOwnSession) {
  Client a = Connect("a");
  Sub(a, "t", 0, 0, /*no_local=*/true);
  auto own = std::make_shared<Message>(*Msg("t", "mine"));
  own->origin = a.session->id();
  broker_->Publish(own);
  EXPECT_THAT(Take(a), IsEmpty());
  broker_->Publish(Msg("t", "theirs"));
  EXPECT_THAT(Take(a), SizeIs(1));
}

TEST_F(BrokerTest, WakesTheConnectionOncePerFlush) {
  Client a = Connect("a");
  const int after_attach = a.outlet->wakes;
  Sub(a, "t", 0);
  Take(a);
  broker_->Publish(Msg("t", "1"));
  broker_->Publish(Msg("t", "2"));
  EXPECT_EQ(a.outlet->wakes, after_attach + 1);
  EXPECT_THAT(Take(a), SizeIs(2));
  broker_->Publish(Msg("t", "3"));
  EXPECT_EQ(a.outlet->wakes, after_attach + 2);
}

TEST_F(BrokerTest, InflightWindowFollowsReceiveMaximum) {
  Client a = Connect("a", true, 0, /*receive_maximum=*/2);
  Sub(a, "t", 1);
  for (int i = 0; i < 5; ++i) broker_->Publish(Msg("t", std::to_string(i), 1));
  std::vector<Outgoing> got = Take(a);
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_THAT(Take(a), IsEmpty());  // the window is full
  EXPECT_TRUE(a.session->Puback(got[0].packet_id));
  EXPECT_FALSE(a.session->Puback(got[0].packet_id));  // unknown now
  got = Take(a);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].message->payload, "2");
}

TEST_F(BrokerTest, Qos2FlowAndItsResendAfterReconnect) {
  Client a = Connect("a", false, 3600);
  Sub(a, "t", 2);
  broker_->Publish(Msg("t", "one", 2));
  broker_->Publish(Msg("t", "two", 2));
  std::vector<Outgoing> got = Take(a);
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_TRUE(a.session->Pubrec(got[0].packet_id, false));
  Leave(a);
  // Resumed: the released one gets PUBREL again, the other its PUBLISH with DUP.
  Client again = Connect("a", false, 3600);
  EXPECT_TRUE(again.present);
  std::vector<Outgoing> resent = Take(again);
  ASSERT_THAT(resent, SizeIs(2));
  EXPECT_TRUE(resent[0].release);
  EXPECT_EQ(resent[0].packet_id, got[0].packet_id);
  EXPECT_FALSE(resent[1].release);
  EXPECT_TRUE(resent[1].dup);
  EXPECT_EQ(resent[1].packet_id, got[1].packet_id);
  EXPECT_TRUE(again.session->Pubcomp(got[0].packet_id));
  EXPECT_FALSE(again.session->Pubcomp(got[1].packet_id));  // not released yet
}

TEST_F(BrokerTest, InboundQos2IsDeliveredOnce) {
  Client a = Connect("a");
  EXPECT_EQ(a.session->Qos2Received(5, 10), Session::InboundQos2::kNew);
  EXPECT_EQ(a.session->Qos2Received(5, 10), Session::InboundQos2::kDuplicate);
  EXPECT_TRUE(a.session->Qos2Released(5));
  EXPECT_FALSE(a.session->Qos2Released(5));
  EXPECT_EQ(a.session->Qos2Received(1, 1), Session::InboundQos2::kNew);
  EXPECT_EQ(a.session->Qos2Received(2, 1), Session::InboundQos2::kTooMany);
}

TEST_F(BrokerTest, PersistentSessionQueuesQos1WhileAwayAndStoresIt) {
  Client a = Connect("p", false, 3600);
  Sub(a, "t", 1);
  Leave(a);
  EXPECT_FALSE(a.session->attached());
  broker_->Publish(Msg("t", "q0", 0));  // QoS 0 is not kept for an absent client
  broker_->Publish(Msg("t", "q1", 1));
  EXPECT_EQ(store_.message_count("p"), 1u);
  Client back = Connect("p", false, 3600);
  EXPECT_TRUE(back.present);
  std::vector<Outgoing> got = Take(back);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].message->payload, "q1");
  EXPECT_TRUE(back.session->Puback(got[0].packet_id));
  EXPECT_EQ(store_.message_count("p"), 0u);  // delivered: no longer stored
}

TEST_F(BrokerTest, QueuedQos0MessagesDoNotOutliveTheConnection) {
  // Routed while the client was connected, not yet written when it left: the QoS 0 one is
  // dropped with the connection, the QoS 1 one is kept (and stored) for its return.
  Client a = Connect("p", false, 3600);
  Sub(a, "t", 1);
  broker_->Publish(Msg("t", "q0", 0));
  broker_->Publish(Msg("t", "q1", 1));
  Leave(a);
  Client back = Connect("p", false, 3600);
  std::vector<Outgoing> got = Take(back);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].message->payload, "q1");
}

TEST_F(BrokerTest, CleanStartEndsTheOldSession) {
  Client a = Connect("c", false, 3600);
  Sub(a, "t", 1);
  Leave(a);
  broker_->Publish(Msg("t", "old", 1));
  Client b = Connect("c", /*clean=*/true);
  EXPECT_FALSE(b.present);
  EXPECT_THAT(Take(b), IsEmpty());
  EXPECT_EQ(broker_->Publish(Msg("t", "new", 1)), 0u);  // subscriptions went with it
  EXPECT_FALSE(store_.has_session("c"));
}

TEST_F(BrokerTest, ANewConnectionTakesTheSessionOver) {
  Client first = Connect("dup", false, 60);
  Client second = Connect("dup", false, 60);
  EXPECT_TRUE(second.present);
  EXPECT_EQ(first.session, second.session);
  ASSERT_THAT(first.outlet->kicks, SizeIs(1));
  EXPECT_EQ(first.outlet->kicks[0].first, mqtt::reason::kSessionTakenOver);
  EXPECT_EQ(first.outlet->kicks[0].second, WillPolicy::kSessionResumed);
  // The old connection's late detach leaves the new one attached.
  Leave(first);
  EXPECT_TRUE(second.session->attached());

  Client third = Connect("dup", /*clean=*/true);
  ASSERT_THAT(second.outlet->kicks, SizeIs(1));
  EXPECT_EQ(second.outlet->kicks[0].second, WillPolicy::kPublish);
}

TEST_F(BrokerTest, RetainedMessagesAreSetReplacedAndDeleted) {
  broker_->Publish(Msg("home/kitchen/t", "20", 1, true));
  broker_->Publish(Msg("home/kitchen/t", "21", 1, true));
  broker_->Publish(Msg("home/hall/t", "19", 0, true));
  broker_->Publish(Msg("$aws/things/x/shadow", "s", 0, true));
  std::vector<MessagePtr> out;
  broker_->RetainedFor("home/+/t", &out);
  ASSERT_THAT(out, SizeIs(2));
  out.clear();
  broker_->RetainedFor("home/kitchen/t", &out);
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0]->payload, "21");
  out.clear();
  broker_->RetainedFor("#", &out);  // '$' topics are not for leading wildcards
  EXPECT_THAT(out, SizeIs(2));
  broker_->Publish(Msg("home/kitchen/t", "", 0, true));
  out.clear();
  broker_->RetainedFor("home/#", &out);
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0]->topic, "home/hall/t");
  EXPECT_EQ(broker_->retained().size(), 2u);
}

TEST_F(BrokerTest, RetainedMessagesBeyondTheLimitAreDeliveredNotKept) {
  limits_.max_retained_messages = 2;
  Restart();
  Client sub = Connect("sub");
  Sub(sub, "home/#", 1);
  broker_->Publish(Msg("home/a", "1", 1, true));
  broker_->Publish(Msg("home/b", "2", 1, true));
  // Full: a new topic's retained message reaches the subscriber, and is not kept.
  EXPECT_FALSE(broker_->RetainedRoomFor("home/c"));
  EXPECT_EQ(broker_->Publish(Msg("home/c", "3", 1, true)), 1u);
  EXPECT_THAT(Take(sub), SizeIs(3));
  std::vector<MessagePtr> out;
  broker_->RetainedFor("home/#", &out);
  EXPECT_THAT(out, SizeIs(2));
  EXPECT_EQ(broker_->counters().retained_refused.load(), 2u);  // the check and the publish
  // Replacing a topic's message works at the limit; deleting one makes room.
  EXPECT_TRUE(broker_->RetainedRoomFor("home/a"));
  broker_->Publish(Msg("home/a", "1b", 1, true));
  EXPECT_EQ(broker_->retained().Get("home/a")->payload, "1b");
  broker_->Publish(Msg("home/b", "", 1, true));
  EXPECT_TRUE(broker_->RetainedRoomFor("home/c"));
  broker_->Publish(Msg("home/c", "3", 1, true));
  EXPECT_EQ(broker_->retained().Get("home/c")->payload, "3");
  EXPECT_EQ(broker_->counters().retained_refused.load(), 2u);
  // What the store holds is what was kept.
  Restart();
  EXPECT_EQ(broker_->retained().size(), 2u);
  EXPECT_EQ(broker_->retained().Get("home/b"), nullptr);
}

TEST_F(BrokerTest, RetainedMessagesExpire) {
  auto m = std::make_shared<Message>(*Msg("r", "soon", 0, true));
  m->expires_at_ms = broker_->NowMs() + 5000;
  broker_->Publish(m);
  std::vector<MessagePtr> out;
  broker_->RetainedFor("r", &out);
  EXPECT_THAT(out, SizeIs(1));
  clock_.Advance(absl::Seconds(6));
  out.clear();
  broker_->RetainedFor("r", &out);
  EXPECT_THAT(out, IsEmpty());
  // The sweep lets it go, and with it its place under a limit and its stored copy.
  EXPECT_EQ(broker_->retained().size(), 1u);
  EXPECT_TRUE(store_.has_retained("r"));
  broker_->Sweep();
  EXPECT_EQ(broker_->retained().size(), 0u);
  EXPECT_FALSE(store_.has_retained("r"));
}

TEST_F(BrokerTest, RetainedMessagesThatExpiredWhileDownAreDeletedAtLoad) {
  auto m = std::make_shared<Message>(*Msg("r", "soon", 0, true));
  m->expires_at_ms = broker_->NowMs() + 5000;
  broker_->Publish(m);
  broker_->Publish(Msg("kept", "k", 0, true));
  clock_.Advance(absl::Seconds(6));
  Restart();
  EXPECT_EQ(broker_->retained().size(), 1u);
  EXPECT_FALSE(store_.has_retained("r"));
  EXPECT_TRUE(store_.has_retained("kept"));
}

// A retained message that expires at `at_ms`.
MessagePtr Expiring(std::string topic, std::optional<int64_t> at_ms) {
  auto m = std::make_shared<Message>(*Msg(std::move(topic), "x", 0, true));
  m->expires_at_ms = at_ms;
  return m;
}

TEST(RetainedStoreTest, ExpiredMessagesGoAtTheirTimeAndNotThoseThatReplacedThem) {
  RetainedStore store;
  store.Put(Expiring("a/b/c", 1000), 0);
  store.Put(Expiring("a/b/c", 5000), 0);  // replaced: it goes at 5000, not 1000
  store.Put(Expiring("x", 2000), 0);
  store.Put(Expiring("x", std::nullopt), 0);  // replaced by one that never expires
  store.Put(Expiring("y", 3000), 0);
  store.Put(Msg("y", "", 0, true), 0);  // deleted, then kept anew without an expiry
  store.Put(Expiring("y", std::nullopt), 0);
  EXPECT_EQ(store.DropExpired(4999), 0u);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.DropExpired(5000), 1u);
  EXPECT_EQ(store.Get("a/b/c"), nullptr);
  std::vector<std::string> left;
  for (const MessagePtr& m : store.List("", 10)) left.push_back(m->topic);
  EXPECT_THAT(left, ElementsAre("x", "y"));  // and a/b's empty levels are gone
}

TEST(RetainedStoreTest, ATopicRewrittenOftenExpiresOnceAtItsLastTime) {
  // Each rewrite leaves an entry for the message it replaced; past 1024 of them the index
  // is made again from what is held: here at the 1027th write (the last one, which must be
  // in it), and several times over 5000.
  for (int64_t writes : {1027, 5000}) {
    RetainedStore store;
    for (int64_t i = 1; i <= writes; ++i) store.Put(Expiring("t", 1000000 + i), 0);
    EXPECT_EQ(store.DropExpired(1000000 + writes - 1), 0u) << writes;
    EXPECT_EQ(store.DropExpired(1000000 + writes), 1u) << writes;
    EXPECT_EQ(store.size(), 0u) << writes;
  }
}

TEST_F(BrokerTest, ExpiredRetainedMessagesMakeRoomUnderTheLimit) {
  limits_.max_retained_messages = 2;
  Restart();
  auto soon = std::make_shared<Message>(*Msg("a/soon", "x", 0, true));
  soon->expires_at_ms = broker_->NowMs() + 5000;
  broker_->Publish(soon);
  broker_->Publish(Msg("a/b/kept", "y", 0, true));
  broker_->Sweep();  // nothing has expired yet
  EXPECT_FALSE(broker_->RetainedRoomFor("c"));
  clock_.Advance(absl::Seconds(11));
  broker_->Sweep();
  EXPECT_TRUE(broker_->RetainedRoomFor("c"));
  broker_->Publish(Msg("c", "z", 0, true));
  EXPECT_EQ(broker_->retained().size(), 2u);
  EXPECT_NE(broker_->retained().Get("a/b/kept"), nullptr);
  EXPECT_EQ(broker_->retained().Get("a/soon"), nullptr);
}

TEST_F(BrokerTest, WillIsPublishedAtOnceWithoutDelay) {
  Client watcher = Connect("w");
  Sub(watcher, "status/+", 1);
  Client a = Connect("a");
  Leave(a, Msg("status/a", "gone", 1));
  std::vector<Outgoing> got = Take(watcher);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].message->payload, "gone");
}

TEST_F(BrokerTest, DelayedWillWaitsAndIsCancelledByAReturn) {
  Client watcher = Connect("w");
  Sub(watcher, "status/+", 0);
  Client a = Connect("a", false, 3600);
  Leave(a, Msg("status/a", "gone"), /*delay=*/30);
  broker_->Sweep();
  EXPECT_THAT(Take(watcher), IsEmpty());
  clock_.Advance(absl::Seconds(10));
  Client back = Connect("a", false, 3600);  // in time: the will is not sent
  Leave(back, Msg("status/a", "gone again"), 30);
  clock_.Advance(absl::Seconds(25));
  broker_->Sweep();
  EXPECT_THAT(Take(watcher), IsEmpty());
  clock_.Advance(absl::Seconds(6));
  broker_->Sweep();
  std::vector<Outgoing> got = Take(watcher);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].message->payload, "gone again");
}

TEST_F(BrokerTest, SessionsExpireAndTheirPendingWillGoesOut) {
  Client watcher = Connect("w");
  Sub(watcher, "status/+", 0);
  Client a = Connect("a", false, /*expiry=*/60);
  Sub(a, "t", 1);
  Leave(a, Msg("status/a", "gone"), /*delay=*/3600);  // capped by the session's 60 s
  clock_.Advance(absl::Seconds(59));
  broker_->Sweep();
  EXPECT_NE(broker_->Find("a"), nullptr);
  clock_.Advance(absl::Seconds(2));
  broker_->Sweep();
  EXPECT_EQ(broker_->Find("a"), nullptr);
  EXPECT_FALSE(store_.has_session("a"));
  EXPECT_THAT(Take(watcher), SizeIs(1));
  EXPECT_EQ(broker_->counters().sessions_expired.load(), 1u);
}

TEST_F(BrokerTest, AFullQueueDropsAndDisconnectsASlowClient) {
  limits_.max_queued_messages = 2;
  Restart();
  Client a = Connect("slow");
  Sub(a, "t", 1);
  broker_->Publish(Msg("t", "1", 0));
  broker_->Publish(Msg("t", "2", 0));
  broker_->Publish(Msg("t", "3", 0));  // dropped
  EXPECT_THAT(a.outlet->kicks, IsEmpty());
  broker_->Publish(Msg("t", "4", 1));  // dropped, and the client cannot keep up
  ASSERT_THAT(a.outlet->kicks, SizeIs(1));
  EXPECT_EQ(a.outlet->kicks[0].first, mqtt::reason::kQuotaExceeded);
  EXPECT_EQ(broker_->counters().dropped_queue_full.load(), 2u);
}

TEST_F(BrokerTest, SharedSubscriptionsTakeTurns) {
  Client a = Connect("a");
  Client b = Connect("b");
  Sub(a, "$share/g/jobs/#", 1);
  Sub(b, "$share/g/jobs/#", 1);
  for (int i = 0; i < 4; ++i) broker_->Publish(Msg("jobs/x", std::to_string(i), 1));
  EXPECT_THAT(Take(a), SizeIs(2));
  EXPECT_THAT(Take(b), SizeIs(2));
}

TEST_F(BrokerTest, SharedSubscriptionsGoToConnectedMembersWhileThereAreAny) {
  Client a = Connect("a", false, 3600);
  Client b = Connect("b", false, 3600);
  Sub(a, "$share/g/jobs/#", 1);
  Sub(b, "$share/g/jobs/#", 1);
  Leave(b);  // its session stays, and its membership with it
  for (int i = 0; i < 4; ++i) broker_->Publish(Msg("jobs/x", std::to_string(i), 0));
  EXPECT_THAT(Take(a), SizeIs(4));
  // With no member connected, each waits in one member's session, in turn, as the group's:
  // the member that comes first takes them all (AWS IoT Core's group queue).
  Leave(a);
  for (int i = 4; i < 8; ++i) broker_->Publish(Msg("jobs/x", std::to_string(i), 1));
  EXPECT_EQ(broker_->Find("b")->stats().queued, 2u);
  Client a2 = Connect("a", false, 3600);
  EXPECT_THAT(Take(a2), SizeIs(4));
  Client b2 = Connect("b", false, 3600);
  EXPECT_THAT(Take(b2), IsEmpty());
  EXPECT_EQ(broker_->counters().shared_queue_moved.load(), 2u);
  EXPECT_EQ(store_.message_count("b"), 0u);  // gone from the away member's stored session
}

// A group's queue outlives the session it waited in: a member that comes back with a clean
// start (or whose session expires) leaves what it held to the group's other members.
TEST_F(BrokerTest, AGroupsQueueOutlivesTheSessionItWaitedIn) {
  Client a = Connect("a", false, 3600);
  Client b = Connect("b", false, 3600);
  Client c = Connect("c", false, 60);
  for (Client* m : {&a, &b, &c}) Sub(*m, "$share/g/t", 1);
  for (Client* m : {&a, &b, &c}) Leave(*m);
  for (int i = 0; i < 6; ++i) broker_->Publish(Msg("t", std::to_string(i), 1));
  Client fresh = Connect("a");  // a clean start: a's session ends
  clock_.Advance(absl::Seconds(61));
  broker_->Sweep();  // and c's expires
  ASSERT_EQ(broker_->Find("c"), nullptr);
  EXPECT_EQ(broker_->Find("b")->stats().queued, 6u);
  EXPECT_EQ(store_.message_count("b"), 6u);
  Client b2 = Connect("b", false, 3600);
  EXPECT_THAT(Take(b2), SizeIs(6));
}

// A member without a persistent session that took part of the queue and left before
// acknowledging it gives it back to the group: to the away members, for the next to come.
TEST_F(BrokerTest, AGroupsQueueTakenByAMemberThatLeavesGoesBackToTheGroup) {
  AwayMembers({"a", "b"}, "$share/g/t");
  for (int i = 0; i < 4; ++i) broker_->Publish(Msg("t", std::to_string(i), 1));
  Client c = Connect("c");
  Sub(c, "$share/g/t", 1);
  EXPECT_THAT(Take(c, 2), SizeIs(2));  // sent, not acknowledged; two more queued
  Leave(c);
  Client a2 = Connect("a", false, 3600);
  EXPECT_THAT(Take(a2), SizeIs(4));
}

// What a member was sent of the group's queue and left without acknowledging is the
// group's again: the next member to come takes it with the rest.
TEST_F(BrokerTest, AGroupsMessagesAnAwayMemberLeftUnacknowledgedGoToTheNext) {
  AwayMembers({"a", "b"}, "$share/g/t");
  for (int i = 0; i < 4; ++i) broker_->Publish(Msg("t", std::to_string(i), 1));
  Client a2 = Connect("a", false, 3600);
  EXPECT_THAT(Take(a2, 3), SizeIs(3));  // three sent, none acknowledged; one queued
  Leave(a2);
  Client b2 = Connect("b", false, 3600);
  EXPECT_THAT(Take(b2), SizeIs(4));
  EXPECT_EQ(store_.message_count("a"), 0u);
}

class RefuseTopic final : public Session::ReceiveCheck {
 public:
  explicit RefuseTopic(std::string topic) : topic_(std::move(topic)) {}
  bool MayReceive(absl::string_view topic) const override { return topic != topic_; }

 private:
  std::string topic_;
};

// What a shared group queued while no member was connected goes to a member that joins it
// later, across a gateway restart; but not what the new member may not receive, nor what
// an away member got by a subscription of its own as well.
TEST_F(BrokerTest, AGroupsQueueGoesToAMemberThatJoinsLater) {
  Client a = Connect("a", false, 3600);
  Client b = Connect("b", false, 3600);
  Sub(a, "$share/g/jobs/#", 1);
  Sub(a, "jobs/own", 1);
  Sub(b, "$share/g/jobs/#", 1);
  Sub(b, "jobs/own", 1);
  Leave(a);
  Leave(b);
  for (const char* topic : {"jobs/1", "jobs/2", "jobs/3", "jobs/secret", "jobs/own"}) {
    broker_->Publish(Msg(topic, topic, 1));
  }
  Restart();  // the queue is the store's, not only the process's
  Client c;
  c.session =
      broker_
          ->Attach(c.outlet, {.client_id = "c",
                              .version = mqtt::Version::kV5,
                              .receive_check = std::make_shared<RefuseTopic>("jobs/secret")})
          .session;
  Sub(c, "$share/g/jobs/#", 1, 7);
  std::vector<std::string> got;
  for (const Outgoing& o : Take(c)) {
    got.push_back(o.message->topic);
    EXPECT_EQ(o.qos, 1);
    EXPECT_THAT(o.subscription_ids, ElementsAre(7));
  }
  EXPECT_THAT(got, UnorderedElementsAre("jobs/1", "jobs/2", "jobs/3"));
  // jobs/own stays with a and b (each its own subscription's too), and jobs/secret with
  // whichever member it waits in, for another member to take.
  Client a2 = Connect("a", false, 3600);
  Client b2 = Connect("b", false, 3600);
  std::vector<std::string> rest;
  for (Client* m : {&a2, &b2}) {
    for (const Outgoing& o : Take(*m)) rest.push_back(o.message->topic);
  }
  EXPECT_THAT(rest, UnorderedElementsAre("jobs/own", "jobs/own", "jobs/secret"));
}

// A member that comes takes the group's queue in parts of half its queue at most (live
// messages still find room), the next part once it has sent most of the last (its
// connection asks when SharedBacklogDue says so).
TEST_F(BrokerTest, AGroupsQueueReachesATakerInPartsAsItSends) {
  limits_.max_queued_messages = 8;
  Restart();
  AwayMembers({"a", "b", "c"}, "$share/g/t");
  for (int i = 0; i < 12; ++i) broker_->Publish(Msg("t", std::to_string(i), 1));
  Client c2 = Connect("c", false, 3600);
  // Its own four fill half its queue: nothing taken yet.
  EXPECT_EQ(c2.session->stats().queued, 4u);
  EXPECT_FALSE(c2.session->SharedBacklogDue());  // not before it has sent them
  std::vector<std::string> got;
  int parts = 0;
  while (true) {
    for (const Outgoing& o : Take(c2)) {
      got.push_back(o.message->payload);
      ASSERT_TRUE(c2.session->Puback(o.packet_id));
    }
    if (!c2.session->SharedBacklogDue()) break;
    broker_->TakeSharedQueue(c2.session);
    EXPECT_LE(c2.session->stats().queued, 4u);
    ++parts;
  }
  EXPECT_THAT(got, SizeIs(12));
  EXPECT_EQ(parts, 3);  // a's four, b's four, and a last look that found none
  EXPECT_EQ(broker_->counters().shared_queue_moved.load(), 8u);
  EXPECT_EQ(broker_->Find("a")->stats().queued + broker_->Find("b")->stats().queued, 0u);
}

TEST_F(BrokerTest, LifecycleVersionsIncreaseWithEachConnectionOfAClientId) {
  // The clock's seconds since 2020 (the fake clock starts at 2023-11-14T22:13:20Z).
  const uint64_t first = broker_->LifecycleVersion("a");
  EXPECT_EQ(first, 1700000000u - 1577836800u);
  // Reconnecting within the second, and again: each is higher.
  EXPECT_EQ(broker_->LifecycleVersion("a"), first + 1);
  EXPECT_EQ(broker_->LifecycleVersion("a"), first + 2);
  EXPECT_EQ(broker_->LifecycleVersion("b"), first);  // each client id its own
  // Later, the clock's again; and a restarted gateway (nothing remembered) goes on from it.
  clock_.Advance(absl::Seconds(5));
  broker_->Sweep();
  EXPECT_EQ(broker_->LifecycleVersion("a"), first + 5);
  clock_.Advance(absl::Seconds(1));
  Restart();
  EXPECT_EQ(broker_->LifecycleVersion("a"), first + 6);
}

TEST_F(BrokerTest, TargetedPublishReachesOnlyThatSession) {
  Client a = Connect("a");
  Client b = Connect("b");
  Sub(a, "reply/#", 0);
  Sub(b, "reply/#", 0);
  EXPECT_EQ(broker_->Publish(Msg("reply/1", "x"), b.session.get()), 1u);
  EXPECT_THAT(Take(a), IsEmpty());
  EXPECT_THAT(Take(b), SizeIs(1));
}

TEST_F(BrokerTest, ARestartRestoresSessionsSubscriptionsMessagesAndRetained) {
  Client a = Connect("p", false, 3600);
  Sub(a, "t/#", 1, 4);
  broker_->Publish(Msg("t/1", "sent", 1));
  std::vector<Outgoing> sent = Take(a);
  ASSERT_THAT(sent, SizeIs(1));
  broker_->Publish(Msg("t/2", "queued", 1));
  broker_->Publish(Msg("keep", "me", 1, true));
  Leave(a);  // stores the in-flight and the queued message

  Restart();
  EXPECT_EQ(broker_->retained().size(), 1u);
  Client back = Connect("p", false, 3600);
  EXPECT_TRUE(back.present);
  std::vector<Outgoing> got = Take(back);
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[0].message->payload, "sent");
  EXPECT_TRUE(got[0].dup);
  EXPECT_EQ(got[0].packet_id, sent[0].packet_id);
  EXPECT_EQ(got[1].message->payload, "queued");
  EXPECT_THAT(got[1].subscription_ids, ElementsAre(4));
  // The subscription came back too.
  EXPECT_EQ(broker_->Publish(Msg("t/3", "live", 1)), 1u);
}

// GetConnection's disconnectReason outlives the process: it is stored with the session; a
// session the previous process held attached when it ended says SERVER_ERROR.
TEST_F(BrokerTest, ARestartKeepsWhyTheConnectionEnded) {
  Client a = Connect("kept", false, 3600);
  broker_->Detach(a.session, a.outlet.get(), nullptr, 0, WillPolicy::kPublish,
                  "MQTT_KEEP_ALIVE_TIMEOUT");
  Client b = Connect("held", false, 3600);
  Restart();
  ASSERT_NE(broker_->Find("kept"), nullptr);
  EXPECT_EQ(broker_->Find("kept")->disconnect_reason(), "MQTT_KEEP_ALIVE_TIMEOUT");
  ASSERT_NE(broker_->Find("held"), nullptr);
  EXPECT_EQ(broker_->Find("held")->disconnect_reason(), "SERVER_ERROR");
  Client again = Connect("kept", false, 3600);
  EXPECT_EQ(again.session->disconnect_reason(), "");
}

TEST_F(BrokerTest, ExpiredSessionsEndAtLoad) {
  Client a = Connect("old", false, 60);
  Leave(a);
  clock_.Advance(absl::Minutes(2));
  Restart();
  EXPECT_EQ(broker_->Find("old"), nullptr);
  EXPECT_FALSE(store_.has_session("old"));
}

TEST_F(BrokerTest, AdministrativeDisconnectCanDiscardTheSession) {
  Client a = Connect("a", false, 3600);
  Sub(a, "t", 1);
  EXPECT_TRUE(broker_->Disconnect("a", mqtt::reason::kAdministrativeAction,
                                  WillPolicy::kSuppress, /*clean=*/true));
  ASSERT_THAT(a.outlet->kicks, SizeIs(1));
  EXPECT_EQ(a.outlet->kicks[0].second, WillPolicy::kSuppress);
  Leave(a);
  EXPECT_EQ(broker_->Find("a"), nullptr);
  EXPECT_FALSE(store_.has_session("a"));
  EXPECT_FALSE(broker_->Disconnect("a", mqtt::reason::kAdministrativeAction,
                                   WillPolicy::kPublish, false));
}

TEST(BrokerLimitsTest, KeepAliveFollowsAws) {
  BrokerLimits l;
  EXPECT_EQ(EffectiveKeepAlive(l, 0), absl::Seconds(1200));
  EXPECT_EQ(EffectiveKeepAlive(l, 5), absl::Seconds(30));
  EXPECT_EQ(EffectiveKeepAlive(l, 60), absl::Seconds(60));
  EXPECT_EQ(EffectiveKeepAlive(l, 5000), absl::Seconds(1200));
  l.keep_alive_max = absl::ZeroDuration();
  EXPECT_EQ(EffectiveKeepAlive(l, 0), absl::ZeroDuration());
  EXPECT_EQ(EffectiveKeepAlive(l, 5), absl::Seconds(5));
}

TEST(BrokerLimitsTest, TopicLimits) {
  BrokerLimits l;
  EXPECT_TRUE(WithinTopicLimits(l, "a/b/c/d/e/f/g/h"));     // 7 slashes
  EXPECT_FALSE(WithinTopicLimits(l, "a/b/c/d/e/f/g/h/i"));  // 8
  EXPECT_TRUE(WithinTopicLimits(l, "$aws/rules/r/a/b/c/d/e/f/g/h"));  // prefix not counted
  EXPECT_FALSE(WithinTopicLimits(l, std::string(257, 'x')));
  EXPECT_FALSE(WithinTopicLimits(l, ""));
  // Share names: 128 characters, not bytes ("é" is two).
  EXPECT_TRUE(WithinShareNameLimit(std::string(128, 'g')));
  EXPECT_FALSE(WithinShareNameLimit(std::string(129, 'g')));
  std::string accented;
  for (int i = 0; i < 128; ++i) accented += "é";
  EXPECT_TRUE(WithinShareNameLimit(accented));
  EXPECT_FALSE(WithinShareNameLimit(accented + "g"));
}

}  // namespace
}  // namespace fleetcore::gateway

namespace fleetcore::gateway {
namespace {

TEST(ParseProvisioningTopic, OperationTemplateAndFormat) {
  std::optional<ProvisioningTopic> t = ParseProvisioningTopic("$aws/certificates/create/json");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->operation, "create");
  EXPECT_FALSE(t->cbor);
  t = ParseProvisioningTopic("$aws/provisioning-templates/sensors/provision/cbor");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->operation, "provision");
  EXPECT_EQ(t->template_name, "sensors");
  EXPECT_TRUE(t->cbor);
  EXPECT_EQ(ParseProvisioningTopic("$aws/certificates/create-from-csr/cbor")->operation,
            "create-from-csr");
  for (const char* other : {"$aws/certificates/create/xml", "$aws/certificates/create/json/accepted",
                            "$aws/provisioning-templates//provision/json", "sensors/json"}) {
    EXPECT_FALSE(ParseProvisioningTopic(other).has_value()) << other;
  }
}

TEST(ClientMayPublishTo, OnlyTheRequestTopicsOfAwsServices) {
  EXPECT_TRUE(ClientMayPublishTo("sensors/t1"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/things/lamp-1/shadow/update"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/things/lamp-1/shadow/get"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/things/lamp-1/shadow/name/cfg/delete"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/certificates/create/json"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/certificates/create-from-csr/json"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/provisioning-templates/sensors/provision/json"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/rules/high_temp/sensors/t1"));  // Basic Ingest
  EXPECT_FALSE(ClientMayPublishTo("$aws/rules//sensors/t1"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/certificates/create/cbor"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/certificates/create-from-csr/cbor"));
  EXPECT_TRUE(ClientMayPublishTo("$aws/provisioning-templates/sensors/provision/cbor"));
  EXPECT_FALSE(ClientMayPublishTo("$aws/certificates/create/xml"));
  EXPECT_FALSE(ClientMayPublishTo("$aws/certificates/create/json/accepted"));
  EXPECT_FALSE(ClientMayPublishTo("$aws/certificates/create/cbor/rejected"));
  for (const char* reserved :
       {"$aws/things/lamp-1/shadow/update/accepted", "$aws/things/lamp-1/shadow/update/delta",
        "$aws/events/presence/connected/lamp-1", "$aws/things/lamp-1/shadow",
        "$aws/things//shadow/get", "$SYS/broker/load", "$aws/custom", "$other/x"}) {
    EXPECT_FALSE(ClientMayPublishTo(reserved)) << reserved;
  }
}

}  // namespace
}  // namespace fleetcore::gateway
