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

  enum class PutResult { kUnchanged, kChanged, kFull };
  // Stores `message` as its topic's retained message, or deletes that when the payload is
  // empty: kChanged when a message was stored or deleted. With `max_messages` (0: no
  // limit) held already, a message for a topic that has none is not stored: kFull.
  PutResult Put(const MessagePtr& message, size_t max_messages);

  // Whether Put(`topic`'s message, `max_messages`) would store it now.
  bool HasRoomFor(absl::string_view topic, size_t max_messages) const;

  // Removes the messages expired at `now_ms` (no subscriber gets them any more, but they
  // took memory and counted against a limit); returns how many. Walks every topic, when
  // any message held has an expiry.
  size_t DropExpired(int64_t now_ms);

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
  // The retained message of the topic of `levels`, or null.
  const MessagePtr* FindLocked(const std::vector<absl::string_view>& levels) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::unique_ptr<Node> root_ ABSL_GUARDED_BY(mu_);
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  size_t expiring_ ABSL_GUARDED_BY(mu_) = 0;  // messages held that have an expiry
};

}  // namespace fleetcore::gateway
