#include <atomic>
#include <thread>

#include "common/db/pg_pool.h"
#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace fleetcore::db {
namespace {

using ::fleetcore::testing::IsOk;
using ::fleetcore::testing::StatusIs;
using ::fleetcore::testing::TestDatabase;
using ::testing::HasSubstr;

class PgPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, TestDatabase::Create(/*migrate=*/false));
    pqxx::connection c(db_->url());
    pqxx::work w(c);
    w.exec("CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)");
    w.exec("INSERT INTO counter VALUES (1, 0)");
    w.commit();
  }

  std::unique_ptr<PgPool> Pool(int size = 4) {
    DbOptions o{.url = db_->url(), .pool_size = size, .acquire_timeout = absl::Milliseconds(200),
                .statement_timeout = absl::Seconds(5)};
    auto pool = PgPool::Create(o, metrics_.get());
    EXPECT_OK(pool);
    return std::move(*pool);
  }

  int Counter() {
    pqxx::connection c(db_->url());
    pqxx::nontransaction n(c);
    return n.exec1("SELECT n FROM counter WHERE id = 1")[0].as<int>();
  }

  std::unique_ptr<TestDatabase> db_;
  std::shared_ptr<prometheus::Registry> metrics_ = std::make_shared<prometheus::Registry>();
};

TEST_F(PgPoolTest, CommitsOnOkAndRollsBackOnError) {
  auto pool = Pool();
  ASSERT_OK(pool->Transact([](pqxx::transaction_base& tx) {
    tx.exec("UPDATE counter SET n = n + 1");
    return absl::OkStatus();
  }));
  EXPECT_EQ(Counter(), 1);
  EXPECT_THAT(pool->Transact([](pqxx::transaction_base& tx) {
    tx.exec("UPDATE counter SET n = n + 100");
    return absl::FailedPreconditionError("changed my mind");
  }),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(Counter(), 1);
}

TEST_F(PgPoolTest, RetriesASerializationFailure) {
  auto pool = Pool();
  int attempts = 0;
  ASSERT_OK(pool->Transact(
      [&](pqxx::transaction_base& tx) {
        ++attempts;
        const int seen = tx.exec1("SELECT n FROM counter WHERE id = 1")[0].as<int>();
        if (attempts == 1) {
          // Another writer commits between this transaction's read and its write.
          pqxx::connection other(db_->url());
          pqxx::work w(other);
          w.exec("UPDATE counter SET n = n + 10");
          w.commit();
        }
        tx.exec_params("UPDATE counter SET n = $1 WHERE id = 1", seen + 1);
        return absl::OkStatus();
      },
      Isolation::kSerializable));
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(Counter(), 11);  // neither write lost
  EXPECT_THAT(prometheus::TextSerializer().Serialize(metrics_->Collect()),
              HasSubstr("fleetcore_db_transaction_retries_total 1"));
}

TEST_F(PgPoolTest, MapsConstraintViolations) {
  auto pool = Pool();
  EXPECT_THAT(pool->Transact([](pqxx::transaction_base& tx) {
    tx.exec("INSERT INTO counter VALUES (1, 5)");
    return absl::OkStatus();
  }),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(pool->Query([](pqxx::transaction_base& tx) {
    tx.exec("SELEC broken");
    return absl::OkStatus();
  }),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("42601")));
}

TEST_F(PgPoolTest, ExhaustedPoolIsUnavailableNotAHang) {
  auto pool = Pool(/*size=*/1);
  std::atomic<bool> holding{false};
  std::atomic<bool> release{false};
  std::thread holder([&] {
    (void)pool->Transact([&](pqxx::transaction_base&) {
      holding = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return absl::OkStatus();
    });
  });
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_THAT(pool->Query([](pqxx::transaction_base&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("--db-pool-size")));
  release = true;
  holder.join();
  EXPECT_OK(pool->Query([](pqxx::transaction_base&) { return absl::OkStatus(); }));
}

TEST_F(PgPoolTest, ReplacesAConnectionThatPostgresClosed) {
  auto pool = Pool(/*size=*/1);
  ASSERT_OK(pool->Query([](pqxx::transaction_base& tx) {
    tx.exec("SELECT 1");
    return absl::OkStatus();
  }));
  {
    pqxx::connection admin(db_->url());
    pqxx::nontransaction n(admin);
    n.exec_params(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
        "pg_backend_pid()",
        db_->name());
  }
  absl::Status first = pool->Query([](pqxx::transaction_base& tx) {
    tx.exec("SELECT 1");
    return absl::OkStatus();
  });
  EXPECT_THAT(first, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_OK(pool->Query([](pqxx::transaction_base& tx) {
    tx.exec("SELECT 1");
    return absl::OkStatus();
  }));
}

TEST_F(PgPoolTest, StatementTimeoutIsDeadlineExceeded) {
  DbOptions o{.url = db_->url(), .pool_size = 1, .statement_timeout = absl::Milliseconds(100)};
  ASSERT_OK_AND_ASSIGN(auto pool, PgPool::Create(o, nullptr));
  EXPECT_THAT(pool->Query([](pqxx::transaction_base& tx) {
    tx.exec("SELECT pg_sleep(2)");
    return absl::OkStatus();
  }),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(PgPoolTest, WrongPasswordFailsAtCreate) {
  auto server = testing::TestPostgres::FromHarness();
  ASSERT_OK(server);
  server->password = "wrong";
  DbOptions o{.url = server->Url(db_->name()), .connect_timeout = absl::Milliseconds(300)};
  auto pool = PgPool::Create(o, nullptr);
  EXPECT_THAT(pool, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("password")));
  EXPECT_THAT(std::string(pool.status().message()), ::testing::Not(HasSubstr(":wrong@")));
}

}  // namespace
}  // namespace fleetcore::db
