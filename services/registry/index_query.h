// The query language of SearchIndex: AWS IoT fleet indexing's subset of Lucene's syntax.
//
//   thingName:lamp*                           a term, with * and ? wildcards
//   attributes.site:berlin thingTypeName:lamp  terms in a row are ANDed
//   attributes.floor:[2 TO 5]  attributes.floor>=2  ranges ({} excludes a bound, * opens
//                                                 it); numeric when the bounds are numbers
//   thingName:(lamp* AND -lamp-old) NOT x      field grouping, AND OR NOT and a leading -
//   "a b"  \:  *                               phrases, escapes, everything
//
// Matching ignores the case of A-Z (only: the same in memory and whatever the database's
// locale). A term without a field looks in every field of the index. A query has at most 12
// terms, and at most one of them may start with a wildcard (and then the query is at most
// 100 characters), as on AWS; parentheses and NOTs nest at most 16 deep.
//
// A parsed query is matched in two ways that must agree: in memory against an
// IndexDocument (the fake store), and as a SQL condition built by IndexQueryToSql (the
// Postgres store); the registry's conformance tests run the same queries through both.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/registry/registry_types.h"

namespace fleetcore::registry {

// The fields of one index: the names a query may use.
struct IndexSchema {
  std::string index_name;           // "AWS_Things"
  std::vector<std::string> fields;  // exact field names, e.g. "thingName"
  // Fields AWS indexes that fleetcore's index does not hold, by prefix ("shadow."): a query
  // naming one is refused with `missing_reason`.
  std::vector<std::string> missing_prefixes;
  std::string missing_reason;
  // "attributes.": any field under it (an attribute's name follows).
  std::string open_prefix;
};

// The two indexes SearchIndex answers from.
const IndexSchema& ThingIndexSchema();
const IndexSchema& ThingGroupIndexSchema();
inline constexpr char kThingIndex[] = "AWS_Things";
inline constexpr char kThingGroupIndex[] = "AWS_ThingGroups";

// The mode of `index` (kThingIndex, or else kThingGroupIndex) in `c`.
inline const std::string& IndexingMode(const IndexingConfiguration& c, absl::string_view index) {
  return index == kThingIndex ? c.thing_indexing_mode : c.thing_group_indexing_mode;
}
inline std::string& IndexingMode(IndexingConfiguration& c, absl::string_view index) {
  return index == kThingIndex ? c.thing_indexing_mode : c.thing_group_indexing_mode;
}
// The aggregations' field for a document's version: no query can name it (AWS's
// registry.version is not searchable), but GetStatistics aggregates it by default.
inline constexpr char kRegistryVersionField[] = "registry.version";

// One condition on the values of one field (or of any field).
struct IndexTerm {
  enum class Kind { kMatch, kRange };
  std::string field;  // empty: any field
  Kind kind = Kind::kMatch;
  // kMatch: a LIKE pattern (% and _ for the wildcards, \ escapes) of the lowercased value.
  std::string like;
  // kRange: the bounds (lowercased), nullopt when open.
  std::optional<std::string> lower;
  std::optional<std::string> upper;
  bool lower_inclusive = true;
  bool upper_inclusive = true;
  // Every bound is a number: compare values that are numbers as such (with no bounds: any
  // value that is a number).
  bool numeric = false;
};

struct IndexQuery {
  enum class Op { kTerm, kAnd, kOr, kNot };
  Op op = Op::kTerm;
  IndexTerm term;                    // kTerm
  std::vector<IndexQuery> children;  // kAnd, kOr (two or more), kNot (one)
};

inline constexpr int kMaxQueryTerms = 12;
inline constexpr int kMaxQueryNesting = 16;  // parentheses and NOTs, one inside another
inline constexpr size_t kMaxLeadingWildcardQueryLength = 100;

// INVALID_ARGUMENT names the fault and where it is, e.g.
//   queryString: expected ] or } to close the range at character 24
absl::StatusOr<IndexQuery> ParseIndexQuery(absl::string_view text, const IndexSchema& schema);

// OK when `field` is one of the schema's fields; INVALID_ARGUMENT saying why not.
absl::Status CheckIndexField(const IndexSchema& schema, absl::string_view field);

// A document as a query sees it: each field with its values (a field may hold several,
// such as thingGroupNames; a missing field holds none).
using IndexDocument = std::map<std::string, std::vector<std::string>>;

bool MatchesIndexQuery(const IndexQuery& query, const IndexDocument& doc);

// Fleet indexing's aggregations computed over documents (the fake store's way; the
// Postgres store computes the same in SQL). Each document also holds kRegistryVersionField.
// See IndexAggregation for what each kind means.
IndexAggregationResult AggregateDocuments(const std::vector<IndexDocument>& docs,
                                          const IndexAggregation& aggregation);

// Linear interpolation between the closest ranks (Postgres's percentile_cont) of sorted
// `values` at `percent` (0-100).
double PercentileOf(const std::vector<double>& sorted, double percent);

// What the two indexes hold of a thing and of a group (see IndexSchema).
IndexDocument ThingIndexDocument(const ThingDocument& d);
IndexDocument ThingGroupIndexDocument(const ThingGroupDocument& d);

// What a field's values are in SQL: `value` is an SQL expression of one value (NULL when
// the row has none); when `from_where` is set ("FROM ... WHERE ...", after an optional
// `with` clause), the field has many values and `value` ranges over those rows.
struct SqlFieldSource {
  std::string value;
  std::string from_where;
  std::string with;
  bool many() const { return !from_where.empty(); }
};

// The parameters of a statement built piece by piece: Add returns "$n".
class SqlParams {
 public:
  explicit SqlParams(int first = 1) : next_(first) {}
  std::string Add(std::string value);
  const std::vector<std::string>& values() const { return values_; }

 private:
  int next_;
  std::vector<std::string> values_;
};

// The field's sources in SQL (several for a term without a field, each an OR). May add
// parameters, such as an attribute's name.
using SqlFieldMapper =
    std::function<std::vector<SqlFieldSource>(absl::string_view field, SqlParams& params)>;

// The SQL numeric value of text expression `v` when it is a number as ranges read one (an
// optional -, digits, optionally . and digits), NULL otherwise.
std::string SqlIndexNumber(const std::string& v);

// A boolean SQL condition true exactly where MatchesIndexQuery is.
std::string IndexQueryToSql(const IndexQuery& query, const SqlFieldMapper& fields,
                            SqlParams& params);

}  // namespace fleetcore::registry
