// The gateway's Postgres store: what is written is what a restarted gateway loads, in
// order, with every property; writes for a session that is gone are dropped; and a
// broker restarted on it finds its sessions, messages and retained messages again.
#include "services/gateway/pg_gateway_store.h"

#include <algorithm>
#include <memory>

#include "common/db/pg_pool.h"
#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"
#include "services/gateway/broker.h"

namespace fleetcore::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

class NullOutlet final : public Outlet {
 public:
  void Wake() override {}
  void Kick(uint8_t, WillPolicy) override {}
};

class PgGatewayStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    ASSERT_OK_AND_ASSIGN(pool_, db::PgPool::Create({.url = db_->url(), .pool_size = 2}, nullptr));
    store_ = std::make_unique<PgGatewayStore>(pool_.get(), nullptr);
  }

  void Flush() { ASSERT_OK(store_->Flush(absl::Now() + absl::Seconds(10))); }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<PgGatewayStore> store_;
};

std::shared_ptr<Message> Full(const std::string& topic) {
  auto m = std::make_shared<Message>();
  m->topic = topic;
  m->payload = std::string(
      "\x00\x01"
      "binary\xff",
      9);
  m->qos = 1;
  m->payload_format_indicator = 0;
  m->content_type = "application/octet-stream";
  m->response_topic = "replies/1";
  m->correlation_data = std::string("\x00\x7f", 2);
  m->user_properties = {{"a", "1"}, {"a", "2"}};
  m->expires_at_ms = 1900000000123;
  m->published_at_ms = 1800000000456;
  Seal(m.get());
  return m;
}

TEST_F(PgGatewayStoreTest, RetainedMessagesRoundTrip) {
  auto m = Full("home/t");
  m->retain = true;
  store_->PutRetained(m);
  store_->PutRetained(Full("other"));
  store_->DeleteRetained("other");
  Flush();
  ASSERT_OK_AND_ASSIGN(StoreSnapshot s, store_->Load());
  ASSERT_THAT(s.retained, SizeIs(1));
  const Message& r = *s.retained[0];
  EXPECT_EQ(r.topic, "home/t");
  EXPECT_EQ(r.payload, m->payload);
  EXPECT_EQ(r.qos, 1);
  EXPECT_TRUE(r.retain);
  EXPECT_EQ(r.content_type, m->content_type);
  EXPECT_EQ(r.response_topic, m->response_topic);
  EXPECT_EQ(r.correlation_data, m->correlation_data);
  EXPECT_EQ(r.payload_format_indicator, 0);
  EXPECT_EQ(r.user_properties, m->user_properties);
  EXPECT_EQ(r.expires_at_ms, m->expires_at_ms);
  EXPECT_EQ(r.published_at_ms, m->published_at_ms);
  EXPECT_EQ(r.encoded_properties, m->encoded_properties);
}

TEST_F(PgGatewayStoreTest, ExpiredRetainedMessagesAreDeletedByTheGatewaysClock) {
  auto expiring = [](const std::string& topic, std::optional<int64_t> at) {
    auto m = Full(topic);
    m->expires_at_ms = at;
    return m;
  };
  store_->PutRetained(expiring("gone", 1800000000000));
  store_->PutRetained(expiring("just-gone", 1800000005000));
  store_->PutRetained(expiring("later", 1800000005001));
  store_->PutRetained(expiring("never", std::nullopt));
  // All lie in 2027, ahead of Postgres's now(): the instant the gateway passes decides.
  store_->DeleteExpiredRetained(1800000005000);
  Flush();
  ASSERT_OK_AND_ASSIGN(StoreSnapshot s, store_->Load());
  std::vector<std::string> topics;
  for (const MessagePtr& m : s.retained) topics.push_back(m->topic);
  std::sort(topics.begin(), topics.end());
  EXPECT_THAT(topics, ElementsAre("later", "never"));
}

TEST_F(PgGatewayStoreTest, SessionsAndTheirMessagesRoundTripInOrder) {
  SessionRecord rec{
      .client_id = "dev-1",
      .version = mqtt::Version::kV5,
      .expiry_interval = 0xFFFFFFFF,
      .disconnected_at_ms = 1700000000999,
      .disconnect_reason = "MQTT_KEEP_ALIVE_TIMEOUT",
      .subscriptions =
          {{"$share/g/a/#", {.qos = 1, .subscription_id = 3}},
           {"b/+",
            {.qos = 2, .no_local = true, .retain_as_published = true, .retain_handling = 2}}},
      .will = PendingWill{.message = Full("status/dev-1"), .due_ms = 1700000060000},
      .inbound_qos2 = {4, 9}};
  store_->PutSession(rec);
  for (int64_t seq = 1; seq <= 3; ++seq) {
    store_->PutMessage("dev-1", StoredMessage{.seq = seq,
                                              .message = Full("a/" + std::to_string(seq)),
                                              .qos = 1,
                                              .retain = seq == 2,
                                              .subscription_ids = {3, 5},
                                              .share = seq == 3 ? "$share/g/a/#" : ""});
  }
  // Sent, then released: the row is updated in place.
  store_->PutMessage("dev-1", StoredMessage{.seq = 1, .message = Full("a/1"), .qos = 2,
                                            .packet_id = 77, .released = true});
  store_->DeleteMessage("dev-1", 2);
  store_->PutMessage("nobody", StoredMessage{.seq = 1, .message = Full("x")});  // dropped
  Flush();
  ASSERT_OK_AND_ASSIGN(StoreSnapshot s, store_->Load());
  ASSERT_THAT(s.sessions, SizeIs(1));
  const StoredSession& got = s.sessions[0];
  EXPECT_EQ(got.record.client_id, "dev-1");
  EXPECT_EQ(got.record.version, mqtt::Version::kV5);
  EXPECT_EQ(got.record.expiry_interval, 0xFFFFFFFFu);
  EXPECT_EQ(got.record.disconnected_at_ms, 1700000000999);
  EXPECT_EQ(got.record.disconnect_reason, "MQTT_KEEP_ALIVE_TIMEOUT");
  ASSERT_THAT(got.record.subscriptions, SizeIs(2));
  EXPECT_EQ(got.record.subscriptions[0].filter, "$share/g/a/#");
  EXPECT_EQ(got.record.subscriptions[0].options, (mqtt::SubscriptionOptions{.qos = 1, .subscription_id = 3}));
  EXPECT_EQ(got.record.subscriptions[1].options, rec.subscriptions[1].options);
  ASSERT_TRUE(got.record.will.has_value());
  EXPECT_EQ(got.record.will->due_ms, 1700000060000);
  EXPECT_EQ(got.record.will->message->topic, "status/dev-1");
  EXPECT_THAT(got.record.inbound_qos2, ElementsAre(4, 9));
  ASSERT_THAT(got.messages, SizeIs(2));
  EXPECT_EQ(got.messages[0].seq, 1);
  EXPECT_EQ(got.messages[0].packet_id, 77);
  EXPECT_TRUE(got.messages[0].released);
  EXPECT_EQ(got.messages[1].seq, 3);
  EXPECT_EQ(got.messages[1].message->topic, "a/3");
  EXPECT_THAT(got.messages[1].subscription_ids, ElementsAre(3, 5));
  EXPECT_EQ(got.messages[1].message->expires_at_ms, 1900000000123);
  EXPECT_EQ(got.messages[0].share, "");
  EXPECT_EQ(got.messages[1].share, "$share/g/a/#");  // its shared group's, for any member

  store_->DeleteSession("dev-1");  // its messages go with it
  Flush();
  ASSERT_OK_AND_ASSIGN(StoreSnapshot after, store_->Load());
  EXPECT_THAT(after.sessions, SizeIs(0));
}

TEST_F(PgGatewayStoreTest, ABrokerRestartsOnIt) {
  testing::FakeClock clock(absl::Now());
  BrokerLimits limits;
  auto outlet = std::make_shared<NullOutlet>();
  {
    Broker broker(limits, store_.get(), &clock);
    ASSERT_OK(broker.Load());
    Broker::Attached a = broker.Attach(
        outlet, {.client_id = "p", .version = mqtt::Version::kV311, .clean_start = false,
                 .expiry_interval = 3600});
    mqtt::ParsedFilter parsed{"", "t/#"};
    broker.Subscribe(a.session, "t/#", parsed, {.qos = 1});
    broker.Persist(*a.session);
    broker.Detach(a.session, outlet.get(), nullptr, 0, WillPolicy::kPublish);
    auto m = Full("t/1");
    broker.Publish(m);
    auto r = Full("t/retained");
    r->retain = true;
    broker.Publish(r);
    Flush();
  }
  Broker broker(limits, store_.get(), &clock);
  ASSERT_OK(broker.Load());
  EXPECT_EQ(broker.retained().size(), 1u);
  Broker::Attached a = broker.Attach(
      outlet, {.client_id = "p", .version = mqtt::Version::kV311, .clean_start = false,
               .expiry_interval = 3600});
  EXPECT_TRUE(a.session_present);
  std::vector<Outgoing> out;
  size_t expired = 0;
  a.session->TakeSendable(10, broker.NowMs(), &out, &expired);
  ASSERT_THAT(out, SizeIs(2));  // the message and the retained one, both queued for "p"
  EXPECT_EQ(out[0].message->topic, "t/1");
  EXPECT_EQ(out[0].message->payload, Full("t/1")->payload);
}

TEST_F(PgGatewayStoreTest, WritesWaitOutAStalledPostgresAndLoseNothingWithinTheBound) {
  PgGatewayStore store(pool_.get(), nullptr, /*max_pending=*/3);
  // Another session holds the table: the writer's batch waits, as in an outage.
  pqxx::connection admin(db_->url());
  auto lock = std::make_unique<pqxx::work>(admin);
  lock->exec("LOCK TABLE gateway.sessions IN ACCESS EXCLUSIVE MODE");
  store.PutSession(SessionRecord{.client_id = "a", .expiry_interval = 60});
  // The writer takes the first into its batch; three more fit the queue; the fifth is
  // over the bound and dropped, counted.
  absl::SleepFor(absl::Milliseconds(200));
  for (const char* id : {"b", "c", "d", "e"}) {
    store.PutSession(SessionRecord{.client_id = id, .expiry_interval = 60});
  }
  EXPECT_EQ(store.dropped(), 1u);
  EXPECT_EQ(store.Flush(absl::Now() + absl::Milliseconds(300)).code(),
            absl::StatusCode::kDeadlineExceeded);
  lock->abort();
  lock.reset();
  ASSERT_OK(store.Flush(absl::Now() + absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(StoreSnapshot s, store.Load());
  std::vector<std::string> ids;
  for (const StoredSession& x : s.sessions) ids.push_back(x.record.client_id);
  std::sort(ids.begin(), ids.end());
  EXPECT_THAT(ids, ElementsAre("a", "b", "c", "d"));
}

// Gateway replicas on one database: each writes and loads only the sessions it owns; a
// claim takes a session over whoever had it, and the old owner's late writes do nothing.
TEST_F(PgGatewayStoreTest, ReplicasWriteAndLoadOnlyTheirOwnSessions) {
  PgGatewayStore a(pool_.get(), nullptr, 1000, "gw-a");
  PgGatewayStore b(pool_.get(), nullptr, 1000, "gw-b");
  auto flush = [](PgGatewayStore& s) { ASSERT_OK(s.Flush(absl::Now() + absl::Seconds(10))); };
  SessionRecord rec{.client_id = "dev",
                    .version = mqtt::Version::kV5,
                    .expiry_interval = 3600,
                    .disconnected_at_ms = 1800000000000,
                    .subscriptions = {{.filter = "a/#", .options = {.qos = 1}}}};
  a.PutSession(rec);
  a.PutMessage("dev", StoredMessage{.seq = 1, .message = Full("a/1"), .qos = 1});
  a.PutMessage("dev", StoredMessage{.seq = 2, .message = Full("a/2"), .qos = 1});
  flush(a);
  ASSERT_OK_AND_ASSIGN(StoreSnapshot on_b, b.Load());
  EXPECT_THAT(on_b.sessions, SizeIs(0));
  ASSERT_OK_AND_ASSIGN(std::optional<GatewayStore::OwnedSession> owned, b.LoadSession("dev"));
  ASSERT_TRUE(owned.has_value());
  EXPECT_EQ(owned->owner, "gw-a");
  ASSERT_THAT(owned->session.messages, SizeIs(2));

  // b takes it with one message left; a's writes after that change nothing.
  StoredSession taken = owned->session;
  taken.messages.erase(taken.messages.begin());
  b.ClaimSession(taken);
  flush(b);
  SessionRecord late = rec;
  late.subscriptions.clear();
  a.PutSession(late);
  a.PutMessage("dev", StoredMessage{.seq = 3, .message = Full("a/3"), .qos = 1});
  a.DeleteMessage("dev", 2);
  a.DeleteSession("dev");
  flush(a);
  ASSERT_OK_AND_ASSIGN(owned, a.LoadSession("dev"));
  ASSERT_TRUE(owned.has_value());
  EXPECT_EQ(owned->owner, "gw-b");
  EXPECT_THAT(owned->session.record.subscriptions, SizeIs(1));
  ASSERT_THAT(owned->session.messages, SizeIs(1));
  EXPECT_EQ(owned->session.messages[0].seq, 2);
  ASSERT_OK_AND_ASSIGN(StoreSnapshot on_a, a.Load());
  EXPECT_THAT(on_a.sessions, SizeIs(0));
  ASSERT_OK_AND_ASSIGN(on_b, b.Load());
  EXPECT_THAT(on_b.sessions, SizeIs(1));
  // What a replica taking over gw-b's sessions would read.
  ASSERT_OK_AND_ASSIGN(std::vector<StoredSession> of_b, a.LoadSessionsOf("gw-b"));
  ASSERT_THAT(of_b, SizeIs(1));
  EXPECT_EQ(of_b[0].record.client_id, "dev");
  EXPECT_THAT(of_b[0].messages, SizeIs(1));
  ASSERT_OK_AND_ASSIGN(std::vector<StoredSession> of_a, b.LoadSessionsOf("gw-a"));
  EXPECT_THAT(of_a, SizeIs(0));

  // Expired sessions of replicas that are gone are deleted; the live ones' are not.
  SessionRecord old{.client_id = "old", .version = mqtt::Version::kV311, .expiry_interval = 60,
                    .disconnected_at_ms = 1000};
  a.PutSession(old);
  flush(a);
  ASSERT_OK_AND_ASSIGN(int64_t deleted, b.DeleteExpiredSessionsOf({"gw-a", "gw-b"}));
  EXPECT_EQ(deleted, 0);
  ASSERT_OK_AND_ASSIGN(deleted, b.DeleteExpiredSessionsOf({"gw-b"}));
  EXPECT_EQ(deleted, 1);  // "old" (expired, gw-a gone); "dev" is gw-b's and not expired
  ASSERT_OK_AND_ASSIGN(owned, b.LoadSession("old"));
  EXPECT_FALSE(owned.has_value());
}

}  // namespace
}  // namespace fleetcore::gateway
