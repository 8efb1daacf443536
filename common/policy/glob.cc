#include "common/policy/glob.h"

#include "absl/strings/ascii.h"

namespace fleetcore::policy {

bool GlobMatch(absl::string_view pattern, absl::string_view text, bool ignore_case) {
  size_t p = 0, t = 0;
  size_t star = absl::string_view::npos, resume = 0;
  auto eq = [&](char a, char b) {
    if (a == kLiteralStar) return b == '*';
    if (a == kLiteralQuestion) return b == '?';
    return ignore_case ? absl::ascii_tolower(a) == absl::ascii_tolower(b) : a == b;
  };
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || (pattern[p] != '*' && eq(pattern[p], text[t])))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != absl::string_view::npos) {
      // Let the last * swallow one more character and retry from there.
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace fleetcore::policy
