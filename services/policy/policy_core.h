// The rules of AWS IoT policies: names and document validation (the language engine in
// common/policy), versions (at most 5, one default), attachments to certificates and thing
// groups with AWS's limits, the effective policies of a connection, and TestAuthorization.
//
// Errors: INVALID_ARGUMENT (names, ARNs, documents: the message names the place in the
// document), NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION (attached policy, default
// version), RESOURCE_EXHAUSTED (version and attachment limits), UNAVAILABLE.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/aws/arn.h"
#include "common/policy/context.h"
#include "common/policy/policy.h"
#include "common/time/clock.h"
#include "services/policy/policy_store.h"
#include "services/policy/thing_directory.h"

namespace fleetcore::policy_service {

struct PolicyLimits {
  int max_versions = 5;
  int max_per_certificate = 10;
  int max_per_thing_group = 2;
};

struct EffectivePolicies {
  std::vector<AttachedPolicy> policies;  // each policy once, its default version
  std::optional<policy::ThingInfo> thing;
  std::vector<std::string> principal_things;  // the things the principal is attached to
  bool exclusive_thing = false;               // one of them exclusively
};

struct AuthInfoInput {
  policy::Action action;
  std::vector<std::string> resources;  // ARNs
};

struct TestAuthorizationInput {
  std::string principal;  // a certificate or thing-group ARN
  std::string client_id;
  std::vector<AuthInfoInput> auth_infos;
  std::vector<std::string> policies_to_add;
  std::vector<std::string> policies_to_skip;
};

struct AuthResultOutput {
  policy::Effect decision = policy::Effect::kImplicitDeny;
  std::vector<std::string> allowed;         // policies that allowed a resource
  std::vector<std::string> explicit_deny;   // policies that denied one
  std::vector<std::string> implicit_deny;   // the policies evaluated, when nothing allowed
  std::vector<std::string> missing_values;  // variables and keys without a value
  std::vector<std::string> explanations;    // per resource
};

class PolicyCore {
 public:
  // Nothing is owned.
  PolicyCore(PolicyStore* store, ThingDirectory* things, const aws::Arns* arns, const Clock* clock,
             PolicyLimits limits = {});

  const aws::Arns& arns() const { return *arns_; }

  absl::StatusOr<PolicyVersionRecord> CreatePolicy(absl::string_view name,
                                                   absl::string_view document);
  // The policy and its default version.
  absl::StatusOr<std::pair<PolicyInfo, PolicyVersionRecord>> GetPolicy(absl::string_view name);
  absl::StatusOr<Page<std::string>> ListPolicies(const PageRequest& page);
  absl::Status DeletePolicy(absl::string_view name);

  // The new version and whether it became the default.
  absl::StatusOr<std::pair<PolicyVersionRecord, bool>> CreatePolicyVersion(
      absl::string_view name, absl::string_view document, bool set_as_default);
  absl::StatusOr<std::pair<PolicyInfo, PolicyVersionRecord>> GetPolicyVersion(
      absl::string_view name, absl::string_view version_id);
  absl::StatusOr<std::pair<PolicyInfo, std::vector<PolicyVersionRecord>>> ListPolicyVersions(
      absl::string_view name);
  absl::Status DeletePolicyVersion(absl::string_view name, absl::string_view version_id);
  absl::Status SetDefaultPolicyVersion(absl::string_view name, absl::string_view version_id);

  absl::Status AttachPolicy(absl::string_view name, absl::string_view target);
  absl::Status DetachPolicy(absl::string_view name, absl::string_view target);
  absl::StatusOr<Page<std::string>> ListAttachedPolicies(absl::string_view target, bool recursive,
                                                         const PageRequest& page);
  absl::StatusOr<Page<std::string>> ListTargetsForPolicy(absl::string_view name,
                                                         const PageRequest& page);

  // For a certificate: the policies attached to it and, when a thing is associated with the
  // connection (`thing_name`; else the thing the certificate is attached to exclusively;
  // else the thing named `client_id`), those of the thing's groups and their ancestors.
  absl::StatusOr<EffectivePolicies> GetEffectivePolicies(absl::string_view principal,
                                                         absl::string_view thing_name,
                                                         absl::string_view client_id);

  absl::StatusOr<std::vector<AuthResultOutput>> TestAuthorization(
      const TestAuthorizationInput& input);

 private:
  enum class TargetKind { kCertificate, kThingGroup, kUser };
  struct Target {
    TargetKind kind;
    std::string name;  // certificate id, group name, or access-key user name
  };
  absl::StatusOr<Target> ParseTarget(absl::string_view target, absl::string_view field) const;
  // The policies of a thing group and its ancestors, as targets.
  absl::StatusOr<std::vector<std::string>> GroupTargets(absl::string_view group);

  PolicyStore* store_;
  ThingDirectory* things_;
  const aws::Arns* arns_;
  const Clock* clock_;
  PolicyLimits limits_;
};

// Validation shared by the core and the adapter.
absl::Status ValidatePolicyName(absl::string_view name);
// AWS's 2048-character limit, counted without whitespace, and the document's syntax.
absl::Status ValidatePolicyDocument(absl::string_view document);

}  // namespace fleetcore::policy_service
