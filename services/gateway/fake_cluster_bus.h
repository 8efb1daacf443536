// ClusterBus in memory for tests: every FakeClusterBus on one FakeBusServer is a replica's
// connection to the same NATS. Subjects match as NATS matches them ('*' one token, '>' the
// rest), a queue group's messages go to its members in turn, and one thread delivers
// everything in publishing order. Cut() plays a lost connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "services/gateway/cluster_bus.h"

namespace fleetcore::gateway {

class FakeBusServer {
 public:
  FakeBusServer();
  ~FakeBusServer();  // delivers nothing more

  // Whether NATS subject `subject` matches subscription subject `pattern`.
  static bool Matches(absl::string_view pattern, absl::string_view subject);
  // Waits until everything published so far has been delivered.
  void Settle();
  // While held, what is published waits (to line messages up behind one another).
  void Hold(bool held);
  // Messages published and not delivered yet.
  size_t pending();
  // Live queue-group subscriptions to exactly `subject`.
  size_t queue_subscriptions(const std::string& subject);

  struct Sub {
    const void* owner;
    std::string subject;
    std::string queue;
    ClusterBus::Handler handler;
    bool active = true;
  };

 private:
  friend class FakeClusterBus;
  struct Pending {
    const void* from;
    bool no_echo = false;
    std::string subject;
    std::string data;
    std::string reply;
  };
  void Run();

  std::recursive_mutex subs_mu_;  // held while a handler runs
  std::vector<std::shared_ptr<Sub>> subs_;
  std::map<std::string, size_t> turns_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_;
  uint64_t published_ = 0;
  uint64_t delivered_ = 0;
  bool held_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

class FakeClusterBus final : public ClusterBus {
 public:
  // `no_echo`: what it publishes does not reach its own subscriptions (NATS's no_echo).
  explicit FakeClusterBus(FakeBusServer* server, bool no_echo = false)
      : server_(server), no_echo_(no_echo) {}
  ~FakeClusterBus() override;

  absl::Status Publish(absl::string_view subject, absl::string_view data,
                       absl::string_view reply = {}) override;
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                          const std::string& queue,
                                                          Handler handler) override;
  std::string NewInbox() override;
  bool connected() const override;

  // While cut, what this bus publishes is lost and nothing reaches its subscriptions.
  void Cut(bool cut);

 private:
  FakeBusServer* const server_;
  const bool no_echo_;
  std::atomic<bool> cut_{false};
  std::atomic<uint64_t> inboxes_{0};
};

}  // namespace fleetcore::gateway
