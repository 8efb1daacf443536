#include "services/gateway/message.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mqtt/codec.h"

namespace fleetcore::gateway {

void CopyMessageProperties(mqtt::Properties&& from, Message* to) {
  to->payload_format_indicator = from.payload_format_indicator;
  to->content_type = std::move(from.content_type);
  to->response_topic = std::move(from.response_topic);
  to->correlation_data = std::move(from.correlation_data);
  to->user_properties = std::move(from.user_properties);
}

void CopyMessageProperties(const Message& from, mqtt::Properties* to) {
  to->payload_format_indicator = from.payload_format_indicator;
  to->content_type = from.content_type;
  to->response_topic = from.response_topic;
  to->correlation_data = from.correlation_data;
  to->user_properties = from.user_properties;
}

void Seal(Message* message) {
  message->encoded_properties.clear();
  if (!message->payload_format_indicator && !message->content_type &&
      !message->response_topic && !message->correlation_data &&
      message->user_properties.empty()) {
    return;
  }
  mqtt::Properties p;
  CopyMessageProperties(*message, &p);
  mqtt::EncodePropertiesBody(p, &message->encoded_properties);
}

void AddUserProperties(const std::vector<mqtt::UserProperty>& extra, Message* message) {
  message->user_properties.insert(message->user_properties.end(), extra.begin(), extra.end());
  Seal(message);
}

std::string EncodeMessagePacket(const Message& m, uint8_t qos, bool retain) {
  // The packet identifier lives apart (a stored message's own column); the packet carries
  // a placeholder so that it decodes.
  mqtt::Publish p{.qos = qos,
                  .retain = retain,
                  .topic = m.topic,
                  .packet_id = static_cast<uint16_t>(qos > 0 ? 1 : 0),
                  .payload = m.payload};
  CopyMessageProperties(m, &p.properties);
  std::string out;
  mqtt::Encode(p, mqtt::Version::kV5, &out);
  return out;
}

absl::StatusOr<DecodedMessage> DecodeMessagePacket(absl::string_view packet) {
  mqtt::FrameHeader h;
  if (mqtt::ParseFrameHeader(packet, 0xFFFFFFFF, &h) != mqtt::FrameStatus::kComplete ||
      h.total_size() != packet.size()) {
    return absl::DataLossError("stored message is not a whole MQTT packet");
  }
  mqtt::Packet decoded;
  mqtt::DecodeError e;
  if (!mqtt::Decode(h.first_byte, packet.substr(h.header_size), mqtt::Version::kV5, &decoded,
                    &e) ||
      !std::holds_alternative<mqtt::Publish>(decoded)) {
    return absl::DataLossError(absl::StrCat("stored message does not decode: ", e.message));
  }
  mqtt::Publish& p = std::get<mqtt::Publish>(decoded);
  DecodedMessage out;
  out.message = std::make_shared<Message>();
  out.message->topic = std::move(p.topic);
  out.message->payload = std::move(p.payload);
  out.message->qos = p.qos;
  out.message->retain = p.retain;
  out.qos = p.qos;
  out.retain = p.retain;
  CopyMessageProperties(std::move(p.properties), out.message.get());
  return out;
}

}  // namespace fleetcore::gateway
