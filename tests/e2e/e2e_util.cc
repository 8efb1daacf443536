#include "tests/e2e/e2e_util.h"

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

}  // namespace fleetcore::e2e
