#include "services/gateway/cluster.h"

#include <openssl/rand.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/log/throttle.h"
#include "services/gateway/cluster_subjects.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/io_thread.h"

namespace fleetcore::gateway {
namespace {

// A message's cluster-wide id: the replica's tag above its number there.
constexpr int kSequenceBits = 40;

uint32_t RandomTag() {
  uint32_t tag = 0;
  while (tag == 0) {
    RAND_bytes(reinterpret_cast<unsigned char*>(&tag), sizeof(tag));
    tag &= 0xFFFFFF;
  }
  return tag;
}

absl::Time Now() { return absl::Now(); }

// The id after a reply subject's last dot.
std::optional<uint64_t> ReplyId(absl::string_view subject) {
  const size_t dot = subject.rfind('.');
  uint64_t id;
  if (dot == absl::string_view::npos || !absl::SimpleAtoi(subject.substr(dot + 1), &id)) {
    return std::nullopt;
  }
  return id;
}

}  // namespace

struct Cluster::Fetch {
  enum class State { kAsking, kFromStore, kDone };
  uint64_t id = 0;
  std::string client_id;
  std::function<void()> done;
  std::set<std::string> waiting;  // replicas yet to answer
  absl::Time deadline;
  State state = State::kAsking;  // under mu_
};

struct Cluster::Ask {
  size_t expected = 0;
  // Whether the first answer that found the client ends the wait (all but ListConnections:
  // one replica holds a client id).
  bool one_suffices = false;
  bool found = false;                             // under mu_
  std::vector<v1::ClusterAdminResponse> answers;  // under mu_
  std::condition_variable cv;
};

Cluster::Cluster(ClusterBus* bus, ClusterBus* shared_bus, Broker* broker, GatewayStore* store,
                 GatewayMetrics* metrics, ClusterOptions options)
    : bus_(bus),
      shared_bus_(shared_bus),
      broker_(broker),
      store_(store),
      metrics_(metrics),
      options_(std::move(options)),
      tag_(RandomTag()),
      inbox_(bus->NewInbox()) {}

Cluster::~Cluster() { Stop(); }

// ---- start and stop

absl::Status Cluster::Start() {
  const std::string& p = options_.prefix;
  struct Wanted {
    std::string subject;
    ClusterBus::Handler handler;
  };
  std::vector<Wanted> wanted = {
      {absl::StrCat(p, ".m.>"),
       [this](const BusMessage& m) { OnMessage(m, /*shared=*/false, "", ""); }},
      {absl::StrCat(p, ".node"), [this](const BusMessage& m) { OnHeartbeat(m); }},
      {absl::StrCat(p, ".claim"), [this](const BusMessage& m) { OnClaim(m); }},
      {absl::StrCat(p, ".handover"), [this](const BusMessage& m) { OnHandoverRequest(m); }},
      {absl::StrCat(p, ".fwd.", SubjectToken(options_.node)),
       [this](const BusMessage& m) { OnForward(m); }},
      {absl::StrCat(p, ".share.", SubjectToken(options_.node)),
       [this](const BusMessage& m) { OnSharedTurn(m); }},
      {absl::StrCat(p, ".admin"), [this](const BusMessage& m) { OnAdmin(m); }},
      {absl::StrCat(inbox_, ".*"), [this](const BusMessage& m) { OnReply(m); }},
      {absl::StrCat(inbox_, ".admin.*"), [this](const BusMessage& m) { OnAdminReply(m); }},
  };
  for (Wanted& w : wanted) {
    absl::StatusOr<std::unique_ptr<ClusterBus::Subscription>> sub =
        bus_->Subscribe(w.subject, "", std::move(w.handler));
    if (!sub.ok()) return sub.status();
    subs_.push_back(*std::move(sub));
  }
  worker_ = std::thread([this] {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> l(work_mu_);
        work_cv_.wait(l, [&] { return stopping_ || !work_.empty(); });
        if (work_.empty()) return;  // stopping, nothing left
        task = std::move(work_.front());
        work_.pop_front();
      }
      task();
    }
  });
  ticker_ = std::thread([this] { Tick(); });
  // Hear the others before serving: a resuming client's session is asked of all of them.
  absl::SleepFor(options_.heartbeat * 1.5);
  std::lock_guard<std::mutex> l(mu_);
  if (duplicate_node_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "another live gateway replica uses the node id \"", options_.node,
        "\"; give each its own (--cluster-node-id, a pod's name)"));
  }
  log::Info("cluster: joined", {{"node", options_.node},
                                {"replicas", static_cast<int64_t>(peers_.size() + 1)}});
  return absl::OkStatus();
}

void Cluster::Ready() {
  for (;;) {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> l(ready_mu_);
      if (before_ready_.empty()) {
        ready_ = true;
        return;
      }
      batch.swap(before_ready_);
    }
    for (std::function<void()>& apply : batch) apply();
  }
}

void Cluster::WhenReady(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(ready_mu_);
    if (!ready_) {
      before_ready_.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

void Cluster::Stop() {
  if (stopped_.exchange(true)) return;
  v1::ClusterHeartbeat bye;
  bye.set_node(options_.node);
  bye.set_tag(tag_);
  bye.set_leaving(true);
  Send(absl::StrCat(options_.prefix, ".node"), bye);
  {
    std::lock_guard<std::mutex> l(work_mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  if (worker_.joinable()) worker_.join();
  subs_.clear();
  std::lock_guard<std::mutex> l(shared_mu_);
  shared_subs_.clear();
}

void Cluster::Work(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(work_mu_);
    if (stopping_) return;
    work_.push_back(std::move(task));
  }
  work_cv_.notify_one();
}

void Cluster::Tick() {
  absl::Time last_heartbeat = absl::InfinitePast();
  absl::Time last_sweep = Now();
  for (;;) {
    {
      std::unique_lock<std::mutex> l(work_mu_);
      if (tick_cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return stopping_; })) {
        return;
      }
    }
    const absl::Time now = Now();
    if (now - last_heartbeat >= options_.heartbeat) {
      last_heartbeat = now;
      Broker::SharedGroupsHere groups = broker_->SharedGroupsByPresence();
      Send(absl::StrCat(options_.prefix, ".node"), Heartbeat(groups.connected));
      Work([this, away = std::move(groups.away)] { PassSharedQueues(away); });
    }
    std::vector<std::pair<std::shared_ptr<Fetch>, size_t>> timed_out;  // and unanswered
    std::vector<std::string> gone;
    size_t replicas;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto it = peers_.begin(); it != peers_.end();) {
        if (now - it->second.heard < options_.node_timeout) {
          ++it;
          continue;
        }
        log::Warn("cluster: a replica went silent; it counts as gone",
                  {{"node", it->first}});
        gone.push_back(it->first);
        it = peers_.erase(it);
      }
      std::erase_if(claimed_,
                    [&](const auto& c) { return now - c.second.at > absl::Minutes(1); });
      replicas = peers_.size() + 1;
      for (auto& [id, f] : fetches_) {
        if (f->state == Fetch::State::kAsking && f->deadline <= now) {
          f->state = Fetch::State::kFromStore;
          timed_out.emplace_back(f, f->waiting.size());
        }
      }
    }
    if (metrics_ != nullptr) metrics_->SetClusterReplicas(replicas);
    for (const std::string& node : gone) PeerGone(node);
    for (const auto& [f, unanswered] : timed_out) {
      log::Warn("cluster: not every replica answered about a resuming client's session",
                {{"client_id", f->client_id}, {"unanswered", static_cast<int64_t>(unanswered)}});
      Work([this, f = f] { FromStore(f); });
    }
    {
      std::lock_guard<std::mutex> l(forwards_mu_);
      for (auto it = forwards_.begin(); it != forwards_.end();) {
        std::erase_if(it->second, [&](const Forwarded& f) { return f.until <= now; });
        it = it->second.empty() ? forwards_.erase(it) : std::next(it);
      }
    }
    if (now - last_sweep >= options_.orphan_sweep) {
      last_sweep = now;
      // One replica does it: the first by node id.
      std::vector<std::string> live = LiveNodes();
      if (!live.empty() && live.front() == options_.node) {
        Work([this, live] {
          absl::StatusOr<int64_t> n = store_->DeleteExpiredSessionsOf(live);
          if (!n.ok()) {
            log::Warn("cluster: cannot delete the expired sessions of gone replicas",
                      {{"error", n.status()}});
          } else if (*n > 0) {
            log::Info("cluster: deleted the expired sessions of gone replicas",
                      {{"sessions", *n}});
          }
        });
      }
    }
  }
}

v1::ClusterHeartbeat Cluster::Heartbeat(
    const std::vector<std::pair<std::string, std::string>>& shares) {
  v1::ClusterHeartbeat hb;
  hb.set_node(options_.node);
  hb.set_tag(tag_);
  for (const auto& [group, filter] : shares) {
    if (static_cast<size_t>(hb.connected_shares_size()) == options_.heartbeat_shares) break;
    hb.add_connected_shares(ShareId(group, filter));
  }
  const bool capped = shares.size() > options_.heartbeat_shares;
  if (capped && !shares_capped_) {
    log::Warn(
        "cluster: more shared subscription groups have a member connected here than a "
        "heartbeat can name; for the rest, replicas whose own members are away queue "
        "their turns in those members' sessions instead of passing them here",
        {{"groups", static_cast<int64_t>(shares.size())},
         {"named", static_cast<int64_t>(options_.heartbeat_shares)}});
  }
  shares_capped_ = capped;
  if (metrics_ != nullptr) metrics_->SetClusterSharedGroups(shares.size(), SharedGroupsElsewhere());
  return hb;
}

// ---- sending

void Cluster::Send(const std::string& subject, const google::protobuf::MessageLite& message,
                   const std::string& reply) {
  absl::Status s = bus_->Publish(subject, message.SerializeAsString(), reply);
  if (!s.ok()) {
    if (metrics_ != nullptr) metrics_->ClusterError("nats");
    // While NATS is away its client buffers what is sent: this is a message lost.
    static log::Throttle throttle(absl::Seconds(10));
    if (uint64_t n = 0; throttle.Allow(&n)) {
      log::Warn("cluster: a message for the other replicas could not be sent",
                {{"subject", subject}, {"error", s}, {"not_sent", static_cast<int64_t>(n)}});
    }
  }
}

uint64_t Cluster::NewMessageId() {
  const uint64_t n = next_id_.fetch_add(1, std::memory_order_relaxed);
  return (uint64_t{tag_} << kSequenceBits) | (n & ((uint64_t{1} << kSequenceBits) - 1));
}

v1::ClusterMessage Cluster::Encode(const Message& m) const {
  v1::ClusterMessage out;
  out.set_origin(options_.node);
  out.set_id(m.cluster_id);
  out.set_packet(EncodeMessagePacket(m, m.qos, m.retain));
  out.set_expires_at_ms(m.expires_at_ms.value_or(0));
  out.set_published_at_ms(m.published_at_ms);
  return out;
}

absl::StatusOr<MessagePtr> Cluster::Decode(const v1::ClusterMessage& proto) const {
  absl::StatusOr<DecodedMessage> d = DecodeMessagePacket(proto.packet());
  if (!d.ok()) return d.status();
  Message& m = *d->message;
  if (proto.expires_at_ms() != 0) m.expires_at_ms = proto.expires_at_ms();
  m.published_at_ms = proto.published_at_ms();
  m.cluster_id = proto.id();
  m.received_ns = IoThread::MonotonicNs();
  Seal(&m);
  return MessagePtr(std::move(d->message));
}

void Cluster::Published(const MessagePtr& message) {
  Send(SubjectOfTopic(absl::StrCat(options_.prefix, ".m"), message->topic), Encode(*message));
  if (metrics_ != nullptr) metrics_->ClusterMessages(/*out=*/true);
}

void Cluster::Connected(const std::string& client_id) {
  v1::ClusterClaim claim;
  claim.set_client_id(client_id);
  claim.set_node(options_.node);
  Send(absl::StrCat(options_.prefix, ".claim"), claim);
}

// ---- receiving

void Cluster::OnMessage(const BusMessage& m, bool shared, const std::string& group,
                        const std::string& filter) {
  v1::ClusterMessage proto;
  if (!proto.ParseFromArray(m.data.data(), static_cast<int>(m.data.size()))) {
    if (metrics_ != nullptr) metrics_->ClusterError("decode");
    return;
  }
  // This replica routed its own messages already (its bus does not echo them; the check
  // stands for a bus that does), but NATS's turn for a shared group may well be its own.
  if (!shared && proto.origin() == options_.node) return;
  absl::StatusOr<MessagePtr> message = Decode(proto);
  if (!message.ok()) {
    if (metrics_ != nullptr) metrics_->ClusterError("decode");
    log::Warn("cluster: a message from another replica does not decode",
              {{"node", proto.origin()}, {"error", message.status()}});
    return;
  }
  if (metrics_ != nullptr) metrics_->ClusterMessages(/*out=*/false);
  WhenReady([this, message = *std::move(message), shared, group, filter] {
    if (shared) {
      TakeSharedTurn(message, group, filter, /*passed=*/false);
    } else {
      broker_->RouteFromReplica(message, "");
    }
  });
}

void Cluster::TakeSharedTurn(const MessagePtr& message, const std::string& group,
                             const std::string& filter, bool passed) {
  using SharedTurn = Broker::SharedTurn;
  if (!Broker::SharedFilterTakes(message->topic, filter)) return;
  // A member connected here takes it. When all are away, and another replica has one
  // connected, that replica takes it (as AWS gives a group's messages to its connected
  // members); else an away member's session here queues it. A turn passed on is not
  // passed again: the heartbeats it was passed by may be a second old.
  if (broker_->DeliverShared(message, group, filter, SharedTurn::kConnectedMember) == 1) {
    if (metrics_ != nullptr) metrics_->ClusterSharedTurn(GatewayMetrics::SharedTurnResult::kHere);
    return;
  }
  const std::string to = passed ? "" : NextReplicaConnectedTo(group, filter);
  if (!to.empty()) {
    PassSharedTurn(*message, group, filter, to);
    return;
  }
  const bool queued = broker_->DeliverShared(message, group, filter) == 1;
  if (metrics_ != nullptr) {
    metrics_->ClusterSharedTurn(queued ? GatewayMetrics::SharedTurnResult::kHere
                                       : GatewayMetrics::SharedTurnResult::kDropped);
  }
}

void Cluster::PassSharedTurn(const Message& message, const std::string& group,
                             const std::string& filter, const std::string& to) {
  v1::ClusterSharedTurn turn;
  turn.set_group(group);
  turn.set_filter(filter);
  *turn.mutable_message() = Encode(message);
  Send(absl::StrCat(options_.prefix, ".share.", SubjectToken(to)), turn);
  if (metrics_ != nullptr) {
    metrics_->ClusterMessages(/*out=*/true);
    metrics_->ClusterSharedTurn(GatewayMetrics::SharedTurnResult::kPassed);
  }
}

bool Cluster::PassSharedMessage(const MessagePtr& message, const std::string& group,
                                const std::string& filter) {
  if (!SharesAcrossReplicas()) return false;
  const std::string to = NextReplicaConnectedTo(group, filter);
  if (to.empty()) return false;
  PassSharedTurn(*message, group, filter, to);
  return true;
}

void Cluster::PassSharedQueues(const std::vector<std::pair<std::string, std::string>>& away) {
  // Not into a NATS client's buffer while NATS is away: they wait here meanwhile.
  if (!SharesAcrossReplicas()) return;
  for (const auto& [group, filter] : away) {
    const std::string to = NextReplicaConnectedTo(group, filter);
    if (to.empty()) continue;
    // Taken out of the sessions here as they go: NATS carries them at most once, as it
    // does every message between replicas.
    for (const MessagePtr& m :
         broker_->TakeSharedQueueOf(group, filter, options_.shared_queue_per_heartbeat)) {
      PassSharedTurn(*m, group, filter, to);
    }
  }
}

std::vector<std::string> Cluster::ReplicasConnectedTo(const std::string& group,
                                                      const std::string& filter) const {
  const uint64_t id = ShareId(group, filter);
  std::vector<std::string> out;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [node, peer] : peers_) {
    if (peer.connected_shares.contains(id)) out.push_back(node);
  }
  return out;
}

size_t Cluster::SharedGroupsElsewhere() const {
  absl::flat_hash_set<uint64_t> ids;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [node, peer] : peers_) {
    ids.insert(peer.connected_shares.begin(), peer.connected_shares.end());
  }
  return ids.size();
}

std::string Cluster::NextReplicaConnectedTo(const std::string& group, const std::string& filter) {
  std::vector<std::string> candidates = ReplicasConnectedTo(group, filter);
  if (candidates.empty()) return "";
  return candidates[shared_turns_passed_.fetch_add(1, std::memory_order_relaxed) %
                    candidates.size()];
}

void Cluster::OnSharedTurn(const BusMessage& m) {
  v1::ClusterSharedTurn turn;
  if (!turn.ParseFromArray(m.data.data(), static_cast<int>(m.data.size()))) {
    if (metrics_ != nullptr) metrics_->ClusterError("decode");
    return;
  }
  absl::StatusOr<MessagePtr> message = Decode(turn.message());
  if (!message.ok()) {
    if (metrics_ != nullptr) metrics_->ClusterError("decode");
    return;
  }
  if (metrics_ != nullptr) metrics_->ClusterMessages(/*out=*/false);
  WhenReady([this, message = *std::move(message), group = turn.group(), filter = turn.filter()] {
    TakeSharedTurn(message, group, filter, /*passed=*/true);
  });
}

void Cluster::OnHeartbeat(const BusMessage& m) {
  v1::ClusterHeartbeat hb;
  if (!hb.ParseFromArray(m.data.data(), static_cast<int>(m.data.size()))) return;
  std::unique_lock<std::mutex> l(mu_);
  if (hb.node() == options_.node) {
    if (hb.tag() != tag_ && !hb.leaving()) {
      if (!duplicate_node_) {
        log::Error("cluster: another gateway replica uses this node id; messages and sessions "
                   "will go astray until one of them takes another (--cluster-node-id)",
                   {{"node", options_.node}});
      }
      duplicate_node_ = true;
      if (metrics_ != nullptr) metrics_->ClusterError("duplicate_node");
    }
    return;
  }
  if (hb.leaving()) {
    if (peers_.erase(hb.node()) == 0) return;
    l.unlock();
    log::Info("cluster: a replica left", {{"node", hb.node()}});
    PeerGone(hb.node());
    return;
  }
  auto [it, added] = peers_.insert_or_assign(
      hb.node(),
      Peer{.heard = Now(),
           .connected_shares = {hb.connected_shares().begin(), hb.connected_shares().end()}});
  if (added) log::Info("cluster: a replica joined", {{"node", hb.node()}});
}

void Cluster::OnClaim(const BusMessage& m) {
  v1::ClusterClaim claim;
  if (!claim.ParseFromArray(m.data.data(), static_cast<int>(m.data.size()))) return;
  if (claim.node() == options_.node) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    claimed_[claim.client_id()] = Claimed{.node = claim.node(), .at = Now()};
  }
  WhenReady([this, claim = std::move(claim)] {
    if (broker_->EndClaimed(claim.client_id())) {
      if (metrics_ != nullptr) metrics_->ClusterTakeover();
      log::Debug("cluster: client connected to another replica; its session here ended",
                 {{"client_id", claim.client_id()}, {"node", claim.node()}});
    }
  });
}

void Cluster::OnHandoverRequest(const BusMessage& m) {
  v1::HandoverRequest req;
  if (!req.ParseFromArray(m.data.data(), static_cast<int>(m.data.size()))) return;
  if (req.node() == options_.node || m.reply.empty()) return;
  WhenReady([this, req = std::move(req), reply = std::string(m.reply)] {
    const std::string to = absl::StrCat(options_.prefix, ".fwd.", SubjectToken(req.node()));
    Session::ForwardFn forward = [this, to, client_id = req.client_id()](
                                     const MessagePtr& message, uint8_t qos, bool retain,
                                     std::vector<uint32_t> subscription_ids) {
      v1::ClusterForward f;
      f.set_client_id(client_id);
      *f.mutable_message() = Encode(*message);
      f.set_qos(qos);
      f.set_retain(retain);
      for (uint32_t id : subscription_ids) f.add_subscription_ids(id);
      Send(to, f);
    };
    std::optional<StoredSession> session =
        broker_->HandOver(req.client_id(), std::move(forward), options_.forward_for);
    v1::HandoverResponse resp;
    resp.set_node(options_.node);
    if (session.has_value()) {
      if (!resp.mutable_session()->ParseFromString(EncodeSession(*session))) return;
      log::Info("cluster: session handed to the replica its client resumed it on",
                {{"client_id", req.client_id()},
                 {"node", req.node()},
                 {"messages", static_cast<int64_t>(session->messages.size())}});
    }
    Send(reply, resp);
  });
}

void Cluster::OnForward(const BusMessage& m) {
  v1::ClusterForward f;
  if (!f.ParseFromArray(m.data.data(), static_cast<int>(m.data.size()))) return;
  absl::StatusOr<MessagePtr> message = Decode(f.message());
  if (!message.ok()) {
    if (metrics_ != nullptr) metrics_->ClusterError("decode");
    return;
  }
  std::vector<uint32_t> ids(f.subscription_ids().begin(), f.subscription_ids().end());
  std::lock_guard<std::mutex> l(forwards_mu_);
  if (broker_->DeliverForwarded(f.client_id(), *message, static_cast<uint8_t>(f.qos()),
                                f.retain(), ids)) {
    return;
  }
  // The session's handover answer is still on its way: kept until it is adopted.
  forwards_[f.client_id()].push_back(Forwarded{.until = Now() + options_.forward_for,
                                               .message = *std::move(message),
                                               .qos = static_cast<uint8_t>(f.qos()),
                                               .retain = f.retain(),
                                               .subscription_ids = std::move(ids)});
}

void Cluster::OnAdmin(const BusMessage& m) {
  v1::ClusterAdminRequest req;
  if (!req.ParseFromArray(m.data.data(), static_cast<int>(m.data.size()))) return;
  if (req.node() == options_.node || m.reply.empty()) return;
  AsyncAdminHandler handler;
  {
    std::lock_guard<std::mutex> l(mu_);
    handler = admin_handler_;
  }
  Reply reply = [this, to = std::string(m.reply)](v1::ClusterAdminResponse resp) {
    resp.set_node(options_.node);
    Send(to, resp);
  };
  if (!handler) return reply(v1::ClusterAdminResponse());
  handler(req, std::move(reply));
}

void Cluster::OnAdminReply(const BusMessage& m) {
  const std::optional<uint64_t> id = ReplyId(m.subject);
  if (!id.has_value()) return;
  std::lock_guard<std::mutex> l(mu_);
  // An answer after the call returned (another replica found the client first, or the
  // wait ended) has no one to tell.
  auto it = asks_.find(*id);
  if (it == asks_.end()) return;
  v1::ClusterAdminResponse resp;
  if (!resp.ParseFromArray(m.data.data(), static_cast<int>(m.data.size()))) return;
  it->second->found = it->second->found || resp.found();
  it->second->answers.push_back(std::move(resp));
  it->second->cv.notify_all();
}

void Cluster::OnReply(const BusMessage& m) {
  const std::optional<uint64_t> id = ReplyId(m.subject);
  if (!id.has_value()) return;
  std::shared_ptr<Fetch> fetch;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = fetches_.find(*id); it != fetches_.end()) fetch = it->second;
  }
  v1::HandoverResponse resp;
  if (!resp.ParseFromArray(m.data.data(), static_cast<int>(m.data.size()))) return;
  if (fetch == nullptr) {
    // An answer after the client went on: the session is taken all the same, unless the
    // client has a new one here by now.
    if (resp.has_session()) {
      const bool adopted = AdoptFrom(resp.session());
      if (metrics_ != nullptr) metrics_->ClusterHandover("late");
      log::Warn("cluster: a session came after its client had connected without it",
                {{"client_id", resp.session().client_id()},
                 {"node", resp.node()},
                 {"kept", adopted}});
    }
    return;
  }
  if (resp.has_session()) {
    AdoptFrom(resp.session());
    FinishFetch(fetch, "from_replica");
    return;
  }
  bool ask_store = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    fetch->waiting.erase(resp.node());
    if (fetch->waiting.empty() && fetch->state == Fetch::State::kAsking) {
      fetch->state = Fetch::State::kFromStore;
      ask_store = true;
    }
  }
  if (ask_store) Work([this, fetch] { FromStore(fetch); });
}

// ---- sessions

void Cluster::FetchSession(const std::string& client_id, std::function<void()> done) {
  auto fetch = std::make_shared<Fetch>();
  fetch->client_id = client_id;
  fetch->done = std::move(done);
  const std::vector<std::string> others = OtherLiveNodes();
  if (others.empty()) {
    fetch->state = Fetch::State::kFromStore;
    Work([this, fetch] { FromStore(fetch); });
    return;
  }
  fetch->id = next_request_.fetch_add(1);
  fetch->waiting.insert(others.begin(), others.end());
  fetch->deadline = Now() + options_.handover_timeout;
  {
    std::lock_guard<std::mutex> l(mu_);
    fetches_[fetch->id] = fetch;
  }
  v1::HandoverRequest req;
  req.set_client_id(client_id);
  req.set_node(options_.node);
  Send(absl::StrCat(options_.prefix, ".handover"), req, absl::StrCat(inbox_, ".", fetch->id));
}

void Cluster::FinishFetch(const std::shared_ptr<Fetch>& fetch, absl::string_view result) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (fetch->state == Fetch::State::kDone) return;
    fetch->state = Fetch::State::kDone;
    fetches_.erase(fetch->id);
  }
  if (metrics_ != nullptr) metrics_->ClusterHandover(result);
  fetch->done();
}

void Cluster::FromStore(const std::shared_ptr<Fetch>& fetch) {
  // A late answer may have brought it meanwhile.
  if (broker_->Find(fetch->client_id) != nullptr) return FinishFetch(fetch, "from_replica");
  absl::StatusOr<std::optional<GatewayStore::OwnedSession>> owned =
      store_->LoadSession(fetch->client_id);
  if (!owned.ok()) {
    log::Warn("cluster: cannot look for a resuming client's session in Postgres; it starts "
              "a new one",
              {{"client_id", fetch->client_id}, {"error", owned.status()}});
    return FinishFetch(fetch, "none");
  }
  if (!owned->has_value()) return FinishFetch(fetch, "none");
  const std::vector<std::string> live = LiveNodes();
  const std::string& owner = (*owned)->owner;
  // A live replica's row that it did not hand over is one it ended (or is ending): not
  // to be brought back. Only a gone replica's session is taken.
  if (std::find(live.begin(), live.end(), owner) != live.end()) {
    return FinishFetch(fetch, "none");
  }
  {
    std::lock_guard<std::mutex> l(forwards_mu_);
    if (broker_->Adopt(std::move((*owned)->session),
                       options_.forward_for + options_.handover_timeout)) {
      log::Info("cluster: took over a session a gone replica left in Postgres",
                {{"client_id", fetch->client_id}, {"node", owner}});
    }
  }
  FinishFetch(fetch, "from_store");
}

void Cluster::PeerGone(const std::string& node) {
  const std::vector<std::string> live = LiveNodes();
  if (live.empty() || live.front() != options_.node) return;  // the first live replica's
  Work([this, node] { AdoptSessionsOf(node); });
}

void Cluster::AdoptSessionsOf(const std::string& node) {
  absl::StatusOr<std::vector<StoredSession>> sessions = store_->LoadSessionsOf(node);
  if (!sessions.ok()) {
    log::Warn("cluster: cannot read the sessions of a replica that is gone; each is taken "
              "when its client returns",
              {{"node", node}, {"error", sessions.status()}});
    return;
  }
  int64_t adopted = 0;
  for (StoredSession& s : *sessions) {
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = claimed_.find(s.record.client_id);
      if (it != claimed_.end() && it->second.node != node) continue;  // connected elsewhere
    }
    std::lock_guard<std::mutex> l(forwards_mu_);
    if (broker_->Adopt(std::move(s), absl::ZeroDuration())) ++adopted;
  }
  if (metrics_ != nullptr) metrics_->ClusterAdopted(adopted);
  if (adopted > 0) {
    log::Info("cluster: took over the sessions of a replica that is gone",
              {{"node", node}, {"sessions", adopted}});
  }
}

bool Cluster::AdoptFrom(const v1::ClusterSession& proto) {
  absl::StatusOr<StoredSession> session = DecodeSession(proto);
  if (!session.ok()) {
    if (metrics_ != nullptr) metrics_->ClusterError("decode");
    log::Error("cluster: a handed-over session does not decode; it is lost",
               {{"client_id", proto.client_id()}, {"error", session.status()}});
    return false;
  }
  std::lock_guard<std::mutex> l(forwards_mu_);
  // Deduplicated for as long as the old replica forwards, and the way here.
  if (!broker_->Adopt(*std::move(session), options_.forward_for + options_.handover_timeout)) {
    return false;
  }
  auto it = forwards_.find(proto.client_id());
  if (it != forwards_.end()) {
    for (Forwarded& f : it->second) {
      broker_->DeliverForwarded(proto.client_id(), f.message, f.qos, f.retain,
                                std::move(f.subscription_ids));
    }
    forwards_.erase(it);
  }
  return true;
}

std::string Cluster::EncodeSession(const StoredSession& session) {
  const SessionRecord& r = session.record;
  v1::ClusterSession out;
  out.set_client_id(r.client_id);
  out.set_protocol_version(static_cast<uint32_t>(r.version));
  out.set_expiry_interval(r.expiry_interval);
  out.set_disconnected_at_ms(r.disconnected_at_ms.value_or(0));
  for (const StoredSubscription& s : r.subscriptions) {
    v1::ClusterSubscription* sub = out.add_subscriptions();
    sub->set_filter(s.filter);
    sub->set_qos(s.options.qos);
    sub->set_no_local(s.options.no_local);
    sub->set_retain_as_published(s.options.retain_as_published);
    sub->set_retain_handling(s.options.retain_handling);
    sub->set_subscription_id(s.options.subscription_id);
  }
  if (r.will.has_value()) {
    const Message& w = *r.will->message;
    out.set_will_packet(EncodeMessagePacket(w, w.qos, w.retain));
    out.set_will_due_ms(r.will->due_ms);
    out.set_will_expires_at_ms(w.expires_at_ms.value_or(0));
  }
  for (uint16_t id : r.inbound_qos2) out.add_inbound_qos2(id);
  for (const StoredMessage& m : session.messages) {
    v1::ClusterStoredMessage* sm = out.add_messages();
    sm->set_seq(m.seq);
    sm->set_packet(EncodeMessagePacket(*m.message, m.qos, m.retain));
    sm->set_qos(m.qos);
    sm->set_retain(m.retain);
    for (uint32_t id : m.subscription_ids) sm->add_subscription_ids(id);
    sm->set_packet_id(m.packet_id);
    sm->set_released(m.released);
    sm->set_expires_at_ms(m.message->expires_at_ms.value_or(0));
    sm->set_cluster_id(m.message->cluster_id);
    sm->set_share(m.share);
  }
  return out.SerializeAsString();
}

absl::StatusOr<StoredSession> Cluster::DecodeSession(const v1::ClusterSession& proto) {
  StoredSession out;
  SessionRecord& r = out.record;
  r.client_id = proto.client_id();
  r.version = proto.protocol_version() == 5 ? mqtt::Version::kV5 : mqtt::Version::kV311;
  r.expiry_interval = proto.expiry_interval();
  if (proto.disconnected_at_ms() != 0) r.disconnected_at_ms = proto.disconnected_at_ms();
  for (const v1::ClusterSubscription& s : proto.subscriptions()) {
    r.subscriptions.push_back(StoredSubscription{
        .filter = s.filter(),
        .options = {.qos = static_cast<uint8_t>(s.qos()),
                    .no_local = s.no_local(),
                    .retain_as_published = s.retain_as_published(),
                    .retain_handling = static_cast<uint8_t>(s.retain_handling()),
                    .subscription_id = s.subscription_id()}});
  }
  if (!proto.will_packet().empty()) {
    absl::StatusOr<DecodedMessage> w = DecodeMessagePacket(proto.will_packet());
    if (!w.ok()) return w.status();
    if (proto.will_expires_at_ms() != 0) w->message->expires_at_ms = proto.will_expires_at_ms();
    Seal(w->message.get());
    r.will = PendingWill{.message = std::move(w->message), .due_ms = proto.will_due_ms()};
  }
  for (uint32_t id : proto.inbound_qos2()) r.inbound_qos2.push_back(static_cast<uint16_t>(id));
  for (const v1::ClusterStoredMessage& sm : proto.messages()) {
    absl::StatusOr<DecodedMessage> d = DecodeMessagePacket(sm.packet());
    if (!d.ok()) return d.status();
    if (sm.expires_at_ms() != 0) d->message->expires_at_ms = sm.expires_at_ms();
    d->message->cluster_id = sm.cluster_id();
    Seal(d->message.get());
    out.messages.push_back(StoredMessage{
        .seq = sm.seq(),
        .message = std::move(d->message),
        .qos = static_cast<uint8_t>(sm.qos()),
        .retain = sm.retain(),
        .subscription_ids = {sm.subscription_ids().begin(), sm.subscription_ids().end()},
        .packet_id = static_cast<uint16_t>(sm.packet_id()),
        .released = sm.released(),
        .share = sm.share()});
  }
  return out;
}

// ---- shared subscriptions

void Cluster::SharedGroupChanged(const std::string& group, const std::string& filter) {
  // Subscribing talks to NATS: not on the broker's threads.
  Work([this, group, filter] { ReconcileShared(group, filter); });
}

void Cluster::ReconcileShared(const std::string& group, const std::string& filter) {
  std::lock_guard<std::mutex> l(shared_mu_);
  const auto key = std::make_pair(group, filter);
  const bool want = broker_->HasSharedMembers(group, filter);
  const bool have = shared_subs_.contains(key);
  if (want == have) return;
  if (!want) {
    shared_subs_.erase(key);
    return;
  }
  std::vector<std::unique_ptr<ClusterBus::Subscription>>& subs = shared_subs_[key];
  for (const std::string& subject :
       SubjectsOfFilter(absl::StrCat(options_.prefix, ".m"), filter)) {
    absl::StatusOr<std::unique_ptr<ClusterBus::Subscription>> sub = shared_bus_->Subscribe(
        subject, QueueOfShare(group, filter),
        [this, group, filter](const BusMessage& m) { OnMessage(m, true, group, filter); });
    if (!sub.ok()) {
      if (metrics_ != nullptr) metrics_->ClusterError("nats");
      log::Error("cluster: cannot subscribe to a shared subscription's messages",
                 {{"group", group}, {"filter", filter}, {"error", sub.status()}});
      continue;
    }
    subs.push_back(*std::move(sub));
  }
}

// ---- administration

void Cluster::SetAdminHandler(AdminHandler handler) {
  SetAsyncAdminHandler([handler = std::move(handler)](const v1::ClusterAdminRequest& req,
                                                      Reply reply) { reply(handler(req)); });
}

void Cluster::SetAsyncAdminHandler(AsyncAdminHandler handler) {
  std::lock_guard<std::mutex> l(mu_);
  admin_handler_ = std::move(handler);
}

std::vector<v1::ClusterAdminResponse> Cluster::AskReplicas(v1::ClusterAdminRequest request,
                                                           absl::Duration longer) {
  const std::vector<std::string> others = OtherLiveNodes();
  if (others.empty()) return {};
  auto ask = std::make_shared<Ask>();
  ask->expected = others.size();
  ask->one_suffices = request.call_case() != v1::ClusterAdminRequest::kList;
  const uint64_t id = next_request_.fetch_add(1);
  {
    std::lock_guard<std::mutex> l(mu_);
    asks_[id] = ask;
  }
  request.set_node(options_.node);
  // (Their own reply subject: a late answer is never read as a handover answer.)
  Send(absl::StrCat(options_.prefix, ".admin"), request, absl::StrCat(inbox_, ".admin.", id));
  std::unique_lock<std::mutex> l(mu_);
  ask->cv.wait_for(
      l, std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.handover_timeout + longer)),
      [&] { return ask->answers.size() >= ask->expected || (ask->one_suffices && ask->found); });
  asks_.erase(id);
  return std::move(ask->answers);
}

std::vector<std::string> Cluster::OtherLiveNodes() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  for (const auto& [node, seen] : peers_) out.push_back(node);
  return out;
}

std::vector<std::string> Cluster::LiveNodes() const {
  std::vector<std::string> out = OtherLiveNodes();
  out.push_back(options_.node);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace fleetcore::gateway
