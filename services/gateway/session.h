// One MQTT session: the state the broker keeps for a client id across its connections
// (MQTT 5 section 4.1): subscriptions, the messages queued for the client and those sent
// but not yet acknowledged (the in-flight window), and the QoS 2 packet identifiers the
// client has not released yet.
//
// Any thread may deliver to a session (the publisher's I/O thread, a gRPC thread); only the
// attached connection's thread takes messages out of it to send. A delivery to a session
// whose connection is attached wakes the connection once until it has flushed.
//
// Thread safety: all methods are safe from any thread (one mutex per session).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "common/mqtt/packet.h"
#include "common/mqtt/topic_tree.h"
#include "services/gateway/gateway_store.h"
#include "services/gateway/message.h"

namespace fleetcore::gateway {

// What happens to the will of a connection the broker ends.
enum class WillPolicy {
  kPublish,         // as for any connection that ends without a normal DISCONNECT
  kSuppress,        // never (DeleteConnection with preventWillMessage)
  kSessionResumed,  // taken over by a connection that resumes the session: a will with a
                    // delay is dropped (MQTT 5 3.1.2.5), one without is published
};

// What a session needs from the connection attached to it.
class Outlet {
 public:
  virtual ~Outlet() = default;
  // Messages are waiting: take them (on the connection's own thread). Any thread.
  virtual void Wake() = 0;
  // End the connection with an MQTT 5 DISCONNECT `reason` (takeover, administrative
  // action, a client that cannot keep up, shutdown). Any thread.
  virtual void Kick(uint8_t reason, WillPolicy will) = 0;
  // The SHA-256 of the client certificate the connection was made with; empty: none.
  virtual absl::string_view certificate_id() const { return {}; }
  // The thing behind the connection's policy variables (iot:Connection.Thing.*), as
  // resolved at CONNECT; empty: none. Fixed once the session is attached.
  virtual absl::string_view thing_name() const { return {}; }
  // The identity's principal (certificate ARN, access key user's ARN, ...); empty: none.
  virtual absl::string_view principal() const { return {}; }
  // Policies or attachments changed: fetch the client's policies again. Any thread.
  virtual void RefreshAuthorization() {}
};

// A message on its way to this session's client.
struct Outgoing {
  MessagePtr message;
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  bool release = false;  // send PUBREL for packet_id instead of the PUBLISH
  uint16_t packet_id = 0;
  std::vector<uint32_t> subscription_ids;
};

struct SessionSettings {
  uint32_t max_queued = 1000;
  uint16_t max_inflight = 100;
};

class Session {
 public:
  struct Subscription {
    std::string share_group;   // empty: not shared
    std::string topic_filter;  // without the $share prefix
    mqtt::SubscriptionOptions options;
  };

  enum class DeliverResult {
    kQueued,
    kNotQueued,     // QoS 0 for a session without a connection: nothing to do
    kDroppedFull,   // the queue was full
    kExpired,       // the message expired before it could be queued
    kNotAllowed,    // the client may not receive it (iot:Receive)
  };

  // Decides whether the session's client may receive a message on `topic` (its policies'
  // iot:Receive). Immutable; shared with the router threads.
  class ReceiveCheck {
   public:
    virtual ~ReceiveCheck() = default;
    virtual bool MayReceive(absl::string_view topic) const = 0;
  };
  // Set by the connection that attached (null: no check). Any thread.
  void SetReceiveCheck(std::shared_ptr<const ReceiveCheck> check);

  // `store` may be null (no persistence); it and the session's settings outlive it.
  Session(std::string client_id, uint64_t id, GatewayStore* store, SessionSettings settings);

  const std::string& client_id() const { return client_id_; }
  uint64_t id() const { return id_; }

  // Persistence and lifetime, set by the broker.
  void SetPersistence(mqtt::Version version, uint32_t expiry_interval);
  uint32_t expiry_interval() const;
  bool persistent() const;
  mqtt::Version version() const;

  // Queues `message` for the client at `qos` (already the minimum of the message's and
  // the subscription's). Stores QoS 1/2 messages of a persistent session that has no
  // connection. `now_ms`: Unix milliseconds, for message expiry.
  // Queues `message` unless the receive check refuses it (kNotAllowed). `share`: the
  // shared group ("$share/{group}/{filter}") it was given to this session for while no
  // member's client was connected; another member that comes first may take it
  // (TakeShared).
  DeliverResult Deliver(const MessagePtr& message, uint8_t qos, bool retain,
                        std::vector<uint32_t> subscription_ids, int64_t now_ms,
                        absl::string_view share = {});
  // The attached connection's receive check (null: none).
  std::shared_ptr<const ReceiveCheck> receive_check() const;
  // Its shared groups' queues held more for it than its queue took at once
  // (Broker::TakeSharedQueue); the connection asks again when SharedBacklogDue says so.
  void MarkSharedBacklog() { shared_backlog_.store(true, std::memory_order_relaxed); }
  // Once marked, true (once) when the queue has run down to a quarter of its bound or
  // less. Cheap while not marked.
  bool SharedBacklogDue();
  // The messages queued here for the shared group `share` (Deliver) that `take` says yes
  // to, up to `max`, taken out (and out of the store) for another member of the group
  // whose client came, those sent before its client went away and not acknowledged too;
  // none while this session's client is connected.
  // `take` runs under this session's lock: it must not lock another session.
  std::vector<MessagePtr> TakeShared(absl::string_view share, size_t max,
                                     absl::FunctionRef<bool(const Message&)> take);

  // Attaches a connection: the in-flight window becomes min(`receive_maximum`, the
  // setting), every message sent before and not acknowledged is to be sent again with DUP
  // (PUBREL for released QoS 2), and `outlet` is woken. Returns the previous outlet, if
  // any (the broker kicks it).
  std::shared_ptr<Outlet> Attach(std::shared_ptr<Outlet> outlet, uint16_t receive_maximum);
  // Detaches `outlet` if it is still the attached one (a connection that was taken over
  // is not). Returns whether it was. A persistent session then stores what it holds, but
  // for QoS 0 and direct messages (those waiting for their PUBACK are dropped and their
  // senders told: DeliveryReceipt::Lost). `reason`: why the connection ended (AWS's
  // lifecycle disconnectReason), told until the next attachment.
  bool Detach(const Outlet* outlet, int64_t now_ms, std::string reason = {});
  bool attached() const;
  // Counts attachments, so that a timer set at a detachment can tell whether the session
  // was attached again since.
  uint64_t generation() const;
  // The attached outlet, if any.
  std::shared_ptr<Outlet> outlet() const;
  // When the last connection detached (Unix ms); nullopt while attached.
  std::optional<int64_t> detached_at_ms() const;
  // Why its last connection ended, while detached (kept in the store with the session);
  // empty for a session stored before the reason was.
  std::string disconnect_reason() const;

  // Among gateway replicas. The session leaves for the replica its client resumed it on:
  // returns everything it holds as stored (in-flight messages first; QoS 0 and direct
  // messages go, as when a connection ends, the latter's senders told), emptied and
  // detached (`*kicked`: its connection, for the broker to end), and from now on what is
  // delivered to it goes to `forward`, which the session's new replica dedupes.
  using ForwardFn = std::function<void(const MessagePtr& message, uint8_t qos, bool retain,
                                       std::vector<uint32_t> subscription_ids)>;
  StoredSession MoveOut(int64_t now_ms, ForwardFn forward, std::shared_ptr<Outlet>* kicked);
  // The session came from another replica, which forwards what reached it meanwhile: a
  // message whose cluster id it was given (`seen`, or delivered since) is not queued again
  // until EndDedupe.
  void StartDedupe(std::vector<uint64_t> seen);
  void EndDedupe();

  // On the attached connection's thread: moves up to `max` messages that may be sent now
  // into `out` (resends first, then queued messages while the window allows), giving
  // QoS 1/2 ones a packet identifier. Expired messages are dropped and counted in
  // `*expired`.
  void TakeSendable(size_t max, int64_t now_ms, std::vector<Outgoing>* out, size_t* expired);

  // Acknowledgements from the client. Each returns false for an unknown packet identifier
  // (which MQTT tolerates).
  bool Puback(uint16_t packet_id);
  bool Pubrec(uint16_t packet_id, bool failed);  // failed: reason >= 0x80 ends the flow
  bool Pubcomp(uint16_t packet_id);
  // Gives up on an in-flight message that cannot be sent (larger than the client's
  // Maximum Packet Size): MQTT 5 treats it as delivered.
  void Abandon(uint16_t packet_id);

  // QoS 2 from the client: Received returns false when the packet identifier is already
  // held (a resent PUBLISH: acknowledge it without delivering again); Released forgets it.
  // `max` bounds how many may be held (the announced Receive Maximum).
  enum class InboundQos2 { kNew, kDuplicate, kTooMany };
  InboundQos2 Qos2Received(uint16_t packet_id, size_t max);
  bool Qos2Released(uint16_t packet_id);

  // Subscriptions, keyed by the filter as the client sent it.
  // Returns true when the subscription is new.
  bool AddSubscription(const std::string& filter, const Subscription& s);
  bool RemoveSubscription(const std::string& filter);
  bool HasSubscription(const std::string& filter) const;
  size_t subscription_count() const;
  absl::flat_hash_map<std::string, Subscription> subscriptions() const;

  // A will waiting for its delay.
  void SetPendingWill(std::optional<PendingWill> will);
  std::optional<PendingWill> TakePendingWill();

  // The session ends: every message queued here for a shared group (Deliver's `share`),
  // in flight or not, taken out for the group's other members, with its group.
  std::vector<std::pair<std::string, MessagePtr>> TakeAllShared();

  // The record persisted for the session; `disconnected_at_ms` as given.
  SessionRecord Record(std::optional<int64_t> disconnected_at_ms) const;
  // Restores messages loaded from the store (after Load, before any Attach).
  void Restore(const StoredSession& stored);

  // For the admin API and metrics.
  struct Stats {
    size_t queued = 0;
    size_t inflight = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    MessagePtr message;
    uint8_t qos = 0;
    bool retain = false;
    std::vector<uint32_t> subscription_ids;
    int64_t seq = 0;  // > 0 once written to the store
    uint16_t packet_id = 0;
    bool released = false;
    bool resend = false;  // sent on an earlier connection, not yet again on this one
    std::string share;    // queued for a shared group while no member was connected
  };
  bool persistent_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return expiry_interval_ > 0;
  }
  SessionRecord RecordLocked(std::optional<int64_t> disconnected_at_ms) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint16_t NextPacketId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Detach's work under the lock; the receipts of direct messages it drops go to `lost`.
  bool DetachAndCollect(const Outlet* outlet, int64_t now_ms, std::string reason,
                        std::vector<std::shared_ptr<DeliveryReceipt>>* lost)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The stored form of an entry (given its sequence number first if it has none).
  StoredMessage ToStored(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StoreEntry(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(const Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes out of the in-flight window, then the queue, the entries marked for a shared
  // group (not a released QoS 2 one: the client has it) that `take` says yes to, after it
  // kept what it needs of them; their stored rows go.
  void TakeMarkedLocked(absl::FunctionRef<bool(Entry&)> take) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::deque<Entry>::iterator FindInflight(uint16_t packet_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string client_id_;
  const uint64_t id_;
  GatewayStore* const store_;
  const SessionSettings settings_;
  std::atomic<bool> shared_backlog_{false};

  mutable absl::Mutex mu_;

  std::shared_ptr<const ReceiveCheck> receive_check_ ABSL_GUARDED_BY(mu_);
  mqtt::Version version_ ABSL_GUARDED_BY(mu_) = mqtt::Version::kV311;
  uint32_t expiry_interval_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<Outlet> outlet_ ABSL_GUARDED_BY(mu_);
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<int64_t> detached_at_ms_ ABSL_GUARDED_BY(mu_);
  std::string disconnect_reason_ ABSL_GUARDED_BY(mu_);
  uint16_t window_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Entry> inflight_ ABSL_GUARDED_BY(mu_);  // in send order
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  uint16_t last_packet_id_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_set<uint16_t> inbound_qos2_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Subscription> subscriptions_ ABSL_GUARDED_BY(mu_);
  std::optional<PendingWill> will_ ABSL_GUARDED_BY(mu_);
  ForwardFn forward_ ABSL_GUARDED_BY(mu_);
  bool dedupe_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<uint64_t> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleetcore::gateway
