// AWS Signature Version 4 (header form), as AWS S3 and S3-compatible stores check it.
//
//   aws::SigV4Request r{.method = "PUT", .host = "127.0.0.1:9000", .path = "/bucket/a b.json",
//                       .headers = {{"content-type", "application/json"}},
//                       .payload_hash = aws::Sha256Hex(body)};
//   aws::SigV4Result s = aws::SignV4(r, credentials, {.region = "us-east-1", .service = "s3",
//                                                     .time = absl::Now()});
//   // send with headers: authorization = s.authorization, x-amz-date = s.amz_date,
//   // x-amz-content-sha256 = r.payload_hash (S3 requires it; sign it by listing it in
//   // r.headers), and x-amz-security-token when there is a session token.
//
// The canonical URI encodes each path segment once (S3's rule; AWS's generic test suite
// agrees for paths without "." segments or "%"), the query is sorted by encoded name then
// value, header names are lower-cased and sorted and values trimmed with inner runs of
// spaces folded. host and x-amz-date are always signed.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fleetcore::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials only
};

struct SigV4Request {
  std::string method;
  std::string host;  // the Host header: host, plus :port unless the scheme's default
  std::string path;  // not encoded: "/test$file.text"
  std::vector<std::pair<std::string, std::string>> query;  // not encoded
  // Further headers to sign (host and x-amz-date are added).
  std::vector<std::pair<std::string, std::string>> headers;
  // Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD".
  std::string payload_hash;
};

struct SigV4Scope {
  std::string region;
  std::string service;
  absl::Time time;
};

struct SigV4Result {
  std::string authorization;
  std::string amz_date;  // 20150830T123600Z, the x-amz-date header
  // For debugging a SignatureDoesNotMatch (S3 returns its own in the error document).
  std::string canonical_request;
  std::string string_to_sign;
};

SigV4Result SignV4(const SigV4Request& request, const Credentials& credentials,
                   const SigV4Scope& scope);

// RFC 3986 percent-encoding of everything but A-Z a-z 0-9 - . _ ~ (and '/' when
// `keep_slash`), upper-case hex, as SigV4 wants.
std::string UriEncode(absl::string_view s, bool keep_slash);
std::string Sha256Hex(absl::string_view data);

}  // namespace fleetcore::aws
