#include "common/db/migrator.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/db/pg_pool.h"
#include "pqxx/pqxx"

namespace fleetcore::db {
namespace {

// An arbitrary constant: the advisory lock key every fleetcore-migrate takes.
constexpr int64_t kLockKey = 0x666c656574636f72;  // "fleetcor"

std::string Sha256Hex(absl::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md;
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md.data()), len));
}

}  // namespace

absl::StatusOr<std::vector<Migration>> LoadMigrations(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("migrations folder \"", dir, "\" does not exist"));
  }
  static const std::regex kName(R"(^([0-9]{4})_[a-z0-9_]+\.sql$)");
  std::vector<Migration> out;
  std::map<int, std::string> seen;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || entry.path().extension() != ".sql") {
      continue;
    }
    std::smatch m;
    if (!std::regex_match(name, m, kName)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "migration file \"", name, "\" must be named NNNN_<service>_<what>.sql (lower case)"));
    }
    Migration mig;
    mig.version = std::stoi(m[1].str());
    mig.name = name;
    if (auto [it, inserted] = seen.emplace(mig.version, name); !inserted) {
      return absl::InvalidArgumentError(absl::StrCat("migrations \"", it->second, "\" and \"",
                                                     name, "\" share version ", mig.version));
    }
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    mig.sql = ss.str();
    mig.checksum = Sha256Hex(mig.sql);
    out.push_back(std::move(mig));
  }
  std::sort(out.begin(), out.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  return out;
}

absl::StatusOr<MigrationReport> ApplyMigrations(const std::string& url,
                                                const std::vector<Migration>& migrations) {
  MigrationReport report;
  try {
    pqxx::connection conn(url);
    {
      pqxx::nontransaction n(conn);
      n.exec_params("SELECT pg_advisory_lock($1)", kLockKey);
      n.exec("CREATE SCHEMA IF NOT EXISTS fleetcore_migrate");
      n.exec(
          "CREATE TABLE IF NOT EXISTS fleetcore_migrate.applied ("
          "  version integer PRIMARY KEY,"
          "  name text NOT NULL,"
          "  checksum text NOT NULL,"
          "  applied_at timestamptz NOT NULL DEFAULT now())");
    }
    std::map<int, std::pair<std::string, std::string>> applied;  // version -> name, checksum
    {
      pqxx::nontransaction n(conn);
      for (const auto& row :
           n.exec("SELECT version, name, checksum FROM fleetcore_migrate.applied")) {
        applied[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
      }
    }
    std::map<int, const Migration*> known;
    for (const Migration& m : migrations) {
      known[m.version] = &m;
    }
    // Refuse before changing anything.
    for (const auto& [version, rec] : applied) {
      auto it = known.find(version);
      if (it == known.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the database has migration ", rec.first, " applied, which this build does not "
            "have; run the fleetcore version that matches the database or a newer one"));
      }
      if (it->second->checksum != rec.second) {
        return absl::FailedPreconditionError(absl::StrCat(
            "migration ", rec.first, " changed after it was applied (checksum ", rec.second,
            " in the database, ", it->second->checksum, " on disk); restore the file and put "
            "the change in a new migration"));
      }
    }
    for (const Migration& m : migrations) {
      if (applied.count(m.version) != 0) {
        ++report.already_applied;
        continue;
      }
      try {
        pqxx::work tx(conn);
        tx.exec(m.sql);
        tx.exec_params(
            "INSERT INTO fleetcore_migrate.applied (version, name, checksum) VALUES ($1, $2, $3)",
            m.version, m.name, m.checksum);
        tx.commit();
      } catch (const pqxx::sql_error& e) {
        return absl::FailedPreconditionError(
            absl::StrCat("migration ", m.name, " failed and was rolled back: ", e.what()));
      }
      report.applied.push_back(m.name);
    }
    pqxx::nontransaction n(conn);
    n.exec_params("SELECT pg_advisory_unlock($1)", kLockKey);
  } catch (const std::exception& e) {
    return StatusFromPqxx(e);
  }
  return report;
}

absl::Status SetLoginPasswords(const std::string& url,
                               const std::vector<std::pair<std::string, std::string>>& roles) {
  try {
    pqxx::connection conn(url);
    pqxx::work tx(conn);
    for (const auto& [role, password] : roles) {
      if (tx.exec_params("SELECT 1 FROM pg_roles WHERE rolname = $1", role).empty()) {
        return absl::NotFoundError(absl::StrCat("no role ", role, " in the database cluster"));
      }
      // ALTER ROLE takes no parameters: the name and the password are quoted. Postgres
      // stores the password as SCRAM (password_encryption's default).
      tx.exec(absl::StrCat("ALTER ROLE ", tx.quote_name(role), " LOGIN PASSWORD ",
                           tx.quote(password)));
    }
    tx.commit();
  } catch (const pqxx::sql_error&) {
    // The statement holds the password: say what failed, not the statement.
    return absl::FailedPreconditionError(
        "cannot set the services' login passwords: the migrating user needs CREATEROLE");
  } catch (const std::exception& e) {
    return StatusFromPqxx(e);
  }
  return absl::OkStatus();
}

}  // namespace fleetcore::db
