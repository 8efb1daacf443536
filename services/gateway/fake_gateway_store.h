// GatewayStore in memory, with real behaviour: what was written is what Load returns, so
// broker tests can "restart" on the same store. Writes apply at once.
#pragma once

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "services/gateway/gateway_store.h"

namespace fleetcore::gateway {

class FakeGatewayStore final : public GatewayStore {
 public:
  absl::StatusOr<StoreSnapshot> Load() override;
  void PutRetained(MessagePtr message) override;
  void DeleteRetained(std::string topic) override;
  void PutSession(SessionRecord record) override;
  void DeleteSession(std::string client_id) override;
  void PutMessage(std::string client_id, StoredMessage message) override;
  void DeleteMessage(std::string client_id, int64_t seq) override;
  absl::Status Flush(absl::Time deadline) override { return absl::OkStatus(); }

  // For assertions.
  size_t message_count(const std::string& client_id) const;
  bool has_session(const std::string& client_id) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, MessagePtr> retained_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, StoredSession> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleetcore::gateway
