// The retained messages, one per topic, in a trie of topic levels so that a subscription's
// filter finds its retained messages by walking the filter, not by scanning every topic.
//
//   retained.Put(message);                     // an empty payload deletes
//   retained.Match("sensors/+/temp", now_ms, &out);
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
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
  // took memory and counted against a limit); returns how many. Visits only their topics
  // (an index of expiry times is kept beside the trie).
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
  struct Expiry {
    int64_t at_ms;
    std::string topic;
    bool operator>(const Expiry& o) const { return at_ms > o.at_ms; }
  };
  // The retained message of the topic of `levels`, or null.
  const MessagePtr* FindLocked(const std::vector<absl::string_view>& levels) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the topic's message (only if it expires at `expired_at`, when given) and the
  // nodes it leaves empty; whether there was one.
  bool EraseLocked(const std::vector<absl::string_view>& levels, std::optional<int64_t> expired_at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes `expiries_` again from the messages held (dropping entries of replaced ones).
  void RebuildExpiriesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::unique_ptr<Node> root_ ABSL_GUARDED_BY(mu_);
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  size_t expiring_ ABSL_GUARDED_BY(mu_) = 0;  // messages held that have an expiry
  // When each message with an expiry expires, soonest first; entries of messages replaced
  // or deleted since stay until their time (or a rebuild) and are then skipped.
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<Expiry>> expiries_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace fleetcore::gateway
