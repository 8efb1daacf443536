// ShadowCore over the fake store: what is answered, what is published, and in which order.
#include "services/shadow/shadow_core.h"

#include <mutex>
#include <thread>

#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/shadow/fake_shadow_store.h"

namespace fleetcore::shadow {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::Pair;

class RecordingPublisher final : public Publisher {
 public:
  void Publish(std::string topic, std::string payload) override {
    std::lock_guard<std::mutex> l(mu_);
    messages.emplace_back(std::move(topic), std::move(payload));
  }
  std::vector<std::string> Topics() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::string> out;
    for (auto& m : messages) out.push_back(m.first);
    return out;
  }
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> messages;
};

class ShadowCoreTest : public ::testing::Test {
 protected:
  FakeShadowStore store_;
  RecordingPublisher publisher_;
  testing::FakeClock clock_;
  ShadowCore core_{&store_, &publisher_, &clock_};
};

TEST_F(ShadowCoreTest, UpdatePublishesAcceptedDeltaAndDocumentsInOrder) {
  ASSERT_OK_AND_ASSIGN(std::string accepted,
                       core_.Update({"lamp-1", ""}, R"({"state":{"desired":{"on":true}}})"));
  EXPECT_EQ(json::parse(accepted)["version"], 1);
  EXPECT_THAT(publisher_.Topics(), ElementsAre("$aws/things/lamp-1/shadow/update/accepted",
                                               "$aws/things/lamp-1/shadow/update/delta",
                                               "$aws/things/lamp-1/shadow/update/documents"));
  EXPECT_EQ(publisher_.messages[0].second, accepted);
  EXPECT_EQ(json::parse(publisher_.messages[1].second)["state"], json::parse(R"({"on":true})"));
  // The device reports: no delta any more.
  publisher_.messages.clear();
  ASSERT_OK(core_.Update({"lamp-1", ""}, R"({"state":{"reported":{"on":true}}})").status());
  EXPECT_THAT(publisher_.Topics(), ElementsAre("$aws/things/lamp-1/shadow/update/accepted",
                                               "$aws/things/lamp-1/shadow/update/documents"));
}

TEST_F(ShadowCoreTest, RefusedUpdatesChangeAndPublishNothing) {
  EXPECT_EQ(core_.Update({"lamp-1", ""}, "{").status(), absl::InvalidArgumentError("Invalid JSON"));
  ASSERT_OK(core_.Update({"lamp-1", ""}, R"({"state":{"reported":{"a":1}}})").status());
  publisher_.messages.clear();
  EXPECT_EQ(core_.Update({"lamp-1", ""}, R"({"state":{"reported":{"a":2}},"version":7})").status(),
            absl::AbortedError("Version conflict"));
  EXPECT_TRUE(publisher_.messages.empty());
  ASSERT_OK_AND_ASSIGN(std::string doc, core_.Get({"lamp-1", ""}, std::nullopt));
  EXPECT_EQ(json::parse(doc)["state"]["reported"]["a"], 1);
  EXPECT_EQ(core_.Update({"bad/name", ""}, R"({"state":{}})").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ShadowCoreTest, GetAndDeleteOfAMissingShadowAreNotFound) {
  EXPECT_EQ(core_.Get({"lamp-1", ""}, std::nullopt).status(),
            absl::NotFoundError("No shadow exists with name: 'lamp-1'"));
  EXPECT_EQ(core_.Delete({"lamp-1", "cfg"}, std::nullopt).status(),
            absl::NotFoundError("No shadow exists with name: 'cfg'"));
  EXPECT_TRUE(publisher_.messages.empty());
}

TEST_F(ShadowCoreTest, DeleteAnswersAndPublishesThenTheShadowIsGone) {
  ASSERT_OK(core_.Update({"lamp-1", "cfg"}, R"({"state":{"reported":{"a":1}}})").status());
  publisher_.messages.clear();
  ASSERT_OK_AND_ASSIGN(std::string answer, core_.Delete({"lamp-1", "cfg"}, std::string("tok")));
  EXPECT_EQ(json::parse(answer),
            json::parse(R"({"version":1,"timestamp":1700000000,"clientToken":"tok"})"));
  EXPECT_THAT(publisher_.Topics(),
              ElementsAre("$aws/things/lamp-1/shadow/name/cfg/delete/accepted"));
  EXPECT_EQ(core_.Get({"lamp-1", "cfg"}, std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
  // Re-created: the version continues.
  ASSERT_OK_AND_ASSIGN(std::string again,
                       core_.Update({"lamp-1", "cfg"}, R"({"state":{"reported":{"a":2}}})"));
  EXPECT_EQ(json::parse(again)["version"], 2);
}

TEST_F(ShadowCoreTest, ListNamedShadowsPagesAndSkipsClassicAndDeleted) {
  ASSERT_OK(core_.Update({"lamp-1", ""}, R"({"state":{}})").status());
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    ASSERT_OK(core_.Update({"lamp-1", name}, R"({"state":{"reported":{"x":1}}})").status());
  }
  ASSERT_OK(core_.Update({"lamp-2", "other"}, R"({"state":{}})").status());
  ASSERT_OK(core_.Delete({"lamp-1", "c"}, std::nullopt).status());
  ASSERT_OK_AND_ASSIGN(ListPage first, core_.ListNamed("lamp-1", "", 2));
  EXPECT_THAT(first.results, ElementsAre("a", "b"));
  ASSERT_FALSE(first.next_token.empty());
  ASSERT_OK_AND_ASSIGN(ListPage second, core_.ListNamed("lamp-1", first.next_token, 2));
  EXPECT_THAT(second.results, ElementsAre("d", "e"));
  ASSERT_OK_AND_ASSIGN(ListPage none, core_.ListNamed("nobody", "", 0));
  EXPECT_TRUE(none.results.empty());
  EXPECT_EQ(core_.ListNamed("lamp-1", "garbage", 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core_.ListNamed("lamp-1", "", 101).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ShadowCoreTest, ConcurrentUpdatesOfOneShadowAreAllKept) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 50; ++i) {
        ASSERT_OK(core_.Update({"lamp-1", ""},
                               json{{"state", {{"reported", {{"w" + std::to_string(t), i}}}}}}
                                   .dump())
                      .status());
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_OK_AND_ASSIGN(std::string doc, core_.Get({"lamp-1", ""}, std::nullopt));
  json j = json::parse(doc);
  EXPECT_EQ(j["version"], 400);
  for (int t = 0; t < 8; ++t) EXPECT_EQ(j["state"]["reported"]["w" + std::to_string(t)], 49);
}

}  // namespace
}  // namespace fleetcore::shadow
