#include "common/testing/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/ids/id_generator.h"
#include "common/testing/test_database.h"
#include "gtest/gtest.h"

namespace fleetcore::testing {

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  // HTTP/1.0: the body comes whole, never chunked (nats-server's monitoring chunks large
  // answers to HTTP/1.1 clients), and the connection ends with it.
  const std::string req =
      "GET " + path + " HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

double MetricValue(const std::string& metrics, const std::string& series) {
  const std::string line = "\n" + series + " ";  // not its # HELP line
  const size_t at = metrics.find(line);
  if (at == std::string::npos) return -1;
  double v = -1;
  const size_t end = metrics.find('\n', at + line.size());
  return absl::SimpleAtod(metrics.substr(at + line.size(), end - at - line.size()), &v) ? v : -1;
}

absl::StatusOr<HttpTestServer> HttpTestServer::Start(const std::string& tls_cert,
                                                    const std::string& tls_key) {
  if (tls_cert.empty()) return Launch({}, false);
  return Launch({"--tls-cert", tls_cert, "--tls-key", tls_key}, true);
}

absl::StatusOr<HttpTestServer> HttpTestServer::StartS3(const std::string& access_key_id,
                                                      const std::string& secret_access_key) {
  return Launch({"--s3-key", access_key_id, "--s3-secret", secret_access_key}, false);
}

absl::StatusOr<HttpTestServer> HttpTestServer::Launch(std::vector<std::string> args, bool tls) {
  HttpTestServer s;
  RandomIdGenerator ids;
  s.log_file = absl::StrCat(::testing::TempDir(), "/http-", ids.NewUuid(), ".log");
  std::vector<std::string> argv = {
      "/usr/bin/python3",
      absl::StrCat(std::getenv("FLEETCORE_SOURCE_DIR") ? std::getenv("FLEETCORE_SOURCE_DIR") : ".",
                   "/tests/harness/http_test_server.py"),
      "--log", s.log_file};
  argv.insert(argv.end(), args.begin(), args.end());
  auto proc = Subprocess::Start(argv);
  if (!proc.ok()) return proc.status();
  auto line = (*proc)->WaitForLine(
      [](absl::string_view l) { return l.rfind("listening on ", 0) == 0; }, absl::Seconds(15));
  if (!line.ok()) return line.status();
  if (!absl::SimpleAtoi(line->substr(13), &s.port)) {
    return absl::InternalError(absl::StrCat("unexpected line: ", *line));
  }
  s.process = std::move(*proc);
  s.base_url = absl::StrCat(tls ? "https" : "http", "://127.0.0.1:", s.port);
  return s;
}

std::vector<std::string> HttpTestServer::Requests() const {
  std::vector<std::string> out;
  std::ifstream in(log_file);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

}  // namespace fleetcore::testing
