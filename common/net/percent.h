// %XX-decoding of URL paths, query strings and form bodies, strictly: a '%' not followed by
// two hex digits is an error, not text.
//
//   std::string topic;
//   if (!net::PercentDecode(path_segment, /*plus_is_space=*/false, &topic)) refuse;
//
// Thread safety: a pure function.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace fleetcore::net {

// Decodes `in` into `*out`; '+' is a space when `plus_is_space` (query strings and forms),
// else itself. False for a malformed escape.
bool PercentDecode(absl::string_view in, bool plus_is_space, std::string* out);

// Decodes a query string or form body ("a=1&b=x%20y") into its name/value pairs, in order,
// appended to `*out` (empty pieces skipped; a piece without '=' has an empty value). False
// for a malformed escape, and then nothing is appended.
bool DecodeQuery(absl::string_view query, bool plus_is_space,
                 std::vector<std::pair<std::string, std::string>>* out);

}  // namespace fleetcore::net
