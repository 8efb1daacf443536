// Where the policy service keeps its data (schema "policy"). PolicyCore and AuthorizerCore
// hold every rule; a store reads and writes what it is told inside their transactions.
//
// Implementations: PgPolicyStore and FakePolicyStore (in memory, for tests).
// Errors: UNAVAILABLE when the database cannot be reached; ALREADY_EXISTS from an Insert*
// whose name is taken.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/policy/policy_types.h"

namespace fleetcore::policy_service {

enum class Lock { kNone, kUpdate };

class PolicyTx {
 public:
  virtual ~PolicyTx() = default;

  virtual absl::StatusOr<std::optional<PolicyInfo>> GetPolicy(absl::string_view name,
                                                              Lock lock) = 0;
  virtual absl::Status InsertPolicy(const PolicyInfo& policy) = 0;
  // Replaces default_version, next_version, generation and updated_at.
  virtual absl::Status UpdatePolicy(const PolicyInfo& policy) = 0;
  // Also its versions.
  virtual absl::Status DeletePolicy(absl::string_view name) = 0;
  virtual absl::StatusOr<std::vector<PolicyVersionRecord>> Versions(absl::string_view name) = 0;
  virtual absl::Status InsertVersion(const PolicyVersionRecord& version) = 0;
  virtual absl::Status DeleteVersion(absl::string_view name, int version) = 0;

  virtual absl::StatusOr<int64_t> CountTargetsOfPolicy(absl::string_view policy) = 0;
  virtual absl::StatusOr<std::vector<std::string>> PoliciesOfTarget(absl::string_view target) = 0;
  // Serializes attachment changes of one target until the transaction ends.
  virtual absl::Status LockTarget(absl::string_view target) = 0;
  virtual absl::Status InsertAttachment(absl::string_view policy, absl::string_view target) = 0;
  // Whether there was one to delete.
  virtual absl::StatusOr<bool> DeleteAttachment(absl::string_view policy,
                                                absl::string_view target) = 0;

  virtual absl::StatusOr<std::optional<Authorizer>> GetAuthorizer(absl::string_view name,
                                                                  Lock lock) = 0;
  virtual absl::Status InsertAuthorizer(const Authorizer& authorizer) = 0;
  // Replaces everything but name, created_at and is_default.
  virtual absl::Status UpdateAuthorizer(const Authorizer& authorizer) = 0;
  virtual absl::Status DeleteAuthorizer(absl::string_view name) = 0;
  virtual absl::StatusOr<int64_t> CountAuthorizers(bool active_only) = 0;
  // Makes `name` the only default authorizer, serialized with other such changes;
  // NOT_FOUND when it does not exist.
  virtual absl::Status SetDefaultAuthorizer(absl::string_view name) = 0;

  virtual absl::StatusOr<std::optional<AccessKey>> GetAccessKey(absl::string_view id,
                                                                Lock lock) = 0;
  virtual absl::Status InsertAccessKey(const AccessKey& key) = 0;
  virtual absl::Status SetAccessKeyActive(absl::string_view id, bool active) = 0;
  // Replaces the sealed secret (sealed again with the current sealing key).
  virtual absl::Status SetAccessKeySecret(absl::string_view id,
                                          absl::string_view sealed_secret) = 0;
  virtual absl::Status DeleteAccessKey(absl::string_view id) = 0;
  virtual absl::StatusOr<int64_t> CountAccessKeysOfUser(absl::string_view user_name) = 0;

  // Delivered when the transaction commits.
  virtual void Publish(const PolicyEvent& event) = 0;
};

// Reads outside transactions page by name: at most `limit` items after `after`.
class PolicyStore {
 public:
  virtual ~PolicyStore() = default;

  // The body may run more than once (retry after a serialization failure).
  virtual absl::Status Transact(absl::FunctionRef<absl::Status(PolicyTx&)> body) = 0;

  virtual absl::StatusOr<std::optional<PolicyInfo>> GetPolicy(absl::string_view name) = 0;
  virtual absl::StatusOr<std::optional<PolicyVersionRecord>> GetVersion(absl::string_view name,
                                                                        int version) = 0;
  virtual absl::StatusOr<std::vector<PolicyVersionRecord>> Versions(absl::string_view name) = 0;
  virtual absl::StatusOr<std::vector<std::string>> ListPolicies(absl::string_view after,
                                                                int limit) = 0;
  // Names of the policies attached to any of `targets`, each once.
  virtual absl::StatusOr<std::vector<std::string>> PoliciesOfTargets(
      const std::vector<std::string>& targets, absl::string_view after, int limit) = 0;
  virtual absl::StatusOr<std::vector<std::string>> TargetsOfPolicy(absl::string_view policy,
                                                                   absl::string_view after,
                                                                   int limit) = 0;
  // The default versions of the policies attached to any of `targets`.
  virtual absl::StatusOr<std::vector<AttachedPolicy>> AttachedDefaults(
      const std::vector<std::string>& targets) = 0;
  // The default versions of the named policies (target left empty); missing ones are left out.
  virtual absl::StatusOr<std::vector<AttachedPolicy>> Defaults(
      const std::vector<std::string>& policies) = 0;

  virtual absl::StatusOr<std::optional<Authorizer>> GetAuthorizer(absl::string_view name) = 0;
  virtual absl::StatusOr<std::optional<Authorizer>> DefaultAuthorizer() = 0;
  virtual absl::StatusOr<std::optional<AccessKey>> GetAccessKey(absl::string_view id) = 0;
  // By key id; `user_name` empty: every user's.
  virtual absl::StatusOr<std::vector<AccessKey>> ListAccessKeys(absl::string_view user_name,
                                                                absl::string_view after,
                                                                int limit) = 0;
  // `active`: only authorizers with that status.
  virtual absl::StatusOr<std::vector<Authorizer>> ListAuthorizers(std::optional<bool> active,
                                                                  absl::string_view after,
                                                                  int limit) = 0;
};

}  // namespace fleetcore::policy_service
