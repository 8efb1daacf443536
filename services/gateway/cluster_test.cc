// Gateway replicas against one in-memory NATS (FakeBusServer) and one shared in-memory
// store: messages, retained messages, shared subscriptions, client-id takeover, sessions
// moving between replicas (with messages arriving all the while), sessions left by a
// replica that is gone, the administration's questions, and a duplicate node id.
#include "services/gateway/cluster.h"

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/gateway/fake_cluster_bus.h"
#include "services/gateway/fake_gateway_store.h"
#include "services/gateway/gateway_service.h"
#include "services/gateway/nats_cluster_bus.h"

namespace fleetcore::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

class FakeOutlet final : public Outlet {
 public:
  void Wake() override {}
  void Kick(uint8_t reason, WillPolicy) override {
    absl::MutexLock l(&mu);
    kicks.push_back(reason);
  }
  std::vector<uint8_t> Kicks() {
    absl::MutexLock l(&mu);
    return kicks;
  }
  absl::Mutex mu;
  std::vector<uint8_t> kicks ABSL_GUARDED_BY(mu);
};

MessagePtr Msg(std::string topic, std::string payload, uint8_t qos = 1, bool retain = false) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = qos;
  m->retain = retain;
  Seal(m.get());
  return m;
}

// An admin handler that holds one client: found for `client_id`, not for any other.
Cluster::AdminHandler Holds(std::string client_id) {
  return [client_id = std::move(client_id)](const v1::ClusterAdminRequest& req) {
    v1::ClusterAdminResponse r;
    r.set_found(req.describe().client_id() == client_id);
    return r;
  };
}

// Waits up to 5 s for `done`.
template <typename F>
bool Eventually(F done) {
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (absl::Now() < until) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

ClusterOptions Options(const std::string& node) {
  return ClusterOptions{.node = node,
                        .heartbeat = absl::Milliseconds(100),
                        .node_timeout = absl::Milliseconds(500),
                        .heartbeat_shares = 3,
                        .handover_timeout = absl::Milliseconds(500),
                        .forward_for = absl::Seconds(1),
                        .orphan_sweep = absl::Hours(1)};
}

struct Replica {
  Replica(FakeBusServer* server, const FakeGatewayStore& shared, const std::string& node,
          const BrokerLimits& limits, const ClusterOptions& options)
      : bus(server, /*no_echo=*/true),
        shared_bus(server),
        store(shared, node),
        broker(limits, &store, &clock),
        cluster(&bus, &shared_bus, &broker, &store, nullptr, options) {
    broker.SetCluster(&cluster);
  }
  absl::Status Start() {
    if (absl::Status s = cluster.Start(); !s.ok()) return s;
    if (absl::Status s = broker.Load(); !s.ok()) return s;
    cluster.Ready();
    return absl::OkStatus();
  }

  struct Client {
    std::shared_ptr<FakeOutlet> outlet = std::make_shared<FakeOutlet>();
    std::shared_ptr<Session> session;
    bool present = false;
  };
  Client Connect(const std::string& id, bool clean = true, uint32_t expiry = 0) {
    Client c;
    Broker::Attached a = broker.Attach(c.outlet, {.client_id = id,
                                                  .version = mqtt::Version::kV5,
                                                  .clean_start = clean,
                                                  .expiry_interval = expiry});
    c.session = a.session;
    c.present = a.session_present;
    return c;
  }
  // As a connection does: the session is fetched from the others first.
  Client Resume(const std::string& id, uint32_t expiry = 3600) {
    if (broker.Find(id) == nullptr) {
      absl::Notification fetched;
      cluster.FetchSession(id, [&] { fetched.Notify(); });
      fetched.WaitForNotification();
    }
    return Connect(id, /*clean=*/false, expiry);
  }
  void Sub(Client& c, const std::string& filter, uint8_t qos = 1) {
    mqtt::ParsedFilter parsed;
    ASSERT_TRUE(mqtt::ParseSharedFilter(filter, &parsed));
    broker.Subscribe(c.session, filter, parsed, {.qos = qos});
    broker.Persist(*c.session);
  }
  // Payloads the client would be sent now, acknowledging each.
  std::vector<std::string> Take(Client& c) {
    std::vector<std::string> payloads;
    for (;;) {  // a window's worth at a time
      std::vector<Outgoing> out;
      size_t expired = 0;
      c.session->TakeSendable(100000, broker.NowMs(), &out, &expired);
      if (out.empty()) return payloads;
      for (const Outgoing& o : out) {
        payloads.push_back(o.message->payload);
        if (o.qos == 1) c.session->Puback(o.packet_id);
      }
    }
  }
  void Leave(Client& c) {
    broker.Detach(c.session, c.outlet.get(), nullptr, 0, WillPolicy::kPublish);
  }

  FakeClusterBus bus;
  FakeClusterBus shared_bus;
  FakeGatewayStore store;
  SystemClock clock;
  Broker broker;
  Cluster cluster;
};

class ClusterTest : public ::testing::Test {
 protected:
  Replica& Add(const std::string& node, const BrokerLimits& limits = {},
               std::optional<ClusterOptions> options = std::nullopt) {
    replicas_.push_back(std::make_unique<Replica>(&server_, shared_, node, limits,
                                                  options.value_or(Options(node))));
    EXPECT_TRUE(replicas_.back()->Start().ok());
    return *replicas_.back();
  }
  // Every replica knows every other.
  void Joined() {
    for (const auto& r : replicas_) {
      ASSERT_TRUE(Eventually([&] { return r->cluster.LiveNodes().size() == replicas_.size(); }));
    }
  }
  void Settle() { server_.Settle(); }
  // A persistent member "away" of $share/g/{root}/# on `holder`, its client gone, holding
  // the five messages ("0".."4" on {root}/i) `publisher` published while no member of the
  // group was connected anywhere.
  void QueueFiveForAnAwayMember(Replica& holder, Replica& publisher, const std::string& root) {
    Replica::Client away = holder.Connect("away", /*clean=*/false, 3600);
    holder.Sub(away, absl::StrCat("$share/g/", root, "/#"));
    ASSERT_TRUE(Eventually([&] {
      return server_.queue_subscriptions(absl::StrCat("fleetcore.gw.m.", root, ".>")) == 1;
    }));
    holder.Leave(away);
    ASSERT_TRUE(Eventually(
        [&] { return publisher.cluster.ReplicasConnectedTo("g", root + "/#").empty(); }));
    for (int i = 0; i < 5; ++i) {
      publisher.broker.Publish(Msg(absl::StrCat(root, "/", i), absl::StrCat(i), 1));
    }
    Settle();
    ASSERT_EQ(holder.broker.Find("away")->stats().queued, 5u);
  }
  // What `c` is sent on `r` until it has at least `n` (or 5 s passed).
  static std::vector<std::string> TakeAtLeast(Replica& r, Replica::Client& c, size_t n) {
    std::vector<std::string> got;
    (void)Eventually([&] {
      for (std::string& p : r.Take(c)) got.push_back(std::move(p));
      return got.size() >= n;
    });
    return got;
  }

  FakeBusServer server_;
  FakeGatewayStore shared_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(ClusterTest, MessagesReachSubscribersOnEveryReplicaOnce) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  Replica::Client on_a = a.Connect("sub-a");
  a.Sub(on_a, "t/#");
  Replica::Client on_b = b.Connect("sub-b");
  b.Sub(on_b, "t/+");
  b.broker.Publish(Msg("t/1", "from b"));
  a.broker.Publish(Msg("t/2", "from a"));
  Settle();
  // Once each; from two publishers, in no particular order.
  EXPECT_THAT(a.Take(on_a), UnorderedElementsAre("from b", "from a"));
  EXPECT_THAT(b.Take(on_b), UnorderedElementsAre("from b", "from a"));
}

TEST_F(ClusterTest, RetainedMessagesAreInEveryReplicasMemoryAndStoredByTheirOwn) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  a.broker.Publish(Msg("r/1", "kept", 1, /*retain=*/true));
  Settle();
  ASSERT_NE(b.broker.retained().Get("r/1"), nullptr);
  EXPECT_EQ(b.broker.retained().Get("r/1")->payload, "kept");
  ASSERT_TRUE(shared_.Load().ok());
  EXPECT_THAT(shared_.Load()->retained, SizeIs(1));
  // Deleted on the other replica: gone from both memories and the store.
  b.broker.Publish(Msg("r/1", "", 1, /*retain=*/true));
  Settle();
  EXPECT_EQ(a.broker.retained().Get("r/1"), nullptr);
  EXPECT_THAT(shared_.Load()->retained, SizeIs(0));
}

// A retained message its replica does not keep (--max-retained-messages) reaches the others
// as a plain message: no replica keeps it.
TEST_F(ClusterTest, ARetainedMessageOverTheLimitIsKeptNowhere) {
  const BrokerLimits limits{.max_retained_messages = 1};
  Replica& a = Add("a", limits);
  Replica& b = Add("b", limits);
  Joined();
  Replica::Client on_b = b.Connect("sub-b");
  b.Sub(on_b, "r/#");
  a.broker.Publish(Msg("r/1", "kept", 1, /*retain=*/true));
  a.broker.Publish(Msg("r/2", "not kept", 1, /*retain=*/true));
  Settle();
  EXPECT_THAT(b.Take(on_b), UnorderedElementsAre("kept", "not kept"));
  EXPECT_NE(b.broker.retained().Get("r/1"), nullptr);
  EXPECT_EQ(a.broker.retained().Get("r/2"), nullptr);
  EXPECT_EQ(b.broker.retained().Get("r/2"), nullptr);
  ASSERT_TRUE(shared_.Load().ok());
  EXPECT_THAT(shared_.Load()->retained, SizeIs(1));
}

TEST_F(ClusterTest, SharedSubscriptionGivesEachMessageToOneMemberInTheCluster) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  Replica::Client m1 = a.Connect("m1");
  a.Sub(m1, "$share/g/s/#");
  Replica::Client m2 = b.Connect("m2");
  b.Sub(m2, "$share/g/s/#");
  Replica::Client plain = b.Connect("plain");
  b.Sub(plain, "s/#");
  // The queue subscriptions are made on the replicas' workers.
  ASSERT_TRUE(
      Eventually([&] { return server_.queue_subscriptions("fleetcore.gw.m.s.>") == 2; }));
  for (int i = 0; i < 20; ++i) a.broker.Publish(Msg(absl::StrCat("s/", i), absl::StrCat(i)));
  Settle();
  std::vector<std::string> got_1 = a.Take(m1);
  std::vector<std::string> got_2 = b.Take(m2);
  std::set<std::string> all(got_1.begin(), got_1.end());
  all.insert(got_2.begin(), got_2.end());
  EXPECT_EQ(got_1.size() + got_2.size(), 20u);
  EXPECT_EQ(all.size(), 20u);
  EXPECT_FALSE(got_1.empty());
  EXPECT_FALSE(got_2.empty());
  EXPECT_THAT(b.Take(plain), SizeIs(20));
}

TEST_F(ClusterTest, ASharedGroupsTurnPassesOverAReplicaWhoseMembersAreAllAway) {
  Replica& a = Add("a");
  Replica::Client away = a.Connect("away", /*clean=*/false, 3600);
  a.Sub(away, "$share/g/s/#");
  a.Leave(away);  // its session, and its membership, stay
  // b starts after a's heartbeats from while the member was there have gone by.
  Settle();
  Replica& b = Add("b");
  Joined();
  Replica::Client here = b.Connect("here");
  b.Sub(here, "$share/g/s/#");
  ASSERT_TRUE(Eventually([&] { return server_.queue_subscriptions("fleetcore.gw.m.s.>") == 2; }));
  // a hears from b's heartbeat that b has a member connected; b knows a has none.
  ASSERT_TRUE(Eventually([&] { return a.cluster.ReplicasConnectedTo("g", "s/#").size() == 1; }));
  ASSERT_THAT(b.cluster.ReplicasConnectedTo("g", "s/#"), IsEmpty());
  for (int i = 0; i < 20; ++i) a.broker.Publish(Msg(absl::StrCat("s/", i), absl::StrCat(i)));
  Settle();
  Settle();  // and the turns a passed on to b while they were delivered
  // Every one reaches the connected member, none waits for the away one.
  EXPECT_THAT(b.Take(here), SizeIs(20));
  Replica::Client back = a.Resume("away");
  EXPECT_THAT(a.Take(back), IsEmpty());
  a.Leave(back);

  // With no member connected anywhere, each waits in an away member's session.
  Replica::Client later = b.Connect("later", /*clean=*/false, 3600);
  b.Sub(later, "$share/g/s/#");
  b.broker.Unsubscribe(here.session, "$share/g/s/#");
  b.Leave(later);
  ASSERT_TRUE(Eventually([&] { return a.cluster.ReplicasConnectedTo("g", "s/#").empty(); }));
  for (int i = 0; i < 10; ++i) b.broker.Publish(Msg(absl::StrCat("s/", i), absl::StrCat(i)));
  Settle();
  Settle();  // and any turn b passed to a on a heartbeat from while `back` was there
  Replica::Client back_a = a.Resume("away");
  Replica::Client back_b = b.Resume("later");
  // (With both back, what one replica queued may still be on its way to the other.)
  size_t got = 0;
  EXPECT_TRUE(Eventually([&] {
    got += a.Take(back_a).size() + b.Take(back_b).size();
    return got >= 10;
  }));
  Settle();
  absl::SleepFor(absl::Milliseconds(300));  // three heartbeats: nothing more comes
  EXPECT_EQ(got + a.Take(back_a).size() + b.Take(back_b).size(), 10u);
}

// What a shared group queued while no member was connected anywhere goes to a member that
// connects on another replica, after the next heartbeat (as the first member to come takes
// it within a replica, and on AWS).
TEST_F(ClusterTest, AGroupsQueueGoesToAMemberThatConnectsOnAnotherReplica) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  ASSERT_NO_FATAL_FAILURE(QueueFiveForAnAwayMember(a, b, "q"));
  Replica::Client here = b.Connect("here");
  b.Sub(here, "$share/g/q/#");
  EXPECT_THAT(TakeAtLeast(b, here, 5), UnorderedElementsAre("0", "1", "2", "3", "4"));
  EXPECT_EQ(a.broker.Find("away")->stats().queued, 0u);
  EXPECT_EQ(a.store.message_count("away"), 0u);  // nor in its replica's store
}

// The last member here of a group ending its session (a clean start here) gives what it
// held for the group to a replica with a connected member, at once (not only on a
// heartbeat, after which nothing here would hold it any more).
TEST_F(ClusterTest, AGroupsQueueLeftByItsLastMemberHereGoesToAReplicaWithOne) {
  ClusterOptions no_heartbeat_passing = Options("a");
  no_heartbeat_passing.shared_queue_per_heartbeat = 0;
  Replica& a = Add("a", {}, no_heartbeat_passing);
  Replica& b = Add("b");
  Joined();
  ASSERT_NO_FATAL_FAILURE(QueueFiveForAnAwayMember(a, b, "o"));
  Replica::Client here = b.Connect("here");
  b.Sub(here, "$share/g/o/#");
  ASSERT_TRUE(Eventually([&] { return a.cluster.ReplicasConnectedTo("g", "o/#").size() == 1; }));
  ASSERT_EQ(a.broker.Find("away")->stats().queued, 5u);  // still here
  Replica::Client fresh = a.Connect("away", /*clean=*/true);
  EXPECT_FALSE(fresh.present);
  EXPECT_THAT(TakeAtLeast(b, here, 5), UnorderedElementsAre("0", "1", "2", "3", "4"));
}

TEST_F(ClusterTest, AHeartbeatNamesNoMoreConnectedSharedGroupsThanItsLimit) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  std::vector<Replica::Client> members;
  for (int i = 0; i < 5; ++i) {
    members.push_back(b.Connect(absl::StrCat("m", i)));
    b.Sub(members.back(), absl::StrCat("$share/g/s", i));
  }
  auto named = [&] {
    int n = 0;
    for (int i = 0; i < 5; ++i)
      n += a.cluster.ReplicasConnectedTo("g", absl::StrCat("s", i)).size();
    return n;
  };
  ASSERT_TRUE(Eventually([&] { return named() == 3; }));  // Options: heartbeat_shares 3
  absl::SleepFor(absl::Milliseconds(300));                // three heartbeats more
  EXPECT_EQ(named(), 3);
  EXPECT_EQ(a.cluster.SharedGroupsElsewhere(), 3u);
}

TEST_F(ClusterTest, EachSharedGroupIsSubscribedToWithoutWaitingForTheNext) {
  // The subscriptions are made by the cluster's worker, which must wake for each one
  // (the heartbeat ticker, waiting beside it, must not take its wake-up).
  Replica& a = Add("a");
  for (int i = 0; i < 30; ++i) {
    Replica::Client m = a.Connect(absl::StrCat("m", i));
    a.Sub(m, absl::StrCat("$share/g/s", i));
    const std::string subject = absl::StrCat("fleetcore.gw.m.s", i);
    ASSERT_TRUE(Eventually([&] { return server_.queue_subscriptions(subject) == 1; })) << i;
  }
}

TEST_F(ClusterTest, SharedMembersHereStillGetMessagesWhileNatsIsAway) {
  Replica& a = Add("a");
  Replica::Client m = a.Connect("m");
  a.Sub(m, "$share/g/s/#");
  ASSERT_TRUE(
      Eventually([&] { return server_.queue_subscriptions("fleetcore.gw.m.s.>") == 1; }));
  a.bus.Cut(true);
  EXPECT_EQ(a.broker.Publish(Msg("s/1", "while away")), 1u);
  EXPECT_THAT(a.Take(m), ElementsAre("while away"));
  a.bus.Cut(false);
  EXPECT_EQ(a.broker.Publish(Msg("s/2", "through nats")), 0u);  // queued by NATS's turn
  Settle();
  EXPECT_THAT(a.Take(m), ElementsAre("through nats"));
}

TEST_F(ClusterTest, SharedSubscriptionsDoNotTakeDollarTopicsThroughAWildcard) {
  Replica& a = Add("a");
  Replica::Client m = a.Connect("m");
  a.Sub(m, "$share/g/#");
  ASSERT_TRUE(Eventually([&] { return a.broker.HasSharedMembers("g", "#"); }));
  EXPECT_EQ(a.broker.DeliverShared(Msg("$aws/x", "no"), "g", "#"), 0u);
  EXPECT_EQ(a.broker.DeliverShared(Msg("x", "yes"), "g", "#"), 1u);
}

TEST_F(ClusterTest, AConnectOnAnotherReplicaTakesTheClientIdOver) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  Replica::Client first = a.Connect("dev-1");
  Settle();  // its announcement went round before the client connects again
  Replica::Client second = b.Connect("dev-1");
  Settle();
  ASSERT_TRUE(Eventually([&] { return a.broker.Find("dev-1") == nullptr; }));
  EXPECT_THAT(first.outlet->Kicks(), ElementsAre(mqtt::reason::kSessionTakenOver));
  EXPECT_TRUE(second.outlet->Kicks().empty());
  EXPECT_NE(b.broker.Find("dev-1"), nullptr);
}

TEST_F(ClusterTest, TwoConnectsOfOneClientIdWhoseAnnouncementsCrossBothEnd) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  server_.Hold(true);  // neither hears of the other's connect before its own
  Replica::Client one = a.Connect("dev-6");
  Replica::Client two = b.Connect("dev-6");
  server_.Hold(false);
  Settle();
  ASSERT_TRUE(Eventually(
      [&] { return a.broker.Find("dev-6") == nullptr && b.broker.Find("dev-6") == nullptr; }));
  EXPECT_THAT(one.outlet->Kicks(), ElementsAre(mqtt::reason::kSessionTakenOver));
  EXPECT_THAT(two.outlet->Kicks(), ElementsAre(mqtt::reason::kSessionTakenOver));
}

TEST_F(ClusterTest, ResumingOnAnotherReplicaBringsTheSessionAndItsMessages) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  Replica::Client dev = a.Connect("dev-2", /*clean=*/true, /*expiry=*/3600);
  a.Sub(dev, "q/#");
  a.Leave(dev);
  for (int i = 0; i < 3; ++i) b.broker.Publish(Msg("q/1", absl::StrCat("m", i)));
  Settle();
  Replica::Client back = b.Resume("dev-2");
  EXPECT_TRUE(back.present);
  EXPECT_THAT(b.Take(back), ElementsAre("m0", "m1", "m2"));
  EXPECT_EQ(a.broker.Find("dev-2"), nullptr);
  EXPECT_EQ(shared_.owner("dev-2"), "b");
  // Its subscription came too: later messages arrive at its new replica.
  a.broker.Publish(Msg("q/2", "later"));
  Settle();
  EXPECT_THAT(b.Take(back), ElementsAre("later"));
}

TEST_F(ClusterTest, NothingIsLostOrGivenTwiceWhileASessionMoves) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Replica& c = Add("c");
  Joined();
  Replica::Client dev = a.Connect("dev-3", /*clean=*/true, /*expiry=*/3600);
  a.Sub(dev, "flow/#");
  int n = 0;
  auto publish = [&](Replica& on, int count) {
    for (int i = 0; i < count; ++i) on.broker.Publish(Msg("flow/x", absl::StrCat(n++)));
  };
  // Before the move: queued on a (its connection there never reads), handed over.
  publish(c, 100);
  Settle();
  // During: behind the handover request, so a has let go of the session and b does not
  // have it yet; a forwards them.
  server_.Hold(true);
  Replica::Client moved;
  std::thread resume([&] { moved = b.Resume("dev-3"); });
  ASSERT_TRUE(Eventually([&] { return server_.pending() > 0; }));  // the request
  publish(c, 100);
  publish(a, 50);
  server_.Hold(false);
  resume.join();
  // After: b routes them itself, and a still forwards them (b drops the second copy).
  publish(c, 100);
  publish(a, 50);
  Settle();
  EXPECT_TRUE(moved.present);
  EXPECT_THAT(dev.outlet->Kicks(), ElementsAre(mqtt::reason::kSessionTakenOver));
  std::vector<std::string> got = b.Take(moved);
  std::set<std::string> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), got.size()) << "a message was given twice";
  EXPECT_EQ(got.size(), static_cast<size_t>(n)) << "a message was lost";
}

TEST_F(ClusterTest, ASessionNoLiveReplicaHoldsIsTakenFromTheStore) {
  Replica& a = Add("a");
  Add("b");
  Joined();
  // Stored under a replica none has heard of (one gone before these started, or a gateway
  // that ran alone before replicas: owner "").
  FakeGatewayStore ghost(shared_, "ghost");
  ghost.ClaimSession(StoredSession{
      .record = {.client_id = "dev-4",
                 .version = mqtt::Version::kV5,
                 .expiry_interval = 3600,
                 .disconnected_at_ms = absl::ToUnixMillis(absl::Now()),
                 .subscriptions = {{.filter = "g/#", .options = {.qos = 1}}}},
      .messages = {{.seq = 1, .message = Msg("g/1", "stored"), .qos = 1}}});
  Replica::Client back = a.Resume("dev-4");
  EXPECT_TRUE(back.present);
  EXPECT_THAT(a.Take(back), ElementsAre("stored"));
  EXPECT_EQ(shared_.owner("dev-4"), "a");
}

TEST_F(ClusterTest, TheSessionsOfAReplicaThatLeavesAreTakenOverAndFedMeanwhile) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  Replica::Client dev = a.Connect("dev-7", /*clean=*/true, /*expiry=*/3600);
  a.Sub(dev, "h/#");
  a.Leave(dev);
  a.broker.Publish(Msg("h/1", "before"));
  Settle();
  a.cluster.Stop();  // b is the first live replica now: it takes dev-7's session
  // Taken over: installed in b's broker, then claimed in the store (in that order).
  ASSERT_TRUE(Eventually([&] { return shared_.owner("dev-7") == "b"; }));
  ASSERT_NE(b.broker.Find("dev-7"), nullptr);
  b.broker.Publish(Msg("h/2", "while away"));
  Replica::Client back = b.Connect("dev-7", /*clean=*/false, /*expiry=*/3600);
  EXPECT_TRUE(back.present);
  EXPECT_THAT(b.Take(back), ElementsAre("before", "while away"));
}

// A replica that dies with a client connected: the replica taking its session says why the
// connection ended as a restart would (GetConnection's disconnectReason).
TEST_F(ClusterTest, ASessionTakenFromADeadReplicaWhileConnectedSaysServerError) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  Replica::Client dev = a.Connect("dev-8", /*clean=*/true, /*expiry=*/3600);
  Settle();
  a.cluster.Stop();  // its connection never ended: stored attached
  ASSERT_TRUE(Eventually([&] { return b.broker.Find("dev-8") != nullptr; }));
  EXPECT_EQ(b.broker.Find("dev-8")->disconnect_reason(), "SERVER_ERROR");
  EXPECT_FALSE(b.broker.Find("dev-8")->attached());
}

TEST_F(ClusterTest, ASessionNobodyHasStartsAfresh) {
  Replica& a = Add("a");
  Add("b");
  Joined();
  Replica::Client dev = a.Resume("dev-5");
  EXPECT_FALSE(dev.present);
}

TEST_F(ClusterTest, TheAdministrationAsksEveryReplica) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  a.cluster.SetAdminHandler(Holds("on-a"));
  v1::ClusterAdminRequest ask;
  ask.mutable_describe()->set_client_id("on-a");
  std::vector<v1::ClusterAdminResponse> answers = b.cluster.AskReplicas(ask);
  ASSERT_THAT(answers, SizeIs(1));
  EXPECT_TRUE(answers[0].found());
  EXPECT_EQ(answers[0].node(), "a");
}

// A replica that does not answer (hung, or dead and not yet known to be) holds up no call
// about a client another replica holds: the first answer that found it ends the wait.
TEST_F(ClusterTest, TheHolderAnswersWithoutWaitingForASilentReplica) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Replica& c = Add("c");
  Joined();
  a.cluster.SetAdminHandler(Holds("on-a"));
  std::mutex mu;
  std::vector<Cluster::Reply> held;  // c's answers, held back
  c.cluster.SetAsyncAdminHandler([&](const v1::ClusterAdminRequest&, Cluster::Reply reply) {
    std::lock_guard<std::mutex> l(mu);
    held.push_back(std::move(reply));
  });
  v1::ClusterAdminRequest ask;
  ask.mutable_describe()->set_client_id("on-a");
  // A minute to wait at most, as a direct message's longest timeout gives.
  std::future<std::vector<v1::ClusterAdminResponse>> answers =
      std::async(std::launch::async, [&] { return b.cluster.AskReplicas(ask, absl::Minutes(1)); });
  const bool returned = answers.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  EXPECT_TRUE(returned) << "the call waited for the silent replica";
  std::vector<v1::ClusterAdminResponse> got = answers.get();
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_TRUE(got[0].found());
  EXPECT_EQ(got[0].node(), "a");
  std::lock_guard<std::mutex> l(mu);
  for (Cluster::Reply& r : held) r(v1::ClusterAdminResponse());
}

// DeleteConnection's quota (one call per client id a second, as AWS's) is counted by the
// replica holding the client, so calls made to different replicas count together.
TEST_F(ClusterTest, TheDeleteConnectionQuotaIsCountedWhereTheClientIs) {
  Replica& a = Add("a");
  Replica& b = Add("b");
  Joined();
  grpc_util::Executor executor(1, 10);
  grpc_util::CallRunner calls(&executor, nullptr);
  // An hour's interval: the test does not depend on how fast it runs.
  GatewayService on_a(
      &a.broker, &calls, [] { return std::string("a"); }, &a.cluster, nullptr, absl::Hours(1));
  GatewayService on_b(
      &b.broker, &calls, [] { return std::string("b"); }, &b.cluster, nullptr, absl::Hours(1));
  Replica::Client dev = b.Connect("dev-9", /*clean=*/false, /*expiry=*/3600);
  auto del = [](GatewayService& service) {
    v1::DeleteConnectionRequest req;
    req.set_client_id("dev-9");
    auto answered = std::make_shared<std::promise<absl::Status>>();
    std::future<absl::Status> f = answered->get_future();
    service.Delete(req, [answered](absl::Status s) { answered->set_value(std::move(s)); });
    return f.get();
  };
  EXPECT_TRUE(del(on_a).ok());  // asked of b, which ends the connection
  const absl::Status again = del(on_b);
  EXPECT_EQ(again.code(), absl::StatusCode::kResourceExhausted) << again;
  const absl::Status via_a = del(on_a);
  EXPECT_EQ(via_a.code(), absl::StatusCode::kResourceExhausted) << via_a;
  EXPECT_THAT(std::string(via_a.message()), ::testing::HasSubstr("per client id"));
}

TEST_F(ClusterTest, ADuplicateNodeIdIsRefusedAtStart) {
  Add("a");
  Replica twin(&server_, shared_, "a", BrokerLimits{}, Options("a"));
  absl::Status s = twin.cluster.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("--cluster-node-id"));
}

TEST_F(ClusterTest, SessionsSurviveTheirEncoding) {
  StoredSession s;
  s.record.client_id = "c";
  s.record.version = mqtt::Version::kV5;
  s.record.expiry_interval = 60;
  s.record.disconnected_at_ms = 1234;
  s.record.subscriptions.push_back({.filter = "a/+", .options = {.qos = 1, .no_local = true}});
  s.record.will = PendingWill{.message = Msg("w", "bye"), .due_ms = 99};
  s.record.inbound_qos2 = {7};
  auto m = std::make_shared<Message>(*Msg("a/b", "x", 2));
  m->cluster_id = 42;
  m->expires_at_ms = 5000;
  s.messages.push_back({.seq = 3, .message = m, .qos = 2, .packet_id = 9, .released = true});
  s.messages.push_back({.seq = 4, .message = m, .qos = 1, .share = "$share/g/a/+"});
  v1::ClusterSession proto;
  ASSERT_TRUE(proto.ParseFromString(Cluster::EncodeSession(s)));
  absl::StatusOr<StoredSession> back = Cluster::DecodeSession(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->record.client_id, "c");
  EXPECT_EQ(back->record.expiry_interval, 60u);
  EXPECT_EQ(back->record.disconnected_at_ms, 1234);
  ASSERT_THAT(back->record.subscriptions, SizeIs(1));
  EXPECT_TRUE(back->record.subscriptions[0].options.no_local);
  ASSERT_TRUE(back->record.will.has_value());
  EXPECT_EQ(back->record.will->message->payload, "bye");
  EXPECT_EQ(back->record.will->due_ms, 99);
  EXPECT_THAT(back->record.inbound_qos2, ElementsAre(7));
  ASSERT_THAT(back->messages, SizeIs(2));
  EXPECT_EQ(back->messages[0].message->cluster_id, 42u);
  EXPECT_EQ(back->messages[0].message->expires_at_ms, 5000);
  EXPECT_EQ(back->messages[0].packet_id, 9);
  EXPECT_TRUE(back->messages[0].released);
  EXPECT_EQ(back->messages[0].share, "");
  EXPECT_EQ(back->messages[1].share, "$share/g/a/+");  // still the group's
}

TEST(NatsClusterBusTest, CredentialsStayOutOfLogs) {
  EXPECT_EQ(NatsClusterBus::Redact("nats://gw:s3cret@nats-0:4222,tls://t0ken@nats-1:4222"),
            "nats://***@nats-0:4222,tls://***@nats-1:4222");
  EXPECT_EQ(NatsClusterBus::Redact("nats://nats:4222"), "nats://nats:4222");
}

}  // namespace
}  // namespace fleetcore::gateway
