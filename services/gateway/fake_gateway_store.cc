#include "services/gateway/fake_gateway_store.h"

#include <algorithm>
#include <map>
#include <utility>

namespace fleetcore::gateway {

FakeGatewayStore::FakeGatewayStore() : data_(std::make_shared<Data>()) {}

FakeGatewayStore::FakeGatewayStore(const FakeGatewayStore& shared, std::string node)
    : data_(shared.data_), node_(std::move(node)) {}

absl::StatusOr<StoreSnapshot> FakeGatewayStore::Load() {
  absl::MutexLock l(&data_->mu);
  StoreSnapshot s;
  for (const auto& [topic, m] : data_->retained) s.retained.push_back(m);
  for (const auto& [id, owned] : data_->sessions) {
    if (owned.owner == node_) s.sessions.push_back(owned.session);
  }
  return s;
}

void FakeGatewayStore::PutRetained(MessagePtr message) {
  absl::MutexLock l(&data_->mu);
  data_->retained[message->topic] = std::move(message);
}

void FakeGatewayStore::DeleteRetained(std::string topic) {
  absl::MutexLock l(&data_->mu);
  data_->retained.erase(topic);
}

void FakeGatewayStore::DeleteExpiredRetained(int64_t now_ms) {
  absl::MutexLock l(&data_->mu);
  std::erase_if(data_->retained, [&](const auto& entry) {
    const std::optional<int64_t>& expires = entry.second->expires_at_ms;
    return expires.has_value() && *expires <= now_ms;
  });
}

void FakeGatewayStore::PutSession(SessionRecord record) {
  absl::MutexLock l(&data_->mu);
  auto it = data_->sessions.find(record.client_id);
  if (it == data_->sessions.end()) {
    it = data_->sessions.emplace(record.client_id, OwnedSession{.owner = node_}).first;
  } else if (it->second.owner != node_) {
    return;  // another replica's now
  }
  it->second.session.record = std::move(record);
}

void FakeGatewayStore::DeleteSession(std::string client_id) {
  absl::MutexLock l(&data_->mu);
  auto it = data_->sessions.find(client_id);
  if (it != data_->sessions.end() && it->second.owner == node_) data_->sessions.erase(it);
}

void FakeGatewayStore::PutMessage(std::string client_id, StoredMessage message) {
  absl::MutexLock l(&data_->mu);
  auto it = data_->sessions.find(client_id);
  // As the SQL: no message without its session, none for another replica's.
  if (it == data_->sessions.end() || it->second.owner != node_) return;
  std::vector<StoredMessage>& ms = it->second.session.messages;
  auto pos = std::lower_bound(ms.begin(), ms.end(), message.seq,
                              [](const StoredMessage& m, int64_t seq) { return m.seq < seq; });
  if (pos != ms.end() && pos->seq == message.seq) {
    *pos = std::move(message);
  } else {
    ms.insert(pos, std::move(message));
  }
}

void FakeGatewayStore::DeleteMessage(std::string client_id, int64_t seq) {
  absl::MutexLock l(&data_->mu);
  auto it = data_->sessions.find(client_id);
  if (it == data_->sessions.end() || it->second.owner != node_) return;
  std::erase_if(it->second.session.messages,
                [&](const StoredMessage& m) { return m.seq == seq; });
}

void FakeGatewayStore::ClaimSession(StoredSession session) {
  absl::MutexLock l(&data_->mu);
  std::sort(session.messages.begin(), session.messages.end(),
            [](const StoredMessage& a, const StoredMessage& b) { return a.seq < b.seq; });
  const std::string id = session.record.client_id;
  data_->sessions[id] = OwnedSession{.owner = node_, .session = std::move(session)};
}

absl::StatusOr<std::optional<GatewayStore::OwnedSession>> FakeGatewayStore::LoadSession(
    const std::string& client_id) {
  absl::MutexLock l(&data_->mu);
  auto it = data_->sessions.find(client_id);
  if (it == data_->sessions.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::vector<StoredSession>> FakeGatewayStore::LoadSessionsOf(
    const std::string& owner) {
  absl::MutexLock l(&data_->mu);
  std::vector<StoredSession> out;
  for (const auto& [id, owned] : data_->sessions) {
    if (owned.owner == owner) out.push_back(owned.session);
  }
  return out;
}

absl::StatusOr<int64_t> FakeGatewayStore::DeleteExpiredSessionsOf(
    const std::vector<std::string>& live) {
  absl::MutexLock l(&data_->mu);
  const int64_t now = absl::ToUnixMillis(absl::Now());
  return static_cast<int64_t>(std::erase_if(data_->sessions, [&](const auto& entry) {
    const OwnedSession& o = entry.second;
    const SessionRecord& r = o.session.record;
    return std::find(live.begin(), live.end(), o.owner) == live.end() &&
           r.disconnected_at_ms.has_value() && r.expiry_interval != 0xFFFFFFFF &&
           *r.disconnected_at_ms + int64_t{r.expiry_interval} * 1000 < now;
  }));
}

bool FakeGatewayStore::has_retained(const std::string& topic) const {
  absl::MutexLock l(&data_->mu);
  return data_->retained.contains(topic);
}

size_t FakeGatewayStore::message_count(const std::string& client_id) const {
  absl::MutexLock l(&data_->mu);
  auto it = data_->sessions.find(client_id);
  return it == data_->sessions.end() ? 0 : it->second.session.messages.size();
}

bool FakeGatewayStore::has_session(const std::string& client_id) const {
  absl::MutexLock l(&data_->mu);
  return data_->sessions.contains(client_id);
}

std::string FakeGatewayStore::owner(const std::string& client_id) const {
  absl::MutexLock l(&data_->mu);
  auto it = data_->sessions.find(client_id);
  return it == data_->sessions.end() ? "" : it->second.owner;
}

}  // namespace fleetcore::gateway
