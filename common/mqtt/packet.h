// MQTT 3.1.1 and 5.0 control packets as plain values (OASIS MQTT 3.1.1 and 5.0). The codec
// (codec.h) turns bytes into these and back; the broker works on them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace fleetcore::mqtt {

enum class Version : uint8_t { kV311 = 4, kV5 = 5 };

enum class PacketType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
  kAuth = 15,
};

// MQTT 5 reason codes used by the broker (3.1.1 CONNACK return codes are mapped from these).
namespace reason {
inline constexpr uint8_t kSuccess = 0x00;
inline constexpr uint8_t kGrantedQos1 = 0x01;
inline constexpr uint8_t kGrantedQos2 = 0x02;
inline constexpr uint8_t kDisconnectWithWill = 0x04;
inline constexpr uint8_t kNoMatchingSubscribers = 0x10;
inline constexpr uint8_t kNoSubscriptionExisted = 0x11;
inline constexpr uint8_t kUnspecifiedError = 0x80;
inline constexpr uint8_t kMalformedPacket = 0x81;
inline constexpr uint8_t kProtocolError = 0x82;
inline constexpr uint8_t kImplementationSpecificError = 0x83;
inline constexpr uint8_t kUnsupportedProtocolVersion = 0x84;
inline constexpr uint8_t kClientIdentifierNotValid = 0x85;
inline constexpr uint8_t kBadUserNameOrPassword = 0x86;
inline constexpr uint8_t kNotAuthorized = 0x87;
inline constexpr uint8_t kServerUnavailable = 0x88;
inline constexpr uint8_t kServerBusy = 0x89;
inline constexpr uint8_t kBanned = 0x8A;
inline constexpr uint8_t kServerShuttingDown = 0x8B;
inline constexpr uint8_t kBadAuthenticationMethod = 0x8C;
inline constexpr uint8_t kKeepAliveTimeout = 0x8D;
inline constexpr uint8_t kSessionTakenOver = 0x8E;
inline constexpr uint8_t kTopicFilterInvalid = 0x8F;
inline constexpr uint8_t kTopicNameInvalid = 0x90;
inline constexpr uint8_t kPacketIdentifierInUse = 0x91;
inline constexpr uint8_t kPacketIdentifierNotFound = 0x92;
inline constexpr uint8_t kReceiveMaximumExceeded = 0x93;
inline constexpr uint8_t kTopicAliasInvalid = 0x94;
inline constexpr uint8_t kPacketTooLarge = 0x95;
inline constexpr uint8_t kMessageRateTooHigh = 0x96;
inline constexpr uint8_t kQuotaExceeded = 0x97;
inline constexpr uint8_t kAdministrativeAction = 0x98;
inline constexpr uint8_t kPayloadFormatInvalid = 0x99;
inline constexpr uint8_t kRetainNotSupported = 0x9A;
inline constexpr uint8_t kQosNotSupported = 0x9B;
inline constexpr uint8_t kUseAnotherServer = 0x9C;
inline constexpr uint8_t kServerMoved = 0x9D;
inline constexpr uint8_t kSharedSubscriptionsNotSupported = 0x9E;
inline constexpr uint8_t kConnectionRateExceeded = 0x9F;
inline constexpr uint8_t kMaximumConnectTime = 0xA0;
inline constexpr uint8_t kSubscriptionIdentifiersNotSupported = 0xA1;
inline constexpr uint8_t kWildcardSubscriptionsNotSupported = 0xA2;
}  // namespace reason

struct UserProperty {
  std::string key;
  std::string value;
  bool operator==(const UserProperty&) const = default;
};

// Every MQTT 5 property; which ones a packet may carry is checked by the decoder.
struct Properties {
  std::optional<uint8_t> payload_format_indicator;        // 0x01
  std::optional<uint32_t> message_expiry_interval;        // 0x02
  std::optional<std::string> content_type;                // 0x03
  std::optional<std::string> response_topic;              // 0x08
  std::optional<std::string> correlation_data;            // 0x09 (binary)
  std::vector<uint32_t> subscription_identifiers;         // 0x0B
  std::optional<uint32_t> session_expiry_interval;        // 0x11
  std::optional<std::string> assigned_client_identifier;  // 0x12
  std::optional<uint16_t> server_keep_alive;              // 0x13
  std::optional<std::string> authentication_method;       // 0x15
  std::optional<std::string> authentication_data;         // 0x16 (binary)
  std::optional<uint8_t> request_problem_information;     // 0x17
  std::optional<uint32_t> will_delay_interval;            // 0x18
  std::optional<uint8_t> request_response_information;    // 0x19
  std::optional<std::string> response_information;        // 0x1A
  std::optional<std::string> server_reference;            // 0x1C
  std::optional<std::string> reason_string;               // 0x1F
  std::optional<uint16_t> receive_maximum;                // 0x21
  std::optional<uint16_t> topic_alias_maximum;            // 0x22
  std::optional<uint16_t> topic_alias;                    // 0x23
  std::optional<uint8_t> maximum_qos;                     // 0x24
  std::optional<uint8_t> retain_available;                // 0x25
  std::vector<UserProperty> user_properties;              // 0x26
  std::optional<uint32_t> maximum_packet_size;            // 0x27
  std::optional<uint8_t> wildcard_subscription_available;     // 0x28
  std::optional<uint8_t> subscription_identifier_available;   // 0x29
  std::optional<uint8_t> shared_subscription_available;       // 0x2A

  bool operator==(const Properties&) const = default;
};

struct Will {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  Properties properties;
  bool operator==(const Will&) const = default;
};

struct Connect {
  Version version = Version::kV311;
  bool clean_start = true;
  uint16_t keep_alive = 0;
  std::string client_id;
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;
  Properties properties;
  bool operator==(const Connect&) const = default;
};

struct Connack {
  bool session_present = false;
  uint8_t reason_code = 0;  // MQTT 5 reason code; 3.1.1 return codes are mapped on encoding
  Properties properties;
  bool operator==(const Connack&) const = default;
};

struct Publish {
  bool dup = false;
  uint8_t qos = 0;
  bool retain = false;
  std::string topic;
  uint16_t packet_id = 0;  // QoS 1 and 2 only
  Properties properties;
  std::string payload;
  bool operator==(const Publish&) const = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP.
struct Ack {
  PacketType type = PacketType::kPuback;
  uint16_t packet_id = 0;
  uint8_t reason_code = 0;
  Properties properties;
  bool operator==(const Ack&) const = default;
};

struct SubscriptionRequest {
  std::string filter;
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  bool operator==(const SubscriptionRequest&) const = default;
};

struct Subscribe {
  uint16_t packet_id = 0;
  std::vector<SubscriptionRequest> subscriptions;
  Properties properties;
  bool operator==(const Subscribe&) const = default;
};

struct Suback {
  uint16_t packet_id = 0;
  std::vector<uint8_t> reason_codes;  // 3.1.1: 0, 1, 2 or 0x80
  Properties properties;
  bool operator==(const Suback&) const = default;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  std::vector<std::string> filters;
  Properties properties;
  bool operator==(const Unsubscribe&) const = default;
};

struct Unsuback {
  uint16_t packet_id = 0;
  std::vector<uint8_t> reason_codes;  // MQTT 5 only
  Properties properties;
  bool operator==(const Unsuback&) const = default;
};

struct Pingreq {
  bool operator==(const Pingreq&) const = default;
};
struct Pingresp {
  bool operator==(const Pingresp&) const = default;
};

struct Disconnect {
  uint8_t reason_code = 0;
  Properties properties;
  bool operator==(const Disconnect&) const = default;
};

struct Auth {
  uint8_t reason_code = 0;
  Properties properties;
  bool operator==(const Auth&) const = default;
};

using Packet = std::variant<Connect, Connack, Publish, Ack, Subscribe, Suback, Unsubscribe,
                            Unsuback, Pingreq, Pingresp, Disconnect, Auth>;

PacketType TypeOf(const Packet& packet);
const char* TypeName(PacketType type);

}  // namespace fleetcore::mqtt
