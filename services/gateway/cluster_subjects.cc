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

namespace {

struct ShareDigest {
  ShareDigest(absl::string_view group, absl::string_view filter) {
    const std::string key = absl::StrCat(group, std::string(1, '\0'), filter);
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), bytes);
  }
  unsigned char bytes[SHA256_DIGEST_LENGTH];
};

}  // namespace

std::string QueueOfShare(absl::string_view group, absl::string_view filter) {
  const ShareDigest d(group, filter);
  return absl::StrCat(
      "q", absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(d.bytes), 16)));
}

uint64_t ShareId(absl::string_view group, absl::string_view filter) {
  const ShareDigest d(group, filter);
  uint64_t id = 0;
  for (int i = 0; i < 8; ++i) id = (id << 8) | d.bytes[i];
  return id;
}

}  // namespace fleetcore::gateway
