#include "common/aws/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/net/percent.h"

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
  const std::string signature = SigV4Signature(credentials.secret_access_key, date, scope.region,
                                               scope.service, r.string_to_sign);
  r.authorization = absl::StrCat("AWS4-HMAC-SHA256 Credential=", credentials.access_key_id, "/",
                                 credential_scope, ", SignedHeaders=", signed_headers,
                                 ", Signature=", signature);
  return r;
}

std::string SigV4Signature(absl::string_view secret, absl::string_view date,
                           absl::string_view region, absl::string_view service,
                           absl::string_view string_to_sign) {
  std::string k_secret = absl::StrCat("AWS4", secret);
  Digest key = Hmac(k_secret, date);
  OPENSSL_cleanse(k_secret.data(), k_secret.size());
  key = Hmac(View(key), region);
  key = Hmac(View(key), service);
  key = Hmac(View(key), "aws4_request");
  return absl::BytesToHexString(View(Hmac(View(key), string_to_sign)));
}

namespace {

constexpr absl::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr absl::Duration kSkew = absl::Minutes(15);

// yyyymmddThhmmssZ (absl::ParseTime's %Y would take every digit).
bool ParseAmzDate(absl::string_view s, absl::Time* out) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return false;
  int f[6];
  const size_t at[6] = {0, 4, 6, 9, 11, 13}, len[6] = {4, 2, 2, 2, 2, 2};
  for (int i = 0; i < 6; ++i) {
    const absl::string_view part = s.substr(at[i], len[i]);
    for (char c : part) {
      if (!absl::ascii_isdigit(c)) return false;
    }
    if (!absl::SimpleAtoi(part, &f[i])) return false;
  }
  const absl::CivilSecond civil(f[0], f[1], f[2], f[3], f[4], f[5]);
  if (civil.month() != f[1] || civil.day() != f[2] || civil.hour() != f[3] ||
      civil.minute() != f[4] || civil.second() != f[5]) {
    return false;  // normalized: not a real date
  }
  *out = absl::FromCivil(civil, absl::UTCTimeZone());
  return true;
}

absl::Status Refused(absl::string_view why) { return absl::UnauthenticatedError(why); }

std::string AmzDate(absl::Time t) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", t, absl::UTCTimeZone());
}

}  // namespace

bool CarriesSigV4(absl::string_view target, absl::string_view authorization_header) {
  if (absl::StartsWith(authorization_header, kAlgorithm)) return true;
  const size_t q = target.find('?');
  if (q == absl::string_view::npos) return false;
  for (absl::string_view pair : absl::StrSplit(target.substr(q + 1), '&')) {
    if (absl::StartsWithIgnoreCase(pair, "X-Amz-Algorithm=")) return true;
  }
  return false;
}

absl::StatusOr<SigV4Presented> ReadSigV4(const ReceivedRequest& request,
                                         std::optional<absl::Time> now, absl::string_view region,
                                         absl::Span<const absl::string_view> services) {
  const absl::string_view target = request.target;
  const size_t q = target.find('?');
  const absl::string_view path = target.substr(0, q);
  const absl::string_view raw_query = q == absl::string_view::npos ? "" : target.substr(q + 1);

  // The query, decoded; the authentication's own parameters by name.
  std::vector<std::pair<std::string, std::string>> query;
  std::optional<std::string> algorithm, credential, amz_date, signed_headers, signature,
      expires, token;
  std::vector<std::pair<std::string, std::string>> pairs;
  // '+' stays itself: SigV4 signers encode a space as %20.
  if (!net::DecodeQuery(raw_query, /*plus_is_space=*/false, &pairs)) {
    return Refused("the query string has a malformed %-escape");
  }
  for (auto& [name, value] : pairs) {
    if (name == "X-Amz-Algorithm") algorithm = value;
    if (name == "X-Amz-Credential") credential = value;
    if (name == "X-Amz-Date") amz_date = value;
    if (name == "X-Amz-SignedHeaders") signed_headers = value;
    if (name == "X-Amz-Expires") expires = value;
    if (name == "X-Amz-Security-Token") token = value;
    if (name == "X-Amz-Signature") {
      signature = value;
      continue;  // not signed: it is the signature
    }
    query.emplace_back(std::move(name), std::move(value));
  }
  const bool presigned = algorithm.has_value();
  if (!presigned) {
    // Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...
    std::string authorization = request.header("authorization").value_or("");
    absl::string_view rest = authorization;
    if (!absl::ConsumePrefix(&rest, kAlgorithm) || (!rest.empty() && rest[0] != ' ')) {
      return Refused("Authorization header requires the AWS4-HMAC-SHA256 algorithm");
    }
    for (absl::string_view part : absl::StrSplit(rest, ',')) {
      part = absl::StripAsciiWhitespace(part);
      const size_t eq = part.find('=');
      if (eq == absl::string_view::npos) continue;
      const absl::string_view k = part.substr(0, eq);
      const std::string v(part.substr(eq + 1));
      if (k == "Credential") credential = v;
      if (k == "SignedHeaders") signed_headers = v;
      if (k == "Signature") signature = v;
    }
    amz_date = request.header("x-amz-date");
    token = request.header("x-amz-security-token");
    algorithm = std::string(kAlgorithm);
  }
  if (*algorithm != kAlgorithm) {
    return Refused(absl::StrCat("X-Amz-Algorithm must be ", kAlgorithm));
  }
  if (!credential.has_value() || !signed_headers.has_value() || !signature.has_value()) {
    return Refused(presigned ? "a presigned request needs X-Amz-Credential, "
                               "X-Amz-SignedHeaders and X-Amz-Signature"
                             : "Authorization header requires Credential, SignedHeaders and "
                               "Signature parameters");
  }
  if (!amz_date.has_value()) {
    return Refused(presigned ? "a presigned request needs X-Amz-Date"
                             : "Authorization header requires existence of an X-Amz-Date header");
  }
  SigV4Presented p;
  if (token.has_value()) {
    // Tokens are base64 (STS's, and GetSessionToken's URL-safe form).
    bool printable = !token->empty() && token->size() <= 8192;
    for (char c : *token) printable = printable && c > ' ' && c < 0x7f;
    if (!printable) {
      return Refused("X-Amz-Security-Token must be 1 to 8192 printable ASCII characters");
    }
    p.session_token = *token;
  }
  const std::vector<std::string> scope = absl::StrSplit(*credential, '/');
  if (scope.size() != 5 || scope[0].empty() || scope[4] != "aws4_request") {
    return Refused(absl::StrCat("Credential should be KEYID/yyyymmdd/region/service/"
                                "aws4_request, not '",
                                absl::CHexEscape(credential->substr(0, 128)), "'"));
  }
  p.access_key_id = scope[0];
  p.date = scope[1];
  p.region = scope[2];
  p.service = scope[3];
  p.signature = absl::AsciiStrToLower(*signature);
  // What goes on to the key's holder is ASCII: an access key id of letters and digits (AWS's
  // are 16 to 128; its test suite's AKIDEXAMPLE is 11), a signature of 64 hex digits.
  bool key_ok = !p.access_key_id.empty() && p.access_key_id.size() <= 128;
  for (char c : p.access_key_id) key_ok = key_ok && absl::ascii_isalnum(c);
  if (!key_ok) {
    return Refused(absl::StrCat("the access key id in Credential must be 1 to 128 letters and "
                                "digits, not '",
                                absl::CHexEscape(p.access_key_id.substr(0, 128)), "'"));
  }
  bool hex = p.signature.size() == 64;
  for (char c : p.signature) hex = hex && absl::ascii_isxdigit(c);
  if (!hex) return Refused("the signature must be 64 hex digits");
  if (!ParseAmzDate(*amz_date, &p.time)) {
    return Refused(absl::StrCat("X-Amz-Date must be yyyymmddThhmmssZ, not '",
                                absl::CHexEscape(amz_date->substr(0, 32)), "'"));
  }
  if (amz_date->substr(0, 8) != p.date) {
    return Refused(absl::StrCat("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                "version of date from HTTP: '",
                                p.date, "' != '", amz_date->substr(0, 8), "'"));
  }
  if (p.region != region) {
    return Refused(absl::StrCat("Credential should be scoped to a valid region, not '",
                                absl::CHexEscape(p.region), "'. Use '", region, "'."));
  }
  if (std::find(services.begin(), services.end(), p.service) == services.end()) {
    return Refused(absl::StrCat("Credential should be scoped to correct service: '",
                                services.empty() ? "" : services[0], "'."));
  }
  absl::Duration valid_for = kSkew;
  if (presigned && expires.has_value()) {
    int64_t seconds = 0;
    if (!absl::SimpleAtoi(*expires, &seconds) || seconds < 1 || seconds > 604800) {
      return Refused("X-Amz-Expires must be a number of seconds from 1 to 604800");
    }
    valid_for = absl::Seconds(seconds);
  }
  if (now.has_value() && p.time > *now + kSkew) {
    return Refused(absl::StrCat("Signature not yet current: ", *amz_date,
                                " is still later than ", AmzDate(*now + kSkew), " (",
                                AmzDate(*now), " + 15 min.)"));
  }
  if (now.has_value() && *now > p.time + valid_for) {
    return Refused(presigned && expires.has_value()
                       ? std::string("Request has expired")
                       : absl::StrCat("Signature expired: ", *amz_date,
                                      " is now earlier than ", AmzDate(*now - kSkew), " (",
                                      AmzDate(*now), " - 15 min.)"));
  }

  // Canonical headers, in the order signed.
  std::string canonical_headers;
  bool has_host = false;
  for (absl::string_view name : absl::StrSplit(*signed_headers, ';')) {
    const std::string lower = absl::AsciiStrToLower(name);
    has_host = has_host || lower == "host";
    std::optional<std::string> value = request.header(lower);
    if (!value.has_value()) {
      return Refused(absl::StrCat("the signed header '", absl::CHexEscape(lower),
                                  "' is not in the request"));
    }
    absl::StrAppend(&canonical_headers, lower, ":", CanonicalValue(*value), "\n");
  }
  if (!has_host) return Refused("the host header must be signed");

  // The canonical query; AWS IoT's presigned WebSocket URLs add the session token after
  // signing (the AWS CRT's omit_session_token), other presigners sign it: both are offered.
  auto canonical_query = [&query](bool with_token) {
    std::vector<std::pair<std::string, std::string>> encoded;
    for (const auto& [k, v] : query) {
      if (!with_token && k == "X-Amz-Security-Token") continue;
      encoded.emplace_back(UriEncode(k, false), UriEncode(v, false));
    }
    std::sort(encoded.begin(), encoded.end());
    std::vector<std::string> pairs;
    for (const auto& [k, v] : encoded) pairs.push_back(absl::StrCat(k, "=", v));
    return absl::StrJoin(pairs, "&");
  };
  std::vector<std::string> queries = {canonical_query(true)};
  if (presigned && p.session_token.has_value()) queries.push_back(canonical_query(false));

  std::vector<std::string> uris;
  const std::string wire_path = path.empty() ? "/" : std::string(path);
  uris.push_back(UriEncode(wire_path, true));  // encoded again (botocore, the AWS CRT)
  uris.push_back(wire_path);                   // as sent (curl)
  if (std::string decoded; net::PercentDecode(wire_path, /*plus_is_space=*/false, &decoded)) {
    uris.push_back(UriEncode(decoded, true));  // sent unencoded, signed encoded
  }
  std::vector<std::string> payloads;
  if (std::optional<std::string> declared = request.header("x-amz-content-sha256")) {
    payloads.push_back(*declared);
  } else {
    payloads.push_back(request.body_sha256);
    payloads.push_back("UNSIGNED-PAYLOAD");
  }
  const std::string scope_line =
      absl::StrCat(p.date, "/", p.region, "/", p.service, "/aws4_request");
  for (const std::string& uri : uris) {
    for (const std::string& canonical_query : queries) {
      for (const std::string& payload : payloads) {
        const std::string canonical =
            absl::StrCat(request.method, "\n", uri, "\n", canonical_query, "\n",
                         canonical_headers, "\n", *signed_headers, "\n", payload);
        std::string s = absl::StrCat(kAlgorithm, "\n", *amz_date, "\n", scope_line, "\n",
                                     Sha256Hex(canonical));
        if (std::find(p.strings_to_sign.begin(), p.strings_to_sign.end(), s) ==
            p.strings_to_sign.end()) {
          p.strings_to_sign.push_back(std::move(s));
        }
      }
    }
  }
  return p;
}

}  // namespace fleetcore::aws
