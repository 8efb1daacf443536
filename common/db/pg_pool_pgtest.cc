#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

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

// Terminates every other backend of the test database and waits until they are gone.
void TerminateOtherBackends(const std::string& url, const std::string& db) {
  pqxx::connection admin(url);
  pqxx::nontransaction n(admin);
  n.exec_params(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
      "pg_backend_pid()",
      db);
  for (int i = 0; i < 500; ++i) {
    const pqxx::result left = n.exec_params(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        db);
    if (left[0][0].as<int>() == 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "backends still running after pg_terminate_backend";
}

TEST_F(PgPoolTest, ReplacesIdleConnectionsThatPostgresClosedBeforeUse) {
  // As after a Postgres restart: every idle connection of the pool is dead, and the next
  // calls succeed on new ones instead of failing once per dead connection.
  auto pool = Pool(/*size=*/3);
  std::atomic<int> inside{0};
  std::vector<std::thread> three;
  for (int i = 0; i < 3; ++i) {
    three.emplace_back([&] {
      ASSERT_OK(pool->Query([&](pqxx::transaction_base& tx) {
        ++inside;
        while (inside < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        tx.exec("SELECT 1");
        return absl::OkStatus();
      }));
    });
  }
  for (auto& t : three) t.join();  // three connections open, all idle now
  TerminateOtherBackends(db_->url(), db_->name());
  for (int i = 0; i < 4; ++i) {
    EXPECT_OK(pool->Query([](pqxx::transaction_base& tx) {
      tx.exec("SELECT 1");
      return absl::OkStatus();
    }));
  }
  EXPECT_THAT(prometheus::TextSerializer().Serialize(metrics_->Collect()),
              HasSubstr("fleetcore_db_pool_closed_connections_total 3"));
}

TEST_F(PgPoolTest, AConnectionLostInUseIsUnavailableAndReplaced) {
  auto pool = Pool(/*size=*/1);
  absl::Status lost = pool->Query([&](pqxx::transaction_base& tx) {
    TerminateOtherBackends(db_->url(), db_->name());  // this call's own backend
    tx.exec("SELECT 1");
    return absl::OkStatus();
  });
  EXPECT_THAT(lost, StatusIs(absl::StatusCode::kUnavailable));
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
