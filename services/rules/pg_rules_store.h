// RulesStore on Postgres (schema "rules").
#pragma once

#include "common/db/pg_pool.h"
#include "services/rules/rules_store.h"

namespace fleetcore::rules {

// The NOTIFY channel of rule changes (payload {"rule": name}); the gateway listens too.
inline constexpr char kRulesChannel[] = "fleetcore_rules";
// The NOTIFY channel of destination changes (payload {"destination": id}).
inline constexpr char kDestinationsChannel[] = "fleetcore_rule_destinations";

class PgRulesStore final : public RulesStore {
 public:
  explicit PgRulesStore(db::PgPool* pool) : pool_(pool) {}

  absl::Status Insert(const StoredRule& rule) override;
  absl::Status Update(const StoredRule& rule) override;
  absl::StatusOr<std::optional<StoredRule>> Get(absl::string_view name) override;
  absl::StatusOr<bool> Delete(absl::string_view name) override;
  absl::StatusOr<std::vector<StoredRule>> List(absl::string_view after,
                                               std::optional<std::string> topic,
                                               std::optional<bool> disabled,
                                               int limit) override;

  absl::Status InsertDestination(const StoredDestination& d,
                                 const std::string& token_sha256) override;
  absl::StatusOr<std::optional<StoredDestination>> GetDestination(absl::string_view id) override;
  absl::StatusOr<std::optional<StoredDestination>> FindDestination(
      absl::string_view confirmation_url) override;
  absl::StatusOr<std::vector<StoredDestination>> ListDestinations(absl::string_view after_id,
                                                                  int limit) override;
  absl::StatusOr<bool> ChangeDestination(absl::string_view id,
                                         const DestinationChange& change) override;
  absl::StatusOr<std::optional<StoredDestination>> ConfirmDestination(
      const std::string& token_sha256) override;
  absl::StatusOr<bool> DeleteDestination(absl::string_view id) override;

 private:
  db::PgPool* pool_;
};

}  // namespace fleetcore::rules
