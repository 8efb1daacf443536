#include "services/gateway/cluster_subjects.h"

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fleetcore::gateway {

std::string SubjectToken(absl::string_view text) {
  if (text.empty()) return "%";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-') {
      out.push_back(ch);
    } else {
      absl::StrAppend(&out, "%", absl::BytesToHexString(absl::string_view(&ch, 1)));
    }
  }
  return out;
}

std::string SubjectOfTopic(absl::string_view prefix, absl::string_view topic) {
  std::string out(prefix);
  for (absl::string_view level : absl::StrSplit(topic, '/')) {
    absl::StrAppend(&out, ".", SubjectToken(level));
  }
  return out;
}

std::vector<std::string> SubjectsOfFilter(absl::string_view prefix, absl::string_view filter) {
  std::string subject(prefix);
  std::vector<std::string> out;
  for (absl::string_view level : absl::StrSplit(filter, '/')) {
    if (level == "#") {
      // "a/#" matches "a" itself; "#" alone has no parent topic.
      if (subject.size() > prefix.size()) out.push_back(subject);
      absl::StrAppend(&subject, ".>");
      out.push_back(std::move(subject));
      return out;
    }
    absl::StrAppend(&subject, ".", level == "+" ? "*" : SubjectToken(level));
  }
  out.push_back(std::move(subject));
  return out;
}

std::string QueueOfShare(absl::string_view group, absl::string_view filter) {
  const std::string key = absl::StrCat(group, std::string(1, '\0'), filter);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  return absl::StrCat(
      "q", absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), 16)));
}

}  // namespace fleetcore::gateway
