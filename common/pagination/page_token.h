// Opaque nextToken values for keyset pagination, shared by every List RPC.
//
// A token carries the sort key of the last item returned and a fingerprint of the query's
// filters. The next page starts strictly after that key, so rows inserted or deleted between
// pages never cause an item to be returned twice or skipped (apart from the inserted or
// deleted rows themselves). A token used with different filters is refused.
//
//   FLEETCORE_ASSIGN_OR_RETURN(int limit, ResolveMaxResults(req.max_results));
//   FLEETCORE_ASSIGN_OR_RETURN(std::string after, DecodePageToken(req.next_token, filters));
//   ... fetch limit + 1 rows with key > after ...
//   if (rows.size() > limit) next_token = EncodePageToken(rows[limit - 1].key, filters);
//
// Errors: InvalidArgument for a malformed token, one from another query, or a max_results
// out of range.
#pragma once

#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace fleetcore::pagination {

inline constexpr int kDefaultMaxResults = 50;
inline constexpr int kMaxMaxResults = 250;

// 0 means "the default"; otherwise 1..max_allowed.
absl::StatusOr<int> ResolveMaxResults(int requested, int default_value = kDefaultMaxResults,
                                      int max_allowed = kMaxMaxResults);

// maxResults as an HTTP query parameter's text: absent (nullopt) means the default;
// present, it must be a number from 1 to max_allowed ("0" is refused, not the default).
absl::StatusOr<int> ParseMaxResults(std::optional<absl::string_view> text, int default_value,
                                    int max_allowed);

std::string EncodePageToken(absl::string_view last_key, absl::string_view query);

// The last key of the previous page, or "" for an empty token (the first page).
absl::StatusOr<std::string> DecodePageToken(absl::string_view token, absl::string_view query);

}  // namespace fleetcore::pagination
