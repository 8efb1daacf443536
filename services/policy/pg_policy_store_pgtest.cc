// What only a real Postgres can show: exact round trips of documents, keys and timestamps,
// the NOTIFY payloads other replicas parse, and one default authorizer under concurrency.
#include <atomic>
#include <thread>

#include "common/db/pg_pool.h"
#include "common/testing/fake_clock.h"
#include "common/testing/keys.h"
#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/policy/authorizer_core.h"
#include "services/policy/fake_thing_directory.h"
#include "services/policy/pg_policy_store.h"
#include "services/policy/policy_core.h"

namespace fleetcore::policy_service {
namespace {

class NoHttp final : public http::HttpClient {
 public:
  absl::StatusOr<http::Response> Send(const http::Request&) override {
    return absl::UnavailableError("no function in this test");
  }
};

class PgPolicyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    ASSERT_OK_AND_ASSIGN(pool_, db::PgPool::Create({.url = db_->url(), .pool_size = 8}, nullptr));
    store_ = std::make_unique<PgPolicyStore>(pool_.get());
    policies_ = std::make_unique<PolicyCore>(store_.get(), &things_, &arns_, &clock_);
    authorizers_ = std::make_unique<AuthorizerCore>(store_.get(), &http_, &arns_, &clock_);
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<PgPolicyStore> store_;
  aws::Arns arns_{"us-east-1", "123456789012"};
  testing::FakeClock clock_{absl::FromUnixMicros(1700000000123456)};
  FakeThingDirectory things_;
  NoHttp http_;
  std::unique_ptr<PolicyCore> policies_;
  std::unique_ptr<AuthorizerCore> authorizers_;
};

TEST_F(PgPolicyStoreTest, DocumentsAndKeysRoundTripExactly) {
  // Whitespace, escapes and non-ASCII text are kept as written (GetPolicy returns the
  // document the operator sent, not a re-serialization).
  const std::string doc =
      "{\n  \"Version\": \"2012-10-17\",\r\n\t\"Statement\": [{\"Sid\": \"caf\xC3\xA9\\u00e9\","
      " \"Effect\": \"Allow\", \"Action\": \"iot:Connect\", \"Resource\": \"*\"}]  }";
  ASSERT_OK(policies_->CreatePolicy("p", doc).status());
  ASSERT_OK_AND_ASSIGN(auto got, policies_->GetPolicy("p"));
  EXPECT_EQ(got.second.document, doc);
  EXPECT_EQ(got.first.created_at, clock_.Now());  // microseconds kept

  const testing::TestKeyPair keys = testing::TestKeyPair::Rsa(2048);
  ASSERT_OK(
      authorizers_
          ->CreateAuthorizer({.name = "a",
                              .function_url = "https://auth.example/x?y=1",
                              .token_key_name = "tok",
                              .public_keys = {{"k1", keys.public_pem}, {"k 2", keys.public_pem}},
                              .caching_for_http = true})
          .status());
  ASSERT_OK_AND_ASSIGN(Authorizer a, authorizers_->DescribeAuthorizer("a"));
  EXPECT_EQ(a.public_keys.at("k1"), keys.public_pem);
  EXPECT_EQ(a.public_keys.at("k 2"), keys.public_pem);
  EXPECT_EQ(a.function_url, "https://auth.example/x?y=1");
  EXPECT_TRUE(a.caching_for_http);
  EXPECT_EQ(a.created_at, clock_.Now());
}

TEST_F(PgPolicyStoreTest, EventPayloadsParseBackAndJunkIsRefused) {
  EXPECT_FALSE(PgPolicyStore::ParseEvent("").has_value());
  EXPECT_FALSE(PgPolicyStore::ParseEvent("not json").has_value());
  EXPECT_FALSE(PgPolicyStore::ParseEvent("[1]").has_value());
  EXPECT_FALSE(PgPolicyStore::ParseEvent(R"({"policy":"p"})").has_value());
  std::optional<PolicyEvent> e = PgPolicyStore::ParseEvent(
      R"({"type":"policy.attached","policy":"p","target":"arn:aws:iot:us-east-1:1:cert/x"})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type, "policy.attached");
  EXPECT_EQ(e->policy, "p");
  EXPECT_EQ(e->target, "arn:aws:iot:us-east-1:1:cert/x");
}

TEST_F(PgPolicyStoreTest, ConcurrentSetDefaultLeavesExactlyOneDefault) {
  for (int i = 0; i < 8; ++i) {
    ASSERT_OK(authorizers_
                  ->CreateAuthorizer({.name = "a" + std::to_string(i),
                                      .function_url = "http://127.0.0.1:1/",
                                      .signing_disabled = true})
                  .status());
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 5; ++round) {
        if (!authorizers_->SetDefaultAuthorizer("a" + std::to_string((i + round) % 8)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK_AND_ASSIGN(Page<Authorizer> all, authorizers_->ListAuthorizers(std::nullopt, {}));
  int defaults = 0;
  for (const Authorizer& a : all.items) defaults += a.is_default ? 1 : 0;
  EXPECT_EQ(defaults, 1);
  ASSERT_OK(authorizers_->DescribeDefaultAuthorizer().status());
}

}  // namespace
}  // namespace fleetcore::policy_service
