#include "common/testing/test_database.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/db/migrator.h"
#include "common/ids/id_generator.h"
#include "pqxx/connection"
#include "pqxx/nontransaction"

namespace fleetcore::testing {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : fallback;
}

constexpr char kHowToRun[] =
    " Run the tests through ctest (the \"postgres\" fixture starts a throwaway server) or "
    "./fleetcore test.";

}  // namespace

std::string TestPostgres::Url(const std::string& database) const {
  return absl::StrCat("postgresql://", user, ":", password, "@", host, ":", port, "/",
                      database);
}

absl::StatusOr<TestPostgres> TestPostgres::FromHarness() {
  const std::string path = EnvOr("FLEETCORE_TEST_PG_ENV", "");
  if (path.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("FLEETCORE_TEST_PG_ENV is not set, so the test Postgres is unknown.",
                     kHowToRun));
  }
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the test Postgres is not running (no ", path, ").", kHowToRun));
  }
  TestPostgres pg;
  std::string line;
  while (std::getline(in, line)) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (kv.first == "FLEETCORE_TEST_PG_HOST") pg.host = kv.second;
    if (kv.first == "FLEETCORE_TEST_PG_USER") pg.user = kv.second;
    if (kv.first == "FLEETCORE_TEST_PG_PASSWORD") pg.password = kv.second;
    if (kv.first == "FLEETCORE_TEST_PG_PORT") (void)absl::SimpleAtoi(kv.second, &pg.port);
  }
  if (pg.host.empty() || pg.port == 0 || pg.user.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is incomplete.", kHowToRun));
  }
  return pg;
}

absl::StatusOr<std::unique_ptr<TestDatabase>> TestDatabase::Create(bool migrate) {
  absl::StatusOr<TestPostgres> server = TestPostgres::FromHarness();
  if (!server.ok()) {
    return server.status();
  }
  std::unique_ptr<TestDatabase> db(new TestDatabase());
  db->server_ = *server;
  RandomIdGenerator ids;
  std::string suffix = ids.NewUuid().substr(0, 8);
  db->name_ = absl::StrCat("fleetcore_test_", suffix);
  try {
    pqxx::connection admin(db->server_.Url("postgres"));
    pqxx::nontransaction n(admin);
    n.exec(absl::StrCat("CREATE DATABASE ", db->name_));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot create test database: ", e.what()));
  }
  db->url_ = db->server_.Url(db->name_);
  if (migrate) {
    auto migrations = db::LoadMigrations(MigrationsDir());
    if (!migrations.ok()) {
      return migrations.status();
    }
    auto report = db::ApplyMigrations(db->url_, *migrations);
    if (!report.ok()) {
      return report.status();
    }
  }
  return db;
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(server_.Url("postgres"));
    pqxx::nontransaction n(admin);
    n.exec(absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)"));
  } catch (const std::exception&) {
    // The cluster is thrown away at the end of the run anyway.
  }
}

std::string MigrationsDir() {
  return absl::StrCat(EnvOr("FLEETCORE_SOURCE_DIR", "."), "/migrations");
}

std::string BuildPath(const std::string& relative) {
  return absl::StrCat(EnvOr("FLEETCORE_BINARY_DIR", "."), "/", relative);
}

}  // namespace fleetcore::testing
