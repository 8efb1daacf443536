// The message system gateway replicas talk through: subjects, wildcard and queue-group
// subscriptions, replies, as NATS has them (NatsClusterBus), or in memory for tests
// (FakeClusterBus). At most once: a message sent while the bus is cut off may be lost.
//
//   auto sub = bus->Subscribe("fleetcore.gw.m.>", "", [](const BusMessage& m) { ... });
//   bus->Publish("fleetcore.gw.m.a.b", data);
//
// Thread safety: every method may be called from any thread. Handlers run on the bus's
// threads, one message at a time per subscription and in the order sent by any one
// publisher.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetcore::gateway {

struct BusMessage {
  absl::string_view subject;
  absl::string_view data;
  absl::string_view reply;  // where an answer goes; empty: none wanted
};

class ClusterBus {
 public:
  using Handler = std::function<void(const BusMessage&)>;
  // Ends its subscription when destroyed; its handler is not called afterwards.
  class Subscription {
   public:
    virtual ~Subscription() = default;
  };

  virtual ~ClusterBus() = default;

  // UNAVAILABLE when the bus cannot take it (closed; a NATS client buffers while it
  // reconnects).
  virtual absl::Status Publish(absl::string_view subject, absl::string_view data,
                               absl::string_view reply = {}) = 0;
  // `queue` non-empty: each message goes to one of the subscriptions that share the name.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                                  const std::string& queue,
                                                                  Handler handler) = 0;
  // A subject prefix no one else receives on, for answers ("<inbox>.<n>").
  virtual std::string NewInbox() = 0;
  // Whether it is connected now.
  virtual bool connected() const = 0;
};

}  // namespace fleetcore::gateway
