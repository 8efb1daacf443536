// An in-memory PolicyStore with real behaviour, for tests of the cores: transactions work
// on a copy of the state that replaces it on commit; events are recorded on commit only.
#pragma once

#include <map>
#include <mutex>
#include <set>

#include "services/policy/policy_store.h"

namespace fleetcore::policy_service {

class FakePolicyStore final : public PolicyStore {
 public:
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

  std::vector<PolicyEvent> events() const;

  struct State {
    std::map<std::string, PolicyInfo, std::less<>> policies;
    std::map<std::pair<std::string, int>, PolicyVersionRecord> versions;
    std::set<std::pair<std::string, std::string>> attachments;  // (policy, target)
    std::map<std::string, Authorizer, std::less<>> authorizers;
    std::map<std::string, AccessKey, std::less<>> access_keys;
  };

 private:
  mutable std::mutex mu_;
  State state_;
  std::vector<PolicyEvent> events_;
};

}  // namespace fleetcore::policy_service
