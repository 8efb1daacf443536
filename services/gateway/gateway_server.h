// The gateway's moving parts around the broker: the I/O threads, the listeners, and a
// maintenance thread (session expiry, delayed wills, metrics, the endpoint certificate's
// renewal: its files are looked at every second, and SIGHUP reloads them), with the shutdown that
// drains them: stop accepting, send every client MQTT 5 DISCONNECT 0x8B (server shutting
// down), let their sessions be stored, stop, all within a deadline.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/gateway/broker.h"
#include "services/gateway/connection.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/io_thread.h"
#include "services/gateway/listeners.h"
#include "services/gateway/tls_context.h"

namespace fleetcore::gateway {

struct GatewayOptions {
  int io_threads = 0;  // 0: one per core
  // host:port of each listener; empty turns it off.
  std::string mqtt_listen;
  std::string mqtts_listen;
  std::string http_listen;
  std::string https_listen;
  TlsOptions tls;  // for mqtts and https
};

class GatewayServer {
 public:
  // Starts the threads and listeners. FAILED_PRECONDITION for a taken port,
  // INVALID_ARGUMENT for a bad address or TLS file. Nothing is owned.
  static absl::StatusOr<std::unique_ptr<GatewayServer>> Start(const GatewayOptions& options,
                                                              const ConnectionContext& context,
                                                              std::function<size_t()> store_pending);
  ~GatewayServer();

  // The TLS listeners' context; null when they are off.
  const TlsContext* tls() const { return tls_.get(); }

  // The bound port of each listener that is on, as {"mqtt_port", 1883}.
  std::vector<std::pair<std::string, int>> ports() const;

  // Stops accepting, disconnects every client (0x8B) and waits until their sessions are
  // detached, or `timeout` passes; then stops the threads.
  void Drain(absl::Duration timeout);

 private:
  GatewayServer(const ConnectionContext& context, std::function<size_t()> store_pending)
      : context_(context), store_pending_(std::move(store_pending)) {}
  void Maintain();
  // Reloads the endpoint certificate if its files changed (or always with `force`), and
  // says how it went in the log and the metrics.
  void ReloadEndpointCertificate(bool force);

  const ConnectionContext context_;
  const std::function<size_t()> store_pending_;
  std::unique_ptr<TlsContext> tls_;
  std::vector<std::unique_ptr<IoThread>> threads_;
  std::vector<std::pair<std::string, std::unique_ptr<Listener>>> listeners_;
  absl::Notification stop_;
  std::thread maintenance_;
  bool drained_ = false;
};

}  // namespace fleetcore::gateway
