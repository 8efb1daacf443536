// Where the registry keeps its data. RegistryCore holds every rule; a store only reads and
// writes what it is told, inside the transactions the core opens.
//
// Implementations: PgRegistryStore (Postgres, schema "registry") and FakeRegistryStore
// (in memory, for tests of the core).
//
// Errors: UNAVAILABLE when the database cannot be reached; ALREADY_EXISTS from an Insert*
// whose name is taken; INTERNAL for anything unexpected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/registry/index_query.h"
#include "services/registry/registry_types.h"

namespace fleetcore::registry {

// Row locks a transaction takes on what it reads, so that checks and the writes that depend
// on them are not interleaved with another transaction's.
enum class Lock { kNone, kShare, kUpdate };

// The operations available inside one transaction. Events are delivered on commit.
class RegistryTx {
 public:
  virtual ~RegistryTx() = default;

  virtual absl::StatusOr<std::optional<Thing>> GetThing(absl::string_view name, Lock lock) = 0;
  virtual absl::Status InsertThing(const Thing& thing) = 0;
  // Replaces type, attributes, version and updated_at.
  virtual absl::Status UpdateThing(const Thing& thing) = 0;
  virtual absl::Status DeleteThing(absl::string_view name) = 0;
  virtual absl::StatusOr<int64_t> CountThingsOfType(absl::string_view type_name) = 0;

  virtual absl::StatusOr<std::optional<ThingType>> GetThingType(absl::string_view name,
                                                                Lock lock) = 0;
  virtual absl::Status InsertThingType(const ThingType& type) = 0;
  // Replaces the deprecation fields and the properties (description, searchable and
  // propagating attributes).
  virtual absl::Status UpdateThingType(const ThingType& type) = 0;
  virtual absl::Status DeleteThingType(absl::string_view name) = 0;

  virtual absl::StatusOr<std::optional<ThingGroup>> GetGroup(absl::string_view name,
                                                             Lock lock) = 0;
  virtual absl::Status InsertGroup(const ThingGroup& group) = 0;
  // Replaces description, attributes, version and a dynamic group's query.
  virtual absl::Status UpdateGroup(const ThingGroup& group) = 0;
  // Also removes the group's memberships.
  virtual absl::Status DeleteGroup(absl::string_view name) = 0;
  virtual absl::StatusOr<int64_t> CountChildGroups(absl::string_view name) = 0;
  virtual absl::StatusOr<int64_t> CountDynamicGroups() = 0;
  // Serializes the transactions that count `what` ("billing groups", ...) to add one, until
  // commit, so that two cannot both pass a limit.
  virtual absl::Status LockCount(absl::string_view what) = 0;
  // The groups `thing` is a direct member of.
  virtual absl::StatusOr<std::vector<ThingGroup>> GroupsOfThing(absl::string_view thing) = 0;
  virtual absl::Status AddMember(absl::string_view group, absl::string_view thing) = 0;
  virtual absl::Status RemoveMember(absl::string_view group, absl::string_view thing) = 0;

  virtual absl::StatusOr<std::optional<BillingGroup>> GetBillingGroup(absl::string_view name,
                                                                      Lock lock) = 0;
  virtual absl::Status InsertBillingGroup(const BillingGroup& group) = 0;
  // Replaces description and version.
  virtual absl::Status UpdateBillingGroup(const BillingGroup& group) = 0;
  // Also leaves its things in no billing group.
  virtual absl::Status DeleteBillingGroup(absl::string_view name) = 0;
  virtual absl::StatusOr<int64_t> CountBillingGroups() = 0;
  // Puts `thing` in billing group `group` (empty: in none); its version does not change.
  virtual absl::Status SetThingBillingGroup(absl::string_view thing, absl::string_view group) = 0;

  virtual absl::StatusOr<std::vector<PrincipalAttachment>> AttachmentsOfThing(
      absl::string_view thing) = 0;
  virtual absl::StatusOr<std::vector<PrincipalAttachment>> AttachmentsOfPrincipal(
      absl::string_view principal) = 0;
  // Serializes transactions that change the attachments of one principal (until commit).
  virtual absl::Status LockPrincipal(absl::string_view principal) = 0;
  // Inserts or replaces the attachment of (thing, principal).
  virtual absl::Status PutAttachment(const PrincipalAttachment& attachment) = 0;
  virtual absl::Status DeleteAttachment(absl::string_view thing,
                                        absl::string_view principal) = 0;

  virtual absl::StatusOr<IndexingConfiguration> GetIndexingConfiguration(Lock lock) = 0;
  // Sets the mode of `index` (kThingIndex or kThingGroupIndex).
  virtual absl::Status PutIndexingMode(absl::string_view index, absl::string_view mode,
                                       absl::Time now) = 0;

  // Turns one kind of registry event ("THING", ...) on or off.
  virtual absl::Status PutEventConfiguration(absl::string_view type, bool enabled,
                                             absl::Time now) = 0;

  virtual void Publish(const RegistryEvent& event) = 0;
};

// Reads outside transactions return at most `limit` items whose sort key (the name, or the
// principal) is greater than `after`, in ascending order.
class RegistryStore {
 public:
  virtual ~RegistryStore() = default;

  // Runs `body` in a transaction: committed when it returns OK, rolled back otherwise.
  // The body may run more than once (retry after a serialization failure).
  virtual absl::Status Transact(absl::FunctionRef<absl::Status(RegistryTx&)> body) = 0;

  virtual absl::StatusOr<std::optional<Thing>> GetThing(absl::string_view name) = 0;
  // The thing when the store can answer from memory, without I/O; nullopt otherwise
  // (including "not cached"). Only caching stores answer.
  virtual std::optional<Thing> Peek(absl::string_view name) { return std::nullopt; }
  virtual absl::StatusOr<std::vector<Thing>> ListThings(const ThingQuery& query,
                                                        absl::string_view after, int limit) = 0;

  virtual absl::StatusOr<std::optional<ThingType>> GetThingType(absl::string_view name) = 0;
  // `name`: only that type (when not empty).
  virtual absl::StatusOr<std::vector<ThingType>> ListThingTypes(absl::string_view name,
                                                                absl::string_view after,
                                                                int limit) = 0;

  virtual absl::StatusOr<std::optional<ThingGroup>> GetGroup(absl::string_view name) = 0;
  // Every dynamic group, by name.
  virtual absl::StatusOr<std::vector<ThingGroup>> DynamicGroups() = 0;
  // Root first, down to the group's parent.
  virtual absl::StatusOr<std::vector<ThingGroup>> Ancestors(absl::string_view name) = 0;
  // parent empty: all groups (roots only when `roots_only`); otherwise its children, or all
  // its descendants when `recursive`. name_prefix filters by name.
  virtual absl::StatusOr<std::vector<ThingGroup>> ListGroups(absl::string_view parent,
                                                             bool recursive, bool roots_only,
                                                             absl::string_view name_prefix,
                                                             absl::string_view after,
                                                             int limit) = 0;
  // Thing names of a static group's members (and of its descendants' when `recursive`).
  virtual absl::StatusOr<std::vector<std::string>> ListThingsInGroup(absl::string_view group,
                                                                     bool recursive,
                                                                     absl::string_view after,
                                                                     int limit) = 0;
  // The static groups `thing` is a direct member of, and with `include_ancestors` their
  // ancestors.
  virtual absl::StatusOr<std::vector<ThingGroup>> ListGroupsForThing(absl::string_view thing,
                                                                     bool include_ancestors,
                                                                     absl::string_view after,
                                                                     int limit) = 0;

  virtual absl::StatusOr<std::optional<BillingGroup>> GetBillingGroup(absl::string_view name) = 0;
  // name_prefix filters by name.
  virtual absl::StatusOr<std::vector<BillingGroup>> ListBillingGroups(absl::string_view name_prefix,
                                                                      absl::string_view after,
                                                                      int limit) = 0;
  // The names of the things in billing group `group`.
  virtual absl::StatusOr<std::vector<std::string>> ListThingsInBillingGroup(absl::string_view group,
                                                                            absl::string_view after,
                                                                            int limit) = 0;

  // Sorted by principal.
  virtual absl::StatusOr<std::vector<PrincipalAttachment>> ListThingPrincipals(
      absl::string_view thing, absl::string_view after, int limit) = 0;
  // Sorted by thing name.
  virtual absl::StatusOr<std::vector<PrincipalAttachment>> ListPrincipalThings(
      absl::string_view principal, absl::string_view after, int limit) = 0;

  // The documents of AWS_Things (ThingIndexSchema()) and of AWS_ThingGroups
  // (ThingGroupIndexSchema()) that `query` matches, by name.
  virtual absl::StatusOr<std::vector<ThingDocument>> SearchThings(const IndexQuery& query,
                                                                  absl::string_view after,
                                                                  int limit) = 0;
  virtual absl::StatusOr<std::vector<ThingGroupDocument>> SearchThingGroups(const IndexQuery& query,
                                                                            absl::string_view after,
                                                                            int limit) = 0;

  // Fleet indexing's aggregation `aggregation` (see IndexAggregation) over the documents of
  // `index` (kThingIndex or kThingGroupIndex) that `query` matches.
  virtual absl::StatusOr<IndexAggregationResult> Aggregate(absl::string_view index,
                                                           const IndexQuery& query,
                                                           const IndexAggregation& aggregation) = 0;

  virtual absl::StatusOr<EventConfigurations> GetEventConfigurations() = 0;
  virtual absl::StatusOr<IndexingConfiguration> GetIndexingConfiguration() = 0;
};

}  // namespace fleetcore::registry
