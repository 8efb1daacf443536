// GatewayStore in memory, with real behaviour: what was written is what Load returns, so
// broker tests can "restart" on the same store. Writes apply at once. Stores made with
// another store's data play replicas sharing one Postgres, with its owner rules.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "services/gateway/gateway_store.h"

namespace fleetcore::gateway {

class FakeGatewayStore final : public GatewayStore {
 public:
  FakeGatewayStore();
  // The replica `node`'s store on the same data as `shared`.
  FakeGatewayStore(const FakeGatewayStore& shared, std::string node);

  absl::StatusOr<StoreSnapshot> Load() override;
  void PutRetained(MessagePtr message) override;
  void DeleteRetained(std::string topic) override;
  void DeleteExpiredRetained(int64_t now_ms) override;
  void PutSession(SessionRecord record) override;
  void DeleteSession(std::string client_id) override;
  void PutMessage(std::string client_id, StoredMessage message) override;
  void DeleteMessage(std::string client_id, int64_t seq) override;
  void ClaimSession(StoredSession session) override;
  absl::Status Flush(absl::Time deadline) override { return absl::OkStatus(); }
  absl::StatusOr<std::optional<OwnedSession>> LoadSession(const std::string& client_id) override;
  absl::StatusOr<std::vector<StoredSession>> LoadSessionsOf(const std::string& owner) override;
  absl::StatusOr<int64_t> DeleteExpiredSessionsOf(const std::vector<std::string>& live) override;

  // For assertions.
  bool has_retained(const std::string& topic) const;
  size_t message_count(const std::string& client_id) const;
  bool has_session(const std::string& client_id) const;
  std::string owner(const std::string& client_id) const;

 private:
  struct Data {
    absl::Mutex mu;
    std::map<std::string, MessagePtr> retained ABSL_GUARDED_BY(mu);
    std::map<std::string, OwnedSession> sessions ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<Data> data_;
  std::string node_;
};

}  // namespace fleetcore::gateway
