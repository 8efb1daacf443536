// Helpers for end-to-end tests: start a real fleetcore binary and find its ports in the
// "serving" line it logs (services listen on port 0 in tests, so runs never collide).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/testing/subprocess.h"

namespace fleetcore::e2e {

struct RunningService {
  std::unique_ptr<testing::Subprocess> process;
  int grpc_port = 0;
  int metrics_port = 0;
  std::string endpoint;  // 127.0.0.1:<grpc_port>
};

// Starts build/<binary> with --listen and --metrics-listen on port 0 plus `args`, and waits
// for its "serving" log line.
absl::StatusOr<RunningService> StartService(const std::string& binary,
                                            std::vector<std::string> args,
                                            testing::EnvOverrides env = {});

}  // namespace fleetcore::e2e
