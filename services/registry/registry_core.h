// The registry's rules, as AWS IoT Core's registry defines them: what may be created,
// changed, associated and deleted, and in what state. Every write runs in one store
// transaction that takes the row locks its checks rely on, so concurrent callers cannot
// slip between a check and the write it guards.
//
// Errors (absl codes, mapped once to gRPC by the adapter):
//   INVALID_ARGUMENT     input breaks a name, attribute, token or size rule
//   NOT_FOUND            a named thing, type, group or parent does not exist
//   ALREADY_EXISTS       a create names something existing with other properties
//                        (the same properties succeed, as AWS does)
//   ABORTED              expected_version differs from the stored version
//   FAILED_PRECONDITION  the state forbids it (deprecated type, group with children,
//                        thing with principals, two groups of one hierarchy, ...)
//   RESOURCE_EXHAUSTED   an AWS limit (groups per thing, children per group, depth)
//   UNAVAILABLE          the store cannot reach Postgres
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/aws/arn.h"
#include "common/broker/publisher.h"
#include "common/ids/id_generator.h"
#include "common/time/clock.h"
#include "services/registry/registry_events.h"
#include "services/registry/registry_store.h"
#include "services/registry/registry_types.h"

namespace fleetcore::registry {

struct RegistryOptions {
  // AWS lets a thing type be deleted only 5 minutes after its deprecation.
  absl::Duration thing_type_delete_delay = absl::Minutes(5);
  // Where registry events go (the gateway), after the change that made them commits; not
  // owned. Null: none are published, and UpdateEventConfigurations refuses to turn any on.
  broker::Publisher* event_publisher = nullptr;
};

class RegistryCore {
 public:
  // Nothing is owned; all must outlive the core.
  RegistryCore(RegistryStore* store, const aws::Arns* arns, const Clock* clock,
               IdGenerator* ids, RegistryOptions options = {});

  const aws::Arns& arns() const { return *arns_; }

  absl::StatusOr<Thing> CreateThing(const CreateThingInput& in);
  absl::StatusOr<Thing> DescribeThing(absl::string_view name);
  // DescribeThing's answer when the store has it in memory; nullopt when answering needs
  // I/O (then call DescribeThing off the caller's thread). Never blocks.
  std::optional<Thing> DescribeThingIfCached(absl::string_view name);
  absl::Status UpdateThing(const UpdateThingInput& in);
  absl::Status DeleteThing(absl::string_view name, std::optional<int64_t> expected_version);
  absl::StatusOr<Page<Thing>> ListThings(const ThingQuery& query, const PageRequest& page);

  absl::StatusOr<ThingType> CreateThingType(const CreateThingTypeInput& in);
  absl::StatusOr<ThingType> DescribeThingType(absl::string_view name);
  absl::Status UpdateThingType(const UpdateThingTypeInput& in);
  absl::StatusOr<Page<ThingType>> ListThingTypes(absl::string_view name,
                                                 const PageRequest& page);
  absl::Status DeprecateThingType(absl::string_view name, bool undo);
  absl::Status DeleteThingType(absl::string_view name);

  absl::StatusOr<ThingGroup> CreateThingGroup(const CreateThingGroupInput& in);
  absl::StatusOr<ThingGroupDescription> DescribeThingGroup(absl::string_view name);
  // Returns the new version.
  absl::StatusOr<int64_t> UpdateThingGroup(const UpdateThingGroupInput& in);
  // DeleteThingGroup, or DeleteDynamicThingGroup when `dynamic`.
  absl::Status DeleteThingGroup(absl::string_view name, std::optional<int64_t> expected_version,
                                bool dynamic = false);
  absl::StatusOr<Page<ThingGroup>> ListThingGroups(const GroupQuery& query,
                                                   const PageRequest& page);
  absl::Status AddThingToThingGroup(absl::string_view group, absl::string_view thing);
  absl::Status RemoveThingFromThingGroup(absl::string_view group, absl::string_view thing);
  // The removals, then the additions, in one transaction.
  absl::Status UpdateThingGroupsForThing(absl::string_view thing,
                                         const std::vector<std::string>& add,
                                         const std::vector<std::string>& remove);
  absl::StatusOr<Page<std::string>> ListThingsInThingGroup(absl::string_view group,
                                                           bool recursive,
                                                           const PageRequest& page);
  // With `static_only`, no dynamic group (whose queries are then not run).
  absl::StatusOr<Page<ThingGroup>> ListThingGroupsForThing(absl::string_view thing,
                                                           bool include_ancestors,
                                                           const PageRequest& page,
                                                           bool static_only = false);

  // Billing groups (flat; a thing is in at most one, and adding it to another moves it).
  absl::StatusOr<BillingGroup> CreateBillingGroup(absl::string_view name,
                                                  absl::string_view description);
  absl::StatusOr<BillingGroup> DescribeBillingGroup(absl::string_view name);
  // Replaces the description; returns the new version.
  absl::StatusOr<int64_t> UpdateBillingGroup(absl::string_view name, absl::string_view description,
                                             std::optional<int64_t> expected_version);
  // Its things are left in no billing group.
  absl::Status DeleteBillingGroup(absl::string_view name, std::optional<int64_t> expected_version);
  absl::StatusOr<Page<BillingGroup>> ListBillingGroups(absl::string_view name_prefix,
                                                       const PageRequest& page);
  absl::Status AddThingToBillingGroup(absl::string_view group, absl::string_view thing);
  // A thing in another billing group (or in none) is left as it is.
  absl::Status RemoveThingFromBillingGroup(absl::string_view group, absl::string_view thing);
  absl::StatusOr<Page<std::string>> ListThingsInBillingGroup(absl::string_view group,
                                                             const PageRequest& page);

  absl::Status AttachThingPrincipal(absl::string_view thing, absl::string_view principal,
                                    PrincipalType type);
  absl::Status DetachThingPrincipal(absl::string_view thing, absl::string_view principal);
  absl::StatusOr<Page<PrincipalAttachment>> ListThingPrincipals(absl::string_view thing,
                                                                const PageRequest& page);
  absl::StatusOr<Page<PrincipalAttachment>> ListPrincipalThings(absl::string_view principal,
                                                                const PageRequest& page);

  // SearchIndex: the things (index "AWS_Things", the default) or thing groups
  // ("AWS_ThingGroups") that `query_string` (index_query.h) matches, by name; one of the
  // two lists is filled. At most 100 a page.
  struct SearchResult {
    std::vector<ThingDocument> things;
    std::vector<ThingGroupDocument> thing_groups;
    std::string next_token;
  };
  absl::StatusOr<SearchResult> SearchIndex(absl::string_view index_name,
                                           absl::string_view query_string, const PageRequest& page);

  // Fleet indexing's aggregations (GetStatistics, GetCardinality, GetPercentiles,
  // GetBucketsAggregation) over the things (or groups) `query_string` matches; see
  // IndexAggregation. The field defaults to registry.version for statistics, as on AWS, and
  // is required otherwise; percents default to AWS's 1, 5, 25, 50, 75, 95, 99.
  absl::StatusOr<IndexAggregationResult> Aggregate(absl::string_view index_name,
                                                   absl::string_view query_string,
                                                   IndexAggregation aggregation);

  // Fleet indexing's configuration: AWS_Things is REGISTRY or OFF, AWS_ThingGroups ON or OFF
  // (both on until turned off). An index that is off answers no search or aggregation
  // (NOT_FOUND), and AWS_Things cannot be turned off while dynamic groups use it, nor a
  // dynamic group made while it is off (FAILED_PRECONDITION). Modes of data fleetcore does
  // not index (REGISTRY_AND_SHADOW, connectivity STATUS, ...) are INVALID_ARGUMENT.
  absl::StatusOr<IndexingConfiguration> GetIndexingConfiguration();
  absl::Status UpdateIndexingConfiguration(const IndexingConfigurationUpdate& in);
  // An index that is on (NOT_FOUND otherwise), and the names of those that are.
  absl::StatusOr<IndexDescription> DescribeIndex(absl::string_view index_name);
  absl::StatusOr<Page<std::string>> ListIndices(const PageRequest& page);

  // AWS's event configurations: which kinds of registry event (by AWS's names, "THING",
  // "THING_GROUP_MEMBERSHIP", ...) are published. Kinds not named keep their setting.
  absl::Status UpdateEventConfigurations(const std::map<std::string, bool>& changes);
  // Every kind, with whether it is on.
  absl::StatusOr<EventConfigurations> DescribeEventConfigurations();
  // Forgets the configuration kept in memory (another replica changed it, or its NOTIFY
  // may have been missed); the next change reads it again.
  void InvalidateEventConfigurations();

 private:
  // The registry events of one change, sent when it commits.
  struct Events {
    uint32_t enabled = 0;  // bit per EventType
    std::vector<broker::Publisher::Message> messages;
    bool On(EventType t) const { return (enabled >> static_cast<int>(t)) & 1u; }
  };
  // The dynamic groups whose query matches `thing` now, named after `after`, by name.
  absl::StatusOr<std::vector<ThingGroup>> DynamicGroupsOf(absl::string_view thing,
                                                          absl::string_view after);
  // The kinds on now (none without a publisher), from memory or the store.
  Events StartEvents();
  EventStamp Stamp();
  // Runs `body` in a store transaction; the registry events it adds to its Events are
  // published once the transaction commits.
  absl::Status Change(absl::FunctionRef<absl::Status(RegistryTx&, Events&)> body);

  // One membership change inside a Change (no-ops when already so).
  absl::Status AddMembership(RegistryTx& tx, Events& events, absl::string_view group,
                             absl::string_view thing);
  absl::Status RemoveMembership(RegistryTx& tx, Events& events, absl::string_view group,
                                absl::string_view thing);

  // Puts `thing` in billing group `group` (add) or takes it out of it.
  absl::Status SetBillingGroup(absl::string_view group, absl::string_view thing, bool add);

  // NOT_FOUND unless `index` (kThingIndex or kThingGroupIndex) is on.
  absl::Status RequireIndexOn(absl::string_view index);

  // NOT_FOUND unless the thing exists (outside a transaction).
  absl::Status RequireThing(absl::string_view name);

  RegistryStore* store_;
  const aws::Arns* arns_;
  const Clock* clock_;
  IdGenerator* ids_;
  RegistryOptions options_;

  absl::Mutex events_mu_;
  std::optional<uint32_t> enabled_events_ ABSL_GUARDED_BY(events_mu_);
  uint64_t events_generation_ ABSL_GUARDED_BY(events_mu_) = 0;
};

}  // namespace fleetcore::registry
