#include "common/mqtt/topic_tree.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/mqtt/codec.h"

namespace fleetcore::mqtt {

struct Member {
  uint64_t subscriber;
  SubscriptionOptions options;
};

struct Group {
  std::string share;  // "$share/{group}/{filter}"
  std::vector<Member> members;
  mutable std::atomic<uint64_t> turn{0};

  // The member whose turn it is, or the first after it that is available; not empty.
  const Member& Next(TopicTree::Available available) const {
    const size_t n = members.size();
    const uint64_t t = turn.fetch_add(1, std::memory_order_relaxed);
    const Member& first = members[t % n];
    if (available == nullptr || available(first.subscriber)) return first;
    for (size_t k = 1; k < n; ++k) {
      const Member& m = members[(t + k) % n];
      if (available(m.subscriber)) {
        // The next turn is the one after it: the turns of the members passed over are
        // shared by all the others, not all taken by the first one after them.
        turn.fetch_add(k, std::memory_order_relaxed);
        return m;
      }
    }
    return first;
  }
};

struct TopicTree::Node {
  absl::flat_hash_map<std::string, std::unique_ptr<Node>> children;  // exact levels
  std::unique_ptr<Node> plus;
  std::unique_ptr<Node> hash;
  std::vector<Member> members;
  absl::flat_hash_map<std::string, std::unique_ptr<Group>> groups;

  bool empty() const {
    return children.empty() && plus == nullptr && hash == nullptr && members.empty() &&
           groups.empty();
  }
};

bool ParseSharedFilter(absl::string_view filter, ParsedFilter* out) {
  if (!absl::StartsWith(filter, "$share/")) {
    out->share_group.clear();
    out->filter = std::string(filter);
    return true;
  }
  absl::string_view rest = filter.substr(7);
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos || slash == 0) return false;
  const absl::string_view group = rest.substr(0, slash);
  if (group.find_first_of("+#") != absl::string_view::npos) return false;
  const absl::string_view f = rest.substr(slash + 1);
  if (!ValidTopicFilter(f)) return false;
  out->share_group = std::string(group);
  out->filter = std::string(f);
  return true;
}

std::string SharedFilter(absl::string_view share_group, absl::string_view filter) {
  return absl::StrCat("$share/", share_group, "/", filter);
}

TopicTree::TopicTree() : root_(std::make_unique<Node>()) {}
TopicTree::~TopicTree() = default;

namespace {

// Inserts or replaces; true when new.
bool Upsert(std::vector<Member>& members, uint64_t subscriber, const SubscriptionOptions& o) {
  for (Member& m : members) {
    if (m.subscriber == subscriber) {
      m.options = o;
      return false;
    }
  }
  members.push_back({subscriber, o});
  return true;
}

bool Remove(std::vector<Member>& members, uint64_t subscriber) {
  auto it = std::find_if(members.begin(), members.end(),
                         [&](const Member& m) { return m.subscriber == subscriber; });
  if (it == members.end()) return false;
  *it = members.back();
  members.pop_back();
  return true;
}

}  // namespace

bool TopicTree::Subscribe(absl::string_view filter, absl::string_view share_group,
                          uint64_t subscriber, const SubscriptionOptions& options) {
  Node* node = root_.get();
  for (absl::string_view level : absl::StrSplit(filter, '/')) {
    std::unique_ptr<Node>* next;
    if (level == "+") {
      next = &node->plus;
    } else if (level == "#") {
      next = &node->hash;
    } else {
      next = &node->children[level];
    }
    if (*next == nullptr) *next = std::make_unique<Node>();
    node = next->get();
  }
  bool added;
  if (share_group.empty()) {
    added = Upsert(node->members, subscriber, options);
  } else {
    std::unique_ptr<Group>& g = node->groups[share_group];
    if (g == nullptr) {
      g = std::make_unique<Group>();
      g->share = SharedFilter(share_group, filter);
    }
    added = Upsert(g->members, subscriber, options);
  }
  if (added) ++size_;
  return added;
}

TopicTree::Node* TopicTree::Find(absl::string_view filter,
                                 std::vector<std::pair<Node*, std::string>>* path) const {
  Node* node = root_.get();
  for (absl::string_view level : absl::StrSplit(filter, '/')) {
    Node* next;
    if (level == "+") {
      next = node->plus.get();
    } else if (level == "#") {
      next = node->hash.get();
    } else {
      auto it = node->children.find(level);
      next = it == node->children.end() ? nullptr : it->second.get();
    }
    if (next == nullptr) return nullptr;
    if (path != nullptr) path->emplace_back(node, std::string(level));
    node = next;
  }
  return node;
}

bool TopicTree::Unsubscribe(absl::string_view filter, absl::string_view share_group,
                            uint64_t subscriber) {
  // The path, to prune empty nodes afterwards.
  std::vector<std::pair<Node*, std::string>> path;
  Node* node = Find(filter, &path);
  if (node == nullptr) return false;
  bool removed;
  if (share_group.empty()) {
    removed = Remove(node->members, subscriber);
  } else {
    auto it = node->groups.find(share_group);
    removed = it != node->groups.end() && Remove(it->second->members, subscriber);
    if (removed && it->second->members.empty()) node->groups.erase(it);
  }
  if (!removed) return false;
  --size_;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    Node* parent = it->first;
    const std::string& level = it->second;
    std::unique_ptr<Node>* child = level == "+"   ? &parent->plus
                                   : level == "#" ? &parent->hash
                                                  : &parent->children[level];
    if (*child == nullptr || !(*child)->empty()) break;
    if (level == "+" || level == "#") {
      child->reset();
    } else {
      parent->children.erase(level);
    }
  }
  return true;
}

namespace {

struct Matcher {
  std::vector<absl::string_view> levels;
  void* ctx;
  TopicTree::MatchFn fn;
  bool shared;
  TopicTree::Available available;

  template <typename NodeT>
  void Emit(const NodeT& node) const {
    for (const Member& m : node.members) fn(ctx, m.subscriber, m.options, {});
    if (!shared) return;
    for (const auto& [name, group] : node.groups) {
      if (group->members.empty()) continue;
      const Member& m = group->Next(available);
      fn(ctx, m.subscriber, m.options, group->share);
    }
  }

  template <typename NodeT>
  void Walk(const NodeT& node, size_t i) const {
    // '$' topics are not matched by a wildcard in the first level.
    const bool dollar = i == 0 && !levels[0].empty() && levels[0][0] == '$';
    if (node.hash != nullptr && !dollar) Emit(*node.hash);  // '#' matches here and below
    if (i == levels.size()) {
      Emit(node);
      return;
    }
    auto it = node.children.find(levels[i]);
    if (it != node.children.end()) Walk(*it->second, i + 1);
    if (node.plus != nullptr && !dollar) Walk(*node.plus, i + 1);
  }
};

}  // namespace

void TopicTree::MatchImpl(absl::string_view topic, void* ctx, MatchFn fn, bool shared,
                          Available available) const {
  Matcher m{{}, ctx, fn, shared, available};
  m.levels = absl::StrSplit(topic, '/');
  m.Walk(*root_, 0);
}

bool TopicTree::PickShared(absl::string_view filter, absl::string_view share_group,
                           uint64_t* subscriber, SubscriptionOptions* options,
                           Available available) const {
  const Node* node = Find(filter, nullptr);
  if (node == nullptr) return false;
  auto it = node->groups.find(share_group);
  if (it == node->groups.end() || it->second->members.empty()) return false;
  const Member& m = it->second->Next(available);
  *subscriber = m.subscriber;
  *options = m.options;
  return true;
}

bool TopicTree::HasAvailableShared(absl::string_view filter, absl::string_view share_group,
                                   Available available) const {
  const Node* node = Find(filter, nullptr);
  if (node == nullptr) return false;
  auto it = node->groups.find(share_group);
  if (it == node->groups.end()) return false;
  return std::any_of(it->second->members.begin(), it->second->members.end(),
                     [&](const Member& m) { return available(m.subscriber); });
}

void TopicTree::SharedMembers(absl::string_view filter, absl::string_view share_group,
                              std::vector<uint64_t>* out) const {
  const Node* node = Find(filter, nullptr);
  if (node == nullptr) return;
  auto it = node->groups.find(share_group);
  if (it == node->groups.end()) return;
  for (const Member& m : it->second->members) out->push_back(m.subscriber);
}

}  // namespace fleetcore::mqtt
