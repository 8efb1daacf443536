// The policy service's PolicyStore on Postgres (schema "policy", migrations/0002). Events
// go out with NOTIFY on fleetcore_policy inside the writing transaction.
#pragma once

#include "services/policy/policy_store.h"

namespace fleetcore::db {
class PgPool;
}  // namespace fleetcore::db

namespace fleetcore::policy_service {

class PgPolicyStore final : public PolicyStore {
 public:
  // `pool` must outlive the store.
  explicit PgPolicyStore(db::PgPool* pool) : pool_(pool) {}

  absl::Status Transact(absl::FunctionRef<absl::Status(PolicyTx&)> body) override;
  absl::StatusOr<std::optional<PolicyInfo>> GetPolicy(absl::string_view name) override;
  absl::StatusOr<std::optional<PolicyVersionRecord>> GetVersion(absl::string_view name,
                                                                int version) override;
  absl::StatusOr<std::vector<PolicyVersionRecord>> Versions(absl::string_view name) override;
  absl::StatusOr<std::vector<std::string>> ListPolicies(absl::string_view after,
                                                        int limit) override;
  absl::StatusOr<std::vector<std::string>> PoliciesOfTargets(
      const std::vector<std::string>& targets, absl::string_view after, int limit) override;
  absl::StatusOr<std::vector<std::string>> TargetsOfPolicy(absl::string_view policy,
                                                           absl::string_view after,
                                                           int limit) override;
  absl::StatusOr<std::vector<AttachedPolicy>> AttachedDefaults(
      const std::vector<std::string>& targets) override;
  absl::StatusOr<std::vector<AttachedPolicy>> Defaults(
      const std::vector<std::string>& policies) override;
  absl::StatusOr<std::optional<Authorizer>> GetAuthorizer(absl::string_view name) override;
  absl::StatusOr<std::optional<Authorizer>> DefaultAuthorizer() override;
  absl::StatusOr<std::vector<Authorizer>> ListAuthorizers(std::optional<bool> active,
                                                          absl::string_view after,
                                                          int limit) override;
  absl::StatusOr<std::optional<AccessKey>> GetAccessKey(absl::string_view id) override;
  absl::StatusOr<std::vector<AccessKey>> ListAccessKeys(absl::string_view user_name,
                                                        absl::string_view after,
                                                        int limit) override;

  // The event a fleetcore_policy NOTIFY payload carries; nullopt if it is not one.
  static std::optional<PolicyEvent> ParseEvent(absl::string_view payload);

 private:
  db::PgPool* pool_;
};

}  // namespace fleetcore::policy_service
