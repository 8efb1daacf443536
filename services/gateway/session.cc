#include "services/gateway/session.h"

#include <algorithm>
#include <utility>

namespace fleetcore::gateway {
namespace {

bool Expired(const Message& m, int64_t now_ms) {
  return m.expires_at_ms.has_value() && *m.expires_at_ms <= now_ms;
}

}  // namespace

Session::Session(std::string client_id, uint64_t id, GatewayStore* store,
                 SessionSettings settings)
    : client_id_(std::move(client_id)), id_(id), store_(store), settings_(settings) {}

void Session::SetPersistence(mqtt::Version version, uint32_t expiry_interval) {
  absl::MutexLock l(&mu_);
  version_ = version;
  expiry_interval_ = expiry_interval;
}

uint32_t Session::expiry_interval() const {
  absl::MutexLock l(&mu_);
  return expiry_interval_;
}

bool Session::persistent() const {
  absl::MutexLock l(&mu_);
  return persistent_locked();
}

void Session::SetReceiveCheck(std::shared_ptr<const ReceiveCheck> check) {
  absl::MutexLock l(&mu_);
  receive_check_ = std::move(check);
}

mqtt::Version Session::version() const {
  absl::MutexLock l(&mu_);
  return version_;
}

Session::DeliverResult Session::Deliver(const MessagePtr& message, uint8_t qos, bool retain,
                                        std::vector<uint32_t> subscription_ids, int64_t now_ms,
                                        absl::string_view share) {
  if (Expired(*message, now_ms)) return DeliverResult::kExpired;
  std::shared_ptr<Outlet> wake;
  std::shared_ptr<Outlet> kick;
  ForwardFn forward;
  DeliverResult result = DeliverResult::kQueued;
  {
    absl::MutexLock l(&mu_);
    if (forward_) {
      forward = forward_;  // moved to another replica: called below, unlocked
    } else if (dedupe_ && message->cluster_id != 0 &&
               !seen_.insert(message->cluster_id).second) {
      return DeliverResult::kNotQueued;  // given once already
    } else if (outlet_ == nullptr && qos == 0) {
      return DeliverResult::kNotQueued;
    } else if (receive_check_ != nullptr && !receive_check_->MayReceive(message->topic)) {
      return DeliverResult::kNotAllowed;
    } else if (queue_.size() >= settings_.max_queued) {
      // A connected client that lets QoS 1/2 messages pile up cannot keep up: it is
      // disconnected (once); a persistent session keeps what it holds.
      if (qos > 0 && outlet_ != nullptr && !kicked_) {
        kicked_ = true;
        kick = outlet_;
      }
      result = DeliverResult::kDroppedFull;
    } else {
      Entry& e = queue_.emplace_back();
      e.message = message;
      e.qos = qos;
      e.retain = retain;
      e.subscription_ids = std::move(subscription_ids);
      e.share = std::string(share);
      if (outlet_ == nullptr) {
        StoreEntry(e);
      } else if (!woken_) {
        woken_ = true;
        wake = outlet_;
      }
    }
  }
  if (forward) {
    forward(message, qos, retain, std::move(subscription_ids));
    return DeliverResult::kQueued;
  }
  if (wake != nullptr) wake->Wake();
  if (kick != nullptr) kick->Kick(mqtt::reason::kQuotaExceeded, WillPolicy::kPublish);
  return result;
}

std::shared_ptr<const Session::ReceiveCheck> Session::receive_check() const {
  absl::MutexLock l(&mu_);
  return receive_check_;
}

bool Session::SharedBacklogDue() {
  if (!shared_backlog_.load(std::memory_order_relaxed)) return false;
  absl::MutexLock l(&mu_);
  return queue_.size() <= settings_.max_queued / 4 &&
         shared_backlog_.exchange(false, std::memory_order_relaxed);
}

void Session::TakeMarkedLocked(absl::FunctionRef<bool(Entry&)> take) {
  // Those sent before the client went away and not acknowledged first (the oldest); a
  // QoS 2 message the client has (released) stays.
  for (std::deque<Entry>* entries : {&inflight_, &queue_}) {
    std::deque<Entry> kept;
    for (Entry& e : *entries) {
      if (!e.share.empty() && !e.released && take(e)) {
        Forget(e);
      } else {
        kept.push_back(std::move(e));
      }
    }
    entries->swap(kept);
  }
}

std::vector<MessagePtr> Session::TakeShared(absl::string_view share, size_t max,
                                            absl::FunctionRef<bool(const Message&)> take) {
  std::vector<MessagePtr> out;
  absl::MutexLock l(&mu_);
  if (outlet_ != nullptr || forward_) return out;
  TakeMarkedLocked([&](Entry& e) {
    if (out.size() == max || e.share != share || !take(*e.message)) return false;
    out.push_back(std::move(e.message));
    return true;
  });
  return out;
}

std::vector<std::pair<std::string, MessagePtr>> Session::TakeAllShared() {
  std::vector<std::pair<std::string, MessagePtr>> out;
  absl::MutexLock l(&mu_);
  // The group gets those sent and not acknowledged again: at least once.
  TakeMarkedLocked([&](Entry& e) {
    out.emplace_back(std::move(e.share), std::move(e.message));
    return true;
  });
  return out;
}

StoredMessage Session::ToStored(Entry& e) {
  if (e.seq == 0) e.seq = next_seq_++;
  return StoredMessage{.seq = e.seq,
                       .message = e.message,
                       .qos = e.qos,
                       .retain = e.retain,
                       .subscription_ids = e.subscription_ids,
                       .packet_id = e.packet_id,
                       .released = e.released,
                       .share = e.share};
}

void Session::StoreEntry(Entry& e) {
  if (store_ == nullptr || !persistent_locked() || e.qos == 0) return;
  store_->PutMessage(client_id_, ToStored(e));
}

void Session::Forget(const Entry& e) {
  if (store_ != nullptr && e.seq > 0) store_->DeleteMessage(client_id_, e.seq);
}

std::shared_ptr<Outlet> Session::Attach(std::shared_ptr<Outlet> outlet,
                                        uint16_t receive_maximum) {
  std::shared_ptr<Outlet> previous;
  {
    absl::MutexLock l(&mu_);
    previous = std::move(outlet_);
    outlet_ = outlet;
    ++generation_;
    detached_at_ms_.reset();
    disconnect_reason_.clear();
    kicked_ = false;
    woken_ = true;
    window_ = std::min<uint16_t>(receive_maximum == 0 ? 65535 : receive_maximum,
                                 settings_.max_inflight);
    for (Entry& e : inflight_) e.resend = true;
  }
  outlet->Wake();
  return previous;
}

bool Session::Detach(const Outlet* outlet, int64_t now_ms, std::string reason) {
  std::vector<std::shared_ptr<DeliveryReceipt>> lost;
  const bool detached = DetachAndCollect(outlet, now_ms, std::move(reason), &lost);
  for (const std::shared_ptr<DeliveryReceipt>& r : lost) r->Lost();
  return detached;
}

bool Session::DetachAndCollect(const Outlet* outlet, int64_t now_ms, std::string reason,
                               std::vector<std::shared_ptr<DeliveryReceipt>>* lost) {
  absl::MutexLock l(&mu_);
  if (outlet_.get() != outlet) return false;
  outlet_.reset();
  woken_ = false;
  detached_at_ms_ = now_ms;
  disconnect_reason_ = std::move(reason);
  for (const std::deque<Entry>* entries : {&inflight_, &queue_}) {
    for (const Entry& e : *entries) {
      if (e.message->receipt != nullptr) lost->push_back(e.message->receipt);
    }
  }
  if (!persistent_locked()) {
    // The session ends with its connection: nothing to keep.
    for (const Entry& e : inflight_) Forget(e);
    for (const Entry& e : queue_) Forget(e);
    inflight_.clear();
    queue_.clear();
    return true;
  }
  // QoS 0 messages not yet written go with the connection, as they would if they had
  // arrived a moment later (AWS keeps QoS 1 only); kept, they would reach the client on its
  // return but not after a gateway restart, since they are never stored. So do direct
  // messages waiting for their PUBACK: they are for the connected client only, and their
  // sender is told (DeliveryReceipt::Lost) rather than the client surprised on its return.
  auto gone = [](const Entry& e) { return e.qos == 0 || e.message->receipt != nullptr; };
  for (std::deque<Entry>* entries : {&inflight_, &queue_}) {
    for (const Entry& e : *entries) {
      if (gone(e)) Forget(e);
    }
    entries->erase(std::remove_if(entries->begin(), entries->end(), gone), entries->end());
  }
  // Messages queued while connected were only in memory; from now on they are stored.
  // Entries already stored keep their row (their packet identifier is updated).
  for (Entry& e : inflight_) {
    if (!Expired(*e.message, now_ms)) StoreEntry(e);
  }
  for (Entry& e : queue_) {
    if (!Expired(*e.message, now_ms)) StoreEntry(e);
  }
  return true;
}

bool Session::attached() const {
  absl::MutexLock l(&mu_);
  return outlet_ != nullptr;
}

uint64_t Session::generation() const {
  absl::MutexLock l(&mu_);
  return generation_;
}

std::shared_ptr<Outlet> Session::outlet() const {
  absl::MutexLock l(&mu_);
  return outlet_;
}

std::string Session::disconnect_reason() const {
  absl::MutexLock l(&mu_);
  return disconnect_reason_;
}

std::optional<int64_t> Session::detached_at_ms() const {
  absl::MutexLock l(&mu_);
  return detached_at_ms_;
}

StoredSession Session::MoveOut(int64_t now_ms, ForwardFn forward,
                               std::shared_ptr<Outlet>* kicked) {
  StoredSession out;
  std::vector<std::shared_ptr<DeliveryReceipt>> lost;
  {
    absl::MutexLock l(&mu_);
    out.record = RecordLocked(detached_at_ms_.has_value() ? detached_at_ms_ : now_ms);
    will_.reset();
    auto add = [&](Entry& e) {
      if (e.message->receipt != nullptr) {
        lost.push_back(e.message->receipt);  // ended with the connection, as in Detach
      } else if (e.qos > 0 && !Expired(*e.message, now_ms)) {
        out.messages.push_back(ToStored(e));
      }
    };
    for (Entry& e : inflight_) add(e);
    for (Entry& e : queue_) add(e);
    // Nothing of it is this replica's to store any more: no Forget.
    inflight_.clear();
    queue_.clear();
    *kicked = std::move(outlet_);
    outlet_.reset();
    ++generation_;
    forward_ = std::move(forward);
  }
  for (const std::shared_ptr<DeliveryReceipt>& r : lost) r->Lost();
  return out;
}

void Session::StartDedupe(std::vector<uint64_t> seen) {
  absl::MutexLock l(&mu_);
  dedupe_ = true;
  seen_.insert(seen.begin(), seen.end());
}

void Session::EndDedupe() {
  absl::MutexLock l(&mu_);
  dedupe_ = false;
  seen_.clear();
}

uint16_t Session::NextPacketId() {
  // Identifiers go out in sequence, so the ones in use lie between the oldest in-flight
  // entry's and the last one given; with a window below 65535 the next never collides.
  last_packet_id_ = last_packet_id_ == 65535 ? 1 : last_packet_id_ + 1;
  return last_packet_id_;
}

void Session::TakeSendable(size_t max, int64_t now_ms, std::vector<Outgoing>* out,
                           size_t* expired) {
  absl::MutexLock l(&mu_);
  woken_ = false;
  size_t taken = 0;
  for (Entry& e : inflight_) {
    if (taken == max) break;
    if (!e.resend) continue;
    e.resend = false;
    out->push_back(Outgoing{.message = e.message,
                            .qos = e.qos,
                            .retain = e.retain,
                            .dup = !e.released,
                            .release = e.released,
                            .packet_id = e.packet_id,
                            .subscription_ids = e.subscription_ids});
    ++taken;
  }
  while (taken < max && !queue_.empty()) {
    Entry& e = queue_.front();
    if (Expired(*e.message, now_ms)) {
      Forget(e);
      queue_.pop_front();
      ++*expired;
      continue;
    }
    if (e.qos > 0 && inflight_.size() >= window_) break;
    Outgoing& o = out->emplace_back();
    o.message = e.message;
    o.qos = e.qos;
    o.retain = e.retain;
    if (e.qos == 0) {
      o.subscription_ids = std::move(e.subscription_ids);
      queue_.pop_front();
    } else {
      e.packet_id = NextPacketId();
      o.packet_id = e.packet_id;
      o.subscription_ids = e.subscription_ids;
      inflight_.push_back(std::move(e));
      queue_.pop_front();
    }
    ++taken;
  }
  // More is waiting behind `max`: the connection asks again after writing.
  if (taken == max && !queue_.empty()) woken_ = true;
}

std::deque<Session::Entry>::iterator Session::FindInflight(uint16_t packet_id) {
  return std::find_if(inflight_.begin(), inflight_.end(),
                      [&](const Entry& e) { return e.packet_id == packet_id; });
}

bool Session::Puback(uint16_t packet_id) {
  std::shared_ptr<Outlet> wake;
  std::shared_ptr<DeliveryReceipt> receipt;
  {
    absl::MutexLock l(&mu_);
    auto it = FindInflight(packet_id);
    if (it == inflight_.end() || it->qos != 1) return false;
    receipt = it->message->receipt;
    Forget(*it);
    inflight_.erase(it);
    if (!queue_.empty() && outlet_ != nullptr && !woken_) {
      woken_ = true;
      wake = outlet_;
    }
  }
  // The window opened: the connection takes more on its next flush.
  if (wake != nullptr) wake->Wake();
  if (receipt != nullptr) receipt->Acknowledged();
  return true;
}

bool Session::Pubrec(uint16_t packet_id, bool failed) {
  absl::MutexLock l(&mu_);
  auto it = FindInflight(packet_id);
  if (it == inflight_.end() || it->qos != 2) return false;
  if (failed) {
    Forget(*it);
    inflight_.erase(it);
    return true;
  }
  if (!it->released) {
    it->released = true;
    if (it->seq > 0) StoreEntry(*it);
  }
  return true;
}

bool Session::Pubcomp(uint16_t packet_id) {
  std::shared_ptr<Outlet> wake;
  {
    absl::MutexLock l(&mu_);
    auto it = FindInflight(packet_id);
    if (it == inflight_.end() || !it->released) return false;
    Forget(*it);
    inflight_.erase(it);
    if (!queue_.empty() && outlet_ != nullptr && !woken_) {
      woken_ = true;
      wake = outlet_;
    }
  }
  if (wake != nullptr) wake->Wake();
  return true;
}

void Session::Abandon(uint16_t packet_id) {
  absl::MutexLock l(&mu_);
  auto it = FindInflight(packet_id);
  if (it == inflight_.end()) return;
  Forget(*it);
  inflight_.erase(it);
}

Session::InboundQos2 Session::Qos2Received(uint16_t packet_id, size_t max) {
  absl::MutexLock l(&mu_);
  if (inbound_qos2_.contains(packet_id)) return InboundQos2::kDuplicate;
  if (inbound_qos2_.size() >= max) return InboundQos2::kTooMany;
  inbound_qos2_.insert(packet_id);
  return InboundQos2::kNew;
}

bool Session::Qos2Released(uint16_t packet_id) {
  absl::MutexLock l(&mu_);
  return inbound_qos2_.erase(packet_id) > 0;
}

bool Session::AddSubscription(const std::string& filter, const Subscription& s) {
  absl::MutexLock l(&mu_);
  auto [it, inserted] = subscriptions_.insert_or_assign(filter, s);
  return inserted;
}

bool Session::RemoveSubscription(const std::string& filter) {
  absl::MutexLock l(&mu_);
  return subscriptions_.erase(filter) > 0;
}

bool Session::HasSubscription(const std::string& filter) const {
  absl::MutexLock l(&mu_);
  return subscriptions_.contains(filter);
}

size_t Session::subscription_count() const {
  absl::MutexLock l(&mu_);
  return subscriptions_.size();
}

absl::flat_hash_map<std::string, Session::Subscription> Session::subscriptions() const {
  absl::MutexLock l(&mu_);
  return subscriptions_;
}

void Session::SetPendingWill(std::optional<PendingWill> will) {
  absl::MutexLock l(&mu_);
  will_ = std::move(will);
}

std::optional<PendingWill> Session::TakePendingWill() {
  absl::MutexLock l(&mu_);
  std::optional<PendingWill> w = std::move(will_);
  will_.reset();
  return w;
}

SessionRecord Session::Record(std::optional<int64_t> disconnected_at_ms) const {
  absl::MutexLock l(&mu_);
  return RecordLocked(disconnected_at_ms);
}

SessionRecord Session::RecordLocked(std::optional<int64_t> disconnected_at_ms) const {
  SessionRecord r{.client_id = client_id_,
                  .version = version_,
                  .expiry_interval = expiry_interval_,
                  .disconnected_at_ms = disconnected_at_ms,
                  .disconnect_reason = disconnected_at_ms.has_value() ? disconnect_reason_ : "",
                  .will = will_};
  r.subscriptions.reserve(subscriptions_.size());
  for (const auto& [filter, s] : subscriptions_) {
    r.subscriptions.push_back(StoredSubscription{.filter = filter, .options = s.options});
  }
  std::sort(r.subscriptions.begin(), r.subscriptions.end(),
            [](const StoredSubscription& a, const StoredSubscription& b) {
              return a.filter < b.filter;
            });
  r.inbound_qos2.assign(inbound_qos2_.begin(), inbound_qos2_.end());
  std::sort(r.inbound_qos2.begin(), r.inbound_qos2.end());
  return r;
}

void Session::Restore(const StoredSession& stored) {
  absl::MutexLock l(&mu_);
  version_ = stored.record.version;
  expiry_interval_ = stored.record.expiry_interval;
  detached_at_ms_ = stored.record.disconnected_at_ms;
  disconnect_reason_ = stored.record.disconnect_reason;
  will_ = stored.record.will;
  inbound_qos2_.insert(stored.record.inbound_qos2.begin(), stored.record.inbound_qos2.end());
  for (const StoredMessage& m : stored.messages) {
    Entry e{.message = m.message,
            .qos = m.qos,
            .retain = m.retain,
            .subscription_ids = m.subscription_ids,
            .seq = m.seq,
            .packet_id = m.packet_id,
            .released = m.released,
            .share = m.share};
    next_seq_ = std::max(next_seq_, m.seq + 1);
    if (m.packet_id != 0) {
      last_packet_id_ = m.packet_id;
      inflight_.push_back(std::move(e));
    } else {
      queue_.push_back(std::move(e));
    }
  }
}

Session::Stats Session::stats() const {
  absl::MutexLock l(&mu_);
  return Stats{.queued = queue_.size(), .inflight = inflight_.size()};
}

}  // namespace fleetcore::gateway
