#include "common/policy/policy.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/policy/glob.h"
#include "nlohmann/json.hpp"

namespace fleetcore::policy {
namespace {

using json = nlohmann::json;

absl::Status Error(absl::string_view path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", problem));
}

std::string Indexed(absl::string_view path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Suggestion(absl::string_view action) {
  size_t best = 4;
  absl::string_view best_name;
  for (int i = 0; i < kActionCount; ++i) {
    absl::string_view name = ActionName(static_cast<Action>(i));
    const size_t d = EditDistance(action, name);
    if (d < best) {
      best = d;
      best_name = name;
    }
  }
  return best_name.empty() ? "" : absl::StrCat("; did you mean \"", best_name, "\"?");
}

// A string or a non-empty list of strings.
absl::StatusOr<std::vector<std::string>> StringList(const json& v, absl::string_view path) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
    return out;
  }
  if (!v.is_array() || v.empty()) {
    return Error(path, "must be a string or a non-empty list of strings");
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) return Error(Indexed(path, i), "must be a string");
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

absl::StatusOr<ActionMask> ParseActions(const json& v, absl::string_view path) {
  absl::StatusOr<std::vector<std::string>> names = StringList(v, path);
  if (!names.ok()) return names.status();
  ActionMask mask = 0;
  for (size_t i = 0; i < names->size(); ++i) {
    const std::string& a = (*names)[i];
    const std::string where = v.is_array() ? Indexed(path, i) : std::string(path);
    if (a == "*") {
      mask |= kAllActions;
      continue;
    }
    if (!absl::StartsWithIgnoreCase(a, "iot:")) {
      return Error(where, absl::StrCat("\"", a, "\" is not an AWS IoT action (iot:...)"));
    }
    const bool wildcard = a.find_first_of("*?") != std::string::npos;
    const ActionMask m = MatchActions(a);
    if (m == 0) {
      return Error(where, wildcard ? absl::StrCat("\"", a, "\" matches no AWS IoT action")
                                   : absl::StrCat("unknown action \"", a, "\"", Suggestion(a)));
    }
    mask |= m;
  }
  return mask;
}

absl::StatusOr<std::vector<Template>> ParseResources(const json& v, absl::string_view path,
                                                     bool variables) {
  absl::StatusOr<std::vector<std::string>> entries = StringList(v, path);
  if (!entries.ok()) return entries.status();
  std::vector<Template> out;
  for (size_t i = 0; i < entries->size(); ++i) {
    const std::string& r = (*entries)[i];
    const std::string where = v.is_array() ? Indexed(path, i) : std::string(path);
    if (r != "*" && !absl::StartsWith(r, "arn:")) {
      return Error(where, absl::StrCat("\"", r,
                                       "\" is neither \"*\" nor an ARN like "
                                       "arn:aws:iot:REGION:ACCOUNT:topic/NAME"));
    }
    absl::StatusOr<Template> t = Template::Parse(r, variables);
    if (!t.ok()) return Error(where, t.status().message());
    out.push_back(*std::move(t));
  }
  return out;
}

std::string ScalarText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();  // numbers
}

absl::StatusOr<std::vector<Condition>> ParseConditions(const json& v, absl::string_view path,
                                                       bool variables) {
  if (!v.is_object()) return Error(path, "must be an object of operators");
  std::vector<Condition> out;
  for (const auto& [op, keys] : v.items()) {
    const std::string op_path = absl::StrCat(path, ".", op);
    if (!keys.is_object() || keys.empty()) {
      return Error(op_path, "must be an object of condition keys and values");
    }
    for (const auto& [key, values] : keys.items()) {
      const std::string key_path = absl::StrCat(op_path, ".", key);
      std::vector<std::string> texts;
      if (values.is_array()) {
        for (size_t i = 0; i < values.size(); ++i) {
          if (!values[i].is_primitive() || values[i].is_null()) {
            return Error(Indexed(key_path, i), "must be a string, number or boolean");
          }
          texts.push_back(ScalarText(values[i]));
        }
      } else if (values.is_primitive() && !values.is_null()) {
        texts.push_back(ScalarText(values));
      } else {
        return Error(key_path, "must be a value or a list of values");
      }
      absl::StatusOr<Condition> c = Condition::Create(op, key, std::move(texts), variables);
      if (!c.ok()) return Error(key_path, c.status().message());
      out.push_back(*std::move(c));
    }
  }
  return out;
}

absl::StatusOr<Statement> ParseStatement(const json& v, absl::string_view path, bool variables) {
  if (!v.is_object()) return Error(path, "must be an object");
  Statement s;
  bool has_effect = false;
  const json* action = nullptr;
  const json* not_action = nullptr;
  const json* resource = nullptr;
  const json* not_resource = nullptr;
  for (const auto& [key, value] : v.items()) {
    const std::string where = absl::StrCat(path, ".", key);
    if (key == "Sid") {
      if (!value.is_string()) return Error(where, "must be a string");
      s.sid = value.get<std::string>();
    } else if (key == "Effect") {
      if (value == "Allow") {
        s.allow = true;
      } else if (value == "Deny") {
        s.allow = false;
      } else {
        return Error(where, absl::StrCat("must be \"Allow\" or \"Deny\", not ", value.dump()));
      }
      has_effect = true;
    } else if (key == "Action") {
      action = &value;
    } else if (key == "NotAction") {
      not_action = &value;
    } else if (key == "Resource") {
      resource = &value;
    } else if (key == "NotResource") {
      not_resource = &value;
    } else if (key == "Condition") {
      absl::StatusOr<std::vector<Condition>> c = ParseConditions(value, where, variables);
      if (!c.ok()) return c.status();
      s.conditions = *std::move(c);
    } else if (key == "Principal" || key == "NotPrincipal") {
      return Error(where,
                   "AWS IoT policies have no Principal: a policy applies to the certificates "
                   "and thing groups it is attached to");
    } else {
      return Error(path, absl::StrCat("unknown element \"", key,
                                      "\" (a statement has Sid, Effect, Action or NotAction, "
                                      "Resource or NotResource, and Condition)"));
    }
  }
  if (!has_effect) return Error(path, "needs an Effect (\"Allow\" or \"Deny\")");
  if ((action == nullptr) == (not_action == nullptr)) {
    return Error(path, action == nullptr ? "needs an Action or a NotAction"
                                         : "has both Action and NotAction; keep one");
  }
  if ((resource == nullptr) == (not_resource == nullptr)) {
    return Error(path, resource == nullptr ? "needs a Resource or a NotResource"
                                           : "has both Resource and NotResource; keep one");
  }
  absl::StatusOr<ActionMask> mask = action != nullptr
                                        ? ParseActions(*action, absl::StrCat(path, ".Action"))
                                        : ParseActions(*not_action, absl::StrCat(path, ".NotAction"));
  if (!mask.ok()) return mask.status();
  s.actions = action != nullptr ? *mask : (kAllActions & ~*mask);
  s.not_resource = not_resource != nullptr;
  absl::StatusOr<std::vector<Template>> resources =
      resource != nullptr ? ParseResources(*resource, absl::StrCat(path, ".Resource"), variables)
                          : ParseResources(*not_resource, absl::StrCat(path, ".NotResource"),
                                           variables);
  if (!resources.ok()) return resources.status();
  s.resources = *std::move(resources);
  return s;
}

// True when `pattern` names, literally, a partition, service, region or account other than
// `prefix` ("arn:aws:iot:REGION:ACCOUNT:"): such an entry can never match a request here.
bool ForeignArn(absl::string_view pattern, absl::string_view prefix) {
  size_t end = 0;
  for (int colons = 0; colons < 5; ++colons) {
    end = pattern.find(':', end);
    if (end == absl::string_view::npos) return false;
    ++end;
  }
  const absl::string_view head = pattern.substr(0, end);
  return head.find_first_of("*?$") == absl::string_view::npos && head != prefix;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const PolicyDocument>> PolicyDocument::Parse(
    absl::string_view text) {
  // nlohmann/json reports malformed input with several exception types (a syntax error, a
  // number out of range, ...); none may escape.
  try {
    return ParseJson(text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy document is not valid JSON: ", e.what()));
  }
}

absl::StatusOr<std::shared_ptr<const PolicyDocument>> PolicyDocument::ParseJson(
    absl::string_view text) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy document is not valid JSON (at byte ", e.byte, ")"));
  }
  if (!doc.is_object()) return absl::InvalidArgumentError("policy document must be a JSON object");
  auto policy = std::make_shared<PolicyDocument>();
  const json* statements = nullptr;
  policy->version_ = "2008-10-17";  // IAM's default: variables are literal text
  for (const auto& [key, value] : doc.items()) {
    if (key == "Version") {
      if (value != "2012-10-17" && value != "2008-10-17") {
        return Error("Version", absl::StrCat("must be \"2012-10-17\" (or \"2008-10-17\"), not ",
                                             value.dump()));
      }
      policy->version_ = value.get<std::string>();
    } else if (key == "Statement") {
      statements = &value;
    } else if (key == "Id") {
      if (!value.is_string()) return Error("Id", "must be a string");
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown element \"", key, "\" (a policy has Version, Statement and Id)"));
    }
  }
  if (statements == nullptr) return absl::InvalidArgumentError("Statement is required");
  const bool variables = policy->version_ == "2012-10-17";
  if (statements->is_object()) {
    absl::StatusOr<Statement> s = ParseStatement(*statements, "Statement", variables);
    if (!s.ok()) return s.status();
    policy->statements_.push_back(*std::move(s));
  } else if (statements->is_array() && !statements->empty()) {
    for (size_t i = 0; i < statements->size(); ++i) {
      absl::StatusOr<Statement> s =
          ParseStatement((*statements)[i], Indexed("Statement", i), variables);
      if (!s.ok()) return s.status();
      policy->statements_.push_back(*std::move(s));
    }
  } else {
    return Error("Statement", "must be a statement object or a non-empty list of them");
  }
  return std::shared_ptr<const PolicyDocument>(std::move(policy));
}

PolicySet::PolicySet(std::vector<Policy> policies, const aws::Arns& arns)
    : policies_(std::move(policies)), arn_prefix_(arns.Make("", "")) {
  // arns.Make("", "") is "arn:aws:iot:REGION:ACCOUNT:/"; keep the part before the slash.
  arn_prefix_.pop_back();
  for (size_t p = 0; p < policies_.size(); ++p) {
    const auto& statements = policies_[p].document->statements();
    for (size_t i = 0; i < statements.size(); ++i) {
      const Statement& s = statements[i];
      BoundStatement b{static_cast<int>(p), static_cast<int>(i), &s, {}};
      uses_thing_ = uses_thing_ ||
                    std::any_of(s.resources.begin(), s.resources.end(),
                                [](const Template& t) { return t.UsesThing(); }) ||
                    std::any_of(s.conditions.begin(), s.conditions.end(),
                                [](const Condition& c) { return c.UsesThing(); });
      for (const Template& t : s.resources) {
        BoundPattern bp{.full = &t};
        absl::string_view text = t.text();
        if (text == "*") {
          bp.any = true;
        } else if (absl::ConsumePrefix(&text, arn_prefix_)) {
          const size_t slash = text.find('/');
          absl::string_view type = text.substr(0, slash);
          if (slash != absl::string_view::npos && !type.empty() &&
              type.find_first_of("*?$") == absl::string_view::npos) {
            bp.type = std::string(type);
            bp.rest = *Template::Parse(text.substr(slash + 1), t.has_variables());
          }
        } else if (ForeignArn(text, arn_prefix_)) {
          bp.never = true;
        }
        b.patterns.push_back(std::move(bp));
      }
      const int index = static_cast<int>(bound_.size());
      bound_.push_back(std::move(b));
      for (int a = 0; a < kActionCount; ++a) {
        if ((s.actions & Bit(static_cast<Action>(a))) != 0) {
          (s.allow ? allows_ : denies_)[a].push_back(index);
        }
      }
    }
  }
}

bool PolicySet::PatternMatches(const BoundPattern& p, Action action, absl::string_view name,
                               absl::string_view arn, const Context& ctx,
                               bool* unresolved) const {
  if (p.any) return true;
  if (p.never) return false;
  char buf[2048];
  if (arn.empty()) {
    // Fast form: compare the type, then match the rest against the resource name.
    if (p.type != ResourceType(action)) return false;
    std::optional<absl::string_view> pattern = p.rest->Expand(ctx, buf, sizeof(buf), /*glob=*/true);
    if (!pattern.has_value()) {
      *unresolved = true;
      return false;
    }
    return GlobMatch(*pattern, name);
  }
  std::optional<absl::string_view> pattern = p.full->Expand(ctx, buf, sizeof(buf), /*glob=*/true);
  if (!pattern.has_value()) {
    *unresolved = true;
    return false;
  }
  return GlobMatch(*pattern, arn);
}

bool PolicySet::Matches(const BoundStatement& b, Action action, absl::string_view name,
                        absl::string_view full_arn, const Context& ctx) const {
  // Entries of the fast form match the resource name; the others need the whole ARN, which
  // is assembled once, on the stack, only when such an entry is reached.
  char arn_buf[2048];
  absl::string_view built;
  bool any = false;
  bool unresolved = false;
  for (const BoundPattern& p : b.patterns) {
    absl::string_view arn = full_arn;
    if (arn.empty() && !p.rest.has_value() && !p.any && !p.never) {
      if (built.empty()) {
        const absl::string_view type = ResourceType(action);
        const size_t n = arn_prefix_.size() + type.size() + 1 + name.size();
        if (n > sizeof(arn_buf)) continue;  // longer than any valid resource: no match
        char* w = arn_buf;
        std::memcpy(w, arn_prefix_.data(), arn_prefix_.size());
        w += arn_prefix_.size();
        std::memcpy(w, type.data(), type.size());
        w += type.size();
        *w++ = '/';
        std::memcpy(w, name.data(), name.size());
        built = absl::string_view(arn_buf, n);
      }
      arn = built;
    }
    if (PatternMatches(p, action, name, arn, ctx, &unresolved)) {
      any = true;
      break;
    }
  }
  if (b.s->not_resource) {
    // An entry that cannot be resolved could have named this resource: fail closed.
    if (any || unresolved) return false;
  } else if (!any) {
    return false;
  }
  for (const Condition& c : b.s->conditions) {
    if (!c.Evaluate(ctx)) return false;
  }
  return true;
}

Decision PolicySet::Decide(Action action, absl::string_view name, absl::string_view arn,
                           const Context& ctx) const {
  const int a = static_cast<int>(action);
  for (int i : denies_[a]) {
    const BoundStatement& b = bound_[static_cast<size_t>(i)];
    if (Matches(b, action, name, arn, ctx)) {
      return {Effect::kExplicitDeny, b.policy, b.statement};
    }
  }
  for (int i : allows_[a]) {
    const BoundStatement& b = bound_[static_cast<size_t>(i)];
    if (Matches(b, action, name, arn, ctx)) {
      return {Effect::kAllow, b.policy, b.statement};
    }
  }
  return {};
}

Decision PolicySet::Evaluate(Action action, absl::string_view resource, const Context& ctx) const {
  return Decide(action, resource, {}, ctx);
}

Decision PolicySet::EvaluateArn(Action action, absl::string_view resource_arn,
                                const Context& ctx) const {
  // The resource name, for entries of the fast form, is what follows "<prefix><type>/".
  absl::string_view name;
  absl::string_view rest = resource_arn;
  if (absl::ConsumePrefix(&rest, arn_prefix_) && absl::ConsumePrefix(&rest, ResourceType(action)) &&
      absl::ConsumePrefix(&rest, "/")) {
    name = rest;
    return Decide(action, name, {}, ctx);
  }
  // Another region, account or resource type: every entry is matched against the whole ARN.
  return Decide(action, {}, resource_arn, ctx);
}

std::vector<std::string> PolicySet::MissingValues(Action action, const Context& ctx) const {
  std::vector<std::string> out;
  auto add = [&](std::string name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  };
  const int a = static_cast<int>(action);
  for (const std::vector<int>* list : {&denies_[a], &allows_[a]}) {
    for (int i : *list) {
      const Statement& s = *bound_[static_cast<size_t>(i)].s;
      for (const Template& t : s.resources) {
        for (std::string& v : t.MissingVariables(ctx)) add(std::move(v));
      }
      for (const Condition& c : s.conditions) {
        for (std::string& v : c.MissingValues(ctx)) add(std::move(v));
      }
    }
  }
  return out;
}

std::string PolicySet::Explain(const Decision& d) const {
  if (d.effect == Effect::kImplicitDeny || d.policy < 0) {
    return "no statement allows it (implicit deny)";
  }
  const Policy& p = policies_[static_cast<size_t>(d.policy)];
  const Statement& s = p.document->statements()[static_cast<size_t>(d.statement)];
  std::string out = absl::StrCat(
      d.effect == Effect::kAllow ? "allowed by" : "explicitly denied by", " policy \"", p.name,
      "\"", p.version.empty() ? "" : absl::StrCat(" version ", p.version), ", Statement[",
      d.statement, "]");
  if (!s.sid.empty()) absl::StrAppend(&out, " (Sid \"", s.sid, "\")");
  return out;
}

}  // namespace fleetcore::policy
