// RulesStore on Postgres (schema "rules").
#pragma once

#include "common/db/pg_pool.h"
#include "services/rules/rules_store.h"

namespace fleetcore::rules {

// The NOTIFY channel of rule changes (payload {"rule": name}); the gateway listens too.
inline constexpr char kRulesChannel[] = "fleetcore_rules";

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

 private:
  db::PgPool* pool_;
};

}  // namespace fleetcore::rules
