#include "services/gateway/fake_gateway_store.h"

#include <algorithm>
#include <utility>

namespace fleetcore::gateway {

absl::StatusOr<StoreSnapshot> FakeGatewayStore::Load() {
  absl::MutexLock l(&mu_);
  StoreSnapshot s;
  for (const auto& [topic, m] : retained_) s.retained.push_back(m);
  for (const auto& [id, session] : sessions_) s.sessions.push_back(session);
  return s;
}

void FakeGatewayStore::PutRetained(MessagePtr message) {
  absl::MutexLock l(&mu_);
  retained_[message->topic] = std::move(message);
}

void FakeGatewayStore::DeleteRetained(std::string topic) {
  absl::MutexLock l(&mu_);
  retained_.erase(topic);
}

void FakeGatewayStore::PutSession(SessionRecord record) {
  absl::MutexLock l(&mu_);
  StoredSession& s = sessions_[record.client_id];
  s.record = std::move(record);
}

void FakeGatewayStore::DeleteSession(std::string client_id) {
  absl::MutexLock l(&mu_);
  sessions_.erase(client_id);
}

void FakeGatewayStore::PutMessage(std::string client_id, StoredMessage message) {
  absl::MutexLock l(&mu_);
  auto it = sessions_.find(client_id);
  if (it == sessions_.end()) return;  // as the SQL: no message without its session
  std::vector<StoredMessage>& ms = it->second.messages;
  auto pos = std::lower_bound(ms.begin(), ms.end(), message.seq,
                              [](const StoredMessage& m, int64_t seq) { return m.seq < seq; });
  if (pos != ms.end() && pos->seq == message.seq) {
    *pos = std::move(message);
  } else {
    ms.insert(pos, std::move(message));
  }
}

void FakeGatewayStore::DeleteMessage(std::string client_id, int64_t seq) {
  absl::MutexLock l(&mu_);
  auto it = sessions_.find(client_id);
  if (it == sessions_.end()) return;
  std::erase_if(it->second.messages, [&](const StoredMessage& m) { return m.seq == seq; });
}

size_t FakeGatewayStore::message_count(const std::string& client_id) const {
  absl::MutexLock l(&mu_);
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? 0 : it->second.messages.size();
}

bool FakeGatewayStore::has_session(const std::string& client_id) const {
  absl::MutexLock l(&mu_);
  return sessions_.contains(client_id);
}

}  // namespace fleetcore::gateway
