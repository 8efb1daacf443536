// Helpers for end-to-end tests: start a real fleetcore binary and find its ports in the
// "serving" line it logs (services listen on port 0 in tests, so runs never collide).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/testing/subprocess.h"
#include "nlohmann/json.hpp"

namespace fleetcore::e2e {

struct RunningService {
  std::unique_ptr<testing::Subprocess> process;
  int grpc_port = 0;
  int metrics_port = 0;
  std::string endpoint;  // 127.0.0.1:<grpc_port>
  // Every "<name>_port" of the serving line (the gateway's mqtt_port, mqtts_port, ...).
  std::map<std::string, int> ports;
};

// Starts build/<binary> with --listen and --metrics-listen on port 0 plus `args`, and waits
// for its "serving" log line.
absl::StatusOr<RunningService> StartService(const std::string& binary,
                                            std::vector<std::string> args,
                                            testing::EnvOverrides env = {});

// A file of the source tree (FLEETCORE_SOURCE_DIR, set by CTest).
std::string SourcePath(const std::string& relative);
// A program on the PATH, or in /usr/sbin or /sbin (the subprocess helper runs absolute
// paths only).
std::string Tool(const std::string& name);
// A loopback port free now (below the ephemeral range), for services that must know each
// other's port before both run.
int FreePort();
// The /metrics text of the service whose metrics port is `metrics_port`, once it holds
// every one of `lines`, or as it is after 10 s: a counter may move just after what the test
// saw (an action counted after it returns), so it is read again until it has.
std::string MetricsWith(int metrics_port, const std::vector<std::string>& lines);
// Writes an IoT policy allowing every action on every resource (for a gateway's
// --anonymous-policy-file in tests that are not about authorization); returns `path`.
std::string WriteAllowAllPolicy(const std::string& path);

// fleetctl as an operator runs it, with the admin token and the services' endpoints in its
// environment (FLEETCORE_<SERVICE>_ENDPOINT), failing the test when it cannot run.
class Fleetctl {
 public:
  Fleetctl(std::string admin_token, testing::EnvOverrides endpoints);

  // The run's exit code and output.
  testing::RunResult Run(std::vector<std::string> args) const;
  // The JSON it printed; the test fails unless it exited 0.
  nlohmann::json Json(std::vector<std::string> args) const;
  // Expects exit status 1 with "<code>: " and `message` on stderr.
  void ExpectFailure(std::vector<std::string> args, const std::string& code,
                     const std::string& message) const;

 private:
  testing::EnvOverrides env_;
};

// mosquitto_sub with `args` as client `client_id`, returned once the gateway shows its
// subscriptions (fleetctl describe-connection through `gateway`), so nothing published
// afterwards is missed; null (and a test failure) when it cannot start.
std::unique_ptr<testing::Subprocess> StartSubscriber(const Fleetctl& gateway,
                                                     std::vector<std::string> args,
                                                     const std::string& client_id);

}  // namespace fleetcore::e2e
