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
// The server's side, for requests that arrive signed (MQTT over WebSocket, HTTPS publish):
//
//   if (aws::CarriesSigV4(target, authorization)) {
//     absl::StatusOr<aws::SigV4Presented> p = aws::ReadSigV4(request, now, region, services);
//     // p->strings_to_sign go, with p->signature, to whoever holds the secret:
//     //   aws::SigV4Signature(secret, p->date, p->region, p->service, s) == p->signature
//   }
//
// Clients disagree on the canonical URI (botocore and the AWS CRT encode the path a second
// time, curl and others sign it as sent) and on the payload hash of a presigned request
// (the body's hash, or UNSIGNED-PAYLOAD) and on whether a presigned URL's session token is
// signed (AWS IoT's WebSocket URLs add it after signing), so ReadSigV4 offers each plausible
// string to sign; a signature over any of them proves the secret as well.
//
// Thread safety: pure functions.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

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

// Hex HMAC-SHA256 of `string_to_sign` under the key derived from `secret` for that scope.
std::string SigV4Signature(absl::string_view secret, absl::string_view date,
                           absl::string_view region, absl::string_view service,
                           absl::string_view string_to_sign);

// A request as the server received it.
struct ReceivedRequest {
  std::string method;
  std::string target;  // the path and query as sent: "/mqtt?X-Amz-Algorithm=..."
  // The value of a header by lower-case name (repeated headers joined with ","); nullopt
  // when absent.
  std::function<std::optional<std::string>(absl::string_view name)> header;
  std::string body_sha256;  // hex SHA-256 of the body (of nothing for a WebSocket upgrade)
};

struct SigV4Presented {
  std::string access_key_id;  // 1 to 128 letters and digits
  std::string date;  // yyyymmdd, of the credential scope
  std::string region;
  std::string service;
  std::string signature;  // 64 lower-case hex digits
  absl::Time time;        // X-Amz-Date
  // X-Amz-Security-Token, for temporary credentials (printable ASCII): whoever checks the
  // signature must check that it belongs to the key.
  std::optional<std::string> session_token;
  std::vector<std::string> strings_to_sign;  // candidates, at most 12, without repeats
};

// Whether a request means to authenticate with SigV4: X-Amz-Algorithm in its query, or an
// Authorization header of AWS4-HMAC-SHA256.
bool CarriesSigV4(absl::string_view target, absl::string_view authorization_header);

// Reads the SigV4 authentication of `request` (Authorization header, or presigned query),
// checks its form, its time against `now` (15 minutes either way, or X-Amz-Expires; nullopt
// for a request checked before and verified again), its region and that its service is one
// of `services`, and builds the strings to sign.
// UNAUTHENTICATED, with AWS's words where it has them, for anything wrong.
absl::StatusOr<SigV4Presented> ReadSigV4(const ReceivedRequest& request,
                                         std::optional<absl::Time> now, absl::string_view region,
                                         absl::Span<const absl::string_view> services);

// RFC 3986 percent-encoding of everything but A-Z a-z 0-9 - . _ ~ (and '/' when
// `keep_slash`), upper-case hex, as SigV4 wants.
std::string UriEncode(absl::string_view s, bool keep_slash);
std::string Sha256Hex(absl::string_view data);

}  // namespace fleetcore::aws
