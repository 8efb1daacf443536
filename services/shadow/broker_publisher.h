// Publisher over the gateway's Broker.PublishBatch: messages queue (bounded) and one thread
// sends what has gathered in one call, in order, so an update answers without waiting for
// the gateway, a device sees accepted, delta and documents in the order AWS sends them, and
// a busy service makes one call for many updates. While the gateway is
// down, messages wait up to the queue's size; beyond it they are dropped and counted.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "services/shadow/shadow_core.h"

namespace grpc {
class Channel;
}
namespace prometheus {
class Registry;
}

namespace fleetcore::shadow {

class BrokerPublisher final : public Publisher {
 public:
  // `channel` reaches the gateway's gRPC API; `token` is its admin token (may be empty).
  BrokerPublisher(std::shared_ptr<grpc::Channel> channel, std::string token,
                  prometheus::Registry* metrics, size_t max_queued = 10000);
  ~BrokerPublisher() override;

  void Publish(std::string topic, std::string payload) override;
  // All of them queued at once, or none when the queue has no room for them all.
  void PublishAll(std::vector<Message> messages) override;

  // Waits until the queue is empty or `timeout` passed (shutdown).
  void Drain(absl::Duration timeout);

 private:
  struct Impl;
  void Run();

  std::unique_ptr<Impl> impl_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> queue_;
  bool stopping_ = false;
  bool sending_ = false;
  size_t max_queued_;
  std::thread thread_;
};

}  // namespace fleetcore::shadow
