// The options every fleetcore service process has: parse flags and FLEETCORE_* environment,
// answer --help and --check-config. A service's main.cc adds its own options and wiring;
// process.h starts logging, metrics and Postgres and serves.
//
//   service::CommonOptions common{.service = "registry"};
//   common.server.listen = "127.0.0.1:6051";
//   config::FlagSet flags("fleetcore-registry", "The thing registry.");
//   service::RegisterFlags(flags, &common);
//   flags.AddDuration("thing-type-delete-delay", &delay, "...");
//   if (std::optional<int> code = service::ParseFlags(flags, argc, argv,
//           [&] { return service::Validate(common); })) {
//     return *code;                        // --help, --check-config, or a bad option
//   }
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/config/flag_set.h"
#include "common/db/pg_pool.h"
#include "common/grpc/server.h"
#include "common/log/log.h"

namespace fleetcore::service {

struct CommonOptions {
  std::string service;  // "registry", "policy", ...
  grpc_util::ServerOptions server;
  std::string metrics_listen;
  db::DbOptions db;
  log::Options log;
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
  // Threads that run RPC bodies (they block on Postgres); 0: the database pool size.
  int workers = 0;
};

void RegisterFlags(config::FlagSet& flags, CommonOptions* options);

// Checks what RegisterFlags filled in (addresses, region/account, database URL present),
// and folds a separately given database password into the URL.
absl::Status Validate(CommonOptions& options);

// Parses argv and the environment, then runs `validate`. Returns an exit code when main
// should stop now: 0 after --help or a valid --check-config (which prints the effective
// configuration, secrets hidden), 2 for an invalid configuration (message on stderr).
std::optional<int> ParseFlags(config::FlagSet& flags, int argc, char** argv,
                              const std::function<absl::Status()>& validate);

}  // namespace fleetcore::service
