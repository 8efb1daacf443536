// ClusterBus on NATS (Debian's libnats, the C client): the connection gateway replicas
// route messages through. It reconnects for as long as it takes, buffering what is
// published meanwhile (up to 64 MiB), and says so in the log and the metrics.
//
//   absl::StatusOr<std::unique_ptr<NatsClusterBus>> bus =
//       NatsClusterBus::Connect({.url = "nats://nats:4222", .name = "gateway-0"}, &metrics);
//
// Thread safety: as ClusterBus.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "services/gateway/cluster_bus.h"

struct __natsConnection;

namespace fleetcore::gateway {

class GatewayMetrics;

struct NatsOptions {
  // One or more comma-separated nats:// or tls:// URLs; user:password@ allowed.
  std::string url;
  // The connection's name in NATS's monitoring (the node id).
  std::string name;
  // CA bundle for tls:// servers; empty: the system's.
  std::string ca_file;
  // What this connection publishes does not come back to its own subscriptions.
  bool no_echo = false;
};

class NatsClusterBus final : public ClusterBus {
 public:
  // UNAVAILABLE, naming the servers (without credentials), when none answers.
  static absl::StatusOr<std::unique_ptr<NatsClusterBus>> Connect(const NatsOptions& options,
                                                                GatewayMetrics* metrics);
  ~NatsClusterBus() override;

  absl::Status Publish(absl::string_view subject, absl::string_view data,
                       absl::string_view reply = {}) override;
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                          const std::string& queue,
                                                          Handler handler) override;
  std::string NewInbox() override;
  bool connected() const override;
  // The largest message the server takes (its max_payload), as it said when connecting.
  int64_t max_payload() const;

  // The URL with any credentials (user:password@, token@) replaced by "***@", for logs.
  static std::string Redact(absl::string_view url);

  // What NATS's connection callbacks update (internal): the connection state, which
  // connected() reads on every routed message, and the metrics. Shared with those
  // callbacks, which libnats may still run (on its own thread) after the bus is destroyed.
  struct State;

 private:
  NatsClusterBus();
  std::shared_ptr<State> state_;
  __natsConnection* nc_ = nullptr;
  std::string inbox_;
  std::atomic<uint64_t> inboxes_{0};
};

}  // namespace fleetcore::gateway
