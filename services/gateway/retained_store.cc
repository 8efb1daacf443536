#include "services/gateway/retained_store.h"

#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_split.h"

namespace fleetcore::gateway {

struct RetainedStore::Node {
  absl::flat_hash_map<std::string, std::unique_ptr<Node>> children;
  MessagePtr message;
};

namespace {

bool Live(const MessagePtr& m, int64_t now_ms) {
  return m != nullptr && (!m->expires_at_ms.has_value() || *m->expires_at_ms > now_ms);
}

}  // namespace

RetainedStore::RetainedStore() : root_(std::make_unique<Node>()) {}
RetainedStore::~RetainedStore() = default;

RetainedStore::PutResult RetainedStore::Put(const MessagePtr& message, size_t max_messages) {
  const std::vector<absl::string_view> levels = absl::StrSplit(message->topic, '/');
  absl::MutexLock l(&mu_);
  if (message->payload.empty()) {
    // Walk down remembering the path, then prune the nodes left empty.
    std::vector<std::pair<Node*, absl::string_view>> path;
    Node* node = root_.get();
    for (absl::string_view level : levels) {
      auto it = node->children.find(level);
      if (it == node->children.end()) return PutResult::kUnchanged;
      path.emplace_back(node, level);
      node = it->second.get();
    }
    if (node->message == nullptr) return PutResult::kUnchanged;
    if (node->message->expires_at_ms.has_value()) --expiring_;
    node->message.reset();
    --size_;
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      auto child = it->first->children.find(it->second);
      if (child->second->message != nullptr || !child->second->children.empty()) break;
      it->first->children.erase(child);
    }
    return PutResult::kChanged;
  }
  if (max_messages != 0 && size_ >= max_messages && FindLocked(levels) == nullptr) {
    return PutResult::kFull;
  }
  Node* node = root_.get();
  for (absl::string_view level : levels) {
    std::unique_ptr<Node>& child = node->children[level];
    if (child == nullptr) child = std::make_unique<Node>();
    node = child.get();
  }
  if (node->message == nullptr) {
    ++size_;
  } else if (node->message->expires_at_ms.has_value()) {
    --expiring_;
  }
  if (message->expires_at_ms.has_value()) ++expiring_;
  node->message = message;
  return PutResult::kChanged;
}

size_t RetainedStore::DropExpired(int64_t now_ms) {
  absl::MutexLock l(&mu_);
  if (expiring_ == 0) return 0;
  // Every node, parents before children, without recursion (topics may be deep, as in
  // Match); then children before parents: a node left with nothing is erased by its parent.
  std::vector<Node*> order;
  std::vector<Node*> stack{root_.get()};
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    order.push_back(node);
    for (auto& [level, child] : node->children) stack.push_back(child.get());
  }
  size_t dropped = 0;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    absl::erase_if(node->children, [](const auto& child) {
      return child.second->message == nullptr && child.second->children.empty();
    });
    if (node->message != nullptr && !Live(node->message, now_ms)) {
      node->message.reset();
      ++dropped;
    }
  }
  size_ -= dropped;
  expiring_ -= dropped;
  return dropped;
}

bool RetainedStore::HasRoomFor(absl::string_view topic, size_t max_messages) const {
  if (max_messages == 0) return true;
  const std::vector<absl::string_view> levels = absl::StrSplit(topic, '/');
  absl::MutexLock l(&mu_);
  return size_ < max_messages || FindLocked(levels) != nullptr;
}

const MessagePtr* RetainedStore::FindLocked(const std::vector<absl::string_view>& levels) const {
  const Node* node = root_.get();
  for (absl::string_view level : levels) {
    auto it = node->children.find(level);
    if (it == node->children.end()) return nullptr;
    node = it->second.get();
  }
  return node->message != nullptr ? &node->message : nullptr;
}

void RetainedStore::Match(absl::string_view filter, int64_t now_ms,
                          std::vector<MessagePtr>* out) const {
  const std::vector<absl::string_view> levels = absl::StrSplit(filter, '/');
  absl::MutexLock l(&mu_);
  // Depth-first over (node, level index); '#' takes the node and everything below it.
  struct Frame {
    const Node* node;
    size_t level;
  };
  std::vector<Frame> stack{{root_.get(), 0}};
  std::vector<const Node*> subtree;
  while (!stack.empty()) {
    const Frame f = stack.back();
    stack.pop_back();
    if (f.level == levels.size()) {
      if (Live(f.node->message, now_ms)) out->push_back(f.node->message);
      continue;
    }
    const absl::string_view level = levels[f.level];
    const bool at_root = f.level == 0;
    if (level == "#") {
      if (!at_root && Live(f.node->message, now_ms)) out->push_back(f.node->message);
      for (const auto& [name, child] : f.node->children) {
        if (at_root && !name.empty() && name[0] == '$') continue;
        subtree.push_back(child.get());
      }
      while (!subtree.empty()) {
        const Node* n = subtree.back();
        subtree.pop_back();
        if (Live(n->message, now_ms)) out->push_back(n->message);
        for (const auto& [name, child] : n->children) subtree.push_back(child.get());
      }
    } else if (level == "+") {
      for (const auto& [name, child] : f.node->children) {
        if (at_root && !name.empty() && name[0] == '$') continue;
        stack.push_back({child.get(), f.level + 1});
      }
    } else {
      auto it = f.node->children.find(level);
      if (it != f.node->children.end()) stack.push_back({it->second.get(), f.level + 1});
    }
  }
}

MessagePtr RetainedStore::Get(absl::string_view topic) const {
  const std::vector<absl::string_view> levels = absl::StrSplit(topic, '/');
  absl::MutexLock l(&mu_);
  const MessagePtr* found = FindLocked(levels);
  return found != nullptr ? *found : nullptr;
}

std::vector<MessagePtr> RetainedStore::List(absl::string_view after, size_t limit) const {
  // Listing is an admin operation: collect, then order by topic.
  std::map<std::string, MessagePtr> all;
  {
    absl::MutexLock l(&mu_);
    std::vector<const Node*> stack{root_.get()};
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      if (n->message != nullptr && n->message->topic > after) {
        all.emplace(n->message->topic, n->message);
      }
      for (const auto& [name, child] : n->children) stack.push_back(child.get());
    }
  }
  std::vector<MessagePtr> out;
  for (auto& [topic, m] : all) {
    if (out.size() == limit) break;
    out.push_back(std::move(m));
  }
  return out;
}

size_t RetainedStore::size() const {
  absl::MutexLock l(&mu_);
  return size_;
}

}  // namespace fleetcore::gateway
