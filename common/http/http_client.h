// Outbound HTTP(S) calls from services: custom authorizer functions, rule actions, hooks.
//
//   BeastHttpClient client({});
//   FLEETCORE_ASSIGN_OR_RETURN(http::Response r, client.Send({
//       .method = "POST", .url = "https://auth.example.com/authorize",
//       .headers = {{"content-type", "application/json"}}, .body = event,
//       .timeout = absl::Seconds(5)}));
//
// HTTPS verifies the server's certificate against the CA bundle (the system's by default)
// and its host name; SNI is sent. The timeout bounds the whole exchange (resolve, connect,
// handshake, write, read).
// Errors: INVALID_ARGUMENT (bad URL), UNAVAILABLE (cannot resolve, connect or complete TLS),
// DEADLINE_EXCEEDED (timeout), RESOURCE_EXHAUSTED (response larger than max_response_bytes).
// An HTTP error status is not an error: it is in Response::status.
//
// Thread safety: Send may be called concurrently; it blocks the calling thread, so call it
// from a worker pool, never from an I/O loop.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fleetcore::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  absl::Duration timeout = absl::Seconds(5);
};

struct Response {
  int status = 0;
  Headers headers;
  std::string body;
  // The first value of a header (case-insensitive name), or "".
  std::string Header(absl::string_view name) const;
};

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;  // path and query, at least "/"
};
absl::StatusOr<Url> ParseUrl(absl::string_view url);
// The Host header of a request to `url`: the host, with the port unless it is the scheme's
// default (what signed requests, e.g. SigV4, must sign).
std::string HostHeader(const Url& url);

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual absl::StatusOr<Response> Send(const Request& request) = 0;
};

class BeastHttpClient final : public HttpClient {
 public:
  struct Options {
    // PEM bundle of the CAs trusted for HTTPS; empty: the system's (/etc/ssl/certs).
    std::string ca_file;
    size_t max_response_bytes = 1 << 20;
  };
  explicit BeastHttpClient(Options options);
  absl::StatusOr<Response> Send(const Request& request) override;

 private:
  Options options_;
};

}  // namespace fleetcore::http
