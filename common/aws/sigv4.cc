#include "common/aws/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace fleetcore::aws {
namespace {

using Digest = std::array<unsigned char, 32>;

Digest Hmac(absl::string_view key, absl::string_view data) {
  Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

absl::string_view View(const Digest& d) {
  return absl::string_view(reinterpret_cast<const char*>(d.data()), d.size());
}

// Trimmed, with every run of spaces inside folded to one.
std::string CanonicalValue(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  std::string out;
  out.reserve(v.size());
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string UriEncode(absl::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string Sha256Hex(absl::string_view data) {
  Digest md{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(View(md));
}

SigV4Result SignV4(const SigV4Request& request, const Credentials& credentials,
                   const SigV4Scope& scope) {
  SigV4Result r;
  r.amz_date = absl::FormatTime("%Y%m%dT%H%M%SZ", scope.time, absl::UTCTimeZone());
  const std::string date = r.amz_date.substr(0, 8);

  // Headers: lower-case names, sorted; repeated names joined with commas in order.
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("host", CanonicalValue(request.host));
  headers.emplace_back("x-amz-date", r.amz_date);
  if (!credentials.session_token.empty()) {
    headers.emplace_back("x-amz-security-token", credentials.session_token);
  }
  for (const auto& [name, value] : request.headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (lower == "host" || lower == "x-amz-date" || lower == "authorization") continue;
    headers.emplace_back(std::move(lower), CanonicalValue(value));
  }
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers;
  std::vector<std::string> names;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      absl::StrAppend(&canonical_headers, ",", headers[i].second);
      continue;
    }
    if (i > 0) canonical_headers.push_back('\n');
    absl::StrAppend(&canonical_headers, headers[i].first, ":", headers[i].second);
    names.push_back(headers[i].first);
  }
  canonical_headers.push_back('\n');
  const std::string signed_headers = absl::StrJoin(names, ";");

  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [k, v] : request.query) {
    query.emplace_back(UriEncode(k, false), UriEncode(v, false));
  }
  std::sort(query.begin(), query.end());
  std::vector<std::string> pairs;
  for (const auto& [k, v] : query) pairs.push_back(absl::StrCat(k, "=", v));

  const std::string path = request.path.empty() ? "/" : UriEncode(request.path, true);
  r.canonical_request = absl::StrCat(request.method, "\n", path, "\n", absl::StrJoin(pairs, "&"),
                                     "\n", canonical_headers, "\n", signed_headers, "\n",
                                     request.payload_hash);
  const std::string credential_scope =
      absl::StrCat(date, "/", scope.region, "/", scope.service, "/aws4_request");
  r.string_to_sign = absl::StrCat("AWS4-HMAC-SHA256\n", r.amz_date, "\n", credential_scope, "\n",
                                  Sha256Hex(r.canonical_request));
  Digest key = Hmac(absl::StrCat("AWS4", credentials.secret_access_key), date);
  key = Hmac(View(key), scope.region);
  key = Hmac(View(key), scope.service);
  key = Hmac(View(key), "aws4_request");
  const std::string signature = absl::BytesToHexString(View(Hmac(View(key), r.string_to_sign)));
  r.authorization = absl::StrCat("AWS4-HMAC-SHA256 Credential=", credentials.access_key_id, "/",
                                 credential_scope, ", SignedHeaders=", signed_headers,
                                 ", Signature=", signature);
  return r;
}

}  // namespace fleetcore::aws
