// Runs a real binary for an end-to-end test and watches its output.
//
//   ASSERT_OK_AND_ASSIGN(auto registry, Subprocess::Start({BuildPath("services/registry/"
//       "fleetcore-registry"), "--listen=127.0.0.1:0", "--db-url=" + db->url()}));
//   ASSERT_OK_AND_ASSIGN(std::string line, registry->WaitForLine(
//       [](absl::string_view l) { return l.find("\"grpc_address\"") != l.npos; }));
//
//   ASSERT_OK_AND_ASSIGN(RunResult r, Run({fleetctl, "describe-thing", "--thing-name", "x"}));
//   EXPECT_EQ(r.exit_code, 0) << r.err;
//
// The destructor kills a process that is still running. Waits are bounded.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include "absl/strings/string_view.h"
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fleetcore::testing {

using EnvOverrides = std::map<std::string, std::string>;

class Subprocess {
 public:
  // argv[0] is the program path. `env` is added to (and overrides) this process's
  // environment.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(std::vector<std::string> argv,
                                                           EnvOverrides env = {},
                                                           std::string stdin_data = "");
  ~Subprocess();

  // The first line on stdout or stderr (so far or within `timeout`) for which `match` is
  // true. DEADLINE_EXCEEDED, with the output so far, if none; ABORTED if the process exits.
  absl::StatusOr<std::string> WaitForLine(std::function<bool(absl::string_view)> match,
                                          absl::Duration timeout = absl::Seconds(30));

  void Signal(int sig);
  // Exit code, or 128 + signal number when killed by a signal.
  absl::StatusOr<int> Wait(absl::Duration timeout = absl::Seconds(30));

  pid_t pid() const { return pid_; }
  std::string output() const;  // stdout and stderr interleaved by line

 private:
  Subprocess() = default;
  void ReadLoop(int out_fd, int err_fd);
  void Reap(bool block);

  pid_t pid_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool eof_ = false;
  bool exited_ = false;
  int exit_code_ = -1;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (bounded by `timeout`; killed after it).
absl::StatusOr<RunResult> Run(std::vector<std::string> argv, EnvOverrides env = {},
                              absl::Duration timeout = absl::Seconds(60),
                              std::string stdin_data = "");

}  // namespace fleetcore::testing
