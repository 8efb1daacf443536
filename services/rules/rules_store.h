// Where topic rules live: one row per rule, its payload as the proto's JSON.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fleetcore::rules {

struct StoredRule {
  std::string name;
  std::string payload_json;   // fleetcore.rules.v1.TopicRulePayload, proto JSON
  std::string topic_pattern;  // the SQL's FROM filter
  bool disabled = false;
  absl::Time created_at;
};

class RulesStore {
 public:
  virtual ~RulesStore() = default;
  // ALREADY_EXISTS when the name is taken.
  virtual absl::Status Insert(const StoredRule& rule) = 0;
  // NOT_FOUND when there is none; created_at is kept.
  virtual absl::Status Update(const StoredRule& rule) = 0;
  virtual absl::StatusOr<std::optional<StoredRule>> Get(absl::string_view name) = 0;
  // Returns whether it existed.
  virtual absl::StatusOr<bool> Delete(absl::string_view name) = 0;
  // By name after `after`; `topic` (when set) filters on topic_pattern, `disabled` on state.
  virtual absl::StatusOr<std::vector<StoredRule>> List(absl::string_view after,
                                                       std::optional<std::string> topic,
                                                       std::optional<bool> disabled,
                                                       int limit) = 0;
};

}  // namespace fleetcore::rules
