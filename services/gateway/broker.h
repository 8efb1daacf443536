// The broker: sessions by client id, the subscription trie, retained messages, routing,
// wills and session expiry (MQTT 3.1.1 and 5 semantics, AWS IoT Core's where they differ
// and AWS is stricter; docs/architecture.md). It knows nothing of sockets: connections
// reach it through Session and Outlet, so tests drive it with fakes.
//
//   Broker broker(limits, &store, &clock);
//   FLEETCORE_RETURN_IF_ERROR(broker.Load());        // retained and sessions from the store
//   auto a = broker.Attach(outlet, {.client_id = "c", .version = kV5, ...});
//   broker.Subscribe(a.session, "a/+", filter, options);
//   broker.Publish(message);                         // routes to every matching session
//   broker.Detach(a.session, outlet.get(), will, will_delay, WillPolicy::kPublish);
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/mqtt/topic_tree.h"
#include "common/time/clock.h"
#include "services/gateway/broker_limits.h"
#include "services/gateway/gateway_store.h"
#include "services/gateway/message.h"
#include "services/gateway/retained_store.h"
#include "services/gateway/session.h"

namespace fleetcore::gateway {

// What the broker tells the other gateway replicas (Cluster, over NATS). Without one, a
// broker routes among its own connections only.
class BrokerCluster {
 public:
  virtual ~BrokerCluster() = default;
  // A new cluster-wide id for a message published here.
  virtual uint64_t NewMessageId() = 0;
  // A message published here (not one for a single session), after it was routed here:
  // for the other replicas' subscribers, and every replica's shared subscriptions.
  virtual void Published(const MessagePtr& message) = 0;
  // A shared subscription group on `filter` gained its first member here, or lost its
  // last (HasSharedMembers says which, when asked).
  virtual void SharedGroupChanged(const std::string& group, const std::string& filter) = 0;
  // A client connected here: other replicas let go of the client id.
  virtual void Connected(const std::string& client_id) = 0;
  // A client resumes a session this replica does not hold: it is brought here if another
  // replica (or Postgres) has it. `done` runs on another thread once that is settled.
  virtual void FetchSession(const std::string& client_id, std::function<void()> done) = 0;
  // Whether the replicas share shared subscriptions' messages now (NATS is reachable);
  // otherwise this replica gives its own publishers' messages to its own members.
  virtual bool SharesAcrossReplicas() const = 0;
  // A message a shared group queued here whose holder's session ended with no member of
  // the group left here: to a replica whose heartbeat names a connected member, at most
  // once as between replicas always. False when there is none (or NATS is away).
  virtual bool PassSharedMessage(const MessagePtr& message, const std::string& group,
                                 const std::string& filter) = 0;
};

// Counters the metrics read; monotonic.
struct BrokerCounters {
  std::atomic<uint64_t> dropped_queue_full{0};
  std::atomic<uint64_t> dropped_expired{0};
  std::atomic<uint64_t> dropped_not_allowed{0};  // iot:Receive refused
  std::atomic<uint64_t> routed{0};       // deliveries queued
  std::atomic<uint64_t> no_subscriber{0};
  std::atomic<uint64_t> sessions_expired{0};
  std::atomic<uint64_t> wills_published{0};
  std::atomic<uint64_t> retained_refused{0};  // over max_retained_messages
  // Messages a shared group queued for an away member, given to one that came.
  std::atomic<uint64_t> shared_queue_moved{0};
};

class Broker {
 public:
  // `store` may be null (nothing persists); it and `clock` outlive the broker.
  Broker(BrokerLimits limits, GatewayStore* store, const Clock* clock);
  ~Broker();

  const BrokerLimits& limits() const { return limits_; }

  // Loads retained messages and persistent sessions; sessions that expired while the
  // gateway was down end (their pending wills go out). Call once, before serving.
  absl::Status Load();

  struct ConnectParams {
    std::string client_id;
    mqtt::Version version = mqtt::Version::kV311;
    bool clean_start = true;
    uint32_t expiry_interval = 0;  // seconds the session outlives the connection
    uint16_t receive_maximum = 0;  // the client's (0: not given)
    // Its policies' iot:Receive (null: no check), set before anything reaches it.
    std::shared_ptr<const Session::ReceiveCheck> receive_check;
  };
  struct Attached {
    std::shared_ptr<Session> session;
    bool session_present = false;
  };
  // Attaches `outlet` to the client id's session: resumes it unless clean_start (its
  // unacknowledged messages go again), or starts a new one. A connection already attached
  // to the client id is kicked (0x8E, session taken over). A resumed session's shared
  // groups give it the messages they queued in other members' sessions while no member
  // was connected (AWS IoT Core's group queue: to whichever member comes first).
  Attached Attach(std::shared_ptr<Outlet> outlet, const ConnectParams& params);

  // The connection `outlet` of `session` ended. `will` (null: none) is published now,
  // kept until `will_delay` seconds pass while the session lives on, or dropped, per
  // `policy`. A session without expiry ends here; a persistent one is stored.
  // `reason`: AWS's lifecycle disconnectReason, kept on a session that lives on.
  void Detach(const std::shared_ptr<Session>& session, const Outlet* outlet, MessagePtr will,
              uint32_t will_delay, WillPolicy policy, std::string reason = {});

  // Subscribes `session` to `filter` (as the client sent it; `parsed` is its share group
  // and topic filter). Returns whether the subscription is new; a connected client's new
  // shared subscription takes what its group queued meanwhile, as in Attach. Persist()
  // afterwards stores a persistent session's subscriptions (once per SUBSCRIBE packet).
  bool Subscribe(const std::shared_ptr<Session>& session, const std::string& filter,
                 const mqtt::ParsedFilter& parsed, const mqtt::SubscriptionOptions& options);
  bool Unsubscribe(const std::shared_ptr<Session>& session, const std::string& filter);
  // Moves to `to` (whose client is connected) what its shared groups queued in the
  // sessions of members whose clients are away: all its groups, or only `share`'s. It
  // fills `to`'s queue to half of --max-queued-messages at most (so that live messages
  // still find room); when there may be more, `to` is marked (Session::SharedBacklogDue)
  // and its connection asks again once it has sent most of what it took.
  void TakeSharedQueue(const std::shared_ptr<Session>& to, absl::string_view share = {});
  void Persist(const Session& session);

  // Routes `message` to every matching subscription (or only `only`'s), once per session
  // at the highest matching QoS, and stores or deletes the retained message when it is
  // retained. Returns the number of sessions it was queued for.
  size_t Publish(const MessagePtr& message, const Session* only = nullptr);
  // Publishes a service's answer to a device's request (a shadow's, fleet provisioning's,
  // AWS IoT Jobs', Device Defender's): QoS 1, published now; to `only`'s session alone
  // when given.
  void PublishAnswer(std::string topic, std::string payload, const Session* only = nullptr);

  // A direct message (AWS's SendDirectMessage): to `client_id`'s session only, at the
  // message's QoS, whatever it subscribes to; never retained, never to the rules, and only
  // while the client is connected here. kNotAllowed: its policies refuse iot:Receive on
  // the topic; kDroppedFull: its queue is full.
  Session::DeliverResult SendDirect(absl::string_view client_id, const MessagePtr& message);

  // Called with every message published to a topic under "$aws/" (the request topics the
  // AWS services answer, e.g. the shadow's), after it is routed, on the publisher's
  // thread. Set once, before traffic starts.
  using ServiceHook = std::function<void(const MessagePtr&)>;
  void SetServiceHook(ServiceHook hook) { service_hook_ = std::move(hook); }

  // Called with every message published (but not with one sent to a single session),
  // after it is routed, on the publisher's thread: the rules engine's feed. Messages to
  // Basic Ingest topics ($aws/rules/{rule}/...) go only here, never to subscribers. Set
  // once, before traffic starts.
  using RulesHook = std::function<void(const MessagePtr&)>;
  void SetRulesHook(RulesHook hook) { rules_hook_ = std::move(hook); }

  // Whether a retained message for `topic` would be kept (max_retained_messages); when not,
  // counts it refused.
  bool RetainedRoomFor(absl::string_view topic);
  // The same for a message: false (counted) only for a retained message with a payload for
  // a topic refused as above (an empty payload deletes: always room).
  bool RetainedRoomFor(bool retain, absl::string_view payload, absl::string_view topic);
  bool RetainedRoomFor(const Message& message) {
    return RetainedRoomFor(message.retain, message.payload, message.topic);
  }
  // The retained messages a new subscription to `topic_filter` receives.
  void RetainedFor(absl::string_view topic_filter, std::vector<MessagePtr>* out) const;
  const RetainedStore& retained() const { return retained_; }

  // Ends expired sessions and publishes wills whose delay passed. Called every second.
  void Sweep();

  // The administrative side: the session of a client id, every session, and ending one
  // (kicking its connection with `reason`; the session is discarded when `clean`).
  std::shared_ptr<Session> Find(absl::string_view client_id) const;
  std::vector<std::shared_ptr<Session>> Sessions() const;
  bool Disconnect(absl::string_view client_id, uint8_t reason, WillPolicy will, bool clean);
  size_t session_count() const;

  // Kicks every attached connection with `reason` (shutdown); returns how many.
  size_t KickAll(uint8_t reason);
  // Ends the connections made with the certificate `certificate_id` (revoked, deactivated
  // or deleted): MQTT 5 DISCONNECT 0x87, wills published. Returns how many.
  size_t KickCertificate(absl::string_view certificate_id);
  // Has the connections fetch their policies again: those of one certificate, or all those
  // of certificates and access keys when `certificate_id` is empty. Returns how many were
  // asked.
  size_t RefreshAuthorization(absl::string_view certificate_id);
  // The same for the connections of one principal (an access key's user: its keys or
  // attachments changed; each verifies its signature again). Returns how many were asked.
  size_t RefreshAuthorizationOfPrincipal(absl::string_view principal);
  // The same for the connections whose policy variables come from `thing` (its attributes,
  // type or groups changed). Returns how many were asked.
  size_t RefreshAuthorizationOfThing(absl::string_view thing);

  const BrokerCounters& counters() const { return counters_; }
  int64_t NowMs() const;

  // The versionNumber of a new connection's lifecycle events, which AWS makes increase with
  // each connection of a client id (its connected and disconnected events share one) so
  // that subscribers can order them: the seconds since 2020 at the connect, or one more
  // than the client id's last when that is as high. It so increases across gateway
  // restarts and replicas (whose clocks agree within a second) without any stored state.
  uint64_t LifecycleVersion(const std::string& client_id);

  // ---- Among gateway replicas (services/gateway/cluster.h).
  // Set once, before Load and before serving; `cluster` outlives the broker's use of it.
  void SetCluster(BrokerCluster* cluster) { cluster_ = cluster; }
  BrokerCluster* cluster() const { return cluster_; }
  // A message published on another replica: routed to the subscriptions here (not shared
  // ones: DeliverShared), or only to `target_client_id`'s session when that is set; a
  // retained one is kept in memory here (its own replica stores it). Returns the number of
  // sessions it was queued for.
  size_t RouteFromReplica(const MessagePtr& message, absl::string_view target_client_id);
  // Which members of a shared group DeliverShared may give a message to.
  enum class SharedTurn {
    kAnyMember,        // a connected one, else one whose client is away (its session queues)
    kConnectedMember,  // a connected one only; with none here it is not delivered
  };
  // A message for the shared subscription `group` on `filter`, which NATS gave this
  // replica's turn (or another replica passed on): to one member here. Returns 1 when it
  // was queued for one.
  size_t DeliverShared(const MessagePtr& message, absl::string_view group, absl::string_view filter,
                       SharedTurn turn = SharedTurn::kAnyMember);
  bool HasSharedMembers(const std::string& group, const std::string& filter) const;
  // Whether a shared group's `filter` takes a message on `topic` that NATS matched to it:
  // not when a wildcard would match a '$' topic, which MQTT forbids.
  static bool SharedFilterTakes(absl::string_view topic, absl::string_view filter);
  // The shared groups (share group, filter) with members here: those with a member whose
  // client is connected, and those none of whose members' clients is.
  struct SharedGroupsHere {
    std::vector<std::pair<std::string, std::string>> connected;
    std::vector<std::pair<std::string, std::string>> away;
  };
  SharedGroupsHere SharedGroupsByPresence() const;
  // Up to `max` of the messages `group` on `filter` queued here while no member was
  // connected (Session::TakeShared), taken out of its away members' sessions for a
  // replica with a member connected; none while a member here is connected.
  std::vector<MessagePtr> TakeSharedQueueOf(const std::string& group, const std::string& filter,
                                            size_t max);
  // The client id connected on another replica: the session here ends, its connection
  // taken over (0x8E). Returns whether there was one. (Two connects of one client id on
  // two replicas within the moment their announcements cross both end; clocks are not
  // compared, so a replica whose clock is ahead cannot keep a stale connection.)
  bool EndClaimed(absl::string_view client_id);
  // The session of `client_id` leaves for the replica its client is resuming it on: its
  // connection here is taken over, it is returned as stored, and for `forward_for` what is
  // delivered to it goes to `forward`. nullopt: no session here.
  std::optional<StoredSession> HandOver(absl::string_view client_id, Session::ForwardFn forward,
                                        absl::Duration forward_for);
  // A session handed over by another replica (or one left in Postgres by a replica that is
  // gone) becomes this replica's, detached until its client attaches, and is given no
  // message twice for `dedupe_for`. False when a session of the client id is here already.
  bool Adopt(StoredSession session, absl::Duration dedupe_for);
  // A message the session's previous replica passed on while it moved; false when the
  // session is not here.
  bool DeliverForwarded(absl::string_view client_id, const MessagePtr& message, uint8_t qos,
                        bool retain, std::vector<uint32_t> subscription_ids);

 private:
  struct Timer {
    int64_t due_ms;
    std::weak_ptr<Session> session;
    uint64_t generation;
    bool operator>(const Timer& o) const { return due_ms > o.due_ms; }
  };
  std::shared_ptr<Session> NewSession(const std::string& client_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sessions_mu_);
  // Removes the session's subscriptions and its stored state; publishes a pending will.
  // What it held of its shared groups' queues goes to their other members.
  void EndSession(const std::shared_ptr<Session>& session);
  // Gives each message (with its share, "$share/{group}/{filter}") to a member of its
  // group, as a new turn (DeliverShared).
  void GiveToGroups(std::vector<std::pair<std::string, MessagePtr>> messages);
  void Schedule(int64_t due_ms, const std::shared_ptr<Session>& session);
  void PublishWill(MessagePtr will);
  // Asks the attached connections `concerned` says yes to to fetch their policies again.
  size_t RefreshAuthorizationIf(absl::FunctionRef<bool(const Outlet&)> concerned);
  size_t Route(const MessagePtr& message, const Session* only, bool from_replica = false);
  // Counts a delivery that was dropped, by why; true when it was queued.
  bool Tally(Session::DeliverResult result);
  // Counts (and now and then logs) a retained message not kept for the limit.
  void RetainedRefused(absl::string_view topic);
  // Restores a stored session into the map and the tree, with its timers (Load, Adopt);
  // null when the client id has a session already.
  std::shared_ptr<Session> Install(StoredSession& stored, int64_t now, bool* expired);
  // Counts `session`'s shared subscription joining (+1) or leaving (-1); the groups whose
  // first member came or last left go to `changed`.
  void CountShared(const std::string& group, const std::string& filter, int delta,
                   std::vector<std::pair<std::string, std::string>>* changed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tree_mu_);
  void TellSharedChanged(const std::vector<std::pair<std::string, std::string>>& changed);
  // Takes every subscription of `session` out of the tree.
  void RemoveFromTree(const Session& session);

  const BrokerLimits limits_;
  GatewayStore* const store_;
  ServiceHook service_hook_;
  RulesHook rules_hook_;
  const Clock* const clock_;
  const SessionSettings session_settings_;
  BrokerCounters counters_;
  RetainedStore retained_;

  mutable absl::Mutex tree_mu_;
  mqtt::TopicTree tree_ ABSL_GUARDED_BY(tree_mu_);
  // Members here of each shared group (group, filter); only with a cluster.
  absl::flat_hash_map<std::pair<std::string, std::string>, int> shared_counts_
      ABSL_GUARDED_BY(tree_mu_);
  BrokerCluster* cluster_ = nullptr;

  mutable absl::Mutex sessions_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(sessions_mu_);
  uint64_t next_session_id_ ABSL_GUARDED_BY(sessions_mu_) = 1;

  absl::Mutex timers_mu_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_
      ABSL_GUARDED_BY(timers_mu_);
  // Sessions handed to another replica, forwarding until `until_ms`, and sessions taken
  // from one, deduplicating until then.
  struct Moving {
    int64_t until_ms;
    std::shared_ptr<Session> session;
  };
  std::vector<Moving> moved_out_ ABSL_GUARDED_BY(timers_mu_);
  std::vector<Moving> moved_in_ ABSL_GUARDED_BY(timers_mu_);
  int64_t next_retained_drop_ms_ ABSL_GUARDED_BY(timers_mu_) = 0;

  // The last lifecycle version of client ids that connected in about the last second; the
  // sweep lets go of those the clock has passed.
  absl::Mutex versions_mu_;
  absl::flat_hash_map<std::string, uint64_t> versions_ ABSL_GUARDED_BY(versions_mu_);
};

}  // namespace fleetcore::gateway
