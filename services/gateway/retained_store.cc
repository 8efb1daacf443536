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
    return EraseLocked(levels, std::nullopt) ? PutResult::kChanged : PutResult::kUnchanged;
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
  node->message = message;
  if (message->expires_at_ms.has_value()) {
    ++expiring_;
    expiries_.push(Expiry{*message->expires_at_ms, message->topic});
    // Entries of messages replaced since are skipped when their time comes; when they
    // outnumber the live ones, the index is made again from the messages held (this one
    // included: it is in place already).
    if (expiries_.size() > 2 * expiring_ + 1024) RebuildExpiriesLocked();
  }
  return PutResult::kChanged;
}

bool RetainedStore::EraseLocked(const std::vector<absl::string_view>& levels,
                                std::optional<int64_t> expired_at) {
  // Walk down remembering the path, then prune the nodes left empty.
  std::vector<std::pair<Node*, absl::string_view>> path;
  Node* node = root_.get();
  for (absl::string_view level : levels) {
    auto it = node->children.find(level);
    if (it == node->children.end()) return false;
    path.emplace_back(node, level);
    node = it->second.get();
  }
  if (node->message == nullptr) return false;
  // Only the message that expired, not one that replaced it since.
  if (expired_at.has_value() && node->message->expires_at_ms != expired_at) return false;
  if (node->message->expires_at_ms.has_value()) --expiring_;
  node->message.reset();
  --size_;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    auto child = it->first->children.find(it->second);
    if (child->second->message != nullptr || !child->second->children.empty()) break;
    it->first->children.erase(child);
  }
  return true;
}

void RetainedStore::RebuildExpiriesLocked() {
  std::vector<Expiry> live;
  live.reserve(expiring_);
  std::vector<const Node*> stack{root_.get()};
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (n->message != nullptr && n->message->expires_at_ms.has_value()) {
      live.push_back(Expiry{*n->message->expires_at_ms, n->message->topic});
    }
    for (const auto& [level, child] : n->children) stack.push_back(child.get());
  }
  expiries_ = decltype(expiries_)(std::greater<Expiry>(), std::move(live));
}

size_t RetainedStore::DropExpired(int64_t now_ms) {
  absl::MutexLock l(&mu_);
  size_t dropped = 0;
  // By the expiry index: only the topics whose time has come are visited.
  while (!expiries_.empty() && expiries_.top().at_ms <= now_ms) {
    const Expiry e = expiries_.top();
    expiries_.pop();
    if (EraseLocked(absl::StrSplit(e.topic, '/'), e.at_ms)) ++dropped;
  }
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
