// fleetcore-migrate as the compose one-shot and the Kubernetes Job run it.
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::e2e {
namespace {

using ::testing::HasSubstr;

TEST(MigrateTest, AppliesOnceThenReportsUpToDate) {
  ASSERT_OK_AND_ASSIGN(auto db, testing::TestDatabase::Create(/*migrate=*/false));
  const std::vector<std::string> cmd{testing::BuildPath("tools/migrate/fleetcore-migrate"),
                                     "--migrations-dir", testing::MigrationsDir()};
  ASSERT_OK_AND_ASSIGN(auto first, testing::Run(cmd, {{"FLEETCORE_DB_URL", db->url()}}));
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.err, HasSubstr("0001_registry_init.sql"));
  ASSERT_OK_AND_ASSIGN(auto second, testing::Run(cmd, {{"FLEETCORE_DB_URL", db->url()}}));
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.err, HasSubstr("\"applied\":0"));
}

TEST(MigrateTest, UnreachableDatabaseFailsClearly) {
  ASSERT_OK_AND_ASSIGN(
      auto r,
      testing::Run({testing::BuildPath("tools/migrate/fleetcore-migrate"), "--migrations-dir",
                    testing::MigrationsDir(), "--db-connect-timeout=500ms"},
                   {{"FLEETCORE_DB_URL", "postgresql://x:pw@127.0.0.1:1/none"}}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot connect to Postgres"));
}

}  // namespace
}  // namespace fleetcore::e2e
