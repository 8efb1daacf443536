#include "services/gateway/message.h"

#include <utility>

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

}  // namespace fleetcore::gateway
