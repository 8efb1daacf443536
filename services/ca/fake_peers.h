// An in-memory registry and policy service for tests of the CA cores, with failures that can
// be injected at any call, to show that provisioning undoes what it did.
#pragma once

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "services/ca/peers.h"

namespace fleetcore::ca {

class FakePeers final : public Peers {
 public:
  // The `nth` call (1-based) of `op` ("CreateThing", "AttachPolicy", ...) fails with `status`.
  void FailAt(const std::string& op, int nth, absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_[op] = {nth, std::move(status)};
  }
  // Every call fails (the services are down).
  void FailAll(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_all_ = std::move(status);
  }
  void AddGroup(const std::string& group) {
    std::lock_guard<std::mutex> lock(mu_);
    groups_.insert(group);
  }
  void AddBillingGroup(const std::string& group) {
    std::lock_guard<std::mutex> lock(mu_);
    billing_groups_.insert(group);
  }
  void AddPolicy(const std::string& name, const std::string& document) {
    std::lock_guard<std::mutex> lock(mu_);
    policies_[name] = document;
  }

  // ---- what the tests inspect
  std::map<std::string, PeerThingRecord> things() const {
    std::lock_guard<std::mutex> lock(mu_);
    return things_;
  }
  std::map<std::string, std::string> policies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return policies_;
  }
  std::set<std::pair<std::string, std::string>> thing_principals() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::pair<std::string, std::string>> out;
    for (const auto& [key, exclusive] : principals_) out.insert(key);
    return out;
  }
  std::set<std::pair<std::string, std::string>> policy_targets() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attachments_;
  }

  // ---- registry
  absl::StatusOr<std::optional<PeerThingRecord>> DescribeThing(absl::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("DescribeThing"); !s.ok()) return s;
    auto it = things_.find(std::string(name));
    if (it == things_.end()) return std::optional<PeerThingRecord>();
    return std::optional<PeerThingRecord>(it->second);
  }
  absl::Status CreateThing(absl::string_view name, absl::string_view type_name,
                           const std::map<std::string, std::string>& attributes) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("CreateThing"); !s.ok()) return s;
    if (things_.count(std::string(name)) != 0) return absl::AlreadyExistsError("registry: exists");
    things_[std::string(name)] = {
        .name = std::string(name), .type_name = std::string(type_name), .attributes = attributes};
    return absl::OkStatus();
  }
  absl::Status UpdateThing(absl::string_view name, const std::optional<std::string>& type_name,
                           const std::optional<std::map<std::string, std::string>>& attributes,
                           bool merge) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("UpdateThing"); !s.ok()) return s;
    auto it = things_.find(std::string(name));
    if (it == things_.end()) return absl::NotFoundError("registry: no thing");
    if (type_name.has_value()) it->second.type_name = *type_name;
    if (attributes.has_value()) {
      if (!merge) it->second.attributes.clear();
      for (const auto& [k, v] : *attributes) it->second.attributes[k] = v;
    }
    return absl::OkStatus();
  }
  absl::Status DeleteThing(absl::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("DeleteThing"); !s.ok()) return s;
    for (const auto& [key, exclusive] : principals_) {
      if (key.first == name) return absl::FailedPreconditionError("registry: principals attached");
    }
    things_.erase(std::string(name));
    return absl::OkStatus();
  }
  absl::Status AddThingToGroup(absl::string_view thing, absl::string_view group) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("AddThingToGroup"); !s.ok()) return s;
    if (groups_.count(std::string(group)) == 0) {
      return absl::NotFoundError(
          absl::StrCat("registry: thing group \"", group, "\" does not exist"));
    }
    auto& groups = things_.at(std::string(thing)).groups;
    if (std::find(groups.begin(), groups.end(), group) == groups.end()) {
      groups.push_back(std::string(group));
    }
    return absl::OkStatus();
  }
  absl::Status RemoveThingFromGroup(absl::string_view thing, absl::string_view group) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("RemoveThingFromGroup"); !s.ok()) return s;
    auto it = things_.find(std::string(thing));
    if (it != things_.end()) {
      auto& g = it->second.groups;
      g.erase(std::remove(g.begin(), g.end(), group), g.end());
    }
    return absl::OkStatus();
  }
  absl::Status AddThingToBillingGroup(absl::string_view thing, absl::string_view group) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("AddThingToBillingGroup"); !s.ok()) return s;
    if (billing_groups_.count(std::string(group)) == 0) {
      return absl::NotFoundError(
          absl::StrCat("registry: billing group \"", group, "\" does not exist"));
    }
    things_.at(std::string(thing)).billing_group = std::string(group);
    return absl::OkStatus();
  }
  absl::Status AttachThingPrincipal(absl::string_view thing, absl::string_view principal,
                                    bool exclusive) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("AttachThingPrincipal"); !s.ok()) return s;
    if (things_.count(std::string(thing)) == 0) return absl::NotFoundError("registry: no thing");
    principals_[{std::string(thing), std::string(principal)}] = exclusive;
    return absl::OkStatus();
  }
  absl::Status DetachThingPrincipal(absl::string_view thing, absl::string_view principal) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("DetachThingPrincipal"); !s.ok()) return s;
    principals_.erase({std::string(thing), std::string(principal)});
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<PrincipalThingRecord>> ThingsOfPrincipal(
      absl::string_view principal) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("ThingsOfPrincipal"); !s.ok()) return s;
    std::vector<PrincipalThingRecord> out;
    for (const auto& [key, exclusive] : principals_) {
      if (key.second == principal) out.push_back({key.first, exclusive});
    }
    return out;
  }

  // ---- policy
  absl::StatusOr<std::optional<std::string>> GetPolicy(absl::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("GetPolicy"); !s.ok()) return s;
    auto it = policies_.find(std::string(name));
    if (it == policies_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  absl::Status CreatePolicy(absl::string_view name, absl::string_view document) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("CreatePolicy"); !s.ok()) return s;
    if (!policies_.emplace(std::string(name), std::string(document)).second) {
      return absl::AlreadyExistsError("policy: exists");
    }
    return absl::OkStatus();
  }
  absl::Status DeletePolicy(absl::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("DeletePolicy"); !s.ok()) return s;
    policies_.erase(std::string(name));
    return absl::OkStatus();
  }
  absl::Status AttachPolicy(absl::string_view policy, absl::string_view target) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("AttachPolicy"); !s.ok()) return s;
    if (policies_.count(std::string(policy)) == 0) {
      return absl::NotFoundError(absl::StrCat("policy: policy \"", policy, "\" does not exist"));
    }
    attachments_.insert({std::string(policy), std::string(target)});
    return absl::OkStatus();
  }
  absl::Status DetachPolicy(absl::string_view policy, absl::string_view target) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("DetachPolicy"); !s.ok()) return s;
    attachments_.erase({std::string(policy), std::string(target)});
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> PoliciesOf(absl::string_view target) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = Check("PoliciesOf"); !s.ok()) return s;
    std::vector<std::string> out;
    for (const auto& [policy, t] : attachments_) {
      if (t == target) out.push_back(policy);
    }
    return out;
  }

 private:
  absl::Status Check(const std::string& op) {
    if (!fail_all_.ok()) return fail_all_;
    const int n = ++calls_[op];
    auto it = failures_.find(op);
    if (it != failures_.end() && it->second.first == n) return it->second.second;
    return absl::OkStatus();
  }

  mutable std::mutex mu_;
  std::map<std::string, PeerThingRecord> things_;
  std::set<std::string> groups_;
  std::set<std::string> billing_groups_;
  std::map<std::pair<std::string, std::string>, bool> principals_;  // (thing, principal)
  std::map<std::string, std::string> policies_;
  std::set<std::pair<std::string, std::string>> attachments_;  // (policy, target)
  std::map<std::string, int> calls_;
  std::map<std::string, std::pair<int, absl::Status>> failures_;
  absl::Status fail_all_ = absl::OkStatus();
};

}  // namespace fleetcore::ca
