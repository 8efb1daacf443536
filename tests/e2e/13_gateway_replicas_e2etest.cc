// Two gateway replicas on one Postgres and one NATS (Debian's nats-server, started here),
// driven with mosquitto_pub/mosquitto_sub, paho and fleetctl as a fleet behind a load
// balancer would be: messages, retained messages and shared subscriptions across replicas
// (a group's messages going to its member connected to one replica, not to its member away
// from the other), a client id taken over from one replica by a connect to the other, a
// persistent session following its client (handed over by the other replica, or taken over
// when that replica stopped), a device following its shadow through a replica other than
// the one the shadow service publishes through, the Broker API seeing every replica's
// connections, NATS restarting under them, and a clear error when NATS cannot be reached or
// cannot carry the gateway's largest packet.
#include <signal.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/testing/http.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/e2e_util.h"

namespace fleetcore::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

constexpr char kToken[] = "e2e-admin-token";

class GatewayReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    anonymous_ = WriteAllowAllPolicy(::testing::TempDir() + "replicas-anonymous-policy.json");
    nats_port_ = FreePort();
    nats_monitor_port_ = FreePort();
    ASSERT_NO_FATAL_FAILURE(StartNats());
    ASSERT_OK_AND_ASSIGN(a_, StartGateway("gw-a"));
    ASSERT_OK_AND_ASSIGN(b_, StartGateway("gw-b"));
    // Each has heard the other.
    for (RunningService* g : {&a_, &b_}) {
      const std::string two = "fleetcore_gateway_cluster_replicas 2";
      ASSERT_THAT(MetricsWith(g->metrics_port, {two}), HasSubstr(two));
    }
  }

  void StartNats() {
    ASSERT_OK_AND_ASSIGN(
        nats_, testing::Subprocess::Start({Tool("nats-server"), "-a", "127.0.0.1", "-p",
                                           std::to_string(nats_port_), "-m",
                                           std::to_string(nats_monitor_port_)}));
    ASSERT_OK(nats_->WaitForLine([](absl::string_view l) {
                    return absl::StrContains(l, "Server is ready");
                  }).status());
  }

  absl::StatusOr<RunningService> StartGateway(const std::string& node) {
    return StartService("services/gateway/fleetcore-gateway",
                        {"--db-url=" + db_->url(), "--mqtt-listen=127.0.0.1:0", "--mqtts-listen=",
                         "--anonymous-policy-file=" + anonymous_, "--shadow-endpoint=",
                         "--rules-endpoint=",
                         absl::StrCat("--cluster-url=nats://127.0.0.1:", nats_port_),
                         "--cluster-node-id=" + node},
                        {{"FLEETCORE_ADMIN_TOKEN", kToken}});
  }

  Fleetctl Ctl(const RunningService& g) const {
    return Fleetctl(kToken, {{"FLEETCORE_GATEWAY_ENDPOINT", g.endpoint}});
  }
  static std::string Port(const RunningService& g) {
    return std::to_string(g.ports.at("mqtt_port"));
  }
  testing::RunResult Pub(const RunningService& g, std::vector<std::string> args) {
    std::vector<std::string> argv{Tool("mosquitto_pub"), "-p", Port(g)};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<testing::RunResult> r = testing::Run(argv);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r.ok() ? r->exit_code : -1, 0) << (r.ok() ? r->err : "");
    return r.ok() ? *r : testing::RunResult{};
  }
  testing::RunResult Paho(const RunningService& g, const std::string& scenario) {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        {"/usr/bin/python3", SourcePath("tests/e2e/clients/paho_scenarios.py"), scenario,
         "--port", Port(g), "--prefix", "replicas"},
        {}, absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::RunResult{};
  }
  // A shared group's member with a persistent session subscribes on `g` and leaves (-E:
  // once subscribed), and `g`'s heartbeats say it has no member connected (one sent while
  // the member was there would have the other replica pass turns back to it). Returns the
  // member's command, to come back with; empty on failure.
  std::vector<std::string> AwayMember(const RunningService& g, const std::string& client_id,
                                      const std::string& filter) {
    const std::vector<std::string> member = {
        Tool("mosquitto_sub"), "-p", Port(g), "-i", client_id, "-c", "-q", "1", "-t", filter};
    std::vector<std::string> leave = member;
    leave.push_back("-E");
    absl::StatusOr<testing::RunResult> left = testing::Run(leave);
    EXPECT_TRUE(left.ok() && left->exit_code == 0) << (left.ok() ? left->err : "");
    const std::string none = "fleetcore_gateway_cluster_shared_groups{where=\"here\"} 0";
    EXPECT_THAT(MetricsWith(g.metrics_port, {none}), HasSubstr(none));
    if (!left.ok() || left->exit_code != 0) return {};
    return member;
  }
  // What the away member's session holds when it comes back (for 2 s).
  static std::string ComesBackTo(std::vector<std::string> member) {
    member.insert(member.end(), {"-W", "2"});
    absl::StatusOr<testing::RunResult> r = testing::Run(member);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->out : "(did not run)";
  }
  // Publishes "<prefix>0" ... "<prefix><n-1>" to `topic` on `g` at QoS 1.
  void PublishNumbered(const RunningService& g, const std::string& topic, const std::string& prefix,
                       int n) {
    std::string lines;
    for (int i = 0; i < n; ++i) absl::StrAppend(&lines, prefix, i, "\n");
    ASSERT_OK_AND_ASSIGN(testing::RunResult r, testing::Run({Tool("mosquitto_pub"), "-p", Port(g),
                                                             "-t", topic, "-q", "1", "-l"},
                                                            {}, absl::Seconds(30), lines));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  // The NATS queue subscriptions on `subject` (one per replica with a member of the
  // group), as nats-server's monitoring shows them.
  int QueueSubscriptions(const std::string& subject) {
    const json connz = json::parse(
        testing::HttpGet(nats_monitor_port_, "/connz?subs=detail"), nullptr, false);
    int n = 0;
    if (!connz.is_object()) return 0;
    for (const json& c : connz.value("connections", json::array())) {
      for (const json& s : c.value("subscriptions_list_detail", json::array())) {
        if (s.value("subject", "") == subject && !s.value("qgroup", "").empty()) ++n;
      }
    }
    return n;
  }
  // Waits up to 5 s for `n` of them.
  void ExpectQueueSubscriptions(const std::string& subject, int n) {
    for (int i = 0; i < 100 && QueueSubscriptions(subject) != n; ++i) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_EQ(QueueSubscriptions(subject), n)
        << testing::HttpGet(nats_monitor_port_, "/connz?subs=detail");
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::string anonymous_;
  int nats_port_ = 0;
  int nats_monitor_port_ = 0;
  std::unique_ptr<testing::Subprocess> nats_;
  RunningService a_;
  RunningService b_;
};

TEST_F(GatewayReplicasTest, MessagesRetainedMessagesAndSharedSubscriptionsSpanReplicas) {
  auto sub = StartSubscriber(Ctl(a_), {"-p", Port(a_), "-t", "t/#", "-v", "-q", "1", "-C", "2"},
                             "sub-on-a");
  ASSERT_NE(sub, nullptr);
  Pub(b_, {"-t", "t/1", "-m", "from b", "-q", "1"});
  Pub(b_, {"-t", "t/kept", "-m", "retained on b", "-q", "1", "-r"});
  ASSERT_OK_AND_ASSIGN(int code, sub->Wait(absl::Seconds(15)));
  EXPECT_EQ(code, 0) << sub->output();
  EXPECT_THAT(sub->output(), HasSubstr("t/1 from b"));
  // A new subscriber on the other replica gets the retained message.
  ASSERT_OK_AND_ASSIGN(testing::RunResult late,
                       testing::Run({Tool("mosquitto_sub"), "-p", Port(a_), "-t", "t/kept",
                                     "-C", "1", "-W", "10"}));
  EXPECT_EQ(late.out, "retained on b\n");  // Run keeps the output as it came

  // One member of a shared group on each replica: each message reaches one of them.
  auto m1 = StartSubscriber(Ctl(a_), {"-p", Port(a_), "-t", "$share/g/s/#", "-q", "1", "-W", "8"},
                            "member-a");
  auto m2 = StartSubscriber(Ctl(b_), {"-p", Port(b_), "-t", "$share/g/s/#", "-q", "1", "-W", "8"},
                            "member-b");
  ASSERT_NE(m1, nullptr);
  ASSERT_NE(m2, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectQueueSubscriptions("fleetcore.gw.m.s.>", 2));
  std::string lines;
  for (int i = 0; i < 20; ++i) absl::StrAppend(&lines, "m", i, "\n");
  ASSERT_OK_AND_ASSIGN(testing::RunResult r,
                       testing::Run({Tool("mosquitto_pub"), "-p", Port(a_), "-t", "s/x", "-q",
                                     "1", "-l"},
                                    {}, absl::Seconds(30), lines));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_OK(m1->Wait(absl::Seconds(15)).status());
  ASSERT_OK(m2->Wait(absl::Seconds(15)).status());
  // The messages (mosquitto_sub's "Timed out" at -W is on the same output).
  auto messages = [](const std::string& output) {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
      if (absl::StartsWith(line, "m")) out.emplace_back(line);
    }
    return out;
  };
  std::vector<std::string> got_1 = messages(m1->output());
  std::vector<std::string> got_2 = messages(m2->output());
  std::set<std::string> all(got_1.begin(), got_1.end());
  all.insert(got_2.begin(), got_2.end());
  EXPECT_EQ(got_1.size() + got_2.size(), 20u) << m1->output() << "--\n" << m2->output();
  EXPECT_EQ(all.size(), 20u);
  EXPECT_FALSE(got_1.empty());
  EXPECT_FALSE(got_2.empty());
}

TEST_F(GatewayReplicasTest, ASharedGroupsMessagesGoToItsMemberConnectedToAnotherReplica) {
  // A member with a persistent session subscribes on a and leaves.
  const std::vector<std::string> away = AwayMember(a_, "away-member", "$share/g/w/#");
  ASSERT_FALSE(away.empty());
  // One connected on b.
  auto here = StartSubscriber(
      Ctl(b_), {"-p", Port(b_), "-t", "$share/g/w/#", "-q", "1", "-C", "20", "-W", "20"},
      "member-b");
  ASSERT_NE(here, nullptr);
  // a hears of it in b's heartbeat.
  const std::string heard = "fleetcore_gateway_cluster_shared_groups{where=\"elsewhere\"} 1";
  ASSERT_THAT(MetricsWith(a_.metrics_port, {heard}), HasSubstr(heard));
  ASSERT_NO_FATAL_FAILURE(ExpectQueueSubscriptions("fleetcore.gw.m.w.>", 2));
  ASSERT_NO_FATAL_FAILURE(PublishNumbered(a_, "w/x", "m", 20));
  // Every one reaches the connected member, whichever replica NATS gave it to.
  ASSERT_OK_AND_ASSIGN(int code, here->Wait(absl::Seconds(25)));
  EXPECT_EQ(code, 0) << here->output();
  // None waited for the member that was away.
  EXPECT_EQ(ComesBackTo(away), "");
}

// What a shared group queued while its only member was away goes to a member that joins
// on the other replica (AWS's group queue: to whichever member comes first), and no longer
// waits for the away one.
TEST_F(GatewayReplicasTest, ASharedGroupsQueueGoesToAMemberJoiningOnAnotherReplica) {
  const std::vector<std::string> away = AwayMember(a_, "queue-member", "$share/q/v/#");
  ASSERT_FALSE(away.empty());
  ASSERT_NO_FATAL_FAILURE(ExpectQueueSubscriptions("fleetcore.gw.m.v.>", 1));
  ASSERT_NO_FATAL_FAILURE(PublishNumbered(b_, "v/x", "q", 10));
  // All ten wait in the away member's session on a.
  const std::string queued = "fleetcore_gateway_routed_messages_total 10";
  ASSERT_THAT(MetricsWith(a_.metrics_port, {queued}), HasSubstr(queued));
  // A member joins on b: a hears of it in b's heartbeat and passes the ten there.
  // (Not StartSubscriber: it may have all ten and be gone before it would be seen.)
  ASSERT_OK_AND_ASSIGN(
      auto joiner,
      testing::Subprocess::Start({Tool("mosquitto_sub"), "-p", Port(b_), "-i", "queue-joiner", "-t",
                                  "$share/q/v/#", "-q", "1", "-C", "10", "-W", "20"}));
  ASSERT_OK_AND_ASSIGN(int code, joiner->Wait(absl::Seconds(25)));
  EXPECT_EQ(code, 0) << joiner->output();
  for (int i = 0; i < 10; ++i) EXPECT_THAT(joiner->output(), HasSubstr(absl::StrCat("q", i)));
  EXPECT_EQ(ComesBackTo(away), "");
}

TEST_F(GatewayReplicasTest, AConnectToTheOtherReplicaTakesTheClientIdOver) {
  auto first = StartSubscriber(Ctl(a_),
                               {"-p", Port(a_), "-t", "d/#", "-V", "mqttv5", "-d"}, "dup-1");
  ASSERT_NE(first, nullptr);
  auto second = StartSubscriber(Ctl(b_),
                                {"-p", Port(b_), "-t", "d/#", "-V", "mqttv5", "-W", "5"},
                                "dup-1");
  ASSERT_NE(second, nullptr);
  ASSERT_OK(first->Wait(absl::Seconds(10)).status());
  EXPECT_THAT(first->output(), HasSubstr("Received DISCONNECT (142)"));  // session taken over
  const std::string takeover = "fleetcore_gateway_cluster_takeovers_total 1";
  EXPECT_THAT(MetricsWith(a_.metrics_port, {takeover}), HasSubstr(takeover));
}

TEST_F(GatewayReplicasTest, APersistentSessionFollowsItsClientToTheOtherReplica) {
  // paho: a session subscribes on a and leaves; ten QoS 1 messages and a retained one are
  // published on a; the client comes back to b and gets all of it.
  testing::RunResult r = Paho(a_, "persist_subscribe");
  EXPECT_THAT(r.out, HasSubstr("ok persist_subscribe")) << r.err;
  r = Paho(b_, "persist_receive");
  EXPECT_THAT(r.out, HasSubstr("ok persist_receive")) << r.err;
  const std::string moved = "fleetcore_gateway_cluster_handovers_total{result=\"from_replica\"} 1";
  EXPECT_THAT(MetricsWith(b_.metrics_port, {moved}), HasSubstr(moved));
}

TEST_F(GatewayReplicasTest, TheSessionsOfAStoppedReplicaAreTakenOverByTheOther) {
  // As in a rolling update: the replica holding a persistent session (its messages queued)
  // stops; the other takes its sessions over from Postgres, and the client comes back to it.
  testing::RunResult r = Paho(a_, "persist_subscribe");
  EXPECT_THAT(r.out, HasSubstr("ok persist_subscribe")) << r.err;
  a_.process->Signal(SIGTERM);
  ASSERT_OK_AND_ASSIGN(int code, a_.process->Wait());
  EXPECT_EQ(code, 0) << a_.process->output();
  // Closing its NATS connections is no loss of them: libnats's callbacks for the close ran
  // after the bus was gone, logged this and now and then crashed the replica (exit 139).
  EXPECT_THAT(a_.process->output(), Not(HasSubstr("lost the connection to NATS")));
  const std::string adopted = "fleetcore_gateway_cluster_sessions_adopted_total 1";
  ASSERT_THAT(MetricsWith(b_.metrics_port, {adopted}), HasSubstr(adopted));
  r = Paho(b_, "persist_receive");
  EXPECT_THAT(r.out, HasSubstr("ok persist_receive")) << r.err;
}

TEST_F(GatewayReplicasTest, ADeviceOnOneReplicaFollowsItsShadowPublishedThroughAnother) {
  // The shadow service publishes its answers through replica a; the device is on a third
  // replica, c, whose shadow requests go to the shadow service: AWS's shadow tutorial
  // across replicas (paho's shadow_device, the app's update over gRPC).
  const int shadow_port = FreePort();
  ASSERT_OK_AND_ASSIGN(
      RunningService shadow,
      StartService("services/shadow/fleetcore-shadow",
                   {"--db-url=" + db_->url(), absl::StrCat("--listen=127.0.0.1:", shadow_port),
                    "--gateway-endpoint=" + a_.endpoint},
                   {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  ASSERT_OK_AND_ASSIGN(
      RunningService c,
      StartService("services/gateway/fleetcore-gateway",
                   {"--db-url=" + db_->url(), "--mqtt-listen=127.0.0.1:0", "--mqtts-listen=",
                    "--anonymous-policy-file=" + anonymous_,
                    absl::StrCat("--shadow-endpoint=127.0.0.1:", shadow_port),
                    "--rules-endpoint=",
                    absl::StrCat("--cluster-url=nats://127.0.0.1:", nats_port_),
                    "--cluster-node-id=gw-c"},
                   {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  ASSERT_OK_AND_ASSIGN(
      auto device,
      testing::Subprocess::Start({"/usr/bin/python3",
                                  SourcePath("tests/e2e/clients/paho_scenarios.py"),
                                  "shadow_device", "--port", Port(c), "--topic", "lamp-9"}));
  ASSERT_OK(device->WaitForLine([](absl::string_view l) { return l == "subscribed"; }).status());
  Fleetctl app(kToken, {{"FLEETCORE_SHADOW_ENDPOINT", shadow.endpoint}});
  json accepted = app.Json({"update-thing-shadow", "--thing-name", "lamp-9", "--payload",
                            R"({"state":{"desired":{"color":"red"}},"clientToken":"app-1"})"});
  EXPECT_EQ(accepted["payload"]["version"], 1) << accepted.dump();
  ASSERT_OK_AND_ASSIGN(int code, device->Wait(absl::Seconds(60)));
  EXPECT_EQ(code, 0) << device->output();
  EXPECT_THAT(device->output(), HasSubstr("ok shadow_device"));
}

TEST_F(GatewayReplicasTest, TheBrokerApiSeesEveryReplicasConnections) {
  auto on_a = StartSubscriber(Ctl(a_), {"-p", Port(a_), "-t", "x/#", "-V", "mqttv5", "-d"},
                              "admin-on-a");
  auto on_b = StartSubscriber(Ctl(b_), {"-p", Port(b_), "-t", "x/#"}, "admin-on-b");
  ASSERT_NE(on_a, nullptr);
  ASSERT_NE(on_b, nullptr);
  json list = Ctl(b_).Json({"list-connections"});
  std::set<std::string> ids;
  for (const json& c : list["connections"]) ids.insert(c["clientId"].get<std::string>());
  EXPECT_EQ(ids, (std::set<std::string>{"admin-on-a", "admin-on-b"})) << list.dump();
  json described = Ctl(b_).Json({"describe-connection", "--client-id", "admin-on-a"});
  EXPECT_EQ(described["connection"]["clientId"], "admin-on-a") << described.dump();
  EXPECT_EQ(described["session"]["subscriptions"][0]["topicFilter"], "x/#");
  // A message to that one client, and then its disconnection, through the other replica.
  json sent = Ctl(b_).Json({"publish", "--topic", "x/direct", "--payload", "for you",
                            "--target-client-id", "admin-on-a"});
  EXPECT_EQ(sent["matchedSessions"], 1) << sent.dump();
  // A direct message, on a topic it does not subscribe to, answered once it acknowledged
  // on the other replica.
  json direct = Ctl(b_).Json({"send-direct-message", "--client-id", "admin-on-a", "--topic",
                              "y/cmd", "--payload", "only you", "--confirmation"});
  EXPECT_EQ(direct["message"], "OK") << direct.dump();
  Ctl(b_).ExpectFailure({"send-direct-message", "--client-id", "nobody", "--topic", "y/cmd",
                         "--payload", "x", "--confirmation"},
                        "NOT_FOUND", "not connected");
  Ctl(b_).Json({"delete-connection", "--client-id", "admin-on-a"});
  ASSERT_OK(on_a->Wait(absl::Seconds(10)).status());
  EXPECT_THAT(on_a->output(), HasSubstr("for you"));
  EXPECT_THAT(on_a->output(), HasSubstr("only you"));
  EXPECT_THAT(on_a->output(), HasSubstr("Received DISCONNECT (152)"));  // administrative
  Ctl(b_).ExpectFailure({"describe-connection", "--client-id", "nobody"}, "NOT_FOUND",
                        "has no connection and no session");
}

TEST_F(GatewayReplicasTest, NatsRestartsAndTheReplicasCarryOn) {
  nats_->Signal(SIGTERM);
  ASSERT_OK(nats_->Wait().status());
  // Meanwhile each replica serves its own clients.
  auto local = StartSubscriber(Ctl(a_), {"-p", Port(a_), "-t", "n/#", "-C", "1"}, "local-sub");
  ASSERT_NE(local, nullptr);
  Pub(a_, {"-t", "n/1", "-m", "still here"});
  ASSERT_OK(local->Wait(absl::Seconds(10)).status());
  EXPECT_EQ(local->output(), "still here");
  const std::string cut = "fleetcore_gateway_cluster_connected 0";
  EXPECT_THAT(MetricsWith(a_.metrics_port, {cut}), HasSubstr(cut));

  ASSERT_NO_FATAL_FAILURE(StartNats());
  for (RunningService* g : {&a_, &b_}) {
    const std::string back = "fleetcore_gateway_cluster_connected 1";
    ASSERT_THAT(MetricsWith(g->metrics_port, {back}), HasSubstr(back));
  }
  auto across = StartSubscriber(Ctl(a_), {"-p", Port(a_), "-t", "n/#", "-C", "1", "-W", "10"},
                                "across-sub");
  ASSERT_NE(across, nullptr);
  // The replica's subscriptions to NATS are made again on reconnecting; try until one
  // message gets across (each is a new message, none is resent).
  std::string got;
  for (int i = 0; i < 40 && got.empty(); ++i) {
    Pub(b_, {"-t", "n/2", "-m", "across again"});
    absl::SleepFor(absl::Milliseconds(100));
    got = across->output();
  }
  ASSERT_OK(across->Wait(absl::Seconds(10)).status());
  EXPECT_EQ(across->output(), "across again");
}

TEST_F(GatewayReplicasTest, APacketSizeNatsCannotCarryIsAClearError) {
  // nats-server's max_payload is 1 MiB by default.
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult r,
      testing::Run(
          {testing::BuildPath("services/gateway/fleetcore-gateway"), "--listen=127.0.0.1:0",
           "--metrics-listen=", "--db-url=" + db_->url(), "--mqtt-listen=127.0.0.1:0",
           "--mqtts-listen=", absl::StrCat("--cluster-url=nats://127.0.0.1:", nats_port_),
           "--cluster-node-id=gw-big", "--max-packet-size=2097152"},
          {}, absl::Seconds(30)));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NATS takes messages of at most 1048576 bytes (its "
                               "max_payload), and a message of --max-packet-size (2097152)"));
}

TEST(GatewayReplicasStartupTest, AnUnreachableNatsIsAClearError) {
  ASSERT_OK_AND_ASSIGN(auto db, testing::TestDatabase::Create());
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult r,
      testing::Run({testing::BuildPath("services/gateway/fleetcore-gateway"),
                    "--listen=127.0.0.1:0", "--metrics-listen=", "--db-url=" + db->url(),
                    "--mqtt-listen=127.0.0.1:0", "--mqtts-listen=",
                    "--cluster-url=nats://gw:s3cret@127.0.0.1:1", "--cluster-node-id=gw-x"},
                   {}, absl::Seconds(30)));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot connect to NATS at nats://***@127.0.0.1:1"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("s3cret")));
}

}  // namespace
}  // namespace fleetcore::e2e
