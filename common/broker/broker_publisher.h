// Publisher over the gateway's Broker.PublishBatch: messages queue (bounded) and one thread
// sends what has gathered in one call, in order, so a change answers without waiting for
// the gateway, devices see a change's messages in the order they were given (a shadow
// update's accepted, delta and documents, as AWS sends them), and a busy service makes one
// call for many changes. While the gateway is down, messages wait up to the queue's size;
// beyond it they are dropped and counted. Used by the shadow service and the registry
// (its registry events).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "common/broker/publisher.h"

namespace grpc {
class Channel;
}
namespace prometheus {
class Registry;
}

namespace fleetcore::broker {

class BrokerPublisher final : public Publisher {
 public:
  struct Options {
    // The counter of messages by result (sent, failed, dropped), e.g.
    // "fleetcore_shadow_messages_total", and its help text.
    std::string metric_name;
    std::string metric_help;
    // What the messages are, for the logs ("shadow messages").
    std::string what;
    size_t max_queued = 10000;
  };
  // `channel` reaches the gateway's gRPC API; `token` is its admin token (may be empty).
  // `metrics` may be null.
  BrokerPublisher(std::shared_ptr<grpc::Channel> channel, std::string token,
                  prometheus::Registry* metrics, Options options);
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

}  // namespace fleetcore::broker
