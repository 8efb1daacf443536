#include <filesystem>
#include <map>
#include <fstream>
#include <thread>

#include "common/db/migrator.h"
#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"

namespace fleetcore::db {
namespace {

using ::fleetcore::testing::StatusIs;
using ::fleetcore::testing::TestDatabase;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class MigratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, TestDatabase::Create(false));
    dir_ = ::testing::TempDir() + "/migrations-" + db_->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void Write(const std::string& name, const std::string& sql) {
    std::ofstream(dir_ + "/" + name) << sql;
  }
  bool TableExists(const std::string& table) {
    pqxx::connection c(db_->url());
    pqxx::nontransaction n(c);
    return !n.exec_params1("SELECT to_regclass($1) IS NOT NULL", table)[0].is_null() &&
           n.exec_params1("SELECT to_regclass($1) IS NOT NULL", table)[0].as<bool>();
  }

  std::unique_ptr<TestDatabase> db_;
  std::string dir_;
};

TEST_F(MigratorTest, AppliesInOrderOnceAndIsIdempotent) {
  Write("0002_x_second.sql", "ALTER TABLE t ADD COLUMN b int;");
  Write("0001_x_first.sql", "CREATE TABLE t (a int);");
  ASSERT_OK_AND_ASSIGN(std::vector<Migration> migrations, LoadMigrations(dir_));
  ASSERT_OK_AND_ASSIGN(MigrationReport first, ApplyMigrations(db_->url(), migrations));
  EXPECT_THAT(first.applied, ElementsAre("0001_x_first.sql", "0002_x_second.sql"));
  ASSERT_OK_AND_ASSIGN(MigrationReport second, ApplyMigrations(db_->url(), migrations));
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.already_applied, 2);
}

TEST_F(MigratorTest, RefusesAChangedFile) {
  Write("0001_x_first.sql", "CREATE TABLE t (a int);");
  ASSERT_OK(ApplyMigrations(db_->url(), *LoadMigrations(dir_)));
  Write("0001_x_first.sql", "CREATE TABLE t (a bigint);");
  Write("0002_x_second.sql", "CREATE TABLE u (a int);");
  EXPECT_THAT(ApplyMigrations(db_->url(), *LoadMigrations(dir_)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("changed after")));
  EXPECT_FALSE(TableExists("u"));  // nothing applied after the refusal
}

TEST_F(MigratorTest, RefusesAnUnknownAppliedVersion) {
  Write("0001_x_first.sql", "CREATE TABLE t (a int);");
  Write("0002_x_second.sql", "CREATE TABLE u (a int);");
  ASSERT_OK(ApplyMigrations(db_->url(), *LoadMigrations(dir_)));
  std::filesystem::remove(dir_ + "/0002_x_second.sql");
  EXPECT_THAT(ApplyMigrations(db_->url(), *LoadMigrations(dir_)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("does not have")));
}

TEST_F(MigratorTest, AFailingFileIsRolledBackWhole) {
  Write("0001_x_bad.sql", "CREATE TABLE t (a int); SELECT no_such_function();");
  EXPECT_THAT(ApplyMigrations(db_->url(), *LoadMigrations(dir_)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("0001_x_bad.sql")));
  EXPECT_FALSE(TableExists("t"));
}

TEST_F(MigratorTest, ConcurrentRunsApplyEachFileOnce) {
  Write("0001_x_first.sql", "CREATE TABLE t (a int); SELECT pg_sleep(0.2);");
  auto migrations = *LoadMigrations(dir_);
  std::vector<absl::StatusOr<MigrationReport>> reports(3, absl::UnknownError("not run"));
  std::vector<std::thread> runs;
  for (int i = 0; i < 3; ++i) {
    runs.emplace_back([&, i] { reports[i] = ApplyMigrations(db_->url(), migrations); });
  }
  for (auto& r : runs) r.join();
  int applied = 0;
  for (const auto& r : reports) {
    ASSERT_OK(r);
    applied += static_cast<int>(r->applied.size());
  }
  EXPECT_EQ(applied, 1);
}

TEST_F(MigratorTest, LoadRefusesBadNamesAndDuplicates) {
  Write("1_bad.sql", "");
  EXPECT_THAT(LoadMigrations(dir_), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("NNNN_<service>_<what>.sql")));
  std::filesystem::remove(dir_ + "/1_bad.sql");
  Write("0001_a_x.sql", "");
  Write("0001_b_y.sql", "");
  EXPECT_THAT(LoadMigrations(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("share version 1")));
  EXPECT_THAT(LoadMigrations(dir_ + "/nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(MigratorTest, TheRepositoryMigrationsApply) {
  ASSERT_OK_AND_ASSIGN(auto migrations, LoadMigrations(testing::MigrationsDir()));
  ASSERT_FALSE(migrations.empty());
  ASSERT_OK(ApplyMigrations(db_->url(), migrations));
  EXPECT_TRUE(TableExists("registry.things"));
}

// Migration 0010, on a database with rules from before it: each http action's URL (without
// a template; query and fragment left off) becomes an ENABLED destination, so the rules
// keep sending after the upgrade.
TEST_F(MigratorTest, ExistingHttpActionsKeepTheirDestinationsThroughTheUpgrade) {
  ASSERT_OK_AND_ASSIGN(auto all, LoadMigrations(testing::MigrationsDir()));
  std::vector<Migration> before;
  for (const Migration& m : all) {
    if (m.version < 10) before.push_back(m);
  }
  ASSERT_OK(ApplyMigrations(db_->url(), before));
  {
    pqxx::connection c(db_->url());
    pqxx::work tx(c);
    tx.exec(R"(INSERT INTO rules.topic_rules VALUES
      ('a', '{"sql": "x", "actions": [{"http": {"url": "https://h.example/a?q=1"}},
                                      {"http": {"url": "https://h.example/${topic()}"}},
                                      {"republish": {"topic": "t"}}],
              "errorAction": {"http": {"url": "https://e.example/err#f"}}}', 'x', false,
       now(), now()),
      ('b', '{"sql": "y", "actions": [{"http": {"url": "https://h.example/a"}}]}', 'y', false,
       now(), now()),
      ('c', '{"sql": "z"}', 'z', false, now(), now()))");
    tx.commit();
  }
  ASSERT_OK(ApplyMigrations(db_->url(), all));
  pqxx::connection c(db_->url());
  pqxx::nontransaction n(c);
  std::vector<std::string> rows;
  for (const auto& r : n.exec("SELECT confirmation_url || ' ' || status || ' ' || "
                              "(token_sha256 IS NULL)::text FROM rules.destinations ORDER BY 1")) {
    rows.push_back(r[0].c_str());
  }
  EXPECT_THAT(rows, ElementsAre("https://e.example/err ENABLED true",
                                "https://h.example/a ENABLED true"));
}

// Migration 0011: each service's role reads and writes its own schema's tables, and is
// refused everything else (another schema, DDL). The harness lets the roles log in.
TEST(ServiceRoles, EachReachesItsOwnSchemaOnly) {
  ASSERT_OK_AND_ASSIGN(auto db, TestDatabase::Create());
  const std::map<std::string, std::string> own_table = {
      {"registry", "registry.things"},   {"policy", "policy.policies"},
      {"ca", "ca.certificates"},          {"gateway", "gateway.sessions"},
      {"shadow", "shadow.shadows"},       {"rules", "rules.topic_rules"}};
  const testing::TestPostgres& pg = db->server();
  for (const auto& [service, table] : own_table) {
    testing::TestPostgres as_role = pg;
    as_role.user = "fleetcore_" + service;
    pqxx::connection c(as_role.Url(db->name()));
    {
      pqxx::work tx(c);
      EXPECT_NO_THROW(tx.exec("SELECT count(*) FROM " + table)) << service;
      // Writing: a DELETE that matches nothing still needs the privilege.
      EXPECT_NO_THROW(tx.exec("DELETE FROM " + table + " WHERE false")) << service;
    }
    for (const auto& [other, other_table] : own_table) {
      if (other == service) continue;
      pqxx::work tx(c);
      EXPECT_THROW(tx.exec("SELECT count(*) FROM " + other_table), pqxx::insufficient_privilege)
          << service << " read " << other_table;
    }
    pqxx::work tx(c);
    EXPECT_THROW(tx.exec("CREATE TABLE " + service + ".extra (a int)"),
                 pqxx::insufficient_privilege)
        << service;
  }
}

TEST(ServiceRoles, SetLoginPasswordsLetsARoleLogIn) {
  ASSERT_OK_AND_ASSIGN(auto db, TestDatabase::Create(false));
  const std::string role = "fleetcore_test_" + db->name();
  {
    pqxx::connection c(db->url());
    pqxx::nontransaction n(c);
    n.exec("CREATE ROLE " + c.quote_name(role) + " NOLOGIN");
  }
  testing::TestPostgres as_role = db->server();
  as_role.user = role;
  as_role.password = "pw'with'quotes";  // quotes must not break the statement
  EXPECT_THROW(pqxx::connection(as_role.Url(db->name())), pqxx::broken_connection);
  ASSERT_OK(SetLoginPasswords(db->url(), {{role, as_role.password}}));
  EXPECT_NO_THROW(pqxx::connection(as_role.Url(db->name())));
  EXPECT_THAT(SetLoginPasswords(db->url(), {{"no_such_role_here", "x"}}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no_such_role_here")));
  pqxx::connection c(db->url());
  pqxx::nontransaction n(c);
  n.exec("DROP ROLE " + c.quote_name(role));
}

}  // namespace
}  // namespace fleetcore::db
