// The subscriptions of a broker as a trie of topic levels: matching a topic walks its levels
// once, whatever the number of subscriptions ('+' and '#' are children of their level), so
// it stays fast with a million of them. Shared subscriptions ($share/{group}/{filter}) sit
// at their filter's node as groups, each matching topic going to one member in turn (the
// next member that can take it now, when the caller says which can: see Available).
//
//   TopicTree tree;
//   tree.Subscribe("sensors/+/temp", "", /*subscriber=*/42, {.qos = 1});
//   tree.Match("sensors/kitchen/temp", [](uint64_t subscriber, const SubscriptionOptions& o) {
//     ...   // once per matching subscription (a subscriber may match more than once)
//   });
//
// Matching follows MQTT: '+' matches one level, '#' the rest including the parent level
// ("a/#" matches "a"), and neither matches a first level beginning with '$'.
//
// Thread safety: Match may run concurrently with other Match calls (shared groups' turn
// counters are atomic); Subscribe and Unsubscribe need exclusive access.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace fleetcore::mqtt {

struct SubscriptionOptions {
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;  // 0: none
  bool operator==(const SubscriptionOptions&) const = default;
};

// A filter split into its share group (empty when not shared) and the topic filter.
struct ParsedFilter {
  std::string share_group;
  std::string filter;
};
// "$share/g/a/b" -> {"g", "a/b"}; other filters unchanged. false when a $share filter is
// malformed (no group, a group with '+' '#' or '/', or an empty or invalid filter).
bool ParseSharedFilter(absl::string_view filter, ParsedFilter* out);
// Its inverse for a shared group: {"g", "a/b"} -> "$share/g/a/b".
std::string SharedFilter(absl::string_view share_group, absl::string_view filter);

class TopicTree {
 public:
  TopicTree();
  ~TopicTree();
  TopicTree(const TopicTree&) = delete;
  TopicTree& operator=(const TopicTree&) = delete;

  // Adds `subscriber`'s subscription to `filter` in `share_group` ("" for none), or
  // replaces its options. Returns true when it is new.
  bool Subscribe(absl::string_view filter, absl::string_view share_group, uint64_t subscriber,
                 const SubscriptionOptions& options);
  // Returns whether there was such a subscription.
  bool Unsubscribe(absl::string_view filter, absl::string_view share_group, uint64_t subscriber);

  // `share`: for a shared group's member, the group's filter as its clients send it
  // ("$share/{group}/{filter}"); empty for a plain subscription.
  using MatchFn = void (*)(void* ctx, uint64_t subscriber, const SubscriptionOptions& options,
                           absl::string_view share);
  // Whether a shared group's member can take a message now (a broker: its client is
  // connected). A member that cannot is passed over for the next one in turn that can; when
  // none can, the member whose turn it is takes it (a broker queues it in its session).
  using Available = bool (*)(uint64_t subscriber);
  // `shared` false: shared groups are left out (gateway replicas route those apart).
  // `available` null: every member can. `fn(subscriber, options)`, or with a third
  // argument, the `share` of MatchFn.
  template <typename F>
  void Match(absl::string_view topic, F&& fn, bool shared = true,
             Available available = nullptr) const {
    MatchImpl(
        topic, &fn,
        [](void* ctx, uint64_t s, const SubscriptionOptions& o, absl::string_view share) {
          auto& f = *static_cast<std::remove_reference_t<F>*>(ctx);
          if constexpr (std::is_invocable_v<decltype(f), uint64_t, const SubscriptionOptions&,
                                            absl::string_view>) {
            f(s, o, share);
          } else {
            f(s, o);
          }
        },
        shared, available);
  }

  // The member of `share_group` on exactly `filter` whose turn it is (the next call gives
  // the next one), passing over those not `available` as Match does; false when the group
  // has no member.
  bool PickShared(absl::string_view filter, absl::string_view share_group, uint64_t* subscriber,
                  SubscriptionOptions* options, Available available = nullptr) const;
  // Whether `share_group` on exactly `filter` has a member `available` says can take a
  // message now. The turn is left as it is.
  bool HasAvailableShared(absl::string_view filter, absl::string_view share_group,
                          Available available) const;

  // Every member of `share_group` on exactly `filter` (none: the group has none).
  void SharedMembers(absl::string_view filter, absl::string_view share_group,
                     std::vector<uint64_t>* out) const;

  // Subscriptions (shared members counted one by one).
  size_t size() const { return size_; }

 private:
  struct Node;
  void MatchImpl(absl::string_view topic, void* ctx, MatchFn fn, bool shared,
                 Available available) const;
  // The node of exactly `filter`, or null; `path` (may be null) gets each parent and the
  // level taken from it.
  Node* Find(absl::string_view filter, std::vector<std::pair<Node*, std::string>>* path) const;
  std::unique_ptr<Node> root_;
  size_t size_ = 0;
};

}  // namespace fleetcore::mqtt
