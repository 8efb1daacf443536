// Where topic rules live (one row per rule, its payload as the proto's JSON), and the topic
// rule destinations their http actions send under.
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

struct StoredDestination {
  std::string id;  // a UUID
  std::string confirmation_url;
  std::string status;  // IN_PROGRESS, ENABLED, DISABLED or ERROR
  std::string status_reason;
  absl::Time created_at;
  absl::Time updated_at;
};

// A compare-and-set of a destination's status: made only while the destination's status is
// `expected_status` and, when set, its token's hash is `expected_token_sha256` and its status
// reason `expected_status_reason`. It sets updated_at to the store's now.
struct DestinationChange {
  std::string expected_status;
  std::optional<std::string> expected_token_sha256;
  std::optional<std::string> expected_status_reason;
  std::string status;
  std::string status_reason;
  // The new token's SHA-256 (hex); empty: none (a token is only kept while IN_PROGRESS).
  std::string token_sha256;
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

  // Destinations. ALREADY_EXISTS when one has this confirmation URL.
  virtual absl::Status InsertDestination(const StoredDestination& d,
                                         const std::string& token_sha256) = 0;
  virtual absl::StatusOr<std::optional<StoredDestination>> GetDestination(
      absl::string_view id) = 0;
  virtual absl::StatusOr<std::optional<StoredDestination>> FindDestination(
      absl::string_view confirmation_url) = 0;
  // By id after `after_id`.
  virtual absl::StatusOr<std::vector<StoredDestination>> ListDestinations(
      absl::string_view after_id, int limit) = 0;
  // False when the destination is gone or not as `change` expects.
  virtual absl::StatusOr<bool> ChangeDestination(absl::string_view id,
                                                 const DestinationChange& change) = 0;
  // The IN_PROGRESS destination whose token hashes to `token_sha256`, made ENABLED (its token
  // dropped, so it confirms once); none when no destination awaits that token.
  virtual absl::StatusOr<std::optional<StoredDestination>> ConfirmDestination(
      const std::string& token_sha256) = 0;
  // Returns whether it existed.
  virtual absl::StatusOr<bool> DeleteDestination(absl::string_view id) = 0;
};

}  // namespace fleetcore::rules
