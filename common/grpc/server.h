// Starts a service's gRPC server the same way in every fleetcore process: the given
// services plus the standard health service (grpc.health.v1) and server reflection, the
// metrics interceptor (fleetcore_grpc_server_requests_total{grpc_method,grpc_code} and
// fleetcore_grpc_server_request_duration_seconds{grpc_method}), optional TLS or mutual TLS.
//
//   grpc_util::Server::Options opts;                // filled from flags by RegisterFlags
//   FLEETCORE_ASSIGN_OR_RETURN(auto server,
//       grpc_util::Server::Start(opts, {&registry_service}, metrics_registry.get()));
//   grpc_util::WaitForShutdownSignal();
//   server->Shutdown();                             // health NOT_SERVING, drain, stop
//
// Errors from Start: FailedPrecondition for a taken port, InvalidArgument for a bad address
// or unreadable TLS files.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/flag_set.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace fleetcore::grpc_util {

struct ServerOptions {
  std::string listen;
  // TLS on the gRPC port when both are set; with a client CA, clients must present a
  // certificate signed by it (mutual TLS between services).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // The admin bearer token (see AdminAuth); empty disables authentication.
  std::string admin_token;
  // How long Shutdown() lets calls in flight finish before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(15);
};

// Registers --listen (with `default_listen`), --tls-cert, --tls-key, --tls-client-ca,
// --admin-token (also --admin-token-file) and --shutdown-grace.
void RegisterFlags(config::FlagSet& flags, ServerOptions* options);

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, const std::vector<grpc::Service*>& services,
      prometheus::Registry* metrics);
  ~Server();

  int port() const { return port_; }

  // Marks the health service NOT_SERVING, stops accepting calls, lets calls in flight run
  // until the grace period ends, then cancels what remains. Idempotent.
  void Shutdown();

 private:
  Server() = default;
  std::unique_ptr<grpc::Server> server_;
  absl::Duration grace_;
  int port_ = 0;
  bool shut_down_ = false;
};

// Blocks SIGINT and SIGTERM for the calling thread and the threads it starts later. Call it
// first in main so that WaitForShutdownSignal() is the only receiver.
void BlockShutdownSignals();

// Waits until SIGINT or SIGTERM arrives and returns its name.
std::string WaitForShutdownSignal();

}  // namespace fleetcore::grpc_util
