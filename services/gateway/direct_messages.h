// Direct messages, as AWS IoT Core's SendDirectMessage: one message to one connected
// client, on a topic it need not subscribe to (its policies must allow iot:Receive on it).
// Not for the rules, never retained, never queued for a client that is not connected.
// With a confirmation wait the message goes at QoS 1 and the answer comes with the client's
// PUBACK (DEADLINE_EXCEEDED when none comes in time); without, at QoS 0, once it is queued
// for the connection. The gateway's HTTP API (POST /connections/{clientId}/messages) and
// its gRPC Broker.SendDirectMessage both send through here.
//
//   DirectMessages direct(&broker, cluster, metrics_registry);   // cluster may be null
//   direct.Send(request, [](absl::Status s) { ... });
//   direct.Stop();  // before the servers stop: what still waits is answered UNAVAILABLE
//
// Errors: INVALID_ARGUMENT (client id, topic, timeout or a property), NOT_FOUND (not
// connected to any replica), PERMISSION_DENIED (no iot:Receive on the topic),
// RESOURCE_EXHAUSTED (payload over the limit, or the client's queue is full),
// DEADLINE_EXCEEDED (no PUBACK in time), UNAVAILABLE (stopping).
//
// Thread safety: Send, SendHere and Stop may be called from any thread. `done` runs once:
// on the calling thread, the thread of the connection that read the PUBACK, the timer's,
// or the one that asked the other replicas.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/grpc/executor.h"
#include "fleetcore/gateway/v1/gateway.pb.h"
#include "services/gateway/broker.h"
#include "services/gateway/message.h"

namespace prometheus {
template <typename T>
class Family;
class Counter;
class Registry;
}  // namespace prometheus

namespace fleetcore::gateway {

class Cluster;

// INVALID_ARGUMENT unless `client_id` is one AWS's connection APIs take: 1 to 128
// characters of UTF-8, not starting with $.
absl::Status CheckApiClientId(absl::string_view client_id);

class DirectMessages {
 public:
  using Done = std::function<void(absl::Status)>;

  // `cluster` (null: one gateway) and `metrics` may be null; `broker` and `cluster`
  // outlive this.
  DirectMessages(Broker* broker, Cluster* cluster, prometheus::Registry* metrics);
  ~DirectMessages();
  DirectMessages(const DirectMessages&) = delete;
  DirectMessages& operator=(const DirectMessages&) = delete;

  // Checks `request`, then sends it here, or through the replica its client is connected
  // to.
  void Send(const v1::SendDirectMessageRequest& request, Done done);
  // Another replica's request: false, and `done` not called, when the client is not
  // connected here.
  bool SendHere(const v1::SendDirectMessageRequest& request, Done done);

  // Answers every send still waiting for its PUBACK with UNAVAILABLE and stops the timer;
  // sends after it are answered UNAVAILABLE at once.
  void Stop();

 private:
  class Waiting;
  using Deadline = std::pair<absl::Time, std::shared_ptr<Waiting>>;
  struct Later {
    bool operator()(const Deadline& a, const Deadline& b) const { return a.first > b.first; }
  };
  // The message `request` describes; INVALID_ARGUMENT or RESOURCE_EXHAUSTED.
  absl::StatusOr<std::shared_ptr<Message>> ToMessage(const v1::SendDirectMessageRequest& request);
  void Deliver(absl::string_view client_id, std::shared_ptr<Message> message,
               absl::Duration confirm_within, Done done);
  // Whether the client is connected to this replica.
  bool ConnectedHere(const std::string& client_id) const;
  bool Stopping();
  // fleetcore_gateway_direct_messages_total's counter for `result`; null without metrics.
  prometheus::Counter* Counter(absl::string_view result);
  void Count(absl::string_view result);
  void Timer();

  Broker* const broker_;
  Cluster* const cluster_;
  prometheus::Family<prometheus::Counter>* results_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Deadline, std::vector<Deadline>, Later> deadlines_;  // guarded by mu_
  bool stopping_ = false;                                                  // guarded by mu_
  std::thread timer_;
  // Asks the other replicas (which blocks until the holder answers): off the callers'
  // threads.
  grpc_util::Executor askers_{2, /*max_queued=*/1000};
};

}  // namespace fleetcore::gateway
