// The retained messages, one per topic, in a trie of topic levels so that a subscription's
// filter finds its retained messages by walking the filter, not by scanning every topic.
//
//   retained.Put(message);                     // an empty payload deletes
//   retained.Match("sensors/+/temp", now_ms, &out);
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/gateway/message.h"

namespace fleetcore::gateway {

class RetainedStore {
 public:
  RetainedStore();
  ~RetainedStore();

  // Stores `message` as its topic's retained message, or deletes that when the payload is
  // empty. Returns whether a message was stored or deleted.
  bool Put(const MessagePtr& message);

  // Appends the unexpired retained messages whose topics match `filter` (MQTT matching,
  // with '$' topics hidden from leading wildcards).
  void Match(absl::string_view filter, int64_t now_ms, std::vector<MessagePtr>* out) const;

  // The retained message of one topic, if any.
  MessagePtr Get(absl::string_view topic) const;

  // All retained messages in topic order from after `after`, at most `limit`.
  std::vector<MessagePtr> List(absl::string_view after, size_t limit) const;

  size_t size() const;

 private:
  struct Node;
  mutable absl::Mutex mu_;
  std::unique_ptr<Node> root_ ABSL_GUARDED_BY(mu_);
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fleetcore::gateway
