// An in-memory RegistryStore with real behaviour, for tests of the core: a transaction works
// on a copy of the state that replaces it on commit, so a failed body leaves nothing behind,
// and events are recorded only for committed transactions.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "services/registry/registry_store.h"

namespace fleetcore::registry {

class FakeRegistryStore final : public RegistryStore {
 public:
  absl::Status Transact(absl::FunctionRef<absl::Status(RegistryTx&)> body) override;

  absl::StatusOr<std::optional<Thing>> GetThing(absl::string_view name) override;
  absl::StatusOr<std::vector<Thing>> ListThings(const ThingQuery& query, absl::string_view after,
                                                int limit) override;
  absl::StatusOr<std::optional<ThingType>> GetThingType(absl::string_view name) override;
  absl::StatusOr<std::vector<ThingType>> ListThingTypes(absl::string_view name,
                                                        absl::string_view after,
                                                        int limit) override;
  absl::StatusOr<std::optional<ThingGroup>> GetGroup(absl::string_view name) override;
  absl::StatusOr<std::vector<ThingGroup>> DynamicGroups() override;
  absl::StatusOr<std::optional<BillingGroup>> GetBillingGroup(absl::string_view name) override;
  absl::StatusOr<std::vector<BillingGroup>> ListBillingGroups(absl::string_view name_prefix,
                                                              absl::string_view after,
                                                              int limit) override;
  absl::StatusOr<std::vector<std::string>> ListThingsInBillingGroup(absl::string_view group,
                                                                    absl::string_view after,
                                                                    int limit) override;
  absl::StatusOr<std::vector<ThingGroup>> Ancestors(absl::string_view name) override;
  absl::StatusOr<std::vector<ThingGroup>> ListGroups(absl::string_view parent, bool recursive,
                                                     bool roots_only,
                                                     absl::string_view name_prefix,
                                                     absl::string_view after, int limit) override;
  absl::StatusOr<std::vector<std::string>> ListThingsInGroup(absl::string_view group,
                                                             bool recursive,
                                                             absl::string_view after,
                                                             int limit) override;
  absl::StatusOr<std::vector<ThingGroup>> ListGroupsForThing(absl::string_view thing,
                                                             bool include_ancestors,
                                                             absl::string_view after,
                                                             int limit) override;
  absl::StatusOr<std::vector<PrincipalAttachment>> ListThingPrincipals(absl::string_view thing,
                                                                       absl::string_view after,
                                                                       int limit) override;
  absl::StatusOr<std::vector<PrincipalAttachment>> ListPrincipalThings(
      absl::string_view principal, absl::string_view after, int limit) override;
  absl::StatusOr<std::vector<ThingDocument>> SearchThings(const IndexQuery& query,
                                                          absl::string_view after,
                                                          int limit) override;
  absl::StatusOr<std::vector<ThingGroupDocument>> SearchThingGroups(const IndexQuery& query,
                                                                    absl::string_view after,
                                                                    int limit) override;
  absl::StatusOr<IndexAggregationResult> Aggregate(absl::string_view index, const IndexQuery& query,
                                                   const IndexAggregation& aggregation) override;
  absl::StatusOr<EventConfigurations> GetEventConfigurations() override;
  absl::StatusOr<IndexingConfiguration> GetIndexingConfiguration() override;

  // Committed events, oldest first.
  std::vector<RegistryEvent> events() const;

  // Runs `hook` inside every GetThing, after the read (for tests that race a reader).
  void SetGetThingHook(std::function<void()> hook) { get_thing_hook_ = std::move(hook); }

  struct State {
    std::map<std::string, Thing, std::less<>> things;
    std::map<std::string, ThingType, std::less<>> types;
    std::map<std::string, ThingGroup, std::less<>> groups;
    std::set<std::pair<std::string, std::string>> members;  // (group, thing)
    std::map<std::string, BillingGroup, std::less<>> billing_groups;
    std::map<std::pair<std::string, std::string>, PrincipalAttachment> attachments;  // (thing, principal)
    EventConfigurations event_configurations;
    IndexingConfiguration indexing;
  };

 private:
  mutable std::mutex mu_;
  State state_;
  std::vector<RegistryEvent> events_;
  std::function<void()> get_thing_hook_;
};

}  // namespace fleetcore::registry
