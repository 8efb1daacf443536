// How a service sends MQTT messages to devices: through the gateway's Broker API
// (BrokerPublisher), or a fake in tests. Publishing never blocks on the gateway.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fleetcore::broker {

class Publisher {
 public:
  using Message = std::pair<std::string, std::string>;  // topic, payload
  virtual ~Publisher() = default;
  virtual void Publish(std::string topic, std::string payload) = 0;
  // The messages of one change, in order (a shadow update's accepted, delta and documents).
  virtual void PublishAll(std::vector<Message> messages) {
    for (Message& m : messages) Publish(std::move(m.first), std::move(m.second));
  }
};

}  // namespace fleetcore::broker
