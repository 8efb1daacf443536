#include "tests/e2e/e2e_util.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/testing/http.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fleetcore::e2e {

namespace {

// The peer services each binary calls (its --<peer>-endpoint flags).
absl::flat_hash_set<std::string> PeerFlags(absl::string_view binary) {
  if (absl::EndsWith(binary, "fleetcore-gateway")) return {"ca", "policy", "shadow", "rules"};
  if (absl::EndsWith(binary, "fleetcore-ca")) return {"registry", "policy"};
  if (absl::EndsWith(binary, "fleetcore-policy")) return {"registry"};
  if (absl::EndsWith(binary, "fleetcore-shadow")) return {"gateway"};
  if (absl::EndsWith(binary, "fleetcore-rules")) return {"gateway", "shadow", "registry"};
  if (absl::EndsWith(binary, "fleetcore-registry")) return {"gateway"};
  return {};
}

}  // namespace

absl::StatusOr<RunningService> StartService(const std::string& binary,
                                            std::vector<std::string> args,
                                            testing::EnvOverrides env) {
  std::vector<std::string> argv{testing::BuildPath(binary), "--listen=127.0.0.1:0",
                                "--metrics-listen=127.0.0.1:0"};
  // A peer the test does not name points at a closed port, not at the binary's default
  // (the local stack's port): a developer's running stack must not answer a test's calls.
  for (const char* peer : {"registry", "policy", "ca", "shadow", "rules", "gateway"}) {
    const std::string flag = absl::StrCat("--", peer, "-endpoint=");
    const bool given = std::any_of(args.begin(), args.end(), [&](const std::string& a) {
      return absl::StartsWith(a, flag);
    });
    if (!given && PeerFlags(binary).contains(peer)) argv.push_back(flag + "127.0.0.1:1");
  }
  // Nor may a test's rules service take the local stack's confirmation port.
  if (absl::EndsWith(binary, "fleetcore-rules") &&
      std::none_of(args.begin(), args.end(), [](const std::string& a) {
        return absl::StartsWith(a, "--confirm-listen=");
      })) {
    argv.push_back("--confirm-listen=127.0.0.1:0");
  }
  // Each service logs in as its own role (migration 0011; the harness gives the roles its
  // password), as in the local stack: a query outside the service's schema fails its test.
  absl::StatusOr<testing::TestPostgres> pg = testing::TestPostgres::FromHarness();
  for (const char* service : {"registry", "policy", "ca", "gateway", "shadow", "rules"}) {
    if (!pg.ok() || !absl::EndsWith(binary, absl::StrCat("fleetcore-", service))) continue;
    const std::string as_owner = absl::StrCat("--db-url=postgresql://", pg->user, ":");
    for (std::string& a : args) {
      if (absl::StartsWith(a, as_owner)) {
        a = absl::StrCat("--db-url=postgresql://fleetcore_", service, ":",
                         a.substr(as_owner.size()));
      }
    }
  }
  argv.insert(argv.end(), args.begin(), args.end());
  auto proc = testing::Subprocess::Start(std::move(argv), std::move(env));
  if (!proc.ok()) return proc.status();
  auto line = (*proc)->WaitForLine(
      [](absl::string_view l) { return l.find("\"msg\":\"serving\"") != absl::string_view::npos; });
  if (!line.ok()) return line.status();
  auto j = nlohmann::json::parse(*line);
  RunningService s;
  s.process = std::move(*proc);
  s.grpc_port = j.at("grpc_port").get<int>();
  s.metrics_port = j.value("metrics_port", 0);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (it->is_number_integer() && key.ends_with("_port")) s.ports[key] = it->get<int>();
  }
  s.endpoint = absl::StrCat("127.0.0.1:", s.grpc_port);
  return s;
}

std::string SourcePath(const std::string& relative) {
  const char* src = std::getenv("FLEETCORE_SOURCE_DIR");
  return absl::StrCat(src != nullptr ? src : ".", "/", relative);
}

std::string Tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  // Servers Debian puts in sbin (nats-server), which a user's PATH may not include.
  const std::string dirs = absl::StrCat(path != nullptr ? path : "/usr/bin", ":/usr/sbin:/sbin");
  for (absl::string_view dir : absl::StrSplit(dirs, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

int FreePort() {
  // Below Linux's ephemeral range (32768-60999), which the kernel hands to every outgoing
  // connection of the test processes: a port taken from there (bind to port 0) could be
  // given to one of them before the service it was chosen for listens on it. Above the
  // local stack's ports. Random, so that concurrent tests rarely try the same one, and
  // checked free now.
  thread_local absl::BitGen gen;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = absl::Uniform(gen, 20000, 32000);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (free) return port;
  }
  ADD_FAILURE() << "no free loopback port between 20000 and 32000";
  return 0;
}

std::string MetricsWith(int metrics_port, const std::vector<std::string>& lines) {
  std::string metrics;
  for (int i = 0; i < 200; ++i) {
    metrics = testing::HttpGet(metrics_port, "/metrics");
    if (std::all_of(lines.begin(), lines.end(),
                    [&](const std::string& l) { return absl::StrContains(metrics, l); })) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return metrics;
}

std::string WriteAllowAllPolicy(const std::string& path) {
  std::ofstream(path) << R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",)"
                         R"("Action":"iot:*","Resource":"*"}]})";
  return path;
}

Fleetctl::Fleetctl(std::string admin_token, testing::EnvOverrides endpoints)
    : env_(std::move(endpoints)) {
  env_["FLEETCORE_ADMIN_TOKEN"] = std::move(admin_token);
}

testing::RunResult Fleetctl::Run(std::vector<std::string> args) const {
  args.insert(args.begin(), testing::BuildPath("tools/fleetctl/fleetctl"));
  absl::StatusOr<testing::RunResult> r = testing::Run(args, env_);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : testing::RunResult{};
}

nlohmann::json Fleetctl::Json(std::vector<std::string> args) const {
  testing::RunResult r = Run(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0 || r.out.empty()) return nlohmann::json();
  return nlohmann::json::parse(r.out);
}

void Fleetctl::ExpectFailure(std::vector<std::string> args, const std::string& code,
                             const std::string& message) const {
  testing::RunResult r = Run(args);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, ::testing::HasSubstr(code + ": ")) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr(message)) << r.err;
}

std::unique_ptr<testing::Subprocess> StartSubscriber(const Fleetctl& gateway,
                                                     std::vector<std::string> args,
                                                     const std::string& client_id) {
  std::vector<std::string> argv{Tool("mosquitto_sub"), "-i", client_id};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = testing::Subprocess::Start(argv);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return nullptr;
  for (int i = 0; i < 100; ++i) {
    testing::RunResult r = gateway.Run({"describe-connection", "--client-id", client_id});
    if (r.exit_code == 0 && absl::StrContains(r.out, "topicFilter")) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return std::move(*p);
}

}  // namespace fleetcore::e2e
