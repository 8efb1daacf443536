// What the gateway keeps in Postgres so that it survives a restart: retained messages and
// persistent sessions (their subscriptions, pending will, and the QoS 1/2 messages held
// for the client). Writes are write-behind: the broker submits them from its I/O threads
// and never waits; the store applies them in order, in batches, on a thread of its own.
//
// Among gateway replicas each stored session is one replica's (its owner): a store writes
// for its own replica, its writes to a session another replica has claimed since are
// ignored, and Load reads its own replica's sessions only.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mqtt/packet.h"
#include "common/mqtt/topic_tree.h"
#include "services/gateway/message.h"

namespace fleetcore::gateway {

struct StoredSubscription {
  std::string filter;  // as the client sent it, with any $share/{group}/ prefix
  mqtt::SubscriptionOptions options;
};

// A will waiting for its delay (or the end of the session) to pass.
struct PendingWill {
  MessagePtr message;
  int64_t due_ms = 0;  // Unix milliseconds
};

struct SessionRecord {
  std::string client_id;
  mqtt::Version version = mqtt::Version::kV311;
  // Seconds the session lives after its connection ends; 0xFFFFFFFF: forever.
  uint32_t expiry_interval = 0;
  // Unix milliseconds; nullopt while a connection is attached.
  std::optional<int64_t> disconnected_at_ms;
  // Why its last connection ended, as the lifecycle event said (GetConnection's
  // disconnectReason); empty while a connection is attached.
  std::string disconnect_reason;
  std::vector<StoredSubscription> subscriptions;
  std::optional<PendingWill> will;
  // QoS 2 packet identifiers received but not yet released by the client.
  std::vector<uint16_t> inbound_qos2;
};

// A message held for a session's client: queued, or sent and not yet acknowledged.
struct StoredMessage {
  int64_t seq = 0;  // order within the session
  MessagePtr message;
  uint8_t qos = 1;
  bool retain = false;
  std::vector<uint32_t> subscription_ids;
  uint16_t packet_id = 0;  // 0: not sent yet
  bool released = false;   // QoS 2: PUBREC received, PUBREL sent
  std::string share;       // Session::Deliver's; empty: none
};

struct StoredSession {
  SessionRecord record;
  std::vector<StoredMessage> messages;  // by seq
};

struct StoreSnapshot {
  std::vector<MessagePtr> retained;
  std::vector<StoredSession> sessions;
};

class GatewayStore {
 public:
  virtual ~GatewayStore() = default;

  // Everything stored, read once at start-up. UNAVAILABLE when Postgres is down.
  virtual absl::StatusOr<StoreSnapshot> Load() = 0;

  // Write-behind mutations, applied in submission order.
  virtual void PutRetained(MessagePtr message) = 0;
  virtual void DeleteRetained(std::string topic) = 0;
  // Deletes the retained messages that expired at or before `now_ms` (Unix milliseconds),
  // whichever replica stored them.
  virtual void DeleteExpiredRetained(int64_t now_ms) = 0;
  // Creates or replaces the session's record (its messages stay).
  virtual void PutSession(SessionRecord record) = 0;
  // Deletes the session and its messages.
  virtual void DeleteSession(std::string client_id) = 0;
  virtual void PutMessage(std::string client_id, StoredMessage message) = 0;
  virtual void DeleteMessage(std::string client_id, int64_t seq) = 0;

  // Makes the client id's stored session this replica's, replacing what was stored of it
  // (by any replica) with `session`, messages and all. Write-behind, in order.
  virtual void ClaimSession(StoredSession session) = 0;

  // Waits until every mutation submitted before the call is written. DEADLINE_EXCEEDED
  // (with what is left unwritten logged) when `deadline` passes first.
  virtual absl::Status Flush(absl::Time deadline) = 0;

  // Reads now: one client id's stored session and its owner; nullopt when none is stored.
  // UNAVAILABLE when Postgres is down.
  struct OwnedSession {
    std::string owner;
    StoredSession session;
  };
  virtual absl::StatusOr<std::optional<OwnedSession>> LoadSession(
      const std::string& client_id) = 0;
  // Reads now: the sessions stored under replica `owner` (one that left or went silent).
  virtual absl::StatusOr<std::vector<StoredSession>> LoadSessionsOf(const std::string& owner) = 0;
  // Deletes now the expired sessions of replicas not in `live` (gone for good: nobody
  // else would end them). Returns how many.
  virtual absl::StatusOr<int64_t> DeleteExpiredSessionsOf(
      const std::vector<std::string>& live) = 0;
};

}  // namespace fleetcore::gateway
