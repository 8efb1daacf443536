// fleetcore-bench's MQTT scenarios: a single-threaded MQTT 3.1.1/5 client load (Boost.Asio,
// the gateway's own codec) that measures any broker, so the gateway and Mosquitto are
// measured by the same load in the same run.
//
//   mqtt-p2p      N publishers, each to its own topic with one subscriber
//   mqtt-fanin    N publishers, one subscriber to all their topics
//   mqtt-fanout   one publisher, N subscribers to its topic
//   mqtt-connect  connect, CONNACK, DISCONNECT, close, on `clients` parallel loops
//   mqtt-idle     open N connections and hold them idle (memory per connection)
//
// Messages carry their send time, so the receiver measures end-to-end latency (same
// machine, one clock). At --rate the publishers offer that many messages per second in
// total (open loop); at rate 0 they publish as fast as a window of messages not yet
// received allows (closed loop, the maximum rate). Bounded in time; loopback only.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace fleetcore::bench {

struct MqttOptions {
  std::string scenario;
  std::string host = "127.0.0.1";
  int port = 1883;
  // Subscribers connect here instead (another gateway replica than the publishers'); 0: port.
  int subscriber_port = 0;
  int version = 4;  // 4: MQTT 3.1.1, 5: MQTT 5
  int clients = 10;
  int qos = 0;
  int payload_size = 64;
  double rate = 0;  // messages (or connects) per second in total; 0: as fast as possible
  int window = 1000;  // closed loop: messages published and not yet received, per publisher
  absl::Duration duration = absl::Seconds(10);
  absl::Duration warmup = absl::Seconds(2);
  // TLS: trust `cafile`; present cert/key when given (mutual TLS).
  bool tls = false;
  std::string cafile;
  std::string cert;
  std::string key;
  // mqtt-idle: source addresses 127.0.0.1 .. 127.0.0.<sources>, beyond one address's ports.
  int sources = 1;
  std::string prefix = "bench";
  // mqtt-connect: 0 makes every connect a new client id (a device's first connect); N makes
  // the client ids cycle over N devices, so each connect is a device reconnecting.
  int devices = 0;
  // mqtt-connect over TLS: each device offers the session (ticket) of its previous
  // connection for resumption, as reconnecting devices do; otherwise every handshake is full.
  bool resume = false;
};

// Runs the scenario and returns its figures: sent, received, lost, messages per second,
// latency p50/p99/p999 in µs (or connects per second, or connections established).
absl::StatusOr<nlohmann::json> RunMqtt(const MqttOptions& options);

}  // namespace fleetcore::bench
