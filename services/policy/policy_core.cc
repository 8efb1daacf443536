#include "services/policy/policy_core.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/pagination/page_token.h"
#include "common/status/quoted.h"
#include "common/status/status_macros.h"
#include "services/policy/access_key_core.h"

namespace fleetcore::policy_service {
namespace {

using pagination::DecodePageToken;
using pagination::EncodePageToken;
using pagination::ResolveMaxResults;

absl::StatusOr<int> ParseVersionId(absl::string_view id) {
  int v = 0;
  if (!absl::SimpleAtoi(id, &v) || v < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("policyVersionId ", Quoted(id), " is not a version id (1, 2, ...)"));
  }
  return v;
}

absl::Status PolicyNotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("policy ", Quoted(name), " does not exist"));
}

// One page of names from a store read that returned up to limit + 1 of them.
Page<std::string> NamePage(std::vector<std::string> names, int limit, absl::string_view query) {
  return PageOf(std::move(names), limit, query, [](const std::string& n) { return n; });
}

}  // namespace

absl::Status ValidatePolicyName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("policyName ", Quoted(name), " must be 1-128 characters long"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("_+=,.@-", c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "policyName ", Quoted(name), " may contain only letters, digits and _ + = , . @ -"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePolicyDocument(absl::string_view document) {
  const size_t size = std::count_if(document.begin(), document.end(),
                                    [](char c) { return !absl::ascii_isspace(c); });
  if (size > 2048) {
    return absl::InvalidArgumentError(absl::StrCat(
        "policyDocument has ", size,
        " characters besides whitespace; AWS IoT allows at most 2048 (split it into several "
        "policies)"));
  }
  absl::StatusOr<std::shared_ptr<const policy::PolicyDocument>> doc =
      policy::PolicyDocument::Parse(document);
  if (!doc.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("policyDocument: ", doc.status().message()));
  }
  return absl::OkStatus();
}

PolicyCore::PolicyCore(PolicyStore* store, ThingDirectory* things, const aws::Arns* arns,
                       const Clock* clock, PolicyLimits limits)
    : store_(store), things_(things), arns_(arns), clock_(clock), limits_(limits) {}

absl::StatusOr<PolicyCore::Target> PolicyCore::ParseTarget(absl::string_view target,
                                                           absl::string_view field) const {
  if (std::optional<std::string> cert = arns_->ParseResource(target, "cert")) {
    bool hex = cert->size() == 64;
    for (char c : *cert) hex = hex && (absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'));
    if (hex) return Target{TargetKind::kCertificate, *cert};
  }
  if (std::optional<std::string> group = arns_->ParseResource(target, "thinggroup")) {
    return Target{TargetKind::kThingGroup, *group};
  }
  // An access-key user (AccessKeyCore): arn:aws:iam::{account}:user/{name}.
  if (std::optional<std::string> user = UserOfArn(*arns_, target)) {
    return Target{TargetKind::kUser, *user};
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, " ", Quoted(target), " must be a certificate ARN (", arns_->Cert("<64 hex>"),
      "), a thing-group ARN (", arns_->ThingGroup("<name>"), ") or an access-key user's ARN (",
      "arn:aws:iam::", arns_->account_id(), ":user/<name>)"));
}

absl::StatusOr<std::vector<std::string>> PolicyCore::GroupTargets(absl::string_view group) {
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> groups, things_->GroupAndAncestors(group));
  std::vector<std::string> targets;
  for (const std::string& g : groups) targets.push_back(arns_->ThingGroup(g));
  return targets;
}

// ---- policies and versions

absl::StatusOr<PolicyVersionRecord> PolicyCore::CreatePolicy(absl::string_view name,
                                                             absl::string_view document) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyDocument(document));
  const absl::Time now = clock_->Now();
  PolicyVersionRecord v{.policy = std::string(name),
                        .version = 1,
                        .document = std::string(document),
                        .created_at = now};
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> existing, tx.GetPolicy(name, Lock::kNone));
    if (existing.has_value()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "policy ", Quoted(name), " already exists; change it with CreatePolicyVersion"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.InsertPolicy({.name = std::string(name),
                                               .default_version = 1,
                                               .next_version = 2,
                                               .generation = 1,
                                               .created_at = now,
                                               .updated_at = now}));
    FLEETCORE_RETURN_IF_ERROR(tx.InsertVersion(v));
    tx.Publish({.type = "policy.created", .policy = std::string(name)});
    return absl::OkStatus();
  }));
  return v;
}

absl::StatusOr<std::pair<PolicyInfo, PolicyVersionRecord>> PolicyCore::GetPolicy(
    absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, store_->GetPolicy(name));
  if (!p.has_value()) return PolicyNotFound(name);
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyVersionRecord> v,
                             store_->GetVersion(name, p->default_version));
  if (!v.has_value()) {
    return absl::InternalError(absl::StrCat("policy ", Quoted(name), " lacks its default version"));
  }
  return std::make_pair(*std::move(p), *std::move(v));
}

absl::StatusOr<Page<std::string>> PolicyCore::ListPolicies(const PageRequest& page) {
  FLEETCORE_ASSIGN_OR_RETURN(int limit, ResolveMaxResults(page.page_size));
  FLEETCORE_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page.marker, "policies"));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> names,
                             store_->ListPolicies(after, limit + 1));
  return NamePage(std::move(names), limit, "policies");
}

absl::Status PolicyCore::DeletePolicy(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  return store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, tx.GetPolicy(name, Lock::kUpdate));
    if (!p.has_value()) return PolicyNotFound(name);
    FLEETCORE_ASSIGN_OR_RETURN(int64_t targets, tx.CountTargetsOfPolicy(name));
    if (targets > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("policy ", Quoted(name), " is attached to ", targets,
                       " target(s); detach it first (DetachPolicy, ListTargetsForPolicy)"));
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<PolicyVersionRecord> versions, tx.Versions(name));
    if (versions.size() > 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("policy ", Quoted(name), " has ", versions.size() - 1,
                       " version(s) besides the default; delete them first (DeletePolicyVersion)"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeletePolicy(name));
    tx.Publish({.type = "policy.deleted", .policy = std::string(name)});
    return absl::OkStatus();
  });
}

absl::StatusOr<std::pair<PolicyVersionRecord, bool>> PolicyCore::CreatePolicyVersion(
    absl::string_view name, absl::string_view document, bool set_as_default) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyDocument(document));
  PolicyVersionRecord v;
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, tx.GetPolicy(name, Lock::kUpdate));
    if (!p.has_value()) return PolicyNotFound(name);
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<PolicyVersionRecord> versions, tx.Versions(name));
    if (static_cast<int>(versions.size()) >= limits_.max_versions) {
      return absl::ResourceExhaustedError(
          absl::StrCat("policy ", Quoted(name), " has ", versions.size(),
                       " versions, the most it can have; "
                       "delete one that is not the default first (DeletePolicyVersion)"));
    }
    const absl::Time now = clock_->Now();
    v = {.policy = std::string(name),
         .version = p->next_version,
         .document = std::string(document),
         .created_at = now};
    FLEETCORE_RETURN_IF_ERROR(tx.InsertVersion(v));
    p->next_version += 1;
    p->updated_at = now;
    if (set_as_default) {
      p->default_version = v.version;
      p->generation += 1;
    }
    FLEETCORE_RETURN_IF_ERROR(tx.UpdatePolicy(*p));
    tx.Publish({.type = set_as_default ? "policy.updated" : "policy.version_created",
                .policy = std::string(name)});
    return absl::OkStatus();
  }));
  return std::make_pair(v, set_as_default);
}

absl::StatusOr<std::pair<PolicyInfo, PolicyVersionRecord>> PolicyCore::GetPolicyVersion(
    absl::string_view name, absl::string_view version_id) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_ASSIGN_OR_RETURN(int version, ParseVersionId(version_id));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, store_->GetPolicy(name));
  if (!p.has_value()) return PolicyNotFound(name);
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyVersionRecord> v,
                             store_->GetVersion(name, version));
  if (!v.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("policy ", Quoted(name), " has no version ", version_id));
  }
  return std::make_pair(*std::move(p), *std::move(v));
}

absl::StatusOr<std::pair<PolicyInfo, std::vector<PolicyVersionRecord>>>
PolicyCore::ListPolicyVersions(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, store_->GetPolicy(name));
  if (!p.has_value()) return PolicyNotFound(name);
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<PolicyVersionRecord> versions, store_->Versions(name));
  return std::make_pair(*std::move(p), std::move(versions));
}

absl::Status PolicyCore::DeletePolicyVersion(absl::string_view name, absl::string_view version_id) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_ASSIGN_OR_RETURN(int version, ParseVersionId(version_id));
  return store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, tx.GetPolicy(name, Lock::kUpdate));
    if (!p.has_value()) return PolicyNotFound(name);
    if (p->default_version == version) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version ", version, " is the default of policy ", Quoted(name),
          "; make another version the default first (SetDefaultPolicyVersion), or delete the "
          "policy"));
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<PolicyVersionRecord> versions, tx.Versions(name));
    if (std::none_of(versions.begin(), versions.end(),
                     [&](const PolicyVersionRecord& v) { return v.version == version; })) {
      return absl::NotFoundError(
          absl::StrCat("policy ", Quoted(name), " has no version ", version));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteVersion(name, version));
    tx.Publish({.type = "policy.version_deleted", .policy = std::string(name)});
    return absl::OkStatus();
  });
}

absl::Status PolicyCore::SetDefaultPolicyVersion(absl::string_view name,
                                                 absl::string_view version_id) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_ASSIGN_OR_RETURN(int version, ParseVersionId(version_id));
  return store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, tx.GetPolicy(name, Lock::kUpdate));
    if (!p.has_value()) return PolicyNotFound(name);
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<PolicyVersionRecord> versions, tx.Versions(name));
    if (std::none_of(versions.begin(), versions.end(),
                     [&](const PolicyVersionRecord& v) { return v.version == version; })) {
      return absl::NotFoundError(
          absl::StrCat("policy ", Quoted(name), " has no version ", version));
    }
    if (p->default_version == version) return absl::OkStatus();
    p->default_version = version;
    p->generation += 1;
    p->updated_at = clock_->Now();
    FLEETCORE_RETURN_IF_ERROR(tx.UpdatePolicy(*p));
    tx.Publish({.type = "policy.updated", .policy = std::string(name)});
    return absl::OkStatus();
  });
}

// ---- attachments

absl::Status PolicyCore::AttachPolicy(absl::string_view name, absl::string_view target) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_ASSIGN_OR_RETURN(Target t, ParseTarget(target, "target"));
  if (t.kind == TargetKind::kThingGroup) {
    // The group must exist and be static (asked before the transaction: the registry is
    // another service).
    FLEETCORE_RETURN_IF_ERROR(things_->CheckPolicyTargetGroup(t.name));
  }
  // A user is a principal like a certificate (AWS: 10 per certificate or identity).
  const int limit = t.kind == TargetKind::kThingGroup ? limits_.max_per_thing_group
                                                      : limits_.max_per_certificate;
  return store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, tx.GetPolicy(name, Lock::kNone));
    if (!p.has_value()) return PolicyNotFound(name);
    FLEETCORE_RETURN_IF_ERROR(tx.LockTarget(target));
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> attached, tx.PoliciesOfTarget(target));
    if (std::find(attached.begin(), attached.end(), name) != attached.end()) {
      return absl::OkStatus();  // already attached
    }
    if (static_cast<int>(attached.size()) >= limit) {
      return absl::ResourceExhaustedError(absl::StrCat(
          Quoted(target), " already has ", attached.size(), " policies attached, the most a ",
          t.kind == TargetKind::kThingGroup ? "thing group" : "principal", " can have"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.InsertAttachment(name, target));
    tx.Publish(
        {.type = "policy.attached", .policy = std::string(name), .target = std::string(target)});
    return absl::OkStatus();
  });
}

absl::Status PolicyCore::DetachPolicy(absl::string_view name, absl::string_view target) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_RETURN_IF_ERROR(ParseTarget(target, "target").status());
  return store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, tx.GetPolicy(name, Lock::kNone));
    if (!p.has_value()) return PolicyNotFound(name);
    FLEETCORE_RETURN_IF_ERROR(tx.LockTarget(target));
    FLEETCORE_ASSIGN_OR_RETURN(bool removed, tx.DeleteAttachment(name, target));
    if (removed) {
      tx.Publish(
          {.type = "policy.detached", .policy = std::string(name), .target = std::string(target)});
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<Page<std::string>> PolicyCore::ListAttachedPolicies(absl::string_view target,
                                                                   bool recursive,
                                                                   const PageRequest& page) {
  FLEETCORE_ASSIGN_OR_RETURN(Target t, ParseTarget(target, "target"));
  std::vector<std::string> targets = {std::string(target)};
  if (recursive && t.kind == TargetKind::kThingGroup) {
    FLEETCORE_ASSIGN_OR_RETURN(targets, GroupTargets(t.name));
  } else if (recursive && t.kind == TargetKind::kCertificate) {
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<PrincipalThing> things,
                               things_->ThingsOfPrincipal(target));
    for (const PrincipalThing& thing : things) {
      FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> groups,
                                 things_->GroupsWithAncestors(thing.thing_name));
      for (const std::string& g : groups) targets.push_back(arns_->ThingGroup(g));
    }
  }
  const std::string query = absl::StrCat("attached|", target, "|", recursive);
  FLEETCORE_ASSIGN_OR_RETURN(int limit, ResolveMaxResults(page.page_size));
  FLEETCORE_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page.marker, query));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> names,
                             store_->PoliciesOfTargets(targets, after, limit + 1));
  return NamePage(std::move(names), limit, query);
}

absl::StatusOr<Page<std::string>> PolicyCore::ListTargetsForPolicy(absl::string_view name,
                                                                   const PageRequest& page) {
  FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<PolicyInfo> p, store_->GetPolicy(name));
  if (!p.has_value()) return PolicyNotFound(name);
  const std::string query = absl::StrCat("targets|", name);
  FLEETCORE_ASSIGN_OR_RETURN(int limit, ResolveMaxResults(page.page_size));
  FLEETCORE_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page.marker, query));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> targets,
                             store_->TargetsOfPolicy(name, after, limit + 1));
  return NamePage(std::move(targets), limit, query);
}

// ---- effective policies and authorization tests

absl::StatusOr<EffectivePolicies> PolicyCore::GetEffectivePolicies(absl::string_view principal,
                                                                   absl::string_view thing_name,
                                                                   absl::string_view client_id) {
  FLEETCORE_ASSIGN_OR_RETURN(Target t, ParseTarget(principal, "principal"));
  if (t.kind == TargetKind::kThingGroup) {
    return absl::InvalidArgumentError(
        "principal must be a certificate ARN or an access-key user's ARN");
  }
  // The connection's thing: named, else attached exclusively, else named like the client.
  // Things attach to certificates only, so a user's connection has its client id's thing
  // for the policy variables, never attached (no group policies).
  std::vector<PrincipalThing> attached;
  if (t.kind == TargetKind::kCertificate) {
    FLEETCORE_ASSIGN_OR_RETURN(attached, things_->ThingsOfPrincipal(principal));
  }
  EffectivePolicies out;
  std::string thing = std::string(thing_name);
  for (const PrincipalThing& a : attached) {
    out.principal_things.push_back(a.thing_name);
    if (a.exclusive) {
      out.exclusive_thing = true;
      if (thing_name.empty()) thing = a.thing_name;
    }
  }
  if (thing.empty()) thing = std::string(client_id);
  std::vector<std::string> targets = {std::string(principal)};
  if (!thing.empty()) {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<ThingRecord> record, things_->DescribeThing(thing));
    if (record.has_value()) {
      policy::ThingInfo info;
      info.name = record->name;
      info.type_name = record->type_name;
      info.attributes = record->attributes;
      info.propagating_attributes = record->propagating_attributes;
      info.attached = std::any_of(attached.begin(), attached.end(),
                                  [&](const PrincipalThing& a) { return a.thing_name == thing; });
      // Group policies are those of the thing attached to the principal (a client id
      // naming someone else's thing gains nothing); the variables resolve either way,
      // with iot:Connection.Thing.IsAttached telling which.
      if (info.attached) {
        FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> groups,
                                   things_->GroupsWithAncestors(thing));
        for (const std::string& g : groups) targets.push_back(arns_->ThingGroup(g));
      }
      out.thing = std::move(info);
    } else if (!thing_name.empty()) {
      return absl::NotFoundError(absl::StrCat("thing ", Quoted(thing_name), " does not exist"));
    }
  }
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<AttachedPolicy> policies,
                             store_->AttachedDefaults(targets));
  // Each policy once, preferring its attachment to the principal itself.
  std::map<std::string, AttachedPolicy> by_name;
  for (AttachedPolicy& p : policies) {
    auto [it, inserted] = by_name.emplace(p.policy, p);
    if (!inserted && p.target == principal) it->second = std::move(p);
  }
  for (auto& [name, p] : by_name) out.policies.push_back(std::move(p));
  return out;
}

absl::StatusOr<std::vector<AuthResultOutput>> PolicyCore::TestAuthorization(
    const TestAuthorizationInput& in) {
  if (in.auth_infos.empty() || in.auth_infos.size() > 10) {
    return absl::InvalidArgumentError("authInfos must have 1 to 10 entries");
  }
  FLEETCORE_ASSIGN_OR_RETURN(Target t, ParseTarget(in.principal, "principal"));
  EffectivePolicies effective;
  if (t.kind != TargetKind::kThingGroup) {
    FLEETCORE_ASSIGN_OR_RETURN(effective, GetEffectivePolicies(in.principal, "", in.client_id));
  } else {
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> targets, GroupTargets(t.name));
    FLEETCORE_ASSIGN_OR_RETURN(effective.policies, store_->AttachedDefaults(targets));
  }
  if (!in.policies_to_add.empty()) {
    for (const std::string& name : in.policies_to_add) {
      FLEETCORE_RETURN_IF_ERROR(ValidatePolicyName(name));
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<AttachedPolicy> added,
                               store_->Defaults(in.policies_to_add));
    for (const std::string& name : in.policies_to_add) {
      if (std::none_of(added.begin(), added.end(),
                       [&](const AttachedPolicy& p) { return p.policy == name; })) {
        return PolicyNotFound(name);
      }
    }
    for (AttachedPolicy& p : added) effective.policies.push_back(std::move(p));
  }
  std::set<std::string> skip(in.policies_to_skip.begin(), in.policies_to_skip.end());
  std::set<std::string> seen;
  std::vector<policy::PolicySet::Policy> compiled;
  for (const AttachedPolicy& p : effective.policies) {
    if (skip.count(p.policy) != 0 || !seen.insert(p.policy).second) continue;
    auto doc = policy::PolicyDocument::Parse(p.document);
    if (!doc.ok()) {
      return absl::InternalError(absl::StrCat("stored policy ", Quoted(p.policy),
                                              " does not parse: ", doc.status().message()));
    }
    compiled.push_back({p.policy, absl::StrCat(p.version), *doc});
  }
  policy::PolicySet set(std::move(compiled), *arns_);
  policy::Context ctx{.client_id = in.client_id,
                      .thing = effective.thing.has_value() ? &*effective.thing : nullptr,
                      .now = clock_->Now()};

  std::vector<AuthResultOutput> results;
  for (const AuthInfoInput& info : in.auth_infos) {
    if (info.resources.empty()) {
      return absl::InvalidArgumentError("every authInfo needs at least one resource ARN");
    }
    AuthResultOutput r;
    bool any_explicit = false, any_implicit = false;
    std::set<std::string> allowed, denied;
    for (const std::string& resource : info.resources) {
      if (!absl::StartsWith(resource, "arn:")) {
        return absl::InvalidArgumentError(
            absl::StrCat("resource ", Quoted(resource), " must be an ARN like ",
                         arns_->Make(policy::ResourceType(info.action), "NAME")));
      }
      policy::Decision d = set.EvaluateArn(info.action, resource, ctx);
      r.explanations.push_back(absl::StrCat(resource, ": ", set.Explain(d)));
      const std::string decider = d.policy >= 0 ? set.policies()[d.policy].name : "";
      switch (d.effect) {
        case policy::Effect::kAllow:
          allowed.insert(decider);
          break;
        case policy::Effect::kExplicitDeny:
          any_explicit = true;
          denied.insert(decider);
          break;
        case policy::Effect::kImplicitDeny:
          any_implicit = true;
          break;
      }
    }
    r.decision = any_explicit   ? policy::Effect::kExplicitDeny
                 : any_implicit ? policy::Effect::kImplicitDeny
                                : policy::Effect::kAllow;
    r.allowed.assign(allowed.begin(), allowed.end());
    r.explicit_deny.assign(denied.begin(), denied.end());
    if (any_implicit && !any_explicit) {
      for (const auto& p : set.policies()) r.implicit_deny.push_back(p.name);
    }
    r.missing_values = set.MissingValues(info.action, ctx);
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace fleetcore::policy_service
