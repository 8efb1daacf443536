// A message inside the gateway: what a PUBLISH (or Broker.Publish, or an HTTPS publish)
// carries from its publisher to every subscriber. One immutable Message is shared by all
// its deliveries, so fan-out never copies the payload per subscriber.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/mqtt/packet.h"

namespace fleetcore::gateway {

// Who published a message, for the rules engine's clientid() and principal(): made once
// per connection and shared by its messages.
struct Publisher {
  std::string client_id;  // empty: not MQTT (HTTPS, services)
  std::string principal;  // certificate id, custom authorizer principalId, or empty
  std::string source_ip;  // the client's address (the rules' sourceip()); empty: a service
};

// Told when the client acknowledges (PUBACK) a message sent to its session at QoS 1:
// SendDirectMessage's delivery confirmation. Any thread, never under the session's lock.
class DeliveryReceipt {
 public:
  virtual ~DeliveryReceipt() = default;
  virtual void Acknowledged() = 0;
  // The connection ended first: the message was dropped with it (a direct message is for
  // a connected client only, never sent again when the client returns).
  virtual void Lost() = 0;
};

struct Message {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  // The MQTT 5 properties that travel with the message to its subscribers (the others
  // belong to one hop: topic alias, subscription identifiers).
  std::optional<uint8_t> payload_format_indicator;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::vector<mqtt::UserProperty> user_properties;
  // When the message expires (Unix milliseconds); nullopt: never. Subscribers get the
  // remaining seconds as their Message Expiry Interval.
  std::optional<int64_t> expires_at_ms;
  // The publishing session (for No Local); 0 for messages from services and HTTPS.
  uint64_t origin = 0;
  // Among gateway replicas, the message's id: its replica's random tag and its number
  // there (ClusterId); 0 with one gateway. A session moving between replicas is given
  // each message once by it.
  uint64_t cluster_id = 0;
  // Null for messages from services.
  std::shared_ptr<const Publisher> publisher;
  // Monotonic nanoseconds when the gateway received it, for the delivery latency.
  int64_t received_ns = 0;
  // Unix milliseconds when it was published; kept for retained messages (their
  // lastModifiedTime).
  int64_t published_at_ms = 0;
  // The travelling properties above, encoded once for every MQTT 5 delivery (Seal).
  std::string encoded_properties;
  // Set for a direct message whose sender waits for the client's PUBACK; null otherwise.
  std::shared_ptr<DeliveryReceipt> receipt;
};

using MessagePtr = std::shared_ptr<const Message>;

// Copies the travelling properties between a message and a PUBLISH's properties.
void CopyMessageProperties(mqtt::Properties&& from, Message* to);
void CopyMessageProperties(const Message& from, mqtt::Properties* to);

// Encodes the travelling properties into encoded_properties; call once the message is
// complete, before sharing it.
void Seal(Message* message);

// Appends `extra` to the message's user properties (message enrichment) and seals it again.
void AddUserProperties(const std::vector<mqtt::UserProperty>& extra, Message* message);

// A message as an MQTT 5 PUBLISH packet with `qos` and `retain`, its properties included
// (its expiry not: a packet holds an interval, so that is kept apart as a time): how
// Postgres keeps messages and how gateway replicas pass them to each other.
std::string EncodeMessagePacket(const Message& m, uint8_t qos, bool retain);
struct DecodedMessage {
  std::shared_ptr<Message> message;  // not sealed yet
  uint8_t qos = 0;
  bool retain = false;
};
// DATA_LOSS when `packet` is not a whole PUBLISH.
absl::StatusOr<DecodedMessage> DecodeMessagePacket(absl::string_view packet);

}  // namespace fleetcore::gateway
