#include "tests/e2e/e2e_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/testing/test_database.h"
#include "nlohmann/json.hpp"

namespace fleetcore::e2e {

absl::StatusOr<RunningService> StartService(const std::string& binary,
                                            std::vector<std::string> args,
                                            testing::EnvOverrides env) {
  std::vector<std::string> argv{testing::BuildPath(binary), "--listen=127.0.0.1:0",
                                "--metrics-listen=127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto proc = testing::Subprocess::Start(std::move(argv), std::move(env));
  if (!proc.ok()) return proc.status();
  auto line = (*proc)->WaitForLine([](absl::string_view l) {
    return l.find("\"msg\":\"serving\"") != absl::string_view::npos;
  });
  if (!line.ok()) return line.status();
  auto j = nlohmann::json::parse(*line);
  RunningService s;
  s.process = std::move(*proc);
  s.grpc_port = j.at("grpc_port").get<int>();
  s.metrics_port = j.at("metrics_port").get<int>();
  s.endpoint = absl::StrCat("127.0.0.1:", s.grpc_port);
  return s;
}

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
  const std::string req =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

}  // namespace fleetcore::e2e
