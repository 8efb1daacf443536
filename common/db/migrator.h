// Applies the numbered SQL files of migrations/ (NNNN_<service>_<what>.sql) to a database.
//
// - Runs under a Postgres advisory lock, so concurrent runs (several replicas, a compose
//   one-shot and a Kubernetes Job) apply each file once.
// - Records every applied file with its SHA-256 in fleetcore_migrate.applied; a file that
//   changed after it was applied, or an applied version this build does not know, stops the
//   run with FAILED_PRECONDITION before anything is changed.
// - Each file runs in its own transaction together with its record: all or nothing.
// - Idempotent: a second run applies nothing.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace fleetcore::db {

struct Migration {
  int version = 0;
  std::string name;  // the file name, e.g. "0001_registry_init.sql"
  std::string sql;
  std::string checksum;  // hex SHA-256 of sql
};

// Reads and orders the migrations of `dir`. INVALID_ARGUMENT for a misnamed file or a
// duplicate version; NOT_FOUND when the folder does not exist.
absl::StatusOr<std::vector<Migration>> LoadMigrations(const std::string& dir);

struct MigrationReport {
  std::vector<std::string> applied;  // names applied by this run
  int already_applied = 0;
};

absl::StatusOr<MigrationReport> ApplyMigrations(const std::string& url,
                                                const std::vector<Migration>& migrations);

// Lets each role log in with its password (ALTER ROLE ... LOGIN PASSWORD), e.g. the
// services' roles of migration 0011 with passwords from secret files. NOT_FOUND names a
// role that does not exist; the passwords are never logged or put in an error.
absl::Status SetLoginPasswords(const std::string& url,
                               const std::vector<std::pair<std::string, std::string>>& roles);

}  // namespace fleetcore::db
