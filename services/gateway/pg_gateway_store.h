// GatewayStore on Postgres (schema "gateway", migrations/0004). Mutations queue in memory
// and a writer thread applies them in order, up to 500 per transaction. While Postgres is
// down the writer retries the same batch with backoff; the queue holds up to `max_pending`
// mutations, beyond which new ones are dropped and counted (and logged), so a long outage
// costs persistence, never the broker's memory or liveness.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>

#include "services/gateway/gateway_metrics.h"
#include "services/gateway/gateway_store.h"

namespace fleetcore::db {
class PgPool;
}  // namespace fleetcore::db
namespace pqxx {
class transaction_base;
}  // namespace pqxx

namespace fleetcore::gateway {

class PgGatewayStore final : public GatewayStore {
 public:
  // `pool` and `metrics` (may be null) outlive the store. Starts the writer thread.
  // `node`: this gateway replica's id ("" for a gateway that runs alone), the owner of the
  // sessions it writes.
  PgGatewayStore(db::PgPool* pool, GatewayMetrics* metrics, size_t max_pending = 1000000,
                 std::string node = "");
  ~PgGatewayStore() override;  // stops the writer; unflushed mutations are lost

  absl::StatusOr<StoreSnapshot> Load() override;
  void PutRetained(MessagePtr message) override;
  void DeleteRetained(std::string topic) override;
  void DeleteExpiredRetained(int64_t now_ms) override;
  void PutSession(SessionRecord record) override;
  void DeleteSession(std::string client_id) override;
  void PutMessage(std::string client_id, StoredMessage message) override;
  void DeleteMessage(std::string client_id, int64_t seq) override;
  void ClaimSession(StoredSession session) override;
  absl::Status Flush(absl::Time deadline) override;
  absl::StatusOr<std::optional<OwnedSession>> LoadSession(const std::string& client_id) override;
  absl::StatusOr<std::vector<StoredSession>> LoadSessionsOf(const std::string& owner) override;
  absl::StatusOr<int64_t> DeleteExpiredSessionsOf(const std::vector<std::string>& live) override;

  size_t pending() const;
  uint64_t dropped() const;

 private:
  // clang-format off
  struct RetainedPut { MessagePtr message; };
  struct RetainedDelete { std::string topic; };
  struct RetainedExpire { int64_t now_ms; };
  struct SessionPut { SessionRecord record; };
  struct SessionDelete { std::string client_id; };
  struct MessagePut { std::string client_id; StoredMessage message; };
  struct MessageDelete { std::string client_id; int64_t seq; };
  struct SessionClaim { StoredSession session; };
  // clang-format on
  using Op = std::variant<RetainedPut, RetainedDelete, RetainedExpire, SessionPut, SessionDelete,
                          MessagePut, MessageDelete, SessionClaim>;

  void Submit(Op op);
  void Run();
  absl::Status Apply(const std::vector<Op>& batch);
  // The sessions stored under `owner`, with their messages, read in `tx`.
  static std::vector<StoredSession> ReadSessionsOf(pqxx::transaction_base& tx,
                                                   const std::string& owner,
                                                   size_t* undecodable);
  // A session's row: over this replica's own only, or (claim) over any.
  void PutSessionRow(pqxx::transaction_base& tx, const SessionRecord& r, bool claim);
  void PutMessageRow(pqxx::transaction_base& tx, const std::string& client_id,
                     const StoredMessage& m);

  db::PgPool* const pool_;
  GatewayMetrics* const metrics_;
  const size_t max_pending_;
  const std::string node_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;
  uint64_t submitted_ = 0;  // ops accepted so far
  uint64_t written_ = 0;    // ops written so far
  uint64_t dropped_ = 0;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace fleetcore::gateway
