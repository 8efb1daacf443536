// fleetcore-migrate: applies migrations/NNNN_*.sql to the fleetcore database, once each,
// under an advisory lock (see common/db/migrator.h). Safe to run from several places at
// once (a compose one-shot, a Kubernetes Job, every `./fleetcore up`). Exit status 0 when
// the database is up to date, 1 when it is not, 2 for a configuration error.
//
// With --service-passwords-dir it then lets each service's role (migration 0011) log in
// with the password in that folder's pg_password_<service>, so each service connects as a
// role that reaches its own schema only.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config/flag_set.h"
#include "common/db/migrator.h"
#include "common/db/pg_pool.h"
#include "common/log/log.h"
#include "common/service/service_options.h"

namespace fleetcore {
namespace {

int Run(int argc, char** argv) {
  db::DbOptions db;
  log::Options log_options{.service = "migrate"};
  std::string dir = "/usr/share/fleetcore/migrations";
  config::FlagSet flags("fleetcore-migrate",
                        "Applies fleetcore's SQL migrations to its Postgres database.");
  flags.AddSecret("db-url", &db.url, "Postgres connection URL.");
  flags.AddSecret("db-password", &db.password,
                  "Postgres password, when --db-url carries none (e.g. from a secret file).");
  flags.AddDuration("db-connect-timeout", &db.connect_timeout,
                    "How long to wait for Postgres to accept connections.");
  flags.AddString("migrations-dir", &dir, "Folder with the NNNN_<service>_<what>.sql files.");
  std::string passwords_dir;
  flags.AddString("service-passwords-dir", &passwords_dir,
                  "Folder with a file pg_password_<service> per service (registry, policy, "
                  "ca, gateway, shadow, rules): after migrating, the role fleetcore_<service> "
                  "may log in with that password. Empty: the roles are left as they are.");
  log::RegisterFlags(flags, &log_options);
  if (std::optional<int> code = service::ParseFlags(flags, argc, argv, [&]() -> absl::Status {
        db::FinishFlags(&db);
        if (db.url.empty()) {
          return absl::InvalidArgumentError("no database: set --db-url or FLEETCORE_DB_URL");
        }
        return absl::OkStatus();
      })) {
    return *code;
  }
  if (absl::Status s = log::Init(log_options); !s.ok()) {
    log::Error("cannot start logging", {{"error", s}});
    return 2;
  }
  auto migrations = db::LoadMigrations(dir);
  if (!migrations.ok()) {
    log::Error("cannot read migrations", {{"error", migrations.status()}});
    return 2;
  }
  if (absl::Status s = db::WaitForPostgres(db.url, db.connect_timeout); !s.ok()) {
    log::Error("cannot migrate", {{"error", s}});
    return 1;
  }
  auto report = db::ApplyMigrations(db.url, *migrations);
  if (!report.ok()) {
    log::Error("migration failed", {{"error", report.status()}});
    return 1;
  }
  for (const std::string& name : report->applied) {
    log::Info("applied", {{"migration", name}});
  }
  log::Info("database is up to date",
            {{"applied", static_cast<int>(report->applied.size())},
             {"already_applied", report->already_applied},
             {"database", db::RedactUrl(db.url)}});
  if (passwords_dir.empty()) return 0;
  std::vector<std::pair<std::string, std::string>> logins;
  for (const char* service : {"registry", "policy", "ca", "gateway", "shadow", "rules"}) {
    const std::string path = absl::StrCat(passwords_dir, "/pg_password_", service);
    absl::StatusOr<std::string> password = config::ReadFile(path, "password file");
    // As the services read their --db-password-file: without one trailing line break.
    if (password.ok() && absl::EndsWith(*password, "\n")) password->pop_back();
    if (password.ok() && absl::EndsWith(*password, "\r")) password->pop_back();
    if (!password.ok() || password->empty()) {
      log::Error("cannot set the services' logins: a password file is missing or empty",
                 {{"file", path}});
      return 2;
    }
    logins.emplace_back(absl::StrCat("fleetcore_", service), *std::move(password));
  }
  if (absl::Status s = db::SetLoginPasswords(db.url, logins); !s.ok()) {
    log::Error("cannot set the services' logins", {{"error", s}});
    return 1;
  }
  log::Info("the services' roles may log in", {{"roles", static_cast<int>(logins.size())}});
  return 0;
}

}  // namespace
}  // namespace fleetcore

int main(int argc, char** argv) { return fleetcore::Run(argc, argv); }
