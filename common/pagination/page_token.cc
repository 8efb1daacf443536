#include "common/pagination/page_token.h"

#include <openssl/evp.h>

#include <array>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fleetcore::pagination {
namespace {

constexpr absl::string_view kVersion = "p1";
constexpr size_t kFingerprintBytes = 8;

// A stable digest of the query (absl::Hash is salted per process, and tokens must work
// across replicas and restarts).
std::string Fingerprint(absl::string_view query) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md;
  unsigned int len = 0;
  EVP_Digest(query.data(), query.size(), md.data(), &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md.data()), kFingerprintBytes);
}

}  // namespace

absl::StatusOr<int> ResolveMaxResults(int requested, int default_value, int max_allowed) {
  if (requested == 0) {
    return default_value;
  }
  if (requested < 0 || requested > max_allowed) {
    return absl::InvalidArgumentError(
        absl::StrCat("maxResults must be between 1 and ", max_allowed, ", got ", requested));
  }
  return requested;
}

absl::StatusOr<int> ParseMaxResults(std::optional<absl::string_view> text, int default_value,
                                    int max_allowed) {
  if (!text.has_value()) return default_value;
  int requested = 0;
  if (!absl::SimpleAtoi(*text, &requested) || requested < 1 || requested > max_allowed) {
    return absl::InvalidArgumentError(
        absl::StrCat("maxResults must be from 1 to ", max_allowed));
  }
  return requested;
}

std::string EncodePageToken(absl::string_view last_key, absl::string_view query) {
  std::string raw = absl::StrCat(kVersion, Fingerprint(query), last_key);
  std::string out;
  absl::WebSafeBase64Escape(raw, &out);
  return out;
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view token, absl::string_view query) {
  if (token.empty()) {
    return std::string();
  }
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) ||
      raw.size() <= kVersion.size() + kFingerprintBytes ||
      !absl::StartsWith(raw, kVersion)) {
    return absl::InvalidArgumentError(
        "nextToken is not a token this service issued; pass the nextToken of the previous "
        "page unchanged, or none for the first page");
  }
  if (raw.substr(kVersion.size(), kFingerprintBytes) != Fingerprint(query)) {
    return absl::InvalidArgumentError(
        "nextToken belongs to a list request with different filters; repeat the filters of "
        "the request that returned it");
  }
  return raw.substr(kVersion.size() + kFingerprintBytes);
}

}  // namespace fleetcore::pagination
