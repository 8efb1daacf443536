// The gateway's Prometheus metrics (fleetcore_gateway_*). Per-message counts are kept per
// I/O thread and added here once a second (AddThreadStats), so the hot path touches no
// shared counter; connection events and drops are counted as they happen.
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/mqtt/packet.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace fleetcore::gateway {

struct ThreadStats;
struct BrokerCounters;

// Where a connection came in.
enum class ListenerKind { kMqtt, kMqtts, kWs, kWss };
constexpr int kListenerKinds = 4;
const char* ListenerName(ListenerKind kind);

class GatewayMetrics {
 public:
  // Bucket bounds of the publish-to-delivery latency histogram, in seconds.
  static const std::vector<double>& LatencyBounds();

  explicit GatewayMetrics(prometheus::Registry& registry);
  ~GatewayMetrics();

  void ConnectionOpened(ListenerKind listener, mqtt::Version version);
  // `reason`: why it ended, with AWS's lifecycle names (CLIENT_INITIATED_DISCONNECT, ...).
  void ConnectionClosed(ListenerKind listener, mqtt::Version version, absl::string_view reason);
  // `result`: "accepted" or the refusal ("not_authorized", "bad_client_id", ...).
  void Connect(ListenerKind listener, absl::string_view result);
  // A packet the codec or the broker refused, by MQTT 5 reason name.
  void ProtocolError(absl::string_view reason);
  // Paused for a rate limit: a connection's reading ("publishes" or "bytes"), or a
  // listener's accepting ("accepts").
  void Throttled(absl::string_view limit);
  void HttpPublish(absl::string_view result);
  void ShadowRequest(absl::string_view operation, bool accepted);
  // A shadow request over its shadow's quota (--max-shadow-requests-per-second), refused 429.
  void ShadowThrottled(absl::string_view operation);
  // A fleet provisioning request (ProvisioningForwarder), by AWS's API name
  // (CreateKeysAndCertificate, ...), and `result` "accepted", "rejected" or "throttled" (over
  // its rate limit, rejected with 429).
  void ProvisioningRequest(absl::string_view operation, absl::string_view result);
  // A device's AWS IoT Jobs request (JobsResponder): get, start-next, describe, update.
  void JobsRequest(absl::string_view operation, bool accepted);
  // A Device Defender metrics report (DefenderResponder), by format (json or cbor).
  void DefenderReport(absl::string_view format, bool accepted);
  // An STS request on the HTTP listeners (StsApi), by action and STS's error code or "ok".
  void StsRequest(absl::string_view action, absl::string_view result);
  // An action the client's policies refused (connect, publish, subscribe, ...).
  void Denied(absl::string_view action);
  // A TLS handshake's end: "full", "resumed" or "failed".
  void TlsHandshake(ListenerKind listener, absl::string_view result);
  // A CONNECT's lookup in the authenticator's caches: `cache` "certificate" or "policies",
  // `result` "hit", "shared" or "miss".
  void IdentityCache(absl::string_view cache, absl::string_view result);

  // Adds a thread's counts and zeroes them.
  void AddThreadStats(ThreadStats& stats);
  // Copies the broker's counters (monotonic) and gauges.
  void UpdateBroker(const BrokerCounters& counters, size_t sessions, size_t retained);
  void SetSessionQueues(size_t queued, size_t inflight);
  void SetStorePending(size_t pending);
  // --max-connections (0: no limit), for alerting before devices are turned away.
  void SetMaxConnections(int64_t max);
  // The endpoint's TLS certificate: a reload's `result` ("ok" or "failed"), and the
  // notAfter of the one in use.
  void EndpointCertificateReload(absl::string_view result);
  void SetEndpointCertificateExpiry(absl::Time not_after);
  void StoreError();

  // Among gateway replicas (Cluster): the NATS connection, the replicas heard from (this
  // one included), messages to and from the others, sessions moved in ("from_replica",
  // "from_store"; "none": asked for, found nowhere; "late": an answer after the client
  // went on without it), sessions here ended by their client's connect elsewhere, and
  // errors ("slow_consumer", "nats", "decode", "duplicate_node").
  void SetClusterConnected(bool connected);
  void SetClusterReplicas(size_t replicas);
  // Shared subscription groups with a member connected here, and on other replicas (as
  // their heartbeats said).
  void SetClusterSharedGroups(size_t here, size_t elsewhere);
  void ClusterMessages(bool out, uint64_t n = 1);
  void ClusterHandover(absl::string_view result);
  void ClusterTakeover();
  // Sessions of a replica that left or went silent, taken over here.
  void ClusterAdopted(int64_t sessions);
  // A shared group's turn taken here: a member here has it, it went on to a replica with a
  // member connected (those here all away), or no member here could take it (none is
  // left, or its session's queue is full: the broker's drops say which).
  enum class SharedTurnResult { kHere, kPassed, kDropped };
  void ClusterSharedTurn(SharedTurnResult result);
  void ClusterError(absl::string_view kind);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::gateway
