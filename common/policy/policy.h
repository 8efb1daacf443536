// The AWS IoT policy language: parse and validate documents, compile them, and decide
// requests the way AWS IoT Core does.
//
//   FLEETCORE_ASSIGN_OR_RETURN(auto doc, PolicyDocument::Parse(json));
//   PolicySet set({{"device-policy", "1", doc}}, arns);
//   Context ctx{.client_id = "lamp-1", .thing = &thing};
//   Decision d = set.Evaluate(Action::kPublish, "things/lamp-1/temp", ctx);
//   if (!d.allowed()) log(set.Explain(d));
//
// Evaluation: default deny; any matching explicit Deny wins over every Allow; otherwise any
// matching Allow. A statement matches when the action is in Action (or not in NotAction),
// the resource ARN matches an entry of Resource (or none of NotResource; an entry whose
// variables have no value matches nothing), and every condition holds. `*` and `?` are the
// wildcards; MQTT's + and # are literal characters.
//
// Evaluate allocates nothing for requests whose conditions use no time keys, and looks only
// at the statements that mention the action.
//
// Thread safety: PolicyDocument and PolicySet are immutable; Evaluate may be called
// concurrently.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/aws/arn.h"
#include "common/policy/actions.h"
#include "common/policy/condition.h"
#include "common/policy/context.h"
#include "common/policy/template.h"

namespace fleetcore::policy {

struct Statement {
  std::string sid;
  bool allow = true;
  ActionMask actions = 0;  // NotAction already inverted
  bool not_resource = false;
  std::vector<Template> resources;
  std::vector<Condition> conditions;
};

class PolicyDocument {
 public:
  // INVALID_ARGUMENT names the place and the problem, e.g.
  //   Statement[1].Action[0]: unknown action "iot:Publsh"; did you mean "iot:Publish"?
  static absl::StatusOr<std::shared_ptr<const PolicyDocument>> Parse(absl::string_view json);

  const std::string& version() const { return version_; }
  const std::vector<Statement>& statements() const { return statements_; }

 private:
  static absl::StatusOr<std::shared_ptr<const PolicyDocument>> ParseJson(absl::string_view json);

  std::string version_;
  std::vector<Statement> statements_;
};

enum class Effect : uint8_t { kImplicitDeny, kAllow, kExplicitDeny };

struct Decision {
  Effect effect = Effect::kImplicitDeny;
  int policy = -1;     // index into PolicySet::policies(), for kAllow and kExplicitDeny
  int statement = -1;  // index into that document's statements
  bool allowed() const { return effect == Effect::kAllow; }
};

class PolicySet {
 public:
  struct Policy {
    std::string name;
    std::string version;  // the policy version id ("1", "2", ...), for explanations
    std::shared_ptr<const PolicyDocument> document;
  };

  // `arns` gives the region and account of the resources requests name.
  PolicySet(std::vector<Policy> policies, const aws::Arns& arns);
  PolicySet(const PolicySet&) = delete;
  PolicySet& operator=(const PolicySet&) = delete;

  // Decides `action` on the resource named `resource` (a client id for Connect, a topic for
  // Publish/Receive/RetainPublish, a topic filter for Subscribe, "thing" or "thing/shadow"
  // for the shadow actions).
  Decision Evaluate(Action action, absl::string_view resource, const Context& ctx) const;
  // The same for a full resource ARN (TestAuthorization names resources by ARN).
  Decision EvaluateArn(Action action, absl::string_view resource_arn, const Context& ctx) const;

  // "allowed by policy "p" version 2, Statement[1] (Sid "Pub")", "explicitly denied by ...",
  // or "no statement allows it (implicit deny)".
  std::string Explain(const Decision& decision) const;

  // Variables and condition keys that the statements mentioning `action` use and that have
  // no value in `ctx`, each once (TestAuthorization's missingContextValues).
  std::vector<std::string> MissingValues(Action action, const Context& ctx) const;

  const std::vector<Policy>& policies() const { return policies_; }
  // Whether any statement depends on the connection's thing (an iot:Connection.Thing.*
  // variable in a resource or condition): without, decisions are the same for every thing.
  bool uses_thing() const { return uses_thing_; }

 private:
  // A Resource/NotResource entry bound to this install's region and account.
  struct BoundPattern {
    const Template* full = nullptr;  // the entry as written
    bool any = false;                // "*"
    bool never = false;              // another region's or account's ARN
    std::string type;                // fast form: the literal resource type...
    std::optional<Template> rest;    // ...and the pattern after "<type>/"
  };
  struct BoundStatement {
    int policy;
    int statement;
    const Statement* s;
    std::vector<BoundPattern> patterns;
  };

  bool Matches(const BoundStatement& b, Action action, absl::string_view name,
               absl::string_view arn, const Context& ctx) const;
  bool PatternMatches(const BoundPattern& p, Action action, absl::string_view name,
                      absl::string_view arn, const Context& ctx, bool* unresolved) const;
  Decision Decide(Action action, absl::string_view name, absl::string_view arn,
                  const Context& ctx) const;

  std::vector<Policy> policies_;
  std::string arn_prefix_;  // "arn:aws:iot:REGION:ACCOUNT:"
  std::vector<BoundStatement> bound_;
  // For each action, the statements that mention it: denies first, then allows.
  std::array<std::vector<int>, kActionCount> denies_;
  std::array<std::vector<int>, kActionCount> allows_;
  bool uses_thing_ = false;
};

}  // namespace fleetcore::policy
