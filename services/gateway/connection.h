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
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mqtt/codec.h"
#include "common/mqtt/packet.h"
#include "services/gateway/broker.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/io_thread.h"
#include "services/gateway/output_queue.h"
#include "services/gateway/session.h"

namespace fleetcore {
class IdGenerator;
}  // namespace fleetcore

namespace fleetcore::gateway {

// What every connection shares.
// An API served on the HTTP listeners beside publish (the shadow's REST API).
class HttpApi {
 public:
  virtual ~HttpApi() = default;
  // Called once with the status code and JSON body, from any thread.
  using Done = std::function<void(int status, std::string body)>;
  virtual bool Handles(absl::string_view target) const = 0;
  virtual void Handle(absl::string_view method, absl::string_view target, std::string body,
                      Done done) = 0;
};

struct ConnectionContext {
  Broker* broker = nullptr;
  GatewayMetrics* metrics = nullptr;
  IdGenerator* ids = nullptr;
  // Served on the HTTP listeners; null: publish only.
  HttpApi* http_api = nullptr;
};

// What the admin API shows of a connection. Fixed once the connection is attached.
struct ConnectionInfo {
  std::string client_id;
  ListenerKind listener = ListenerKind::kMqtt;
  std::string remote_address;  // "ip:port"
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
             std::string remote_address);
  ~Connection() override;

  // Outlet: any thread.
  void Wake() override;
  void Kick(uint8_t reason, WillPolicy will) override;

  // ThreadClient: on the connection's thread.
  void Flush() override;
  void Tick(int64_t now_ms) override;

  // Admin: any thread, once attached.
  const ConnectionInfo& info() const { return info_; }
  uint64_t messages_in() const { return messages_in_.load(std::memory_order_relaxed); }
  uint64_t messages_out() const { return messages_out_.load(std::memory_order_relaxed); }

 protected:
  // For transports, on the connection's thread.
  // The connection exists on its thread: its handshake and CONNECT timeouts run from here.
  void Open();
  // The transport is ready (after any TLS or WebSocket handshake).
  void Begin(std::string certificate_id);
  // Bytes from the client.
  void OnData(const char* data, size_t size);
  // The transport wrote everything in out_: more may be taken from the session.
  void OnDrained();
  // The transport is closed (the peer left, an error, or after StartClose): exactly once.
  // `error`: a transport failure (a lost connection), not a close we asked for.
  void OnClosed(bool error);
  bool closing() const { return closing_; }
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

  OutputQueue out_;

 private:
  enum class State { kStarting, kAwaitConnect, kConnected, kClosed };

  void HandlePacket(uint8_t first_byte, absl::string_view body);
  void HandleConnect(mqtt::Connect& c);
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

  const ConnectionContext context_;
  Broker* const broker_;
  const BrokerLimits& limits_;
  IoThread* const thread_;
  ConnectionInfo info_;
  State state_ = State::kStarting;
  bool closing_ = false;
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
};

}  // namespace fleetcore::gateway
