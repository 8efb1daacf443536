#include "services/policy/fake_policy_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace fleetcore::policy_service {
namespace {

using State = FakePolicyStore::State;

template <typename T, typename KeyFn>
std::vector<T> Window(std::vector<T> sorted, absl::string_view after, int limit, KeyFn key) {
  std::vector<T> out;
  for (T& item : sorted) {
    if (key(item) > after && static_cast<int>(out.size()) < limit) out.push_back(std::move(item));
  }
  return out;
}

std::vector<PolicyVersionRecord> VersionsOf(const State& s, absl::string_view name) {
  std::vector<PolicyVersionRecord> out;
  for (const auto& [key, v] : s.versions) {
    if (key.first == name) out.push_back(v);
  }
  return out;
}

class FakeTx final : public PolicyTx {
 public:
  explicit FakeTx(State* s) : s_(s) {}

  absl::StatusOr<std::optional<PolicyInfo>> GetPolicy(absl::string_view name, Lock) override {
    auto it = s_->policies.find(name);
    if (it == s_->policies.end()) return std::optional<PolicyInfo>();
    return std::optional<PolicyInfo>(it->second);
  }
  absl::Status InsertPolicy(const PolicyInfo& p) override {
    if (!s_->policies.emplace(p.name, p).second) return absl::AlreadyExistsError("exists");
    return absl::OkStatus();
  }
  absl::Status UpdatePolicy(const PolicyInfo& p) override {
    s_->policies[p.name] = p;
    return absl::OkStatus();
  }
  absl::Status DeletePolicy(absl::string_view name) override {
    s_->policies.erase(std::string(name));
    for (auto it = s_->versions.begin(); it != s_->versions.end();) {
      it = it->first.first == name ? s_->versions.erase(it) : std::next(it);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<PolicyVersionRecord>> Versions(absl::string_view name) override {
    return VersionsOf(*s_, name);
  }
  absl::Status InsertVersion(const PolicyVersionRecord& v) override {
    s_->versions[{v.policy, v.version}] = v;
    return absl::OkStatus();
  }
  absl::Status DeleteVersion(absl::string_view name, int version) override {
    s_->versions.erase({std::string(name), version});
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountTargetsOfPolicy(absl::string_view policy) override {
    return std::count_if(s_->attachments.begin(), s_->attachments.end(),
                         [&](const auto& a) { return a.first == policy; });
  }
  absl::StatusOr<std::vector<std::string>> PoliciesOfTarget(absl::string_view target) override {
    std::vector<std::string> out;
    for (const auto& [p, t] : s_->attachments) {
      if (t == target) out.push_back(p);
    }
    return out;
  }
  absl::Status LockTarget(absl::string_view) override { return absl::OkStatus(); }
  absl::Status InsertAttachment(absl::string_view p, absl::string_view t) override {
    s_->attachments.emplace(std::string(p), std::string(t));
    return absl::OkStatus();
  }
  absl::StatusOr<bool> DeleteAttachment(absl::string_view p, absl::string_view t) override {
    return s_->attachments.erase({std::string(p), std::string(t)}) > 0;
  }
  absl::StatusOr<std::optional<Authorizer>> GetAuthorizer(absl::string_view name, Lock) override {
    auto it = s_->authorizers.find(name);
    if (it == s_->authorizers.end()) return std::optional<Authorizer>();
    return std::optional<Authorizer>(it->second);
  }
  absl::Status InsertAuthorizer(const Authorizer& a) override {
    if (!s_->authorizers.emplace(a.name, a).second) return absl::AlreadyExistsError("exists");
    return absl::OkStatus();
  }
  absl::Status UpdateAuthorizer(const Authorizer& a) override {
    const bool is_default = s_->authorizers[a.name].is_default;
    s_->authorizers[a.name] = a;
    s_->authorizers[a.name].is_default = is_default;
    return absl::OkStatus();
  }
  absl::Status DeleteAuthorizer(absl::string_view name) override {
    s_->authorizers.erase(std::string(name));
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountAuthorizers(bool active_only) override {
    return std::count_if(s_->authorizers.begin(), s_->authorizers.end(),
                         [&](const auto& kv) { return !active_only || kv.second.active; });
  }
  absl::Status SetDefaultAuthorizer(absl::string_view name) override {
    if (s_->authorizers.find(name) == s_->authorizers.end()) {
      return absl::NotFoundError(absl::StrCat("authorizer \"", name, "\" does not exist"));
    }
    for (auto& [n, a] : s_->authorizers) a.is_default = n == name;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<AccessKey>> GetAccessKey(absl::string_view id, Lock) override {
    auto it = s_->access_keys.find(id);
    if (it == s_->access_keys.end()) return std::optional<AccessKey>();
    return std::optional<AccessKey>(it->second);
  }
  absl::Status InsertAccessKey(const AccessKey& k) override {
    if (!s_->access_keys.emplace(k.id, k).second) return absl::AlreadyExistsError("exists");
    return absl::OkStatus();
  }
  absl::Status SetAccessKeyActive(absl::string_view id, bool active) override {
    if (auto it = s_->access_keys.find(id); it != s_->access_keys.end()) {
      it->second.active = active;
    }
    return absl::OkStatus();
  }
  absl::Status SetAccessKeySecret(absl::string_view id, absl::string_view sealed) override {
    if (auto it = s_->access_keys.find(id); it != s_->access_keys.end()) {
      it->second.sealed_secret = std::string(sealed);
    }
    return absl::OkStatus();
  }
  absl::Status DeleteAccessKey(absl::string_view id) override {
    s_->access_keys.erase(std::string(id));
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountAccessKeysOfUser(absl::string_view user_name) override {
    return std::count_if(s_->access_keys.begin(), s_->access_keys.end(),
                         [&](const auto& kv) { return kv.second.user_name == user_name; });
  }
  void Publish(const PolicyEvent& e) override { events.push_back(e); }

  std::vector<PolicyEvent> events;

 private:
  State* s_;
};

}  // namespace

absl::Status FakePolicyStore::Transact(absl::FunctionRef<absl::Status(PolicyTx&)> body) {
  std::lock_guard<std::mutex> lock(mu_);
  State working = state_;
  FakeTx tx(&working);
  absl::Status s = body(tx);
  if (s.ok()) {
    state_ = std::move(working);
    events_.insert(events_.end(), tx.events.begin(), tx.events.end());
  }
  return s;
}

absl::StatusOr<std::optional<PolicyInfo>> FakePolicyStore::GetPolicy(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.policies.find(name);
  if (it == state_.policies.end()) return std::optional<PolicyInfo>();
  return std::optional<PolicyInfo>(it->second);
}

absl::StatusOr<std::optional<PolicyVersionRecord>> FakePolicyStore::GetVersion(
    absl::string_view name, int version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.versions.find({std::string(name), version});
  if (it == state_.versions.end()) return std::optional<PolicyVersionRecord>();
  return std::optional<PolicyVersionRecord>(it->second);
}

absl::StatusOr<std::vector<PolicyVersionRecord>> FakePolicyStore::Versions(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  return VersionsOf(state_, name);
}

absl::StatusOr<std::vector<std::string>> FakePolicyStore::ListPolicies(absl::string_view after,
                                                                       int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& [n, p] : state_.policies) names.push_back(n);
  return Window(std::move(names), after, limit, [](const std::string& n) { return n; });
}

absl::StatusOr<std::vector<std::string>> FakePolicyStore::PoliciesOfTargets(
    const std::vector<std::string>& targets, absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> names;
  for (const auto& [p, t] : state_.attachments) {
    if (std::find(targets.begin(), targets.end(), t) != targets.end()) names.insert(p);
  }
  return Window(std::vector<std::string>(names.begin(), names.end()), after, limit,
                [](const std::string& n) { return n; });
}

absl::StatusOr<std::vector<std::string>> FakePolicyStore::TargetsOfPolicy(absl::string_view policy,
                                                                          absl::string_view after,
                                                                          int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> targets;
  for (const auto& [p, t] : state_.attachments) {
    if (p == policy) targets.push_back(t);
  }
  std::sort(targets.begin(), targets.end());
  return Window(std::move(targets), after, limit, [](const std::string& t) { return t; });
}

absl::StatusOr<std::vector<AttachedPolicy>> FakePolicyStore::AttachedDefaults(
    const std::vector<std::string>& targets) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AttachedPolicy> out;
  for (const auto& [p, t] : state_.attachments) {
    if (std::find(targets.begin(), targets.end(), t) == targets.end()) continue;
    const PolicyInfo& info = state_.policies.at(p);
    const PolicyVersionRecord& v = state_.versions.at({p, info.default_version});
    out.push_back({p, v.version, v.document, t});
  }
  return out;
}

absl::StatusOr<std::vector<AttachedPolicy>> FakePolicyStore::Defaults(
    const std::vector<std::string>& policies) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AttachedPolicy> out;
  for (const std::string& p : policies) {
    auto it = state_.policies.find(p);
    if (it == state_.policies.end()) continue;
    const PolicyVersionRecord& v = state_.versions.at({p, it->second.default_version});
    out.push_back({p, v.version, v.document, ""});
  }
  return out;
}

absl::StatusOr<std::optional<Authorizer>> FakePolicyStore::GetAuthorizer(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.authorizers.find(name);
  if (it == state_.authorizers.end()) return std::optional<Authorizer>();
  return std::optional<Authorizer>(it->second);
}

absl::StatusOr<std::optional<Authorizer>> FakePolicyStore::DefaultAuthorizer() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [n, a] : state_.authorizers) {
    if (a.is_default) return std::optional<Authorizer>(a);
  }
  return std::optional<Authorizer>();
}

absl::StatusOr<std::vector<Authorizer>> FakePolicyStore::ListAuthorizers(std::optional<bool> active,
                                                                         absl::string_view after,
                                                                         int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Authorizer> out;
  for (const auto& [n, a] : state_.authorizers) {
    if (!active.has_value() || a.active == *active) out.push_back(a);
  }
  return Window(std::move(out), after, limit, [](const Authorizer& a) { return a.name; });
}

absl::StatusOr<std::optional<AccessKey>> FakePolicyStore::GetAccessKey(absl::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.access_keys.find(id);
  if (it == state_.access_keys.end()) return std::optional<AccessKey>();
  return std::optional<AccessKey>(it->second);
}

absl::StatusOr<std::vector<AccessKey>> FakePolicyStore::ListAccessKeys(
    absl::string_view user_name, absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AccessKey> out;
  for (const auto& [id, k] : state_.access_keys) {
    if (user_name.empty() || k.user_name == user_name) out.push_back(k);
  }
  return Window(std::move(out), after, limit, [](const AccessKey& k) { return k.id; });
}

std::vector<PolicyEvent> FakePolicyStore::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

}  // namespace fleetcore::policy_service
