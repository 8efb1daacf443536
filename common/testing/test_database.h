// The Postgres that tests talk to: a throwaway cluster started once per test run by the
// CTest fixture "postgres" (tests/harness/pg_fixture.sh), and a fresh database per suite.
//
//   class StoreTest : public ::testing::Test {
//    protected:
//     void SetUp() override { ASSERT_OK_AND_ASSIGN(db_, TestDatabase::Create()); }
//     std::unique_ptr<TestDatabase> db_;   // db_->url() has every migration applied
//   };
//
// A missing cluster is an error with instructions, never a skip.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace fleetcore::testing {

struct TestPostgres {
  std::string host;
  int port = 0;
  std::string user;
  std::string password;

  // postgresql://user:password@host:port/<database>
  std::string Url(const std::string& database) const;

  // Reads the connection the harness wrote (FLEETCORE_TEST_PG_ENV names the file).
  static absl::StatusOr<TestPostgres> FromHarness();
};

class TestDatabase {
 public:
  // Creates fleetcore_test_<random> and, unless `migrate` is false, applies migrations/.
  static absl::StatusOr<std::unique_ptr<TestDatabase>> Create(bool migrate = true);
  ~TestDatabase();

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  const TestPostgres& server() const { return server_; }

 private:
  TestDatabase() = default;
  TestPostgres server_;
  std::string name_;
  std::string url_;
};

// The repository's migrations/ folder (from FLEETCORE_SOURCE_DIR, set by CTest).
std::string MigrationsDir();
// A file of the build tree (FLEETCORE_BINARY_DIR), e.g. "services/registry/fleetcore-registry".
std::string BuildPath(const std::string& relative);

}  // namespace fleetcore::testing
