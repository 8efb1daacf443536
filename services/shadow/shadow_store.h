// Where shadows live. Modify is one read-modify-write of a shadow that no concurrent Modify
// of it can interleave with, so concurrent updates of one shadow never lose a write.
#pragma once

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/shadow/shadow_document.h"

namespace fleetcore::shadow {

struct ShadowKey {
  std::string thing_name;
  std::string shadow_name;  // empty: the classic shadow
};

class ShadowStore {
 public:
  virtual ~ShadowStore() = default;

  // Calls `fn` with the stored shadow (exists == false when there is none) and stores what
  // `fn` left when it returns OK, as if no other Modify of the shadow ran meanwhile.
  // Nothing is stored when it returns an error, which Modify returns. `fn` may run more than
  // once (a write that lost a race is redone on what won), so it must have no other effects.
  virtual absl::Status Modify(const ShadowKey& key,
                              absl::FunctionRef<absl::Status(StoredShadow&)> fn) = 0;
  // The stored shadow (exists == false when there is none).
  virtual absl::StatusOr<StoredShadow> Get(const ShadowKey& key) = 0;
  // Names of the existing named shadows of a thing, after `after`, at most `limit`.
  virtual absl::StatusOr<std::vector<std::string>> ListNamed(absl::string_view thing_name,
                                                             absl::string_view after,
                                                             int limit) = 0;
};

}  // namespace fleetcore::shadow
