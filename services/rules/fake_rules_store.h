// An in-memory RulesStore for tests.
#pragma once

#include <map>
#include <mutex>

#include "services/rules/rules_store.h"

namespace fleetcore::rules {

class FakeRulesStore final : public RulesStore {
 public:
  absl::Status Insert(const StoredRule& rule) override {
    std::lock_guard<std::mutex> l(mu_);
    if (rules_.contains(rule.name)) {
      return absl::AlreadyExistsError("rule " + rule.name + " already exists");
    }
    rules_[rule.name] = rule;
    return absl::OkStatus();
  }
  absl::Status Update(const StoredRule& rule) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = rules_.find(rule.name);
    if (it == rules_.end()) return absl::NotFoundError("no rule " + rule.name);
    const absl::Time created = it->second.created_at;
    it->second = rule;
    it->second.created_at = created;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<StoredRule>> Get(absl::string_view name) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = rules_.find(std::string(name));
    if (it == rules_.end()) return std::optional<StoredRule>();
    return std::optional<StoredRule>(it->second);
  }
  absl::StatusOr<bool> Delete(absl::string_view name) override {
    std::lock_guard<std::mutex> l(mu_);
    return rules_.erase(std::string(name)) > 0;
  }
  absl::StatusOr<std::vector<StoredRule>> List(absl::string_view after,
                                               std::optional<std::string> topic,
                                               std::optional<bool> disabled,
                                               int limit) override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<StoredRule> out;
    for (auto it = rules_.upper_bound(std::string(after));
         it != rules_.end() && static_cast<int>(out.size()) < limit; ++it) {
      if (topic && it->second.topic_pattern != *topic) continue;
      if (disabled && it->second.disabled != *disabled) continue;
      out.push_back(it->second);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::map<std::string, StoredRule> rules_;
};

}  // namespace fleetcore::rules
