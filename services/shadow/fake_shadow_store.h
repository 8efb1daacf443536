// An in-memory ShadowStore with the real store's behaviour (one lock per store), for tests.
#pragma once

#include <map>
#include <mutex>
#include <utility>

#include "services/shadow/shadow_store.h"

namespace fleetcore::shadow {

class FakeShadowStore final : public ShadowStore {
 public:
  absl::Status Modify(const ShadowKey& key,
                      absl::FunctionRef<absl::Status(StoredShadow&)> fn) override;
  absl::StatusOr<StoredShadow> Get(const ShadowKey& key) override;
  absl::StatusOr<std::vector<std::string>> ListNamed(absl::string_view thing_name,
                                                     absl::string_view after,
                                                     int limit) override;

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, StoredShadow> shadows_;
};

}  // namespace fleetcore::shadow
