#include "services/gateway/broker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "common/log/log.h"

namespace fleetcore::gateway {
namespace {

constexpr uint32_t kNeverExpires = 0xFFFFFFFF;

uint64_t Key(const Session* s) { return reinterpret_cast<uint64_t>(s); }
Session* FromKey(uint64_t key) { return reinterpret_cast<Session*>(key); }

struct MatchEntry {
  uint64_t subscriber;
  const mqtt::SubscriptionOptions* options;
};

}  // namespace

Broker::Broker(BrokerLimits limits, GatewayStore* store, const Clock* clock)
    : limits_(limits),
      store_(store),
      clock_(clock),
      session_settings_{.max_queued = limits.max_queued_messages,
                        .max_inflight = limits.max_inflight} {}

Broker::~Broker() {
  // Sessions die with the broker; the trie holds raw keys only.
  absl::MutexLock l(&sessions_mu_);
  sessions_.clear();
}

int64_t Broker::NowMs() const { return absl::ToUnixMillis(clock_->Now()); }

absl::Status Broker::Load() {
  if (store_ == nullptr) return absl::OkStatus();
  absl::StatusOr<StoreSnapshot> snapshot = store_->Load();
  if (!snapshot.ok()) return snapshot.status();
  const int64_t now = NowMs();
  for (const MessagePtr& m : snapshot->retained) {
    if (!m->expires_at_ms.has_value() || *m->expires_at_ms > now) retained_.Put(m);
  }
  std::vector<std::shared_ptr<Session>> ended;
  for (StoredSession& stored : snapshot->sessions) {
    // A session stored while attached lost its connection with the previous process.
    if (!stored.record.disconnected_at_ms.has_value()) stored.record.disconnected_at_ms = now;
    std::shared_ptr<Session> session;
    {
      absl::MutexLock l(&sessions_mu_);
      session = NewSession(stored.record.client_id);
      sessions_[stored.record.client_id] = session;
    }
    session->Restore(stored);
    for (const StoredSubscription& sub : stored.record.subscriptions) {
      mqtt::ParsedFilter parsed;
      if (!mqtt::ParseSharedFilter(sub.filter, &parsed)) continue;
      Subscribe(session, sub.filter, parsed, sub.options);
    }
    const uint32_t expiry = stored.record.expiry_interval;
    if (expiry != kNeverExpires) {
      const int64_t due = *stored.record.disconnected_at_ms + int64_t{expiry} * 1000;
      if (due <= now) {
        ended.push_back(session);
        continue;
      }
      Schedule(due, session);
    }
    if (stored.record.will.has_value()) Schedule(stored.record.will->due_ms, session);
  }
  for (const std::shared_ptr<Session>& s : ended) {
    counters_.sessions_expired.fetch_add(1, std::memory_order_relaxed);
    EndSession(s);
  }
  log::Info("state loaded", {{"retained", static_cast<int64_t>(retained_.size())},
                             {"sessions", static_cast<int64_t>(session_count())},
                             {"expired_sessions", static_cast<int64_t>(ended.size())}});
  return absl::OkStatus();
}

std::shared_ptr<Session> Broker::NewSession(const std::string& client_id) {
  return std::make_shared<Session>(client_id, next_session_id_++, store_, session_settings_);
}

Broker::Attached Broker::Attach(std::shared_ptr<Outlet> outlet, const ConnectParams& params) {
  Attached out;
  std::shared_ptr<Session> ended;
  std::shared_ptr<Outlet> previous;
  {
    absl::MutexLock l(&sessions_mu_);
    auto it = sessions_.find(params.client_id);
    if (it != sessions_.end() && !params.clean_start) {
      out.session = it->second;
      out.session_present = true;
    } else {
      if (it != sessions_.end()) ended = it->second;
      out.session = NewSession(params.client_id);
      sessions_[params.client_id] = out.session;
    }
  }
  if (ended != nullptr) {
    // Clean start: the old session ends (its connection, if any, is taken over).
    if (std::shared_ptr<Outlet> old = ended->outlet()) {
      old->Kick(mqtt::reason::kSessionTakenOver, WillPolicy::kPublish);
    }
    EndSession(ended);
  }
  Session& s = *out.session;
  if (out.session_present) {
    // A will waiting for its delay is not sent when the client comes back in time.
    s.TakePendingWill();
  }
  s.SetPersistence(params.version, params.expiry_interval);
  previous = s.Attach(outlet, params.receive_maximum);
  if (previous != nullptr) {
    previous->Kick(mqtt::reason::kSessionTakenOver, WillPolicy::kSessionResumed);
  }
  if (store_ != nullptr) {
    if (params.expiry_interval > 0) {
      store_->PutSession(s.Record(std::nullopt));
    } else if (out.session_present) {
      // A stored session resumed as a non-persistent one is no longer kept.
      store_->DeleteSession(params.client_id);
    }
  }
  return out;
}

void Broker::Detach(const std::shared_ptr<Session>& session, const Outlet* outlet,
                    MessagePtr will, uint32_t will_delay, WillPolicy policy) {
  const int64_t now = NowMs();
  const bool was_attached = session->Detach(outlet, now);
  // A session ended by a clean start or DeleteConnection while this connection was on it
  // is no longer the client id's: nothing of it is kept.
  bool current;
  {
    absl::MutexLock l(&sessions_mu_);
    auto it = sessions_.find(session->client_id());
    current = it != sessions_.end() && it->second == session;
  }
  const bool lives_on = was_attached && current && session->expiry_interval() > 0;
  if (will != nullptr) {
    bool publish_now = false;
    switch (policy) {
      case WillPolicy::kSuppress:
        break;
      case WillPolicy::kSessionResumed:
        publish_now = will_delay == 0;
        break;
      case WillPolicy::kPublish:
        if (will_delay > 0 && lives_on) {
          const int64_t delay_ms =
              int64_t{std::min(will_delay, session->expiry_interval())} * 1000;
          session->SetPendingWill(PendingWill{.message = will, .due_ms = now + delay_ms});
          Schedule(now + delay_ms, session);
        } else {
          publish_now = true;
        }
        break;
    }
    if (publish_now) PublishWill(std::move(will));
  }
  if (!was_attached || !current) return;  // taken over, or already ended
  const uint32_t expiry = session->expiry_interval();
  if (expiry == 0) {
    EndSession(session);
    return;
  }
  if (store_ != nullptr) store_->PutSession(session->Record(now));
  if (expiry != kNeverExpires) Schedule(now + int64_t{expiry} * 1000, session);
}

void Broker::Schedule(int64_t due_ms, const std::shared_ptr<Session>& session) {
  absl::MutexLock l(&timers_mu_);
  timers_.push(Timer{.due_ms = due_ms, .session = session, .generation = session->generation()});
}

void Broker::Sweep() {
  const int64_t now = NowMs();
  std::vector<std::shared_ptr<Session>> due;
  {
    absl::MutexLock l(&timers_mu_);
    while (!timers_.empty() && timers_.top().due_ms <= now) {
      Timer t = timers_.top();
      timers_.pop();
      std::shared_ptr<Session> s = t.session.lock();
      // Attached again since the timer was set: nothing to do.
      if (s != nullptr && s->generation() == t.generation && !s->attached()) {
        due.push_back(std::move(s));
      }
    }
  }
  for (const std::shared_ptr<Session>& s : due) {
    {
      // Still the client id's session (not replaced by a clean start)?
      absl::MutexLock l(&sessions_mu_);
      auto it = sessions_.find(s->client_id());
      if (it == sessions_.end() || it->second != s) continue;
    }
    const std::optional<int64_t> detached = s->detached_at_ms();
    const uint32_t expiry = s->expiry_interval();
    if (detached.has_value() && expiry != kNeverExpires &&
        *detached + int64_t{expiry} * 1000 <= now) {
      counters_.sessions_expired.fetch_add(1, std::memory_order_relaxed);
      EndSession(s);  // publishes a pending will too
      continue;
    }
    std::optional<PendingWill> will = s->TakePendingWill();
    if (!will.has_value()) continue;
    if (will->due_ms > now) {
      s->SetPendingWill(std::move(will));
      continue;
    }
    if (store_ != nullptr) store_->PutSession(s->Record(detached));
    PublishWill(std::move(will->message));
  }
}

void Broker::EndSession(const std::shared_ptr<Session>& session) {
  {
    absl::MutexLock l(&sessions_mu_);
    auto it = sessions_.find(session->client_id());
    if (it != sessions_.end() && it->second == session) sessions_.erase(it);
  }
  {
    absl::MutexLock l(&tree_mu_);
    for (const auto& [filter, sub] : session->subscriptions()) {
      tree_.Unsubscribe(sub.topic_filter, sub.share_group, Key(session.get()));
    }
  }
  if (store_ != nullptr && session->persistent()) store_->DeleteSession(session->client_id());
  if (std::optional<PendingWill> will = session->TakePendingWill()) {
    PublishWill(std::move(will->message));
  }
}

void Broker::PublishWill(MessagePtr will) {
  counters_.wills_published.fetch_add(1, std::memory_order_relaxed);
  Publish(will);
}

bool Broker::Subscribe(const std::shared_ptr<Session>& session, const std::string& filter,
                       const mqtt::ParsedFilter& parsed,
                       const mqtt::SubscriptionOptions& options) {
  session->AddSubscription(filter, Session::Subscription{.share_group = parsed.share_group,
                                                         .topic_filter = parsed.filter,
                                                         .options = options});
  absl::MutexLock l(&tree_mu_);
  return tree_.Subscribe(parsed.filter, parsed.share_group, Key(session.get()), options);
}

bool Broker::Unsubscribe(const std::shared_ptr<Session>& session, const std::string& filter) {
  mqtt::ParsedFilter parsed;
  if (!mqtt::ParseSharedFilter(filter, &parsed)) return false;
  if (!session->RemoveSubscription(filter)) return false;
  absl::MutexLock l(&tree_mu_);
  return tree_.Unsubscribe(parsed.filter, parsed.share_group, Key(session.get()));
}

void Broker::Persist(const Session& session) {
  if (store_ != nullptr && session.persistent()) {
    store_->PutSession(session.Record(session.detached_at_ms()));
  }
}

size_t Broker::Publish(const MessagePtr& message, const Session* only) {
  if (only == nullptr && absl::StartsWith(message->topic, "$aws/rules/")) {
    if (rules_hook_) rules_hook_(message);  // Basic Ingest: for the rules alone
    return 0;
  }
  const size_t queued = Route(message, only);
  if (only != nullptr) return queued;
  if (service_hook_ && absl::StartsWith(message->topic, "$aws/")) service_hook_(message);
  if (rules_hook_) rules_hook_(message);
  return queued;
}

size_t Broker::Route(const MessagePtr& message, const Session* only) {
  if (message->retain && retained_.Put(message) && store_ != nullptr) {
    if (message->payload.empty()) {
      store_->DeleteRetained(message->topic);
    } else {
      store_->PutRetained(message);
    }
  }
  const int64_t now = message->expires_at_ms.has_value() ? NowMs() : 0;
  thread_local std::vector<MatchEntry> matches;
  matches.clear();
  size_t queued = 0;
  absl::ReaderMutexLock l(&tree_mu_);
  tree_.Match(message->topic, [](uint64_t s, const mqtt::SubscriptionOptions& o) {
    matches.push_back(MatchEntry{s, &o});
  });
  if (matches.size() > 1) {
    std::sort(matches.begin(), matches.end(),
              [](const MatchEntry& a, const MatchEntry& b) { return a.subscriber < b.subscriber; });
  }
  // One delivery per session: the highest QoS of its matching subscriptions, with all
  // their subscription identifiers (MQTT 5 3.3.4).
  for (size_t i = 0; i < matches.size();) {
    const uint64_t key = matches[i].subscriber;
    Session* session = FromKey(key);
    int qos = -1;
    bool retain_flag = false;
    std::vector<uint32_t> ids;
    for (; i < matches.size() && matches[i].subscriber == key; ++i) {
      const mqtt::SubscriptionOptions& o = *matches[i].options;
      if (o.no_local && message->origin == session->id()) continue;
      qos = std::max<int>(qos, std::min(message->qos, o.qos));
      if (o.retain_as_published) retain_flag = message->retain;
      if (o.subscription_id != 0) ids.push_back(o.subscription_id);
    }
    if (qos < 0 || (only != nullptr && session != only)) continue;
    switch (session->Deliver(message, static_cast<uint8_t>(qos), retain_flag, std::move(ids),
                             now)) {
      case Session::DeliverResult::kQueued:
        ++queued;
        break;
      case Session::DeliverResult::kDroppedFull:
        counters_.dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
        break;
      case Session::DeliverResult::kExpired:
        counters_.dropped_expired.fetch_add(1, std::memory_order_relaxed);
        break;
      case Session::DeliverResult::kNotAllowed:
        counters_.dropped_not_allowed.fetch_add(1, std::memory_order_relaxed);
        break;
      case Session::DeliverResult::kNotQueued:
        break;
    }
  }
  counters_.routed.fetch_add(queued, std::memory_order_relaxed);
  if (matches.empty()) counters_.no_subscriber.fetch_add(1, std::memory_order_relaxed);
  return queued;
}

void Broker::RetainedFor(absl::string_view topic_filter, std::vector<MessagePtr>* out) const {
  retained_.Match(topic_filter, NowMs(), out);
}

std::shared_ptr<Session> Broker::Find(absl::string_view client_id) const {
  absl::MutexLock l(&sessions_mu_);
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Session>> Broker::Sessions() const {
  absl::MutexLock l(&sessions_mu_);
  std::vector<std::shared_ptr<Session>> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

size_t Broker::session_count() const {
  absl::MutexLock l(&sessions_mu_);
  return sessions_.size();
}

bool Broker::Disconnect(absl::string_view client_id, uint8_t reason, WillPolicy will,
                        bool clean) {
  std::shared_ptr<Session> s = Find(client_id);
  if (s == nullptr) return false;
  std::shared_ptr<Outlet> outlet = s->outlet();
  if (outlet == nullptr && !clean) return false;
  if (clean) {
    // The connection's later Detach finds the session gone from the map and keeps nothing.
    EndSession(s);
  }
  if (outlet != nullptr) outlet->Kick(reason, will);
  return true;
}

size_t Broker::KickAll(uint8_t reason) {
  size_t n = 0;
  for (const std::shared_ptr<Session>& s : Sessions()) {
    if (std::shared_ptr<Outlet> o = s->outlet()) {
      o->Kick(reason, WillPolicy::kPublish);
      ++n;
    }
  }
  return n;
}

size_t Broker::KickCertificate(absl::string_view certificate_id) {
  if (certificate_id.empty()) return 0;
  size_t n = 0;
  for (const std::shared_ptr<Session>& s : Sessions()) {
    std::shared_ptr<Outlet> o = s->outlet();
    if (o != nullptr && o->certificate_id() == certificate_id) {
      o->Kick(mqtt::reason::kNotAuthorized, WillPolicy::kPublish);
      ++n;
    }
  }
  return n;
}

size_t Broker::RefreshAuthorizationIf(absl::FunctionRef<bool(const Outlet&)> concerned) {
  size_t n = 0;
  for (const std::shared_ptr<Session>& s : Sessions()) {
    std::shared_ptr<Outlet> o = s->outlet();
    if (o == nullptr || !concerned(*o)) continue;
    o->RefreshAuthorization();
    ++n;
  }
  return n;
}

size_t Broker::RefreshAuthorization(absl::string_view certificate_id) {
  if (certificate_id.empty()) {
    return RefreshAuthorizationIf([](const Outlet& o) {
      return !o.certificate_id().empty() || absl::StartsWith(o.principal(), "arn:aws:iam::");
    });
  }
  return RefreshAuthorizationIf(
      [certificate_id](const Outlet& o) { return o.certificate_id() == certificate_id; });
}

size_t Broker::RefreshAuthorizationOfPrincipal(absl::string_view principal) {
  return RefreshAuthorizationIf(
      [principal](const Outlet& o) { return !principal.empty() && o.principal() == principal; });
}

size_t Broker::RefreshAuthorizationOfThing(absl::string_view thing) {
  return RefreshAuthorizationIf(
      [thing](const Outlet& o) { return !thing.empty() && o.thing_name() == thing; });
}

}  // namespace fleetcore::gateway
