// Topic rule destinations: AWS's confirmation request, its token, the status changes AWS
// allows, and the destinations rules get for their http actions.
#include "services/rules/destinations.h"

#include <functional>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "prometheus/registry.h"
#include "services/rules/fake_http_client.h"
#include "services/rules/fake_rules_store.h"
#include "services/rules/rules_core.h"

namespace fleetcore::rules {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;
using json = nlohmann::json;
using Code = absl::StatusCode;

class DestinationsTest : public ::testing::Test {
 protected:
  DestinationsTest()
      : arns_("eu-west-1", "123456789012"),
        // Sent by the calls themselves, so that each test sees its requests at once.
        destinations_(&store_, &arns_, &clock_, &ids_, &http_,
                      {.enable_url_base = "https://rules.example:9186", .sender_threads = 0},
                      &metrics_),
        rules_(&store_, &arns_, &clock_, nullptr, &destinations_) {}

  pb::TopicRuleDestination Create(const std::string& url) {
    pb::CreateTopicRuleDestinationRequest req;
    req.mutable_destination_configuration()->mutable_http_url_configuration()->set_confirmation_url(
        url);
    absl::StatusOr<pb::TopicRuleDestination> d = destinations_.Create(req);
    EXPECT_OK(d.status());
    return d.ok() ? *d : pb::TopicRuleDestination();
  }

  // The body of the last confirmation request.
  json LastBody() { return json::parse(http_.requests.back().body); }

  absl::Status CreateRule(const std::string& name, const std::string& payload_json) {
    pb::TopicRulePayload p;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(payload_json, &p).ok());
    return rules_.Create(name, p);
  }

  std::string Status(const std::string& arn) {
    absl::StatusOr<pb::TopicRuleDestination> d = destinations_.Get(arn);
    return d.ok() ? d->status() : std::string(d.status().message());
  }

  FakeRulesStore store_;
  aws::Arns arns_;
  testing::FakeClock clock_;
  testing::FakeIdGenerator ids_;
  FakeHttp http_;
  prometheus::Registry metrics_;
  DestinationsCore destinations_;
  RulesCore rules_;
};

TEST_F(DestinationsTest, CreateSendsAwsConfirmationRequestAndItsTokenEnablesOnce) {
  pb::TopicRuleDestination d = Create("https://hooks.example/iot");
  EXPECT_EQ(d.status(), "IN_PROGRESS");
  EXPECT_EQ(d.http_url_properties().confirmation_url(), "https://hooks.example/iot");
  EXPECT_THAT(d.arn(), StartsWith("arn:aws:iot:eu-west-1:123456789012:ruledestination/http/"));

  ASSERT_THAT(http_.requests, SizeIs(1));
  const http::Request& r = http_.requests[0];
  EXPECT_EQ(r.method, "POST");
  const json body = LastBody();
  const std::string token = body["confirmationToken"];
  EXPECT_GE(token.size(), 40u);
  EXPECT_EQ(r.url, "https://hooks.example/iot/?confirmationToken=" + token);
  EXPECT_EQ(body["arn"], d.arn());
  EXPECT_EQ(body["messageType"], "DestinationConfirmation");
  EXPECT_EQ(body["enableUrl"], "https://rules.example:9186/confirmdestination/" + token);
  http::Response as_headers{.headers = r.headers};
  EXPECT_EQ(as_headers.Header("x-amz-rules-engine-message-type"), "DestinationConfirmation");
  EXPECT_EQ(as_headers.Header("x-amz-rules-engine-destination-arn"), d.arn());
  EXPECT_EQ(as_headers.Header("content-type"), "application/json");

  EXPECT_THAT(destinations_.Confirm("not-the-token"),
              StatusIs(Code::kInvalidArgument, HasSubstr("no topic rule destination awaits")));
  EXPECT_EQ(Status(d.arn()), "IN_PROGRESS");
  ASSERT_OK_AND_ASSIGN(std::string arn, destinations_.Confirm(token));
  EXPECT_EQ(arn, d.arn());
  EXPECT_EQ(Status(d.arn()), "ENABLED");
  EXPECT_THAT(destinations_.Confirm(token), StatusIs(Code::kInvalidArgument));
  for (const auto& [result, n] : {std::pair("sent", 1.0), std::pair("confirmed", 1.0),
                                  std::pair("refused", 2.0)}) {
    double got = 0;
    for (const prometheus::MetricFamily& f : metrics_.Collect()) {
      if (f.name != "fleetcore_rules_destination_confirmations_total") continue;
      for (const prometheus::ClientMetric& m : f.metric) {
        if (m.label.size() == 1 && m.label[0].value == result) got = m.counter.value;
      }
    }
    EXPECT_EQ(got, n) << result;
  }
  // Each request has a token of its own.
  Create("https://hooks.example/other");
  EXPECT_NE(LastBody()["confirmationToken"], token);
}

TEST_F(DestinationsTest, AnUndeliveredRequestIsAnErrorAndInProgressSendsAFreshToken) {
  pb::TopicRuleDestination d;
  pb::CreateTopicRuleDestinationRequest req;
  req.mutable_destination_configuration()->mutable_http_url_configuration()->set_confirmation_url(
      "https://down.example");
  http_.refuse_all = true;
  ASSERT_OK_AND_ASSIGN(d, destinations_.Create(req));
  EXPECT_EQ(d.status(), "ERROR");
  EXPECT_THAT(d.status_reason(), HasSubstr("the confirmation request to https://down.example "
                                           "failed"));
  ASSERT_OK_AND_ASSIGN(pb::TopicRuleDestination got, destinations_.Get(d.arn()));
  EXPECT_EQ(got.status(), "ERROR");
  EXPECT_EQ(got.status_reason(), d.status_reason());
  const std::string first = LastBody()["confirmationToken"];
  EXPECT_EQ(http_.requests.back().url, "https://down.example/?confirmationToken=" + first);

  http_.refuse_all = false;
  ASSERT_OK(destinations_.Update(d.arn(), "IN_PROGRESS"));
  EXPECT_EQ(Status(d.arn()), "IN_PROGRESS");
  const std::string second = LastBody()["confirmationToken"];
  ASSERT_NE(first, second);
  EXPECT_THAT(destinations_.Confirm(first), StatusIs(Code::kInvalidArgument));
  ASSERT_OK(destinations_.Confirm(second).status());
  EXPECT_EQ(Status(d.arn()), "ENABLED");
}

TEST_F(DestinationsTest, StatusChangesAreAwsOnes) {
  pb::TopicRuleDestination d = Create("https://hooks.example");
  EXPECT_THAT(destinations_.Update(d.arn(), "ENABLED"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("by confirming it")));
  EXPECT_THAT(destinations_.Update(d.arn(), "DISABLED"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("only an ENABLED destination")));
  EXPECT_THAT(destinations_.Update(d.arn(), "ERROR"), StatusIs(Code::kInvalidArgument));
  ASSERT_OK(destinations_.Confirm(LastBody()["confirmationToken"]).status());
  ASSERT_OK(destinations_.Update(d.arn(), "DISABLED"));
  EXPECT_EQ(Status(d.arn()), "DISABLED");
  ASSERT_OK(destinations_.Update(d.arn(), "ENABLED"));
  EXPECT_EQ(Status(d.arn()), "ENABLED");

  const std::string unknown = "arn:aws:iot:eu-west-1:123456789012:ruledestination/http/"
                              "00000000-0000-4000-8000-0000000000ff";
  for (const std::string& arn : {unknown, std::string("garbage"), d.arn() + "x"}) {
    EXPECT_THAT(destinations_.Get(arn), StatusIs(Code::kNotFound)) << arn;
    EXPECT_THAT(destinations_.Update(arn, "DISABLED"), StatusIs(Code::kNotFound)) << arn;
    EXPECT_THAT(destinations_.Delete(arn), StatusIs(Code::kNotFound)) << arn;
  }
  ASSERT_OK(destinations_.Delete(d.arn()));
  EXPECT_THAT(destinations_.Get(d.arn()), StatusIs(Code::kNotFound));
}

TEST_F(DestinationsTest, CreateRefusesWhatCannotBeADestination) {
  for (const char* url : {"ftp://hooks.example", "https://hooks.example/a?b=c",
                                 "https://hooks.example/#f", "https://", ""}) {
    pb::CreateTopicRuleDestinationRequest req;
    req.mutable_destination_configuration()->mutable_http_url_configuration()
        ->set_confirmation_url(url);
    EXPECT_THAT(destinations_.Create(req),
                StatusIs(Code::kInvalidArgument, HasSubstr("confirmationUrl")))
        << url;
  }
  Create("https://hooks.example");
  pb::CreateTopicRuleDestinationRequest again;
  again.mutable_destination_configuration()->mutable_http_url_configuration()
      ->set_confirmation_url("https://hooks.example");
  EXPECT_THAT(destinations_.Create(again), StatusIs(Code::kAlreadyExists));
  EXPECT_THAT(http_.requests, SizeIs(1));
}

TEST_F(DestinationsTest, ListPages) {
  for (int i = 0; i < 5; ++i) Create("https://hooks.example/" + std::to_string(i));
  pb::ListTopicRuleDestinationsRequest req;
  req.set_max_results(2);
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    ASSERT_OK_AND_ASSIGN(pb::ListTopicRuleDestinationsResponse r, destinations_.List(req));
    for (const auto& d : r.destination_summaries()) {
      seen.push_back(d.http_url_summary().confirmation_url());
    }
    if (r.next_token().empty()) break;
    req.set_next_token(r.next_token());
  }
  EXPECT_THAT(seen, ::testing::UnorderedElementsAre(
                        "https://hooks.example/0", "https://hooks.example/1",
                        "https://hooks.example/2", "https://hooks.example/3",
                        "https://hooks.example/4"));
}

pb::CreateTopicRuleDestinationRequest CreateRequest(const std::string& url) {
  pb::CreateTopicRuleDestinationRequest req;
  req.mutable_destination_configuration()->mutable_http_url_configuration()->set_confirmation_url(
      url);
  return req;
}

// "STATUS: status reason" of `d` as stored, or "none".
std::string StatusInStore(FakeRulesStore& store, const pb::TopicRuleDestination& d) {
  const std::string& arn = d.arn();
  absl::StatusOr<std::optional<StoredDestination>> got =
      store.GetDestination(arn.substr(arn.rfind('/') + 1));
  return got.ok() && got->has_value() ? (*got)->status + ": " + (*got)->status_reason
                                      : std::string("none");
}

// Polls `done` for up to 10 s (the senders are other threads).
bool Eventually(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// As AWS: the call that creates a destination answers before its confirmation request is
// sent, so an endpoint that is slow or down delays nobody; the request still goes out, and
// one that cannot be sent is an ERROR that says why.
// The senders' tests: a store whose changes renew updated_at from the fake clock, as
// Postgres's now() does.
class DestinationSenders : public ::testing::Test {
 protected:
  DestinationSenders() { store_.clock = &clock_; }

  FakeRulesStore store_;
  aws::Arns arns_{"eu-west-1", "123456789012"};
  testing::FakeClock clock_;
  testing::FakeIdGenerator ids_;
};

TEST_F(DestinationSenders, AnswerFirstThenSendAndNeverDropARequestSilently) {
  FakeHttp http;
  http.gate_closed = true;  // every send waits until Open()
  auto core = std::make_unique<DestinationsCore>(
      &store_, &arns_, &clock_, &ids_, &http,
      DestinationsCore::Options{.sender_threads = 1, .max_waiting = 1});
  auto status = [&](const pb::TopicRuleDestination& d) { return StatusInStore(store_, d); };

  // The sender takes the first and waits at the gate, the second waits its turn, the
  // third finds no room: an ERROR at once.
  ASSERT_OK_AND_ASSIGN(pb::TopicRuleDestination sending,
                       core->Create(CreateRequest("https://a.example")));
  EXPECT_EQ(sending.status(), "IN_PROGRESS");
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> l(http.mu);
    return http.at_gate == 1;
  }));
  ASSERT_OK_AND_ASSIGN(pb::TopicRuleDestination waiting,
                       core->Create(CreateRequest("https://b.example")));
  EXPECT_EQ(waiting.status(), "IN_PROGRESS");
  ASSERT_OK_AND_ASSIGN(pb::TopicRuleDestination refused,
                       core->Create(CreateRequest("https://c.example")));
  EXPECT_EQ(refused.status(), "ERROR");
  EXPECT_THAT(status(refused), HasSubstr("1 others were waiting to be; set the status to "
                                         "IN_PROGRESS to send another"));

  // Stopping: the waiting one is an ERROR before the sender finishes the one it sends.
  std::thread stop([&core] { core.reset(); });
  EXPECT_TRUE(Eventually([&] { return absl::StartsWith(status(waiting), "ERROR"); }));
  EXPECT_THAT(status(waiting), HasSubstr("stopped before it sent the confirmation request"));
  http.Open();
  stop.join();
  ASSERT_THAT(http.Urls(), SizeIs(1));
  EXPECT_THAT(http.Urls()[0], StartsWith("https://a.example/?confirmationToken="));
  EXPECT_EQ(status(sending), "IN_PROGRESS: awaiting confirmation");

  // The next start sends what the stop interrupted, and only that: the one refused for
  // lack of room stays in ERROR until someone sets it to IN_PROGRESS.
  auto restarted = std::make_unique<DestinationsCore>(
      &store_, &arns_, &clock_, &ids_, &http, DestinationsCore::Options{.sender_threads = 0});
  ASSERT_OK_AND_ASSIGN(int resent, restarted->ResendUnsent());
  EXPECT_EQ(resent, 1);
  EXPECT_EQ(status(waiting), "IN_PROGRESS: awaiting confirmation");
  EXPECT_THAT(status(refused), StartsWith("ERROR"));
  ASSERT_THAT(http.Urls(), SizeIs(2));
  EXPECT_THAT(http.Urls()[1], StartsWith("https://b.example/?confirmationToken="));
  ASSERT_OK_AND_ASSIGN(int again, restarted->ResendUnsent());
  EXPECT_EQ(again, 0) << "nothing twice";
}

// A rules service that dies with requests waiting or being sent loses none: after
// unsent_after another replica (or its own next start) sends them again, with new tokens;
// the dead one's requests, if it ever wakes, are not sent (claims fail) or confirm nothing.
TEST_F(DestinationSenders, RequestsADeadReplicaLeftAreSentByAnother) {
  FakeHttp hung_http;
  hung_http.gate_closed = true;  // the first replica hangs in its POST
  auto hung = std::make_unique<DestinationsCore>(&store_, &arns_, &clock_, &ids_, &hung_http,
                                                 DestinationsCore::Options{.sender_threads = 1});
  auto reason = [&](const pb::TopicRuleDestination& d) { return StatusInStore(store_, d); };
  ASSERT_OK_AND_ASSIGN(pb::TopicRuleDestination a,
                       hung->Create(CreateRequest("https://a.example")));
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> l(hung_http.mu);
    return hung_http.at_gate == 1;
  }));
  ASSERT_OK_AND_ASSIGN(pb::TopicRuleDestination b,
                       hung->Create(CreateRequest("https://b.example")));
  EXPECT_EQ(reason(a), "IN_PROGRESS: sending the confirmation request");
  EXPECT_EQ(reason(b), "IN_PROGRESS: waiting to send the confirmation request");

  FakeHttp http;
  DestinationsCore other(&store_, &arns_, &clock_, &ids_, &http,
                         DestinationsCore::Options{.sender_threads = 0});
  ASSERT_OK_AND_ASSIGN(int early, other.ResendUnsent());
  EXPECT_EQ(early, 0) << "a request is someone's for unsent_after";
  clock_.Advance(absl::Seconds(59));
  ASSERT_OK_AND_ASSIGN(early, other.ResendUnsent());
  EXPECT_EQ(early, 0);
  clock_.Advance(absl::Seconds(1));
  ASSERT_OK_AND_ASSIGN(int resent, other.ResendUnsent());
  EXPECT_EQ(resent, 2);
  EXPECT_EQ(reason(a), "IN_PROGRESS: awaiting confirmation");
  EXPECT_EQ(reason(b), "IN_PROGRESS: awaiting confirmation");
  ASSERT_THAT(http.Urls(), SizeIs(2));
  ASSERT_OK_AND_ASSIGN(int again, other.ResendUnsent());
  EXPECT_EQ(again, 0) << "delivered requests are not sent again";

  // The hung replica wakes: its POST of a's old request ends, and b's is never sent.
  hung_http.Open();
  hung.reset();
  ASSERT_THAT(hung_http.Urls(), SizeIs(1));
  EXPECT_THAT(hung_http.Urls()[0], StartsWith("https://a.example/?confirmationToken="));
  const std::string stale_token = hung_http.Urls()[0].substr(hung_http.Urls()[0].find('=') + 1);
  EXPECT_THAT(other.Confirm(stale_token), StatusIs(Code::kInvalidArgument));
  for (const std::string& url : http.Urls()) {
    ASSERT_OK(other.Confirm(url.substr(url.find('=') + 1)).status());
  }
  EXPECT_EQ(reason(a), "ENABLED: ");
  EXPECT_EQ(reason(b), "ENABLED: ");
}

// A claim the store cannot record sends nothing (a sender cannot know whether a newer
// request replaced its own); once the store is back, the request goes after unsent_after.
TEST_F(DestinationSenders, NothingIsSentWhileTheStoreIsAwayAndItGoesAfter) {
  FakeHttp http;
  DestinationsCore core(&store_, &arns_, &clock_, &ids_, &http,
                        DestinationsCore::Options{.sender_threads = 0});
  store_.changes_fail = true;
  ASSERT_OK_AND_ASSIGN(pb::TopicRuleDestination d, core.Create(CreateRequest("https://a.example")));
  EXPECT_THAT(http.Urls(), SizeIs(0));
  EXPECT_EQ(StatusInStore(store_, d), "IN_PROGRESS: waiting to send the confirmation request");
  clock_.Advance(absl::Minutes(1));
  EXPECT_THAT(core.ResendUnsent(), StatusIs(Code::kUnavailable));  // still away
  EXPECT_THAT(http.Urls(), SizeIs(0));
  store_.changes_fail = false;
  ASSERT_OK_AND_ASSIGN(int resent, core.ResendUnsent());
  EXPECT_EQ(resent, 1);
  ASSERT_THAT(http.Urls(), SizeIs(1));
  EXPECT_EQ(StatusInStore(store_, d), "IN_PROGRESS: awaiting confirmation");
}

// With sweep_every, the core looks for unsent requests by itself.
TEST_F(DestinationSenders, TheSweeperResendsWithoutBeingAsked) {
  FakeHttp http;
  // A destination a crashed replica left waiting, long ago.
  ASSERT_OK(store_.InsertDestination({.id = "6f1d1c1e-0000-4000-8000-000000000001",
                                      .confirmation_url = "https://a.example",
                                      .status = "IN_PROGRESS",
                                      .status_reason = "waiting to send the confirmation request",
                                      .created_at = clock_.Now() - absl::Hours(1),
                                      .updated_at = clock_.Now() - absl::Hours(1)},
                                     "lost-token-hash"));
  DestinationsCore core(
      &store_, &arns_, &clock_, &ids_, &http,
      DestinationsCore::Options{.sender_threads = 1, .sweep_every = absl::Milliseconds(10)});
  EXPECT_TRUE(Eventually([&] { return http.Urls().size() == 1; }));
  EXPECT_THAT(http.Urls()[0], StartsWith("https://a.example/?confirmationToken="));
  absl::SleepFor(absl::Milliseconds(50));  // several more sweeps
  EXPECT_THAT(http.Urls(), SizeIs(1)) << "a request the sweeper made is not made again";
}

TEST(DestinationCovers, PrefixAtABoundary) {
  EXPECT_TRUE(DestinationCovers("https://a.example", "https://a.example"));
  EXPECT_TRUE(DestinationCovers("https://a.example", "https://a.example/x"));
  EXPECT_TRUE(DestinationCovers("https://a.example", "https://a.example?x=1"));
  EXPECT_TRUE(DestinationCovers("https://a.example/", "https://a.example/x"));
  EXPECT_TRUE(DestinationCovers("https://a.example/iot", "https://a.example/iot/d1"));
  EXPECT_FALSE(DestinationCovers("https://a.example", "https://a.example.net/x"));
  EXPECT_FALSE(DestinationCovers("https://a.example", "https://a.example:8443/x"));
  EXPECT_FALSE(DestinationCovers("https://a.example/iot", "https://a.example/iotx"));
  EXPECT_FALSE(DestinationCovers("https://a.example/iot", "https://b.example/iot"));
  EXPECT_FALSE(DestinationCovers("", "https://a.example"));
}

// As AWS: a rule's http action to a URL no destination covers creates one and sends its
// confirmation request; URLs already covered do not; a templated URL needs a
// confirmationUrl that is a prefix of it.
TEST_F(DestinationsTest, RulesGetDestinationsForTheirHttpActions) {
  ASSERT_OK(CreateRule("a", R"({"sql": "SELECT * FROM 'a'",
      "actions": [{"http": {"url": "https://hooks.example/iot/a?x=1"}},
                  {"http": {"url": "https://hooks.example/iot/${topic()}",
                            "confirmationUrl": "https://hooks.example/iot"}}],
      "errorAction": {"http": {"url": "https://errors.example/e"}}})"));
  ASSERT_OK_AND_ASSIGN(pb::ListTopicRuleDestinationsResponse r, destinations_.List({}));
  std::vector<std::string> urls;
  for (const auto& d : r.destination_summaries()) {
    EXPECT_EQ(d.status(), "IN_PROGRESS");
    urls.push_back(d.http_url_summary().confirmation_url());
  }
  EXPECT_THAT(urls, ::testing::UnorderedElementsAre("https://hooks.example/iot/a",
                                                    "https://hooks.example/iot",
                                                    "https://errors.example/e"));
  EXPECT_THAT(http_.requests, SizeIs(3));

  // Covered by https://hooks.example/iot: nothing new.
  ASSERT_OK(CreateRule("b", R"({"sql": "SELECT * FROM 'b'",
      "actions": [{"http": {"url": "https://hooks.example/iot/b"}}]})"));
  EXPECT_THAT(http_.requests, SizeIs(3));

  EXPECT_THAT(CreateRule("c", R"({"sql": "SELECT * FROM 'c'",
                  "actions": [{"http": {"url": "https://hooks.example/${topic()}"}}]})"),
              StatusIs(Code::kInvalidArgument,
                       HasSubstr("actions[0].http.confirmationUrl: is required")));
  EXPECT_THAT(CreateRule("c", R"({"sql": "SELECT * FROM 'c'",
                  "actions": [{"http": {"url": "https://hooks.example/x",
                                        "confirmationUrl": "https://other.example"}}]})"),
              StatusIs(Code::kInvalidArgument, HasSubstr("must be a prefix of url")));
  EXPECT_THAT(CreateRule("c", R"({"sql": "SELECT * FROM 'c'",
                  "actions": [{"http": {"url": "https://hooks.example/x",
                                        "confirmationUrl": "https://hooks.example/x?y"}}]})"),
              StatusIs(Code::kInvalidArgument, HasSubstr("query")));
  EXPECT_THAT(http_.requests, SizeIs(3));
}

}  // namespace
}  // namespace fleetcore::rules
