// A RegistryStore in front of another that keeps things read by GetThing in memory, so
// DescribeThing (asked on every device connect by the services that enforce policy) can be
// answered without a Postgres round trip, and without leaving gRPC's callback thread (see
// Peek). It also keeps the list of dynamic thing groups, which every
// ListThingGroupsForThing (also asked per connect) matches the thing against.
//
// Consistency: an entry is dropped
//   - when this process commits a transaction that published an event naming the thing
//     (before the write is acknowledged to the caller),
//   - when a fleetcore_registry NOTIFY from another replica names it (Invalidate; a thing
//     group's creation, update or deletion: InvalidateGroups, for the dynamic groups), and
//   - all at once when the NOTIFY listener reconnects, since events may have been missed,
//     or when a billing group is deleted, which changes things without naming them
//     (InvalidateAll).
// A read that raced with an invalidation does not fill the cache (per-shard epochs), so a
// stale value never outlives the invalidation that should have removed it. Across replicas
// a change becomes visible when its NOTIFY arrives (milliseconds), as AWS's registry is
// documented to propagate asynchronously.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "services/registry/registry_store.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace fleetcore::registry {

class CachingRegistryStore final : public RegistryStore {
 public:
  // `backend` must outlive this store. `capacity` entries at most (oldest dropped first).
  // With `metrics`, exports fleetcore_registry_thing_cache_{hits,misses}_total and
  // fleetcore_registry_thing_cache_entries.
  CachingRegistryStore(RegistryStore* backend, size_t capacity,
                       prometheus::Registry* metrics = nullptr);

  size_t size();

  // The cached thing, if any; never blocks on I/O.
  std::optional<Thing> Peek(absl::string_view name) override;
  void Invalidate(absl::string_view thing);
  // Drops the dynamic groups kept in memory.
  void InvalidateGroups();
  void InvalidateAll();
  // Drops what `event` (this process's, or another replica's by NOTIFY) may have changed:
  // the thing it names, the dynamic groups, or everything (ChangesAllThings).
  void Forget(const RegistryEvent& event);
  // Whether `event` may change the dynamic groups (a group created, updated or deleted).
  static bool ChangesGroups(const RegistryEvent& event);
  // Whether `event` may change things it does not name (a billing group deleted: its things
  // are left in none), so that every cached thing must go.
  static bool ChangesAllThings(const RegistryEvent& event);

  absl::Status Transact(absl::FunctionRef<absl::Status(RegistryTx&)> body) override;
  absl::StatusOr<std::optional<Thing>> GetThing(absl::string_view name) override;

  // The rest is passed through.
  absl::StatusOr<std::vector<Thing>> ListThings(const ThingQuery& query, absl::string_view after,
                                                int limit) override {
    return backend_->ListThings(query, after, limit);
  }
  absl::StatusOr<std::optional<ThingType>> GetThingType(absl::string_view name) override {
    return backend_->GetThingType(name);
  }
  absl::StatusOr<std::vector<ThingType>> ListThingTypes(absl::string_view name,
                                                        absl::string_view after,
                                                        int limit) override {
    return backend_->ListThingTypes(name, after, limit);
  }
  absl::StatusOr<std::optional<ThingGroup>> GetGroup(absl::string_view name) override {
    return backend_->GetGroup(name);
  }
  absl::StatusOr<std::vector<ThingGroup>> Ancestors(absl::string_view name) override {
    return backend_->Ancestors(name);
  }
  absl::StatusOr<std::vector<ThingGroup>> ListGroups(absl::string_view parent, bool recursive,
                                                     bool roots_only,
                                                     absl::string_view name_prefix,
                                                     absl::string_view after, int limit) override {
    return backend_->ListGroups(parent, recursive, roots_only, name_prefix, after, limit);
  }
  absl::StatusOr<std::vector<std::string>> ListThingsInGroup(absl::string_view group,
                                                             bool recursive,
                                                             absl::string_view after,
                                                             int limit) override {
    return backend_->ListThingsInGroup(group, recursive, after, limit);
  }
  absl::StatusOr<std::vector<ThingGroup>> ListGroupsForThing(absl::string_view thing,
                                                             bool include_ancestors,
                                                             absl::string_view after,
                                                             int limit) override {
    return backend_->ListGroupsForThing(thing, include_ancestors, after, limit);
  }
  absl::StatusOr<std::vector<PrincipalAttachment>> ListThingPrincipals(absl::string_view thing,
                                                                       absl::string_view after,
                                                                       int limit) override {
    return backend_->ListThingPrincipals(thing, after, limit);
  }
  absl::StatusOr<std::vector<PrincipalAttachment>> ListPrincipalThings(
      absl::string_view principal, absl::string_view after, int limit) override {
    return backend_->ListPrincipalThings(principal, after, limit);
  }
  absl::StatusOr<std::vector<ThingGroup>> DynamicGroups() override;
  absl::StatusOr<std::optional<BillingGroup>> GetBillingGroup(absl::string_view name) override {
    return backend_->GetBillingGroup(name);
  }
  absl::StatusOr<std::vector<BillingGroup>> ListBillingGroups(absl::string_view name_prefix,
                                                              absl::string_view after,
                                                              int limit) override {
    return backend_->ListBillingGroups(name_prefix, after, limit);
  }
  absl::StatusOr<std::vector<std::string>> ListThingsInBillingGroup(absl::string_view group,
                                                                    absl::string_view after,
                                                                    int limit) override {
    return backend_->ListThingsInBillingGroup(group, after, limit);
  }
  absl::StatusOr<std::vector<ThingDocument>> SearchThings(const IndexQuery& query,
                                                          absl::string_view after,
                                                          int limit) override {
    return backend_->SearchThings(query, after, limit);
  }
  absl::StatusOr<std::vector<ThingGroupDocument>> SearchThingGroups(const IndexQuery& query,
                                                                    absl::string_view after,
                                                                    int limit) override {
    return backend_->SearchThingGroups(query, after, limit);
  }
  absl::StatusOr<IndexAggregationResult> Aggregate(absl::string_view index, const IndexQuery& query,
                                                   const IndexAggregation& aggregation) override {
    return backend_->Aggregate(index, query, aggregation);
  }
  absl::StatusOr<EventConfigurations> GetEventConfigurations() override {
    return backend_->GetEventConfigurations();
  }
  absl::StatusOr<IndexingConfiguration> GetIndexingConfiguration() override {
    return backend_->GetIndexingConfiguration();
  }

 private:
  static constexpr size_t kShards = 16;
  std::mutex groups_mu_;
  uint64_t groups_epoch_ = 0;
  std::optional<std::vector<ThingGroup>> dynamic_groups_;
  struct Shard {
    std::mutex mu;
    uint64_t epoch = 0;
    absl::flat_hash_map<std::string, Thing> things;
    std::deque<std::string> order;  // insertion order, for eviction
  };
  Shard& ShardOf(absl::string_view name);

  void Count(bool hit);

  RegistryStore* backend_;
  size_t shard_capacity_;
  prometheus::Counter* hits_ = nullptr;
  prometheus::Counter* misses_ = nullptr;
  prometheus::Gauge* entries_ = nullptr;
  std::array<Shard, kShards> shards_;
};

}  // namespace fleetcore::registry
