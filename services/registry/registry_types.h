// The registry's domain types: plain values, no gRPC or Postgres types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace fleetcore::registry {

using Attributes = std::map<std::string, std::string>;

struct Thing {
  std::string name;
  std::string id;
  std::string type_name;  // empty: no thing type
  Attributes attributes;
  int64_t version = 1;
  absl::Time created_at;
  absl::Time updated_at;
  std::string billing_group;  // empty: in no billing group
};

// An MQTT 5 user property a thing type adds to its things' messages: the value of one
// thing attribute or of one connection attribute ("iot:ClientId", "iot:Thing.ThingName").
struct PropagatingAttribute {
  std::string user_property_key;
  std::string thing_attribute;
  std::string connection_attribute;
  bool operator==(const PropagatingAttribute&) const = default;
};

struct ThingType {
  std::string name;
  std::string id;
  std::string description;
  std::vector<std::string> searchable_attributes;
  std::vector<PropagatingAttribute> propagating_attributes;
  bool deprecated = false;
  absl::Time deprecated_at;  // meaningful when deprecated
  absl::Time created_at;
};

struct ThingGroup {
  std::string name;
  std::string id;
  std::string parent;  // empty for a root group
  std::string root;    // the top of its hierarchy (itself for a root)
  int depth = 1;       // 1 for a root
  std::string description;
  Attributes attributes;
  int64_t version = 1;
  absl::Time created_at;
  // A dynamic group's fleet-indexing query over AWS_Things (its members are the things it
  // matches) and the query's version; empty for a static group.
  std::string query_string;
  std::string query_version;
  bool dynamic() const { return !query_string.empty(); }
};

// A billing group: a flat group of things (each in at most one), for cost allocation.
struct BillingGroup {
  std::string name;
  std::string id;
  std::string description;
  int64_t version = 1;
  absl::Time created_at;
};

enum class PrincipalType { kNonExclusive, kExclusive };

struct PrincipalAttachment {
  std::string thing_name;
  std::string principal;
  PrincipalType type = PrincipalType::kNonExclusive;
};

// An AttributePayload of an update: merge adds/replaces (an empty value removes), otherwise
// the attributes are replaced whole.
struct AttributeUpdate {
  Attributes attributes;
  bool merge = false;
};

struct CreateThingInput {
  std::string name;
  std::string type_name;
  Attributes attributes;
  std::string billing_group;  // empty: none
};

struct UpdateThingInput {
  std::string name;
  std::string type_name;  // non-empty: associate this type
  bool remove_type = false;
  std::optional<AttributeUpdate> attributes;
  std::optional<int64_t> expected_version;
};

struct ThingQuery {
  std::string attribute_name;
  std::string attribute_value;
  bool prefix_value = false;
  std::string type_name;
};

struct CreateThingTypeInput {
  std::string name;
  std::string description;
  std::vector<std::string> searchable_attributes;
  std::vector<PropagatingAttribute> propagating_attributes;
};

// What an UpdateThingType changes: each field that is set.
struct UpdateThingTypeInput {
  std::string name;
  std::optional<std::string> description;
  std::optional<std::vector<std::string>> searchable_attributes;
  std::optional<std::vector<PropagatingAttribute>> propagating_attributes;
};

// CreateThingGroup, or CreateDynamicThingGroup when query_string is set.
struct CreateThingGroupInput {
  std::string name;
  std::string parent;
  std::string description;
  Attributes attributes;
  std::string index_name;  // dynamic: AWS_Things (the default when empty)
  std::string query_string;
  std::string query_version;  // dynamic: AWS's "2017-09-30" when empty
};

// UpdateThingGroup, or UpdateDynamicThingGroup when `dynamic`.
struct UpdateThingGroupInput {
  std::string name;
  std::optional<std::string> description;  // set: replace the description
  std::optional<AttributeUpdate> attributes;
  std::optional<int64_t> expected_version;
  bool dynamic = false;
  std::string index_name;     // dynamic: AWS_Things or empty
  std::string query_string;   // dynamic: not empty replaces the query
  std::string query_version;  // dynamic: not empty replaces it
};

struct GroupQuery {
  std::string parent;       // empty: all groups
  std::string name_prefix;  // empty: no filter
  std::optional<bool> recursive;
};

// A thing as SearchIndex answers it: its registry data and the names of the groups it is a
// direct member of, sorted.
struct ThingDocument {
  Thing thing;
  std::vector<std::string> group_names;
};

// A thing group as SearchIndex answers it, with the names of its ancestors, root first.
struct ThingGroupDocument {
  ThingGroup group;
  std::vector<std::string> parent_names;
};

// GetStatistics' answer: how many documents matched (and had the aggregation field), and
// for a numeric field the statistics of its values (set when count > 0; variance and
// standard deviation are the population's).
struct IndexStatistics {
  int64_t count = 0;
  std::optional<double> average;
  std::optional<double> sum;
  std::optional<double> minimum;
  std::optional<double> maximum;
  std::optional<double> sum_of_squares;
  std::optional<double> variance;
  std::optional<double> std_deviation;
};

// What one of fleet indexing's aggregations asks over the values of `field` ("registry.version"
// or a field of the index) in the documents a query matches:
//   kStatistics: with `numeric` (registry.version, attributes.*) and every value a number,
//     IndexStatistics of them; otherwise only the count of documents that have the field;
//   kCardinality: how many distinct values;
//   kPercentiles: each of `percents` of the values that are numbers (none without numbers);
//   kBuckets: the `max_buckets` values most documents have, with how many, and how many
//     documents matched.
struct IndexAggregation {
  enum class Kind { kStatistics, kCardinality, kPercentiles, kBuckets };
  Kind kind = Kind::kStatistics;
  std::string field;
  bool numeric = false;
  std::vector<double> percents;
  int max_buckets = 10;
};

struct IndexBucket {
  std::string key;
  int64_t count = 0;
};

struct IndexAggregationResult {
  IndexStatistics statistics;
  int64_t cardinality = 0;
  std::vector<std::pair<double, double>> percentiles;  // (percent, value)
  std::vector<IndexBucket> buckets;                    // most documents first, then by value
  int64_t total_count = 0;
};

// Fleet indexing's configuration: whether each index is on. AWS_Things is "OFF" or
// "REGISTRY" (registry data: the only mode fleetcore has), AWS_ThingGroups "OFF" or "ON".
struct IndexingConfiguration {
  std::string thing_indexing_mode = "REGISTRY";
  std::string thing_group_indexing_mode = "ON";
};

// What an UpdateIndexingConfiguration changes: each index whose mode is set. `thing_modes`
// holds the rest of AWS's thingIndexingConfiguration (thingConnectivityIndexingMode,
// deviceDefenderIndexingMode, namedShadowIndexingMode), by field name, which fleetcore can
// only have OFF.
struct IndexingConfigurationUpdate {
  std::optional<std::string> thing_indexing_mode;
  std::map<std::string, std::string> thing_modes;
  std::optional<std::string> thing_group_indexing_mode;
};

// DescribeIndex's answer.
struct IndexDescription {
  std::string name;
  std::string status;  // ACTIVE: fleetcore's indexes are never building
  std::string schema;  // REGISTRY
};

// A group with its ancestors, root first (DescribeThingGroup).
struct ThingGroupDescription {
  ThingGroup group;
  std::vector<ThingGroup> ancestors;
};

struct PageRequest {
  std::string next_token;
  int max_results = 0;  // 0: the default
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_token;  // empty on the last page
};

// Which kinds of registry events are published (AWS's event type names, "THING", ...), and
// when the configuration was first and last changed (zero when never).
struct EventConfigurations {
  std::map<std::string, bool> enabled;
  absl::Time created_at;
  absl::Time updated_at;
};

// A change announced on the fleetcore_registry NOTIFY channel for caches elsewhere (the
// gateway's policy-variable and group-policy caches). Serialized as a JSON object.
struct RegistryEvent {
  std::string type;  // e.g. "thing.updated", "thing_group.thing_added"
  std::string thing;
  std::string thing_group;
  std::string thing_type;
  std::string principal;
};

inline constexpr char kRegistryChannel[] = "fleetcore_registry";
// The RegistryEvent type of an UpdateEventConfigurations: replicas read the configuration
// again.
inline constexpr char kEventConfigurationsUpdated[] = "event_configurations.updated";
// The RegistryEvent type of a DeleteBillingGroup, which changes every thing that was in it
// without naming them: caches of things drop them all.
inline constexpr char kBillingGroupDeleted[] = "billing_group.deleted";

}  // namespace fleetcore::registry
