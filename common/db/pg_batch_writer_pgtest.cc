#include "common/db/pg_batch_writer.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace fleetcore::db {
namespace {

using ::fleetcore::testing::StatusIs;
using ::fleetcore::testing::TestDatabase;
using ::testing::HasSubstr;

// A guarded write as the shadow store makes it: set v where the row still has `old`.
constexpr char kStatement[] =
    "UPDATE kv SET v = r.v FROM ROWS FROM (json_to_recordset($1) AS (k text, v bigint, "
    "old bigint)) WITH ORDINALITY AS r(k, v, old, i) WHERE kv.k = r.k AND kv.v = r.old "
    "RETURNING r.i";

class PgBatchWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, TestDatabase::Create(/*migrate=*/false));
    pqxx::connection c(db_->url());
    pqxx::work w(c);
    w.exec("CREATE TABLE kv (k text PRIMARY KEY, v bigint NOT NULL)");
    w.exec("INSERT INTO kv SELECT 'k' || g, 0 FROM generate_series(0, 63) g");
    w.commit();
    DbOptions o{.url = db_->url(), .pool_size = 4};
    ASSERT_OK_AND_ASSIGN(pool_, PgPool::Create(o, nullptr, [](pqxx::connection_base& c) {
                           c.prepare("kv_batch", kStatement);
                           c.prepare("kv_broken", "SELECT 1 / 0 WHERE $1::json IS NOT NULL");
                         }));
  }

  static std::string Row(const std::string& k, int64_t v, int64_t old) {
    return absl::StrCat(R"({"k":")", k, R"(","v":)", v, R"(,"old":)", old, "}");
  }

  static std::string Written(const absl::StatusOr<bool>& w) {
    if (!w.ok()) return w.status().ToString();
    return *w ? "written" : "not written";
  }

  int64_t Value(const std::string& k) {
    pqxx::connection c(db_->url());
    pqxx::nontransaction n(c);
    return n.exec_params1("SELECT v FROM kv WHERE k = $1", k)[0].as<int64_t>();
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<PgPool> pool_;
  std::shared_ptr<prometheus::Registry> metrics_ = std::make_shared<prometheus::Registry>();
};

TEST_F(PgBatchWriterTest, ALoneWriteSaysWhetherItsConditionHeld) {
  PgBatchWriter writer(pool_.get(), {.statement = "kv_batch", .name = "kv"}, nullptr);
  EXPECT_EQ(Written(writer.Write(Row("k1", 5, 0))), "written");
  EXPECT_EQ(Value("k1"), 5);
  EXPECT_EQ(Written(writer.Write(Row("k1", 6, 0))), "not written");  // no longer 0
  EXPECT_EQ(Written(writer.Write(Row("nope", 1, 0))), "not written");
  EXPECT_EQ(Value("k1"), 5);
}

TEST_F(PgBatchWriterTest, ConcurrentWritersAreBatchedAndEachLearnsItsOwnOutcome) {
  // 16 threads, each incrementing its own four keys 50 times by guarded writes: every
  // write's condition holds, so every one must be reported written and land.
  PgBatchWriter writer(pool_.get(), {.statement = "kv_batch", .name = "kv"}, metrics_.get());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < 50; ++n) {
        for (int j = 0; j < 4; ++j) {
          const std::string k = absl::StrCat("k", t * 4 + j);
          absl::StatusOr<bool> w = writer.Write(Row(k, n + 1, n));
          if (!w.ok() || !*w) ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(Value(absl::StrCat("k", i)), 50) << i;
  // 3200 rows in fewer statements: some batches held more than one row.
  const std::string text = prometheus::TextSerializer().Serialize(metrics_->Collect());
  EXPECT_THAT(text, HasSubstr("fleetcore_db_batch_rows_sum{writer=\"kv\"} 3200"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("fleetcore_db_batch_rows_count{writer=\"kv\"} 3200")));
}

TEST_F(PgBatchWriterTest, RacingWritesOfOneRowLetExactlyOneWin) {
  PgBatchWriter writer(pool_.get(), {.statement = "kv_batch", .name = "kv"}, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> won{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      absl::StatusOr<bool> w = writer.Write(Row("k7", 100 + t, 0));
      ASSERT_TRUE(w.ok()) << w.status();
      if (*w) ++won;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_GE(Value("k7"), 100);
}

TEST_F(PgBatchWriterTest, AFailedStatementFailsEveryRowOfItsBatch) {
  PgBatchWriter writer(pool_.get(), {.statement = "kv_broken", .name = "broken"}, nullptr);
  EXPECT_THAT(writer.Write(Row("k1", 1, 0)), StatusIs(absl::StatusCode::kInternal));
}

}  // namespace
}  // namespace fleetcore::db
