// The registry's RegistryStore on Postgres (schema "registry", migrations/0001). Events are
// sent with NOTIFY on the fleetcore_registry channel inside the writing transaction, so they
// are delivered exactly when it commits.
#pragma once

#include <memory>

#include "services/registry/registry_store.h"

namespace pqxx {
class connection_base;
}  // namespace pqxx

namespace fleetcore::db {
class PgPool;
}  // namespace fleetcore::db

namespace fleetcore::registry {

class PgRegistryStore final : public RegistryStore {
 public:
  // `pool` must outlive the store.
  explicit PgRegistryStore(db::PgPool* pool) : pool_(pool) {}

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

  // The event a fleetcore_registry NOTIFY payload carries; nullopt if it is not one.
  static std::optional<RegistryEvent> ParseEvent(absl::string_view payload);

  // Prepares the hot-path statements on a new pool connection (PgPool's Prepare hook).
  static void PrepareConnection(pqxx::connection_base& connection);

 private:
  db::PgPool* pool_;
};

}  // namespace fleetcore::registry
