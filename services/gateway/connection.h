// One client connection's MQTT protocol, whatever carries its bytes (TCP, TLS,
// WebSocket): CONNECT and the session, every packet from the client, and the flow of the
// session's messages to it. Transports derive from it and supply the I/O (transports.h);
// the protocol itself does no I/O, so the rules of MQTT live in one place.
//
// A connection runs on one I/O thread. Sessions wake it from any thread (Outlet).
#pragma once

#include <functional>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mqtt/codec.h"
#include "common/mqtt/packet.h"
#include "common/policy/actions.h"
#include "nlohmann/json_fwd.hpp"
#include "services/gateway/broker.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/http_publish.h"
#include "services/gateway/io_thread.h"
#include "services/gateway/output_queue.h"
#include "services/gateway/rate_bucket.h"
#include "services/gateway/session.h"

namespace fleetcore {
class IdGenerator;
}  // namespace fleetcore

namespace fleetcore::gateway {

// What every connection shares.
// What a client presented below MQTT: its TLS certificate chain, and over WebSocket the
// custom-authorizer values of the upgrade request.
struct PeerCertificates {
  // The SHA-256 of the leaf's DER (AWS's certificate id); empty without a certificate.
  std::string certificate_id;
  std::vector<std::string> chain_der;  // leaf first
  std::string server_name;             // SNI
  std::optional<std::map<std::string, std::string>> http_headers;
  std::string http_query;
  // A WebSocket upgrade signed with SigV4: what else it signed (Credentials).
  bool sigv4 = false;
  std::string http_method;
  std::string http_path;
  std::string http_body_sha256;
};

class Authenticator;
class ConnectThrottle;
class Identity;

// An API served on the HTTP listeners beside publish (the shadow's REST API, STS, retained
// messages).
class HttpApi {
 public:
  virtual ~HttpApi() = default;
  // Called once with the status code and body (of content_type()), from any thread.
  using Done = std::function<void(int status, std::string body)>;
  virtual bool Handles(absl::string_view target) const = 0;
  // `identity` is the caller's (null when the gateway authorizes nothing); `headers` are
  // valid during the call only.
  virtual void Handle(absl::string_view method, absl::string_view target,
                      const HeaderLookup& headers, std::string body, const Identity* identity,
                      Done done) = 0;
  virtual absl::string_view content_type() const { return "application/json"; }
  // The answer to a request whose credentials were refused (`status` says why), in the
  // API's own error format; by default the HTTPS publish API's JSON.
  virtual void Refuse(const absl::Status& status, absl::string_view trace_id, Done done);
};

// The MQTT connections open across the I/O threads (TCP, TLS, WebSocket; from accept to
// close, CONNECT or not), against --max-connections. Any thread.
class ConnectionCount {
 public:
  explicit ConnectionCount(int64_t max) : max_(max) {}
  // Whether a new connection must be refused (0: no limit). Checked before a connection is
  // made, so concurrent accepts on several listeners may pass the limit by a few.
  bool full() const { return max_ > 0 && open_.load(std::memory_order_relaxed) >= max_; }
  int64_t open() const { return open_.load(std::memory_order_relaxed); }
  int64_t max() const { return max_; }
  void Add() { open_.fetch_add(1, std::memory_order_relaxed); }
  void Remove() { open_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  const int64_t max_;
  std::atomic<int64_t> open_{0};
};

// Refuses a connection over --max-connections: counted in
// fleetcore_gateway_connects_total{result="max_connections"}, logged at most every 10 s.
// True when `count` is full (the caller then closes the socket).
bool RefuseOverLimit(ConnectionCount* count, GatewayMetrics* metrics, ListenerKind listener);

struct ConnectionContext {
  Broker* broker = nullptr;
  GatewayMetrics* metrics = nullptr;
  IdGenerator* ids = nullptr;
  // Served on the HTTP listeners beside publish, the first that Handles a target answering
  // it (the shadow's REST API, STS, retained messages).
  std::vector<HttpApi*> http_apis;
  // Decides who a client is and what it may do; null: everyone may do everything (tests).
  Authenticator* authenticator = nullptr;
  // Open connections against --max-connections; null: not counted (tests).
  ConnectionCount* connections = nullptr;
  // --max-connects-per-client-id-per-second; null: no limit.
  ConnectThrottle* connect_throttle = nullptr;
  // --max-accepts-per-second: connections each listener takes a second (one second's worth
  // of burst); more wait in the kernel's backlog. 0: no limit.
  int max_accepts_per_second = 0;
};

// What the admin API shows of a connection. Fixed once the connection is attached.
struct ConnectionInfo {
  std::string client_id;
  ListenerKind listener = ListenerKind::kMqtt;
  std::string remote_address;  // "ip:port"
  std::string local_address;   // "ip:port" of the gateway's end
  mqtt::Version version = mqtt::Version::kV311;
  bool clean_start = true;
  uint32_t keep_alive = 0;  // seconds, after clamping
  int64_t connected_at_ms = 0;
  std::optional<std::string> username;
  // SHA-256 of the client certificate's DER (AWS's certificate id), when one was given.
  std::string certificate_id;
};

class Connection : public Outlet, public ThreadClient,
                   public std::enable_shared_from_this<Connection> {
 public:
  Connection(const ConnectionContext& context, IoThread* thread, ListenerKind listener,
             std::string remote_address, std::string local_address);
  ~Connection() override;

  // Outlet: any thread.
  void Wake() override;
  void Kick(uint8_t reason, WillPolicy will) override;
  absl::string_view certificate_id() const override { return certificate_id_; }
  absl::string_view thing_name() const override { return thing_name_; }
  absl::string_view principal() const override { return principal_; }
  void RefreshAuthorization() override;

  // ThreadClient: on the connection's thread.
  void Flush() override;
  void Tick(int64_t now_ms) override;

  // Admin: any thread, once attached.
  const ConnectionInfo& info() const { return info_; }
  uint64_t messages_in() const { return messages_in_.load(std::memory_order_relaxed); }
  uint64_t messages_out() const { return messages_out_.load(std::memory_order_relaxed); }

 protected:
  // For transports, on the connection's thread.
  GatewayMetrics* metrics() const { return context_.metrics; }
  // The connection exists on its thread: its handshake and CONNECT timeouts run from here.
  void Open();
  // The transport is ready (after any TLS or WebSocket handshake).
  void Begin(PeerCertificates peer);
  // Bytes from the client.
  void OnData(const char* data, size_t size);
  // The transport wrote everything in out_: more may be taken from the session.
  void OnDrained();
  // The transport is closed (the peer left, an error, or after StartClose): exactly once.
  // `error`: a transport failure (a lost connection), not a close we asked for.
  void OnClosed(bool error);
  bool closing() const { return closing_; }
  // False while the client is over an inbound rate limit: the transport does not read
  // then, and ResumeReading is called when the client may send again.
  bool reading_allowed() const { return !throttled_; }
  IoThread* thread() const { return thread_; }
  const BrokerLimits& limits() const { return limits_; }

  // Implemented by transports.
  // out_ has bytes: write them (as far as the socket takes them now; the rest later).
  virtual void StartWrite() = 0;
  // Write what out_ holds (within a bound), then close and call OnClosed.
  virtual void StartClose() = 0;
  // Close now and call OnClosed.
  virtual void Abort() = 0;
  // Whether large payloads may go by reference (gathered writes); TLS wants them copied.
  virtual bool gather() const = 0;
  // Read again after a pause for a rate limit (the socket may hold data already).
  virtual void ResumeReading() = 0;

  OutputQueue out_;

 private:
  enum class State { kStarting, kAwaitConnect, kConnected, kClosed };

  void HandlePacket(uint8_t first_byte, absl::string_view body);
  void HandleConnect(mqtt::Connect& c);
  // A CONNECT that passed the protocol checks, waiting for its authentication.
  struct PendingConnect {
    mqtt::Connect connect;
    std::shared_ptr<Message> will;
    uint32_t expiry = 0;
    bool assigned = false;
  };
  void FinishConnect(PendingConnect p, absl::StatusOr<std::shared_ptr<const Identity>> identity);
  // The client is who it says and may connect: its session is attached and CONNACK sent.
  void Admit(PendingConnect p);
  // Whether the client's policies allow `action` on `resource`; logs and counts a denial.
  bool Authorized(policy::Action action, absl::string_view resource);
  // Publishes an AWS lifecycle event on $aws/events/{kind}/{event}/{clientId} with the
  // common fields added to `fields`.
  void Lifecycle(absl::string_view kind, absl::string_view event, nlohmann::json fields);
  std::string ClientIp() const;
  void RefuseConnect(uint8_t reason, absl::string_view result, const char* why);
  void HandlePublish(mqtt::Publish& p);
  void HandleAck(const mqtt::Ack& a);
  void HandleSubscribe(const mqtt::Subscribe& s);
  void HandleUnsubscribe(const mqtt::Unsubscribe& u);
  void HandleDisconnect(const mqtt::Disconnect& d);
  void Send(const mqtt::Packet& p);
  void EncodeOutgoing(const Outgoing& o, int64_t now_ns);
  // Ends the connection for a reason of the broker's: DISCONNECT (MQTT 5) and close.
  void Close(uint8_t reason, const char* why, WillPolicy will, absl::string_view lifecycle);
  void RequestFlush();
  bool PublishTopicAllowed(absl::string_view topic) const;
  // Whether a packet of `bytes` (a PUBLISH or another) is within the inbound rate limits
  // now. If not, reading pauses until it is, and the packet waits in in_.
  bool Admit(bool publish, size_t bytes);

  const ConnectionContext context_;
  Broker* const broker_;
  const BrokerLimits& limits_;
  IoThread* const thread_;
  ConnectionInfo info_;
  State state_ = State::kStarting;
  bool closing_ = false;
  // When the identity was last (re)authorized, for a custom authorizer's refresh.
  int64_t authorized_at_ms_ = 0;
  bool flush_requested_ = false;
  int64_t started_ms_ = 0;
  int64_t last_packet_ms_ = 0;
  int64_t closing_since_ms_ = 0;
  int64_t keep_alive_ms_ = 0;
  // The partial packet left over from the last read (empty most of the time).
  std::string in_;

  std::shared_ptr<Session> session_;
  MessagePtr will_;
  uint32_t will_delay_ = 0;
  std::optional<uint32_t> will_expiry_s_;
  WillPolicy will_policy_ = WillPolicy::kPublish;
  // AWS's disconnectReason for the lifecycle and the metrics.
  std::string close_reason_ = "CONNECTION_LOST";
  uint32_t client_max_packet_ = 0;        // 0: no limit
  bool problem_information_ = true;       // MQTT 5 Request Problem Information
  std::vector<std::string> topic_aliases_;  // inbound, by alias
  std::atomic<uint64_t> messages_in_{0};
  std::atomic<uint64_t> messages_out_{0};
  std::vector<Outgoing> batch_;
  // What a TLS client presented, until its CONNECT is authenticated.
  PeerCertificates peer_;
  // Fixed at Begin, read from any thread (KickCertificate).
  std::string certificate_id_;
  std::string thing_name_;  // set before the session is attached, then fixed
  std::string principal_;   // likewise
  // While a CONNECT is being authenticated, later packets wait in in_.
  bool paused_ = false;
  // The inbound rate limits' token buckets.
  RateBucket publish_tokens_;
  RateBucket byte_tokens_;
  // Over a rate limit: packets wait in in_ and the transport does not read.
  bool throttled_ = false;
  // Who the client is and what it may do; null when the gateway authorizes nothing.
  std::shared_ptr<const Identity> identity_;
  // The lifecycle events' sessionIdentifier and versionNumber of this connection.
  std::string session_identifier_;
  std::shared_ptr<const Publisher> publisher_;
  uint64_t version_number_ = 0;
};

}  // namespace fleetcore::gateway
