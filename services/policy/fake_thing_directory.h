// An in-memory ThingDirectory for tests: things, a group hierarchy, memberships and
// principal attachments set up by the test.
#pragma once

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "services/policy/thing_directory.h"

namespace fleetcore::policy_service {

class FakeThingDirectory final : public ThingDirectory {
 public:
  void AddThing(ThingRecord thing) { things_[thing.name] = std::move(thing); }
  void AddGroup(const std::string& group, const std::string& parent = "") {
    parents_[group] = parent;
  }
  void AddDynamicGroup(const std::string& group) {
    parents_[group] = "";
    dynamic_.insert(group);
  }
  void AddMember(const std::string& group, const std::string& thing) {
    members_.emplace(group, thing);
  }
  void Attach(const std::string& principal, const std::string& thing, bool exclusive = false) {
    attached_[principal].push_back({thing, exclusive});
  }
  // Makes every call fail with `status` (a registry that is down).
  void FailWith(absl::Status status) { failure_ = std::move(status); }

  absl::StatusOr<std::optional<ThingRecord>> DescribeThing(absl::string_view name) override {
    if (!failure_.ok()) return failure_;
    auto it = things_.find(std::string(name));
    if (it == things_.end()) return std::optional<ThingRecord>();
    return std::optional<ThingRecord>(it->second);
  }
  absl::StatusOr<std::vector<std::string>> GroupsWithAncestors(absl::string_view thing) override {
    if (!failure_.ok()) return failure_;
    std::set<std::string> out;
    for (const auto& [g, t] : members_) {
      if (t != thing) continue;
      for (std::string cur = g; !cur.empty(); cur = parents_[cur]) out.insert(cur);
    }
    return std::vector<std::string>(out.begin(), out.end());
  }
  absl::StatusOr<std::vector<std::string>> GroupAndAncestors(absl::string_view group) override {
    if (!failure_.ok()) return failure_;
    if (parents_.count(std::string(group)) == 0) {
      return absl::NotFoundError(absl::StrCat("thing group \"", group, "\" does not exist"));
    }
    std::vector<std::string> out;
    for (std::string cur(group); !cur.empty(); cur = parents_[cur]) out.push_back(cur);
    return out;
  }
  absl::Status CheckPolicyTargetGroup(absl::string_view group) override {
    if (absl::Status s = GroupAndAncestors(group).status(); !s.ok()) return s;
    if (dynamic_.count(std::string(group)) > 0) {
      return absl::InvalidArgumentError(absl::StrCat("thing group \"", group, "\" is dynamic"));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<PrincipalThing>> ThingsOfPrincipal(
      absl::string_view principal) override {
    if (!failure_.ok()) return failure_;
    auto it = attached_.find(std::string(principal));
    if (it == attached_.end()) return std::vector<PrincipalThing>();
    return it->second;
  }

 private:
  std::map<std::string, ThingRecord> things_;
  std::map<std::string, std::string> parents_;
  std::set<std::string> dynamic_;
  std::set<std::pair<std::string, std::string>> members_;
  std::map<std::string, std::vector<PrincipalThing>> attached_;
  absl::Status failure_ = absl::OkStatus();
};

}  // namespace fleetcore::policy_service
