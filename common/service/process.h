// The start and the end every service process shares, around its own wiring:
//
//   service::Process process;
//   if (std::optional<int> code = service::Start(common, &PgStore::Prepare, &process)) {
//     return *code;                  // logged: logging, metrics port or Postgres failed
//   }
//   ... build the store, core and gRPC adapter on process.pool and process.metrics ...
//   return service::Serve(common, {&adapter}, process);
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/db/pg_pool.h"
#include "common/grpc/client.h"
#include "common/service/service_options.h"

namespace grpc {
class Service;
}  // namespace grpc
namespace prometheus {
class Registry;
}  // namespace prometheus
namespace fleetcore::metrics {
class MetricsServer;
}  // namespace fleetcore::metrics

namespace fleetcore::service {

struct Process {
  Process();
  ~Process();
  std::shared_ptr<prometheus::Registry> metrics;
  std::unique_ptr<metrics::MetricsServer> metrics_server;  // null without --metrics-listen
  std::unique_ptr<db::PgPool> pool;
};

// Starts logging, the metrics endpoint and the Postgres pool (waiting for Postgres up to
// --db-connect-timeout), in that order. Returns the exit code when main must stop: 2 when
// logging cannot start, 1 for anything else, after logging why.
std::optional<int> Start(CommonOptions& options, db::PgPool::Prepare prepare, Process* out);

// What a service serves besides gRPC (the gateway's MQTT listeners).
struct ServeExtras {
  // Logged in the "serving" line as <name>: port, e.g. {"mqtt_port", 1883}.
  std::vector<std::pair<std::string, int>> ports;
  // Runs after the shutdown signal, before gRPC stops (e.g. draining connections).
  std::function<void()> drain;
};

// Serves `services` on options.server until SIGTERM or SIGINT, logging "serving" (with the
// bound grpc_port and metrics_port) and the shutdown, then shuts down gracefully. Returns
// the exit code: 0, or 1 when the server cannot start (e.g. the port is taken).
int Serve(const CommonOptions& options, const std::vector<grpc::Service*>& services,
          const Process& process, const ServeExtras& extras = {});

// The channel to the peer service `name` at `endpoint` (TLS verified with `tls_ca_file` when
// set; the admin token on every call), logged as a peer; nullopt, with the reason logged as
// a start-up error, when it cannot be made.
std::optional<grpc_util::ServiceChannel> ConnectPeer(absl::string_view name,
                                                     const std::string& endpoint,
                                                     const std::string& tls_ca_file,
                                                     const CommonOptions& options);

}  // namespace fleetcore::service
