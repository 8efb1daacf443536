#include "services/registry/fake_registry_store.h"

#include <algorithm>
#include <limits>

#include "absl/strings/match.h"

namespace fleetcore::registry {
namespace {

using State = FakeRegistryStore::State;

// The ancestors of `group`, root first.
std::vector<ThingGroup> AncestorsIn(const State& s, absl::string_view group) {
  std::vector<ThingGroup> out;
  auto it = s.groups.find(group);
  while (it != s.groups.end() && !it->second.parent.empty()) {
    it = s.groups.find(it->second.parent);
    if (it != s.groups.end()) out.insert(out.begin(), it->second);
  }
  return out;
}

// Descendants of `group` (not the group itself).
std::set<std::string> Descendants(const State& s, absl::string_view group) {
  std::set<std::string> out;
  std::vector<std::string> frontier{std::string(group)};
  while (!frontier.empty()) {
    std::string g = frontier.back();
    frontier.pop_back();
    for (const auto& [name, candidate] : s.groups) {
      if (candidate.parent == g && out.insert(name).second) {
        frontier.push_back(name);
      }
    }
  }
  return out;
}

template <typename T, typename KeyFn>
std::vector<T> Window(std::vector<T> sorted, absl::string_view after, int limit, KeyFn key) {
  std::vector<T> out;
  for (T& item : sorted) {
    if (key(item) > after && static_cast<int>(out.size()) < limit) {
      out.push_back(std::move(item));
    }
  }
  return out;
}

class FakeTx final : public RegistryTx {
 public:
  explicit FakeTx(State* s) : s_(s) {}

  absl::StatusOr<std::optional<Thing>> GetThing(absl::string_view name, Lock) override {
    auto it = s_->things.find(name);
    if (it == s_->things.end()) return std::optional<Thing>();
    return std::optional<Thing>(it->second);
  }
  absl::Status InsertThing(const Thing& t) override {
    if (!s_->things.emplace(t.name, t).second) return absl::AlreadyExistsError("thing exists");
    return absl::OkStatus();
  }
  absl::Status UpdateThing(const Thing& t) override {
    s_->things[t.name] = t;
    return absl::OkStatus();
  }
  absl::Status DeleteThing(absl::string_view name) override {
    s_->things.erase(std::string(name));
    for (auto it = s_->members.begin(); it != s_->members.end();) {
      it = it->second == name ? s_->members.erase(it) : std::next(it);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountThingsOfType(absl::string_view type) override {
    return std::count_if(s_->things.begin(), s_->things.end(),
                         [&](const auto& kv) { return kv.second.type_name == type; });
  }
  absl::StatusOr<std::optional<ThingType>> GetThingType(absl::string_view name, Lock) override {
    auto it = s_->types.find(name);
    if (it == s_->types.end()) return std::optional<ThingType>();
    return std::optional<ThingType>(it->second);
  }
  absl::Status InsertThingType(const ThingType& t) override {
    if (!s_->types.emplace(t.name, t).second) return absl::AlreadyExistsError("type exists");
    return absl::OkStatus();
  }
  absl::Status UpdateThingType(const ThingType& t) override {
    s_->types[t.name] = t;
    return absl::OkStatus();
  }
  absl::Status DeleteThingType(absl::string_view name) override {
    s_->types.erase(std::string(name));
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<ThingGroup>> GetGroup(absl::string_view name, Lock) override {
    auto it = s_->groups.find(name);
    if (it == s_->groups.end()) return std::optional<ThingGroup>();
    return std::optional<ThingGroup>(it->second);
  }
  absl::Status InsertGroup(const ThingGroup& g) override {
    if (!s_->groups.emplace(g.name, g).second) return absl::AlreadyExistsError("group exists");
    return absl::OkStatus();
  }
  absl::Status UpdateGroup(const ThingGroup& g) override {
    s_->groups[g.name] = g;
    return absl::OkStatus();
  }
  absl::Status DeleteGroup(absl::string_view name) override {
    s_->groups.erase(std::string(name));
    for (auto it = s_->members.begin(); it != s_->members.end();) {
      it = it->first == name ? s_->members.erase(it) : std::next(it);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountChildGroups(absl::string_view name) override {
    return std::count_if(s_->groups.begin(), s_->groups.end(),
                         [&](const auto& kv) { return kv.second.parent == name; });
  }
  absl::StatusOr<int64_t> CountDynamicGroups() override {
    return std::count_if(s_->groups.begin(), s_->groups.end(),
                         [&](const auto& kv) { return kv.second.dynamic(); });
  }
  // Transactions run one at a time here.
  absl::Status LockCount(absl::string_view) override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<ThingGroup>> GroupsOfThing(absl::string_view thing) override {
    std::vector<ThingGroup> out;
    for (const auto& [group, member] : s_->members) {
      if (member == thing) out.push_back(s_->groups.at(group));
    }
    return out;
  }
  absl::Status AddMember(absl::string_view group, absl::string_view thing) override {
    s_->members.emplace(std::string(group), std::string(thing));
    return absl::OkStatus();
  }
  absl::Status RemoveMember(absl::string_view group, absl::string_view thing) override {
    s_->members.erase({std::string(group), std::string(thing)});
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<BillingGroup>> GetBillingGroup(absl::string_view name,
                                                              Lock) override {
    auto it = s_->billing_groups.find(name);
    if (it == s_->billing_groups.end()) return std::optional<BillingGroup>();
    return std::optional<BillingGroup>(it->second);
  }
  absl::Status InsertBillingGroup(const BillingGroup& g) override {
    if (!s_->billing_groups.emplace(g.name, g).second) {
      return absl::AlreadyExistsError("billing group exists");
    }
    return absl::OkStatus();
  }
  absl::Status UpdateBillingGroup(const BillingGroup& g) override {
    s_->billing_groups[g.name] = g;
    return absl::OkStatus();
  }
  absl::Status DeleteBillingGroup(absl::string_view name) override {
    s_->billing_groups.erase(std::string(name));
    for (auto& [thing_name, t] : s_->things) {
      if (t.billing_group == name) t.billing_group.clear();
    }
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountBillingGroups() override {
    return static_cast<int64_t>(s_->billing_groups.size());
  }
  absl::Status SetThingBillingGroup(absl::string_view thing, absl::string_view group) override {
    auto it = s_->things.find(thing);
    if (it != s_->things.end()) it->second.billing_group = std::string(group);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<PrincipalAttachment>> AttachmentsOfThing(
      absl::string_view thing) override {
    std::vector<PrincipalAttachment> out;
    for (const auto& [key, a] : s_->attachments) {
      if (key.first == thing) out.push_back(a);
    }
    return out;
  }
  absl::StatusOr<std::vector<PrincipalAttachment>> AttachmentsOfPrincipal(
      absl::string_view principal) override {
    std::vector<PrincipalAttachment> out;
    for (const auto& [key, a] : s_->attachments) {
      if (key.second == principal) out.push_back(a);
    }
    return out;
  }
  absl::Status LockPrincipal(absl::string_view) override { return absl::OkStatus(); }
  absl::Status PutAttachment(const PrincipalAttachment& a) override {
    s_->attachments[{a.thing_name, a.principal}] = a;
    return absl::OkStatus();
  }
  absl::Status DeleteAttachment(absl::string_view thing, absl::string_view principal) override {
    s_->attachments.erase({std::string(thing), std::string(principal)});
    return absl::OkStatus();
  }
  absl::Status PutEventConfiguration(absl::string_view type, bool enabled,
                                     absl::Time now) override {
    EventConfigurations& c = s_->event_configurations;
    c.enabled[std::string(type)] = enabled;
    if (c.created_at == absl::Time()) c.created_at = now;
    c.updated_at = now;
    return absl::OkStatus();
  }
  absl::StatusOr<IndexingConfiguration> GetIndexingConfiguration(Lock) override {
    return s_->indexing;
  }
  absl::Status PutIndexingMode(absl::string_view index, absl::string_view mode,
                               absl::Time) override {
    IndexingMode(s_->indexing, index) = std::string(mode);
    return absl::OkStatus();
  }
  void Publish(const RegistryEvent& e) override { events.push_back(e); }

  std::vector<RegistryEvent> events;

 private:
  State* s_;
};

}  // namespace

absl::Status FakeRegistryStore::Transact(absl::FunctionRef<absl::Status(RegistryTx&)> body) {
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

absl::StatusOr<std::optional<Thing>> FakeRegistryStore::GetThing(absl::string_view name) {
  std::optional<Thing> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = state_.things.find(name);
    if (it != state_.things.end()) out = it->second;
  }
  if (get_thing_hook_) get_thing_hook_();
  return out;
}

absl::StatusOr<std::vector<Thing>> FakeRegistryStore::ListThings(const ThingQuery& q,
                                                                 absl::string_view after,
                                                                 int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Thing> matching;
  for (const auto& [name, t] : state_.things) {
    if (!q.type_name.empty() && t.type_name != q.type_name) continue;
    if (!q.attribute_name.empty()) {
      auto a = t.attributes.find(q.attribute_name);
      if (a == t.attributes.end()) continue;
      if (!q.attribute_value.empty()) {
        const bool match = q.prefix_value ? absl::StartsWith(a->second, q.attribute_value)
                                          : a->second == q.attribute_value;
        if (!match) continue;
      }
    }
    matching.push_back(t);
  }
  return Window(std::move(matching), after, limit, [](const Thing& t) { return t.name; });
}

absl::StatusOr<std::optional<ThingType>> FakeRegistryStore::GetThingType(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.types.find(name);
  if (it == state_.types.end()) return std::optional<ThingType>();
  return std::optional<ThingType>(it->second);
}

absl::StatusOr<std::vector<ThingType>> FakeRegistryStore::ListThingTypes(absl::string_view name,
                                                                         absl::string_view after,
                                                                         int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ThingType> out;
  for (const auto& [n, t] : state_.types) {
    if (name.empty() || n == name) out.push_back(t);
  }
  return Window(std::move(out), after, limit, [](const ThingType& t) { return t.name; });
}

absl::StatusOr<std::optional<ThingGroup>> FakeRegistryStore::GetGroup(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.groups.find(name);
  if (it == state_.groups.end()) return std::optional<ThingGroup>();
  return std::optional<ThingGroup>(it->second);
}

absl::StatusOr<std::vector<ThingGroup>> FakeRegistryStore::DynamicGroups() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ThingGroup> out;
  for (const auto& [name, g] : state_.groups) {
    if (g.dynamic()) out.push_back(g);
  }
  return out;
}

absl::StatusOr<std::optional<BillingGroup>> FakeRegistryStore::GetBillingGroup(
    absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.billing_groups.find(name);
  if (it == state_.billing_groups.end()) return std::optional<BillingGroup>();
  return std::optional<BillingGroup>(it->second);
}

absl::StatusOr<std::vector<BillingGroup>> FakeRegistryStore::ListBillingGroups(
    absl::string_view name_prefix, absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<BillingGroup> out;
  for (const auto& [name, g] : state_.billing_groups) {
    if (absl::StartsWith(name, name_prefix)) out.push_back(g);
  }
  return Window(std::move(out), after, limit, [](const BillingGroup& g) { return g.name; });
}

absl::StatusOr<std::vector<std::string>> FakeRegistryStore::ListThingsInBillingGroup(
    absl::string_view group, absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, t] : state_.things) {
    if (t.billing_group == group) out.push_back(name);
  }
  return Window(std::move(out), after, limit, [](const std::string& n) { return n; });
}

absl::StatusOr<std::vector<ThingGroup>> FakeRegistryStore::Ancestors(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  return AncestorsIn(state_, name);
}

absl::StatusOr<std::vector<ThingGroup>> FakeRegistryStore::ListGroups(
    absl::string_view parent, bool recursive, bool roots_only, absl::string_view name_prefix,
    absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> below;
  if (!parent.empty() && recursive) below = Descendants(state_, parent);
  std::vector<ThingGroup> out;
  for (const auto& [name, g] : state_.groups) {
    if (!name_prefix.empty() && !absl::StartsWith(name, name_prefix)) continue;
    if (parent.empty()) {
      if (roots_only && !g.parent.empty()) continue;
    } else if (recursive ? below.count(name) == 0 : g.parent != parent) {
      continue;
    }
    out.push_back(g);
  }
  return Window(std::move(out), after, limit, [](const ThingGroup& g) { return g.name; });
}

absl::StatusOr<std::vector<std::string>> FakeRegistryStore::ListThingsInGroup(
    absl::string_view group, bool recursive, absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> groups{std::string(group)};
  if (recursive) {
    std::set<std::string> below = Descendants(state_, group);
    groups.insert(below.begin(), below.end());
  }
  std::set<std::string> things;
  for (const auto& [g, t] : state_.members) {
    if (groups.count(g) != 0) things.insert(t);
  }
  return Window(std::vector<std::string>(things.begin(), things.end()), after, limit,
                [](const std::string& t) { return t; });
}

absl::StatusOr<std::vector<ThingGroup>> FakeRegistryStore::ListGroupsForThing(
    absl::string_view thing, bool include_ancestors, absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> names;
  for (const auto& [g, t] : state_.members) {
    if (t != thing) continue;
    for (auto it = state_.groups.find(g); it != state_.groups.end();
         it = include_ancestors ? state_.groups.find(it->second.parent) : state_.groups.end()) {
      names.insert(it->first);
    }
  }
  std::vector<ThingGroup> out;
  for (const std::string& n : names) out.push_back(state_.groups.at(n));
  std::sort(out.begin(), out.end(),
            [](const ThingGroup& a, const ThingGroup& b) { return a.name < b.name; });
  return Window(std::move(out), after, limit, [](const ThingGroup& g) { return g.name; });
}

absl::StatusOr<std::vector<PrincipalAttachment>> FakeRegistryStore::ListThingPrincipals(
    absl::string_view thing, absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PrincipalAttachment> out;
  for (const auto& [key, a] : state_.attachments) {
    if (key.first == thing) out.push_back(a);
  }
  return Window(std::move(out), after, limit,
                [](const PrincipalAttachment& a) { return a.principal; });
}

absl::StatusOr<std::vector<PrincipalAttachment>> FakeRegistryStore::ListPrincipalThings(
    absl::string_view principal, absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PrincipalAttachment> out;
  for (const auto& [key, a] : state_.attachments) {
    if (key.second == principal) out.push_back(a);  // keys sort by thing name first
  }
  return Window(std::move(out), after, limit,
                [](const PrincipalAttachment& a) { return a.thing_name; });
}

absl::StatusOr<std::vector<ThingDocument>> FakeRegistryStore::SearchThings(const IndexQuery& query,
                                                                           absl::string_view after,
                                                                           int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, std::vector<std::string>> groups_of;
  for (const auto& [group, thing] : state_.members) groups_of[thing].push_back(group);
  std::vector<ThingDocument> out;
  for (const auto& [name, t] : state_.things) {
    ThingDocument d{.thing = t, .group_names = groups_of[name]};
    if (MatchesIndexQuery(query, ThingIndexDocument(d))) out.push_back(std::move(d));
  }
  return Window(std::move(out), after, limit, [](const ThingDocument& d) { return d.thing.name; });
}

absl::StatusOr<std::vector<ThingGroupDocument>> FakeRegistryStore::SearchThingGroups(
    const IndexQuery& query, absl::string_view after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ThingGroupDocument> out;
  for (const auto& [name, g] : state_.groups) {
    ThingGroupDocument d{.group = g};
    for (const ThingGroup& up : AncestorsIn(state_, name)) d.parent_names.push_back(up.name);
    if (MatchesIndexQuery(query, ThingGroupIndexDocument(d))) out.push_back(std::move(d));
  }
  return Window(std::move(out), after, limit,
                [](const ThingGroupDocument& d) { return d.group.name; });
}

absl::StatusOr<IndexAggregationResult> FakeRegistryStore::Aggregate(
    absl::string_view index, const IndexQuery& query, const IndexAggregation& aggregation) {
  std::vector<IndexDocument> docs;
  constexpr int kAll = std::numeric_limits<int>::max();
  if (index == kThingIndex) {
    absl::StatusOr<std::vector<ThingDocument>> things = SearchThings(query, "", kAll);
    if (!things.ok()) return things.status();
    for (const ThingDocument& d : *things) {
      docs.push_back(ThingIndexDocument(d));
      docs.back()[kRegistryVersionField] = {std::to_string(d.thing.version)};
    }
  } else {
    absl::StatusOr<std::vector<ThingGroupDocument>> groups = SearchThingGroups(query, "", kAll);
    if (!groups.ok()) return groups.status();
    for (const ThingGroupDocument& d : *groups) {
      docs.push_back(ThingGroupIndexDocument(d));
      docs.back()[kRegistryVersionField] = {std::to_string(d.group.version)};
    }
  }
  return AggregateDocuments(docs, aggregation);
}

absl::StatusOr<IndexingConfiguration> FakeRegistryStore::GetIndexingConfiguration() {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.indexing;
}

absl::StatusOr<EventConfigurations> FakeRegistryStore::GetEventConfigurations() {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.event_configurations;
}

std::vector<RegistryEvent> FakeRegistryStore::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

}  // namespace fleetcore::registry
