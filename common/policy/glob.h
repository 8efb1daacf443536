// IAM-style wildcard matching: * matches any run of characters (including '/' and none),
// ? exactly one character; everything else, including MQTT's + and #, is literal.
#pragma once

#include "absl/strings/string_view.h"

namespace fleetcore::policy {

// In a pattern, these bytes stand for a literal '*' and '?' (IAM's ${*} and ${?}).
inline constexpr char kLiteralStar = '\x01';
inline constexpr char kLiteralQuestion = '\x02';

// Case-sensitive unless ignore_case. Linear in practice, O(|pattern| * |text|) worst case.
bool GlobMatch(absl::string_view pattern, absl::string_view text, bool ignore_case = false);

}  // namespace fleetcore::policy
