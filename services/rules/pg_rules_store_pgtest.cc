// PgRulesStore's destinations on a real Postgres, logged in as the rules service's own role
// (fleetcore_rules, migration 0011): round trips, the compare-and-set a status change and
// an undelivered confirmation request rely on, and a token that confirms once.
#include "services/rules/pg_rules_store.h"

#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::rules {
namespace {

using ::fleetcore::testing::StatusIs;

constexpr char kId1[] = "00000000-0000-4000-8000-000000000001";
constexpr char kId2[] = "00000000-0000-4000-8000-000000000002";

class PgDestinationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    testing::TestPostgres as_rules = db_->server();
    as_rules.user = "fleetcore_rules";
    db::DbOptions options;
    options.url = as_rules.Url(db_->name());
    options.pool_size = 2;
    ASSERT_OK_AND_ASSIGN(pool_, db::PgPool::Create(options, nullptr));
    store_ = std::make_unique<PgRulesStore>(pool_.get());
  }

  StoredDestination Destination(const std::string& id, const std::string& url) {
    const absl::Time t = absl::FromUnixSeconds(1700000000);
    return {.id = id, .confirmation_url = url, .status = "IN_PROGRESS",
            .status_reason = "awaiting confirmation", .created_at = t, .updated_at = t};
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<PgRulesStore> store_;
};

TEST_F(PgDestinationsTest, RoundTripsAndListsByIdPages) {
  ASSERT_OK(store_->InsertDestination(Destination(kId2, "https://b.example"), "hash-b"));
  ASSERT_OK(store_->InsertDestination(Destination(kId1, "https://a.example"), "hash-a"));
  EXPECT_THAT(store_->InsertDestination(Destination(
                  "00000000-0000-4000-8000-000000000003", "https://a.example"), "hash-c"),
              StatusIs(absl::StatusCode::kAlreadyExists));

  ASSERT_OK_AND_ASSIGN(std::optional<StoredDestination> got, store_->GetDestination(kId1));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->confirmation_url, "https://a.example");
  EXPECT_EQ(got->status, "IN_PROGRESS");
  EXPECT_EQ(got->created_at, absl::FromUnixSeconds(1700000000));
  ASSERT_OK_AND_ASSIGN(got, store_->FindDestination("https://b.example"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, kId2);
  // Not a UUID: no destination, and no error from a uuid cast.
  ASSERT_OK_AND_ASSIGN(got, store_->GetDestination("http/garbage"));
  EXPECT_FALSE(got.has_value());

  ASSERT_OK_AND_ASSIGN(std::vector<StoredDestination> page, store_->ListDestinations("", 1));
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, kId1);
  ASSERT_OK_AND_ASSIGN(page, store_->ListDestinations(page[0].id, 10));
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, kId2);

  ASSERT_OK_AND_ASSIGN(bool existed, store_->DeleteDestination(kId2));
  EXPECT_TRUE(existed);
  ASSERT_OK_AND_ASSIGN(existed, store_->DeleteDestination(kId2));
  EXPECT_FALSE(existed);
}

TEST_F(PgDestinationsTest, ChangesAreCompareAndSetAndATokenConfirmsOnce) {
  ASSERT_OK(store_->InsertDestination(Destination(kId1, "https://a.example"), "hash-1"));
  // An undelivered request's ERROR is recorded only while its token is the current one.
  ASSERT_OK_AND_ASSIGN(bool changed,
                       store_->ChangeDestination(kId1, {.expected_status = "IN_PROGRESS",
                                                        .expected_token_sha256 = "hash-other",
                                                        .status = "ERROR"}));
  EXPECT_FALSE(changed);
  ASSERT_OK_AND_ASSIGN(changed,
                       store_->ChangeDestination(kId1, {.expected_status = "ENABLED",
                                                        .status = "DISABLED"}));
  EXPECT_FALSE(changed);
  // ... and, when asked, while its status reason is the one read (ResendUnsent).
  ASSERT_OK_AND_ASSIGN(changed, store_->ChangeDestination(kId1, {.expected_status = "IN_PROGRESS",
                                                                 .expected_status_reason = "other",
                                                                 .status = "IN_PROGRESS",
                                                                 .token_sha256 = "hash-x"}));
  EXPECT_FALSE(changed);
  ASSERT_OK_AND_ASSIGN(std::optional<StoredDestination> before, store_->GetDestination(kId1));
  ASSERT_TRUE(before.has_value());
  ASSERT_OK_AND_ASSIGN(
      changed, store_->ChangeDestination(kId1, {.expected_status = "IN_PROGRESS",
                                                .expected_token_sha256 = "hash-1",
                                                .expected_status_reason = "awaiting confirmation",
                                                .status = "IN_PROGRESS",
                                                .status_reason = "awaiting confirmation",
                                                .token_sha256 = "hash-1"}));
  EXPECT_TRUE(changed);
  ASSERT_OK_AND_ASSIGN(std::optional<StoredDestination> after, store_->GetDestination(kId1));
  ASSERT_TRUE(after.has_value());
  EXPECT_GT(after->updated_at, before->updated_at) << "a change is a new updated_at";
  // A new confirmation request replaces the token.
  ASSERT_OK_AND_ASSIGN(changed,
                       store_->ChangeDestination(kId1, {.expected_status = "IN_PROGRESS",
                                                        .expected_token_sha256 = "hash-1",
                                                        .status = "IN_PROGRESS",
                                                        .status_reason = "again",
                                                        .token_sha256 = "hash-2"}));
  EXPECT_TRUE(changed);

  ASSERT_OK_AND_ASSIGN(std::optional<StoredDestination> confirmed,
                       store_->ConfirmDestination("hash-1"));
  EXPECT_FALSE(confirmed.has_value());
  ASSERT_OK_AND_ASSIGN(confirmed, store_->ConfirmDestination("hash-2"));
  ASSERT_TRUE(confirmed.has_value());
  EXPECT_EQ(confirmed->status, "ENABLED");
  EXPECT_EQ(confirmed->status_reason, "");
  ASSERT_OK_AND_ASSIGN(confirmed, store_->ConfirmDestination("hash-2"));
  EXPECT_FALSE(confirmed.has_value());
  ASSERT_OK_AND_ASSIGN(confirmed, store_->ConfirmDestination(""));
  EXPECT_FALSE(confirmed.has_value());

  ASSERT_OK_AND_ASSIGN(changed,
                       store_->ChangeDestination(kId1, {.expected_status = "ENABLED",
                                                        .status = "DISABLED"}));
  EXPECT_TRUE(changed);
  ASSERT_OK_AND_ASSIGN(std::vector<StoredDestination> all, store_->ListDestinations("", 10));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].status, "DISABLED");
  EXPECT_GT(all[0].updated_at, all[0].created_at);
}

}  // namespace
}  // namespace fleetcore::rules
