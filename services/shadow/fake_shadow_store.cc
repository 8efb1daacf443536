#include "services/shadow/fake_shadow_store.h"

namespace fleetcore::shadow {

absl::Status FakeShadowStore::Modify(const ShadowKey& key,
                                     absl::FunctionRef<absl::Status(StoredShadow&)> fn) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = shadows_.find({key.thing_name, key.shadow_name});
  StoredShadow copy = it == shadows_.end() ? StoredShadow{} : it->second;
  if (absl::Status s = fn(copy); !s.ok()) return s;
  shadows_[{key.thing_name, key.shadow_name}] = std::move(copy);
  return absl::OkStatus();
}

absl::StatusOr<StoredShadow> FakeShadowStore::Get(const ShadowKey& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = shadows_.find({key.thing_name, key.shadow_name});
  return it == shadows_.end() ? StoredShadow{} : it->second;
}

absl::StatusOr<std::vector<std::string>> FakeShadowStore::ListNamed(absl::string_view thing_name,
                                                                    absl::string_view after,
                                                                    int limit) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  for (auto it = shadows_.upper_bound({std::string(thing_name), std::string(after)});
       it != shadows_.end() && it->first.first == thing_name &&
       static_cast<int>(out.size()) < limit;
       ++it) {
    if (!it->first.second.empty() && it->second.exists) out.push_back(it->first.second);
  }
  return out;
}

}  // namespace fleetcore::shadow
