// Serves Prometheus metrics on /metrics: everything registered in the given registry plus
// the standard process_* metrics (CPU seconds, resident memory, open fds, threads, start time).
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   FLEETCORE_ASSIGN_OR_RETURN(auto server, MetricsServer::Start("127.0.0.1:9101", registry));
//
// Metric names follow fleetcore_<service>_<what>_<unit>, with _total for counters and
// _seconds for durations.
// Errors: FailedPrecondition when the port is taken, InvalidArgument for a bad address.
// Thread safety: the server scrapes on its own threads; prometheus-cpp metrics are
// thread-safe.
#pragma once

#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "common/config/flag_set.h"

namespace prometheus {
class Collectable;
class Exposer;
class Registry;
}  // namespace prometheus

namespace fleetcore::metrics {

// Registers --metrics-listen ("" disables the endpoint).
void RegisterFlags(config::FlagSet& flags, std::string* listen_address);

class MetricsServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      absl::string_view address, std::shared_ptr<prometheus::Registry> registry);
  ~MetricsServer();

  // The bound port (useful when the address asked for port 0).
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  // The exposer keeps only weak references to what it serves; these keep them alive.
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> process_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace fleetcore::metrics
