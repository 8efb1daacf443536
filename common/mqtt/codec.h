// Bytes to MQTT packets and back, for MQTT 3.1.1 and 5.0; pure (no I/O, no allocation
// beyond the packets themselves) and strict: malformed input is an error naming the MQTT 5
// reason code to disconnect with (a 3.1.1 client is simply disconnected).
//
//   FrameHeader h;
//   switch (ParseFrameHeader(buffer, max_packet_size, &h)) {
//     case FrameStatus::kIncomplete: read more;
//     case FrameStatus::kComplete:
//       if (!Decode(h.first_byte, buffer.substr(h.header_size, h.remaining_length), version,
//                   &packet, &error)) disconnect(error.reason_code);
//     ...
//   }
//   std::string out;
//   Encode(Puback{...}, Version::kV5, &out);
//
// Thread safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/mqtt/packet.h"

namespace fleetcore::mqtt {

struct DecodeError {
  uint8_t reason_code = reason::kMalformedPacket;  // kMalformedPacket, kProtocolError, ...
  std::string message;
};

struct FrameHeader {
  uint8_t first_byte = 0;
  uint32_t remaining_length = 0;
  size_t header_size = 0;  // fixed header bytes: 2 to 5
  size_t total_size() const { return header_size + remaining_length; }
};

enum class FrameStatus {
  kIncomplete,  // read more
  kComplete,    // the whole packet is in `data`
  kTooLarge,    // over `max_packet_size` (MQTT 5: disconnect with 0x95)
  kMalformed,   // the remaining length is not a valid variable byte integer
};

FrameStatus ParseFrameHeader(absl::string_view data, uint32_t max_packet_size, FrameHeader* out);

// Decodes one packet from its first byte and its body (the remaining length bytes). CONNECT
// carries its own version; every other packet is decoded for `version`.
bool Decode(uint8_t first_byte, absl::string_view body, Version version, Packet* out,
            DecodeError* error);

// Appends the encoding of `packet` for `version` (MQTT 5 fields are left out for 3.1.1).
void Encode(const Packet& packet, Version version, std::string* out);

// A PUBLISH's fixed and variable header, for `payload_size` bytes of payload that the
// caller writes after it (fan-out sends one shared payload with many headers).
void EncodePublishHeader(const Publish& publish, size_t payload_size, Version version,
                         std::string* out);

// The same for a broker's fan-out, without building a Publish: `properties` is the
// encoded property bytes (EncodePropertiesBody, without the length prefix; ignored for
// 3.1.1).
struct PublishHeader {
  bool dup = false;
  uint8_t qos = 0;
  bool retain = false;
  absl::string_view topic;
  uint16_t packet_id = 0;
  absl::string_view properties;
};
void EncodePublishHeader(const PublishHeader& header, size_t payload_size, Version version,
                         std::string* out);
// Appends `properties` encoded without their length prefix.
void EncodePropertiesBody(const Properties& properties, std::string* out);

// Checks shared by the codec and the broker.
// Well-formed UTF-8 without U+0000 (MQTT's UTF-8 strings).
bool ValidUtf8(absl::string_view s);
// A PUBLISH topic name: non-empty, no '+' or '#', valid UTF-8, at most 65535 bytes.
bool ValidTopicName(absl::string_view topic);
// A topic filter: '#' only last and alone in its level, '+' alone in its level.
bool ValidTopicFilter(absl::string_view filter);

}  // namespace fleetcore::mqtt
