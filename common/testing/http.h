// A minimal HTTP/1.1 GET on 127.0.0.1 for tests of /metrics and similar endpoints.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/testing/subprocess.h"

namespace fleetcore::testing {

// The response body of GET http://127.0.0.1:<port><path>, or "" when the request failed.
std::string HttpGet(int port, const std::string& path);

// The value of one series in a Prometheus text page (`series` as it is printed, labels and
// all: `name{label="value"}`), or -1 when the page has no such series.
double MetricValue(const std::string& metrics, const std::string& series);

// tests/harness/http_test_server.py, running: answers as each request's query string says
// (?status=, ?delay=, ?body_b64=, ?echo=1, ?trickle=1) and logs requests to `log_file`.
struct HttpTestServer {
  std::unique_ptr<Subprocess> process;
  int port = 0;
  std::string log_file;
  // "http(s)://127.0.0.1:PORT" (https when started with a certificate).
  std::string base_url;
  // The requests received so far, one JSON object per line.
  std::vector<std::string> Requests() const;

  static absl::StatusOr<HttpTestServer> Start(const std::string& tls_cert = "",
                                              const std::string& tls_key = "");
  // An S3-compatible endpoint that refuses requests not signed (SigV4) with these
  // credentials; each log line has "signature": "ok" or the reason.
  static absl::StatusOr<HttpTestServer> StartS3(const std::string& access_key_id,
                                                const std::string& secret_access_key);

 private:
  static absl::StatusOr<HttpTestServer> Launch(std::vector<std::string> args, bool tls);
};

}  // namespace fleetcore::testing
