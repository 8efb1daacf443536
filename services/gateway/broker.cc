#include "services/gateway/broker.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "common/log/log.h"
#include "common/log/throttle.h"

namespace fleetcore::gateway {
namespace {

constexpr uint32_t kNeverExpires = 0xFFFFFFFF;

uint64_t Key(const Session* s) { return reinterpret_cast<uint64_t>(s); }
Session* FromKey(uint64_t key) { return reinterpret_cast<Session*>(key); }
// A shared group's message goes to a member whose client is connected while one is, as on
// AWS IoT Core; only when none is does it wait in a (persistent) member's session.
bool Connected(uint64_t key) { return FromKey(key)->attached(); }

// Lifecycle versions count seconds from 2020-01-01T00:00:00Z: they fit a signed 32-bit
// column (as subscribers may store them) until 2088.
uint64_t LifecycleClock(int64_t now_ms) {
  constexpr int64_t kEpochMs = 1577836800000;
  return static_cast<uint64_t>(std::max<int64_t>(0, now_ms - kEpochMs) / 1000);
}

struct MatchEntry {
  uint64_t subscriber;
  const mqtt::SubscriptionOptions* options;
  absl::string_view share;  // the shared group it was picked for; empty: none
};

// A session stored while attached lost its connection with the process that held it, which
// ended without saying so (a graceful stop detaches its connections first): a server error,
// as GetConnection's disconnectReason says (a session handed over for its returning client
// is attached again at once, which clears it).
void EndedWithItsProcess(SessionRecord* record, int64_t now_ms) {
  if (record->disconnected_at_ms.has_value()) return;
  record->disconnected_at_ms = now_ms;
  record->disconnect_reason = "SERVER_ERROR";
}

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

uint64_t Broker::LifecycleVersion(const std::string& client_id) {
  const uint64_t clock = LifecycleClock(NowMs());
  absl::MutexLock l(&versions_mu_);
  auto [it, added] = versions_.try_emplace(client_id, clock);
  if (!added) it->second = std::max(clock, it->second + 1);
  return it->second;
}

absl::Status Broker::Load() {
  if (store_ == nullptr) return absl::OkStatus();
  absl::StatusOr<StoreSnapshot> snapshot = store_->Load();
  if (!snapshot.ok()) return snapshot.status();
  const int64_t now = NowMs();
  bool expired = false;
  for (const MessagePtr& m : snapshot->retained) {
    // All of them, whatever the limit now: it holds back new topics only.
    if (!m->expires_at_ms.has_value() || *m->expires_at_ms > now) {
      retained_.Put(m, 0);
    } else {
      expired = true;
    }
  }
  if (expired) store_->DeleteExpiredRetained(now);
  std::vector<std::shared_ptr<Session>> ended;
  for (StoredSession& stored : snapshot->sessions) {
    EndedWithItsProcess(&stored.record, now);
    bool expired = false;
    std::shared_ptr<Session> session = Install(stored, now, &expired);
    if (session != nullptr && expired) ended.push_back(std::move(session));
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

std::shared_ptr<Session> Broker::Install(StoredSession& stored, int64_t now, bool* expired) {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock l(&sessions_mu_);
    if (sessions_.contains(stored.record.client_id)) return nullptr;  // a connection made one
    session = NewSession(stored.record.client_id);
  }
  // Complete before a connection can find it: one that attaches the moment it appears (a
  // client resuming on the replica that is adopting its session) gets the queued messages,
  // and what is published meanwhile reaches it through its subscriptions.
  session->Restore(stored);
  for (const StoredSubscription& sub : stored.record.subscriptions) {
    mqtt::ParsedFilter parsed;
    if (!mqtt::ParseSharedFilter(sub.filter, &parsed)) continue;
    Subscribe(session, sub.filter, parsed, sub.options);
  }
  bool installed = false;
  {
    absl::MutexLock l(&sessions_mu_);
    std::shared_ptr<Session>& slot = sessions_[stored.record.client_id];
    if (slot == nullptr) {
      slot = session;
      installed = true;
    }
  }
  if (!installed) {  // a connection made one meanwhile: that is the client's session now
    RemoveFromTree(*session);
    return nullptr;
  }
  *expired = false;
  const uint32_t expiry = stored.record.expiry_interval;
  if (expiry != kNeverExpires && stored.record.disconnected_at_ms.has_value()) {
    const int64_t due = *stored.record.disconnected_at_ms + int64_t{expiry} * 1000;
    if (due <= now) {
      *expired = true;
      return session;
    }
    Schedule(due, session);
  }
  if (stored.record.will.has_value()) Schedule(stored.record.will->due_ms, session);
  return session;
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
  s.SetReceiveCheck(params.receive_check);
  previous = s.Attach(outlet, params.receive_maximum);
  if (previous != nullptr) {
    previous->Kick(mqtt::reason::kSessionTakenOver, WillPolicy::kSessionResumed);
  }
  if (store_ != nullptr) {
    if (params.expiry_interval > 0 && cluster_ != nullptr && !out.session_present) {
      // A new session: whatever another replica left stored of the client id goes.
      store_->ClaimSession(StoredSession{.record = s.Record(std::nullopt)});
    } else if (params.expiry_interval > 0) {
      store_->PutSession(s.Record(std::nullopt));
    } else if (out.session_present) {
      // A stored session resumed as a non-persistent one is no longer kept.
      store_->DeleteSession(params.client_id);
    }
  }
  if (cluster_ != nullptr) cluster_->Connected(params.client_id);
  if (out.session_present) TakeSharedQueue(out.session);
  return out;
}

void Broker::TakeSharedQueue(const std::shared_ptr<Session>& to, absl::string_view share) {
  const int64_t now = NowMs();
  const size_t half = std::max<size_t>(1, limits_.max_queued_messages / 2);
  size_t moved = 0;
  bool full = false;
  std::vector<uint64_t> members;
  const std::shared_ptr<const Session::ReceiveCheck> check = to->receive_check();
  auto may_receive = [&](const Message& m) {
    return check == nullptr || check->MayReceive(m.topic);
  };
  // As in Route, a session in the tree lives while the lock is held.
  absl::ReaderMutexLock l(&tree_mu_);
  for (const auto& [filter, sub] : to->subscriptions()) {
    if (full) break;
    if (sub.share_group.empty() || (!share.empty() && filter != share)) continue;
    members.clear();
    tree_.SharedMembers(sub.topic_filter, sub.share_group, &members);
    for (uint64_t key : members) {
      Session* from = FromKey(key);
      if (from == to.get() || from->attached()) continue;
      const size_t queued = to->stats().queued;
      const size_t room = queued >= half ? 0 : half - queued;
      if (room == 0) {
        to->MarkSharedBacklog();  // the rest waits where it is until `to` has sent these
        full = true;
        break;
      }
      std::vector<MessagePtr> taken = from->TakeShared(filter, room, may_receive);
      if (taken.size() == room) to->MarkSharedBacklog();  // there may be more
      for (const MessagePtr& m : taken) {
        std::vector<uint32_t> ids;
        if (sub.options.subscription_id != 0) ids.push_back(sub.options.subscription_id);
        const uint8_t qos = std::min(m->qos, sub.options.qos);
        const bool retain = sub.options.retain_as_published && m->retain;
        if (Tally(to->Deliver(m, qos, retain, std::move(ids), now, filter))) ++moved;
      }
    }
  }
  counters_.shared_queue_moved.fetch_add(moved, std::memory_order_relaxed);
}

void Broker::Detach(const std::shared_ptr<Session>& session, const Outlet* outlet,
                    MessagePtr will, uint32_t will_delay, WillPolicy policy,
                    std::string reason) {
  const int64_t now = NowMs();
  // A session that ends with its connection would drop what it took of its shared groups'
  // queues with the rest: that goes back to the groups (EndSession, below).
  std::vector<std::pair<std::string, MessagePtr>> groups_own;
  if (session->expiry_interval() == 0 && session->outlet().get() == outlet) {
    groups_own = session->TakeAllShared();
  }
  const bool was_attached = session->Detach(outlet, now, std::move(reason));
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
  if (!was_attached || !current) {  // taken over, or already ended
    GiveToGroups(std::move(groups_own));
    return;
  }
  const uint32_t expiry = session->expiry_interval();
  if (expiry == 0) {
    EndSession(session);
    GiveToGroups(std::move(groups_own));
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
  std::vector<std::shared_ptr<Session>> gone;
  bool drop_retained = false;
  {
    absl::MutexLock l(&timers_mu_);
    // Expired retained messages go every 10 s (a walk of every retained topic).
    if (now >= next_retained_drop_ms_) {
      drop_retained = true;
      next_retained_drop_ms_ = now + 10000;
    }
    // Sessions handed to another replica stop forwarding; those taken from one stop
    // deduplicating.
    for (auto it = moved_out_.begin(); it != moved_out_.end();) {
      if (it->until_ms > now) {
        ++it;
        continue;
      }
      gone.push_back(std::move(it->session));
      it = moved_out_.erase(it);
    }
    for (auto it = moved_in_.begin(); it != moved_in_.end();) {
      if (it->until_ms > now) {
        ++it;
        continue;
      }
      it->session->EndDedupe();
      it = moved_in_.erase(it);
    }
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
  {
    // Versions the clock has passed need no memory: the next is the clock's.
    const uint64_t clock = LifecycleClock(now);
    absl::MutexLock l(&versions_mu_);
    absl::erase_if(versions_, [clock](const auto& entry) { return entry.second < clock; });
  }
  // Their rows too (those of any replica: an expired message is expired everywhere).
  if (drop_retained && retained_.DropExpired(now) > 0 && store_ != nullptr) {
    store_->DeleteExpiredRetained(now);
  }
  for (const std::shared_ptr<Session>& s : gone) RemoveFromTree(*s);
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

void Broker::RemoveFromTree(const Session& session) {
  std::vector<std::pair<std::string, std::string>> changed;
  {
    absl::MutexLock l(&tree_mu_);
    for (const auto& [filter, sub] : session.subscriptions()) {
      if (tree_.Unsubscribe(sub.topic_filter, sub.share_group, Key(&session)) &&
          !sub.share_group.empty()) {
        CountShared(sub.share_group, sub.topic_filter, -1, &changed);
      }
    }
  }
  TellSharedChanged(changed);
}

void Broker::CountShared(const std::string& group, const std::string& filter, int delta,
                         std::vector<std::pair<std::string, std::string>>* changed) {
  if (cluster_ == nullptr) return;
  auto key = std::make_pair(group, filter);
  int& n = shared_counts_[key];
  n += delta;
  if ((delta > 0 && n == 1) || n <= 0) changed->push_back(key);
  if (n <= 0) shared_counts_.erase(key);
}

void Broker::TellSharedChanged(const std::vector<std::pair<std::string, std::string>>& changed) {
  for (const auto& [group, filter] : changed) cluster_->SharedGroupChanged(group, filter);
}

bool Broker::HasSharedMembers(const std::string& group, const std::string& filter) const {
  absl::ReaderMutexLock l(&tree_mu_);
  return shared_counts_.contains(std::make_pair(group, filter));
}

Broker::SharedGroupsHere Broker::SharedGroupsByPresence() const {
  SharedGroupsHere out;
  absl::ReaderMutexLock l(&tree_mu_);
  for (const auto& [key, members] : shared_counts_) {
    (tree_.HasAvailableShared(key.second, key.first, &Connected) ? out.connected : out.away)
        .push_back(key);
  }
  return out;
}

std::vector<MessagePtr> Broker::TakeSharedQueueOf(const std::string& group,
                                                  const std::string& filter, size_t max) {
  std::vector<MessagePtr> out;
  const std::string share = mqtt::SharedFilter(group, filter);
  std::vector<uint64_t> members;
  absl::ReaderMutexLock l(&tree_mu_);
  tree_.SharedMembers(filter, group, &members);
  if (std::any_of(members.begin(), members.end(), &Connected)) return out;
  for (uint64_t key : members) {
    if (out.size() == max) break;
    std::vector<MessagePtr> taken =
        FromKey(key)->TakeShared(share, max - out.size(), [](const Message&) { return true; });
    out.insert(out.end(), std::make_move_iterator(taken.begin()),
               std::make_move_iterator(taken.end()));
  }
  return out;
}

void Broker::GiveToGroups(std::vector<std::pair<std::string, MessagePtr>> messages) {
  size_t moved = 0;
  for (auto& [share, message] : messages) {
    mqtt::ParsedFilter parsed;
    if (!mqtt::ParseSharedFilter(share, &parsed)) continue;
    if (DeliverShared(message, parsed.share_group, parsed.filter) == 1) {
      ++moved;
    } else if (cluster_ != nullptr && !HasSharedMembers(parsed.share_group, parsed.filter)) {
      // No member here to hold it: a replica with a connected one takes it.
      cluster_->PassSharedMessage(message, parsed.share_group, parsed.filter);
    }
  }
  counters_.shared_queue_moved.fetch_add(moved, std::memory_order_relaxed);
}

void Broker::EndSession(const std::shared_ptr<Session>& session) {
  {
    absl::MutexLock l(&sessions_mu_);
    auto it = sessions_.find(session->client_id());
    if (it != sessions_.end() && it->second == session) sessions_.erase(it);
  }
  RemoveFromTree(*session);
  GiveToGroups(session->TakeAllShared());
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
  std::vector<std::pair<std::string, std::string>> changed;
  bool added;
  {
    absl::MutexLock l(&tree_mu_);
    added = tree_.Subscribe(parsed.filter, parsed.share_group, Key(session.get()), options);
    if (added && !parsed.share_group.empty()) {
      CountShared(parsed.share_group, parsed.filter, +1, &changed);
    }
  }
  TellSharedChanged(changed);
  if (added && !parsed.share_group.empty() && session->attached()) {
    TakeSharedQueue(session, filter);
  }
  return added;
}

bool Broker::Unsubscribe(const std::shared_ptr<Session>& session, const std::string& filter) {
  mqtt::ParsedFilter parsed;
  if (!mqtt::ParseSharedFilter(filter, &parsed)) return false;
  if (!session->RemoveSubscription(filter)) return false;
  std::vector<std::pair<std::string, std::string>> changed;
  bool removed;
  {
    absl::MutexLock l(&tree_mu_);
    removed = tree_.Unsubscribe(parsed.filter, parsed.share_group, Key(session.get()));
    if (removed && !parsed.share_group.empty()) {
      CountShared(parsed.share_group, parsed.filter, -1, &changed);
    }
  }
  TellSharedChanged(changed);
  return removed;
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
  if (cluster_ != nullptr && only == nullptr) {
    // Publish is where a message is first shared (its publisher made it, no session holds
    // it yet): its cluster-wide id is stamped here, before Route queues it anywhere.
    const_cast<Message&>(*message).cluster_id = cluster_->NewMessageId();
  }
  const size_t queued = Route(message, only);
  if (only != nullptr) return queued;
  if (cluster_ != nullptr) cluster_->Published(message);
  if (service_hook_ && absl::StartsWith(message->topic, "$aws/")) service_hook_(message);
  if (rules_hook_) rules_hook_(message);
  return queued;
}

bool Broker::RetainedRoomFor(absl::string_view topic) {
  if (retained_.HasRoomFor(topic, limits_.max_retained_messages)) return true;
  RetainedRefused(topic);
  return false;
}

bool Broker::RetainedRoomFor(bool retain, absl::string_view payload, absl::string_view topic) {
  return !retain || payload.empty() || RetainedRoomFor(topic);
}

void Broker::RetainedRefused(absl::string_view topic) {
  counters_.retained_refused.fetch_add(1, std::memory_order_relaxed);
  static log::Throttle full_log(absl::Seconds(10));
  if (uint64_t n = 0; full_log.Allow(&n)) {
    log::Warn("retained messages not kept: the gateway holds as many as it may",
              {{"topic", topic},
               {"max_retained_messages", static_cast<int64_t>(limits_.max_retained_messages)},
               {"refused", n}});
  }
}

void Broker::PublishAnswer(std::string topic, std::string payload, const Session* only) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = 1;
  m->published_at_ms = NowMs();
  Publish(m, only);
}

size_t Broker::Route(const MessagePtr& message, const Session* only, bool from_replica) {
  // A retained message from another replica is stored by that replica, which held it to
  // the limit.
  if (message->retain) {
    const RetainedStore::PutResult put =
        retained_.Put(message, from_replica ? 0 : limits_.max_retained_messages);
    if (put == RetainedStore::PutResult::kFull) {
      RetainedRefused(message->topic);
      // Delivered as what it is, a message not retained, here and on the other replicas
      // (which would keep it otherwise). It is not shared yet: Publish passes it on after.
      const_cast<Message&>(*message).retain = false;
    } else if (put == RetainedStore::PutResult::kChanged && store_ != nullptr && !from_replica) {
      if (message->payload.empty()) {
        store_->DeleteRetained(message->topic);
      } else {
        store_->PutRetained(message);
      }
    }
  }
  const int64_t now = message->expires_at_ms.has_value() ? NowMs() : 0;
  thread_local std::vector<MatchEntry> matches;
  matches.clear();
  size_t queued = 0;
  // Among replicas, NATS gives each shared group's messages to one replica in turn
  // (DeliverShared); here only the plain subscriptions, unless NATS is out of reach.
  const bool shared = cluster_ == nullptr || (!from_replica && !cluster_->SharesAcrossReplicas());
  absl::ReaderMutexLock l(&tree_mu_);
  tree_.Match(
      message->topic,
      [](uint64_t s, const mqtt::SubscriptionOptions& o, absl::string_view share) {
        matches.push_back(MatchEntry{s, &o, share});
      },
      shared, &Connected);
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
    // A shared group's message for a member whose client is away waits as the group's (it
    // was picked with no member connected): any member that comes may take it. Not when
    // the delivery is also the session's own by another subscription.
    const bool group_queued = !matches[i].share.empty() &&
                              (i + 1 == matches.size() || matches[i + 1].subscriber != key) &&
                              !session->attached();
    const absl::string_view share = group_queued ? matches[i].share : absl::string_view();
    for (; i < matches.size() && matches[i].subscriber == key; ++i) {
      const mqtt::SubscriptionOptions& o = *matches[i].options;
      if (o.no_local && message->origin == session->id()) continue;
      qos = std::max<int>(qos, std::min(message->qos, o.qos));
      if (o.retain_as_published) retain_flag = message->retain;
      if (o.subscription_id != 0) ids.push_back(o.subscription_id);
    }
    if (qos < 0 || (only != nullptr && session != only)) continue;
    if (Tally(session->Deliver(message, static_cast<uint8_t>(qos), retain_flag, std::move(ids), now,
                               share))) {
      ++queued;
    }
  }
  counters_.routed.fetch_add(queued, std::memory_order_relaxed);
  // Another replica's message with no subscriber here is no news.
  if (matches.empty() && !from_replica) {
    counters_.no_subscriber.fetch_add(1, std::memory_order_relaxed);
  }
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

size_t Broker::RouteFromReplica(const MessagePtr& message, absl::string_view target_client_id) {
  if (target_client_id.empty()) return Route(message, nullptr, /*from_replica=*/true);
  std::shared_ptr<Session> only = Find(target_client_id);
  if (only == nullptr) return 0;
  return Route(message, only.get(), /*from_replica=*/true);
}

bool Broker::SharedFilterTakes(absl::string_view topic, absl::string_view filter) {
  // NATS matched the subject; MQTT's rule that wildcards do not match '$' topics is ours.
  return !absl::StartsWith(topic, "$") ||
         !(absl::StartsWith(filter, "+") || absl::StartsWith(filter, "#"));
}

size_t Broker::DeliverShared(const MessagePtr& message, absl::string_view group,
                             absl::string_view filter, SharedTurn turn) {
  if (!SharedFilterTakes(message->topic, filter)) return 0;
  uint64_t key;
  mqtt::SubscriptionOptions options;
  const int64_t now = message->expires_at_ms.has_value() ? NowMs() : 0;
  // As in Route, a session in the tree lives while the lock is held.
  absl::ReaderMutexLock l(&tree_mu_);
  if (!tree_.PickShared(filter, group, &key, &options, &Connected)) return 0;
  // PickShared passes over away members while there is a connected one.
  if (turn == SharedTurn::kConnectedMember && !Connected(key)) return 0;
  std::vector<uint32_t> ids;
  if (options.subscription_id != 0) ids.push_back(options.subscription_id);
  const uint8_t qos = std::min(message->qos, options.qos);
  const bool retain = options.retain_as_published && message->retain;
  // With no member connected, it waits as the group's (Route).
  Session* session = FromKey(key);
  const std::string share = session->attached() ? std::string() : mqtt::SharedFilter(group, filter);
  if (!Tally(session->Deliver(message, qos, retain, std::move(ids), now, share))) return 0;
  counters_.routed.fetch_add(1, std::memory_order_relaxed);
  return 1;
}

Session::DeliverResult Broker::SendDirect(absl::string_view client_id,
                                          const MessagePtr& message) {
  std::shared_ptr<Session> s = Find(client_id);
  // Not queued for a client that is not connected (kNotQueued), whatever its session.
  if (s == nullptr || !s->attached()) return Session::DeliverResult::kNotQueued;
  const Session::DeliverResult r =
      s->Deliver(message, message->qos, /*retain=*/false, {}, NowMs());
  if (Tally(r)) counters_.routed.fetch_add(1, std::memory_order_relaxed);
  return r;
}

bool Broker::Tally(Session::DeliverResult result) {
  switch (result) {
    case Session::DeliverResult::kQueued:
      return true;
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
  return false;
}

bool Broker::EndClaimed(absl::string_view client_id) {
  std::shared_ptr<Session> s = Find(client_id);
  if (s == nullptr) return false;
  if (std::shared_ptr<Outlet> o = s->outlet()) {
    o->Kick(mqtt::reason::kSessionTakenOver, WillPolicy::kPublish);
  }
  EndSession(s);
  return true;
}

std::optional<StoredSession> Broker::HandOver(absl::string_view client_id,
                                              Session::ForwardFn forward,
                                              absl::Duration forward_for) {
  std::shared_ptr<Session> s;
  {
    absl::MutexLock l(&sessions_mu_);
    auto it = sessions_.find(client_id);
    if (it == sessions_.end()) return std::nullopt;
    s = std::move(it->second);
    sessions_.erase(it);
  }
  const int64_t now = NowMs();
  std::shared_ptr<Outlet> kicked;
  StoredSession out = s->MoveOut(now, std::move(forward), &kicked);
  // Taken over by a connection resuming the session: a will with a delay is not sent.
  if (kicked != nullptr) kicked->Kick(mqtt::reason::kSessionTakenOver, WillPolicy::kSessionResumed);
  absl::MutexLock l(&timers_mu_);
  moved_out_.push_back(
      Moving{.until_ms = now + absl::ToInt64Milliseconds(forward_for), .session = std::move(s)});
  return out;
}

bool Broker::Adopt(StoredSession stored, absl::Duration dedupe_for) {
  const int64_t now = NowMs();
  EndedWithItsProcess(&stored.record, now);
  std::vector<uint64_t> seen;
  for (const StoredMessage& m : stored.messages) {
    if (m.message->cluster_id != 0) seen.push_back(m.message->cluster_id);
  }
  bool expired = false;
  std::shared_ptr<Session> session = Install(stored, now, &expired);
  if (session == nullptr) return false;
  if (expired) {
    counters_.sessions_expired.fetch_add(1, std::memory_order_relaxed);
    EndSession(session);
    return true;
  }
  session->StartDedupe(std::move(seen));
  if (store_ != nullptr && stored.record.expiry_interval > 0) store_->ClaimSession(stored);
  absl::MutexLock l(&timers_mu_);
  moved_in_.push_back(Moving{.until_ms = now + absl::ToInt64Milliseconds(dedupe_for),
                             .session = std::move(session)});
  return true;
}

bool Broker::DeliverForwarded(absl::string_view client_id, const MessagePtr& message,
                              uint8_t qos, bool retain, std::vector<uint32_t> subscription_ids) {
  std::shared_ptr<Session> s = Find(client_id);
  if (s == nullptr) return false;
  const int64_t now = message->expires_at_ms.has_value() ? NowMs() : 0;
  if (Tally(s->Deliver(message, qos, retain, std::move(subscription_ids), now))) {
    counters_.routed.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

}  // namespace fleetcore::gateway
