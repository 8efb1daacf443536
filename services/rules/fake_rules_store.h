// An in-memory RulesStore for tests.
#pragma once

#include <atomic>
#include <map>
#include <mutex>

#include "common/time/clock.h"
#include "services/rules/rules_store.h"

namespace fleetcore::rules {

class FakeRulesStore final : public RulesStore {
 public:
  // When set, a destination's change sets its updated_at to this clock's now (Postgres's
  // now() in the real store); otherwise updated_at stays as inserted.
  const Clock* clock = nullptr;
  // When set, ChangeDestination fails as a store that cannot be reached.
  std::atomic<bool> changes_fail{false};

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

  absl::Status InsertDestination(const StoredDestination& d,
                                 const std::string& token_sha256) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, e] : destinations_) {
      if (e.d.confirmation_url == d.confirmation_url) {
        return absl::AlreadyExistsError("a destination has " + d.confirmation_url);
      }
    }
    destinations_[d.id] = Destination{d, token_sha256};
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<StoredDestination>> GetDestination(absl::string_view id) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = destinations_.find(std::string(id));
    if (it == destinations_.end()) return std::optional<StoredDestination>();
    return std::optional<StoredDestination>(it->second.d);
  }
  absl::StatusOr<std::optional<StoredDestination>> FindDestination(
      absl::string_view confirmation_url) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, e] : destinations_) {
      if (e.d.confirmation_url == confirmation_url) return std::optional<StoredDestination>(e.d);
    }
    return std::optional<StoredDestination>();
  }
  absl::StatusOr<std::vector<StoredDestination>> ListDestinations(absl::string_view after_id,
                                                                  int limit) override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<StoredDestination> out;
    for (auto it = destinations_.upper_bound(std::string(after_id));
         it != destinations_.end() && static_cast<int>(out.size()) < limit; ++it) {
      out.push_back(it->second.d);
    }
    return out;
  }
  absl::StatusOr<bool> ChangeDestination(absl::string_view id,
                                         const DestinationChange& change) override {
    if (changes_fail) return absl::UnavailableError("the store is away");
    std::lock_guard<std::mutex> l(mu_);
    auto it = destinations_.find(std::string(id));
    if (it == destinations_.end() || it->second.d.status != change.expected_status ||
        (change.expected_token_sha256 && it->second.token != *change.expected_token_sha256) ||
        (change.expected_status_reason &&
         it->second.d.status_reason != *change.expected_status_reason)) {
      return false;
    }
    it->second.d.status = change.status;
    it->second.d.status_reason = change.status_reason;
    it->second.token = change.token_sha256;
    if (clock != nullptr) it->second.d.updated_at = clock->Now();
    return true;
  }
  absl::StatusOr<std::optional<StoredDestination>> ConfirmDestination(
      const std::string& token_sha256) override {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, e] : destinations_) {
      if (!token_sha256.empty() && e.token == token_sha256 && e.d.status == "IN_PROGRESS") {
        e.d.status = "ENABLED";
        e.d.status_reason.clear();
        e.token.clear();
        return std::optional<StoredDestination>(e.d);
      }
    }
    return std::optional<StoredDestination>();
  }
  absl::StatusOr<bool> DeleteDestination(absl::string_view id) override {
    std::lock_guard<std::mutex> l(mu_);
    return destinations_.erase(std::string(id)) > 0;
  }

 private:
  struct Destination {
    StoredDestination d;
    std::string token;
  };
  std::mutex mu_;
  std::map<std::string, StoredRule> rules_;
  std::map<std::string, Destination> destinations_;
};

}  // namespace fleetcore::rules
