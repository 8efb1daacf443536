// The broker's limits and protocol settings. The defaults are AWS IoT Core's published
// quotas, so a device that works against AWS works against fleetcore unchanged; each is a
// flag of fleetcore-gateway (docs/operations.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fleetcore::gateway {

struct BrokerLimits {
  // PUBLISH and will payloads (AWS: 128 KB); larger ones close the connection (0x95).
  uint32_t max_payload_bytes = 128 * 1024;
  // Whole packets (AWS: 146 KB); also sent to MQTT 5 clients as Maximum Packet Size.
  uint32_t max_packet_bytes = 146 * 1024;
  // Topic names and filters (AWS: 256 bytes, 7 slashes; $aws/rules/{name}/ is not counted,
  // nor the two slashes of a $share/{group}/ prefix).
  uint32_t max_topic_bytes = 256;
  int max_topic_slashes = 7;
  int max_filters_per_subscribe = 8;
  int max_subscriptions_per_connection = 50;
  uint32_t max_client_id_bytes = 128;
  // 1 refuses QoS 2 as AWS does (MQTT 5 CONNACK Maximum QoS 1; QoS 2 subscriptions are
  // granted QoS 1; a QoS 2 PUBLISH closes the connection).
  uint8_t max_qos = 2;
  bool retain_available = true;
  // Keep-alive clamping (AWS: 1-29 s become 30 s; 0 and above 1200 s become 1200 s). With
  // keep_alive_max 0 the client's value is used as it is (0: no keep-alive), as Mosquitto
  // does. A connection silent for 1.5 times its keep-alive is closed (0x8D).
  absl::Duration keep_alive_min = absl::Seconds(30);
  absl::Duration keep_alive_max = absl::Seconds(1200);
  // How long a persistent session lives after its connection ends: the MQTT 3.1.1 value
  // and the ceiling of an MQTT 5 Session Expiry Interval (AWS: 1 hour by default).
  absl::Duration max_session_expiry = absl::Hours(1);
  // Unacknowledged QoS 1/2 messages towards a client (also capped by its Receive
  // Maximum), and the Receive Maximum the broker announces for QoS 2 from the client
  // (AWS: 100).
  uint16_t max_inflight = 100;
  // Topic aliases a client may use towards the broker (AWS: 8).
  uint16_t max_topic_aliases = 8;
  // Messages a session holds for its client beyond the in-flight window, connected or
  // not. When full: QoS 0 messages are dropped (counted), a newer QoS 1/2 message is
  // dropped (counted) and a connected client that cannot keep up is disconnected (0x97).
  uint32_t max_queued_messages = 1000;
  // Encoded bytes a connection may have waiting for its socket before the broker stops
  // moving messages from the session's queue to it.
  size_t max_outbound_bytes = 1 << 20;
  // Inbound rate limits per connection, 0 for none: PUBLISH packets a second, and bytes a
  // second of any packets, each with one second's worth of burst. A client over either is
  // not read until it is under again: TCP slows it down and nothing is dropped. (AWS: 100
  // publishes and 512 KB a second, dropping the publishes over.)
  uint32_t max_publishes_per_second = 0;
  uint32_t max_inbound_bytes_per_second = 0;
  // Retained messages held, 0 for no limit (AWS: 500,000 per account). At the limit a
  // retained message for a topic that has none is not kept: an MQTT 5 QoS 1/2 PUBLISH is
  // refused (0x97 quota exceeded), others are delivered without being retained. Replacing
  // or deleting a topic's retained message always works.
  uint32_t max_retained_messages = 0;
  // How long a new connection has to send CONNECT.
  absl::Duration connect_timeout = absl::Seconds(10);
};

// AWS's keep-alive rule over `requested` seconds.
absl::Duration EffectiveKeepAlive(const BrokerLimits& limits, uint16_t requested);

// Whether a topic name or filter is within the length and level limits (the syntax is
// checked by the codec). `filter` is the topic filter without any $share/{group}/ prefix.
bool WithinTopicLimits(const BrokerLimits& limits, absl::string_view topic);

// AWS's longest share name in a $share/{name}/{filter} subscription, in characters.
inline constexpr size_t kMaxShareNameChars = 128;
// Whether `name` (UTF-8) is that short.
bool WithinShareNameLimit(absl::string_view name);

// Whether a client may publish to `topic` at all (before its policies): any topic not
// starting with '$', and of AWS's reserved $aws/ topics the requests a service answers (the
// shadow's get, update and delete; fleet provisioning's create, create-from-csr and
// provision, in JSON or CBOR; the jobs requests; Device Defender's metrics reports). Clients
// cannot publish to other $ topics, as on AWS.
bool ClientMayPublishTo(absl::string_view topic);

// A shadow request (reference §1.2):
//   $aws/things/{thing}/shadow/{operation}
//   $aws/things/{thing}/shadow/name/{shadow}/{operation}
// with {operation} get, update or delete, and neither name empty.
struct ShadowTopic {
  std::string thing_name;
  std::string shadow_name;  // empty: the classic shadow
  std::string operation;    // get, update or delete
  std::string prefix;       // $aws/things/T/shadow[/name/S]
};
std::optional<ShadowTopic> ParseShadowTopic(absl::string_view topic);

// A fleet provisioning request (reference §2):
//   $aws/certificates/create/{fmt}                         operation "create"
//   $aws/certificates/create-from-csr/{fmt}                operation "create-from-csr"
//   $aws/provisioning-templates/{template}/provision/{fmt} operation "provision"
// with {fmt} json or cbor.
struct ProvisioningTopic {
  std::string operation;
  std::string template_name;  // "provision" only
  bool cbor = false;
};
std::optional<ProvisioningTopic> ParseProvisioningTopic(absl::string_view topic);

// A device's request to AWS IoT Jobs:
//   $aws/things/{thing}/jobs/get                operation "get" (GetPendingJobExecutions)
//   $aws/things/{thing}/jobs/start-next         operation "start-next"
//   $aws/things/{thing}/jobs/{jobId}/get        operation "describe" ({jobId} may be $next)
//   $aws/things/{thing}/jobs/{jobId}/update     operation "update"
struct JobsTopic {
  std::string thing_name;
  std::string job_id;     // describe and update only
  std::string operation;
};
std::optional<JobsTopic> ParseJobsTopic(absl::string_view topic);

// A Device Defender agent's metrics report (reference §7.8):
//   $aws/things/{thing}/defender/metrics/{json|cbor}
struct DefenderTopic {
  std::string thing_name;
  bool cbor = false;
};
std::optional<DefenderTopic> ParseDefenderTopic(absl::string_view topic);

}  // namespace fleetcore::gateway
