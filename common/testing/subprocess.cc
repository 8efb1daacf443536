#include "common/testing/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace fleetcore::testing {
namespace {

std::vector<std::string> MergedEnvironment(const EnvOverrides& overrides) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq != absl::string_view::npos) {
      env[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
    }
  }
  for (const auto& [k, v] : overrides) {
    env[k] = v;
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : env) {
    out.push_back(absl::StrCat(k, "=", v));
  }
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

// Spawns argv with stdin from a pipe (fed `stdin_data`, then closed) and stdout/stderr to
// two more pipes whose read ends are returned.
absl::StatusOr<pid_t> Spawn(std::vector<std::string> argv, const EnvOverrides& overrides,
                            const std::string& stdin_data, int* out_fd, int* err_fd) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with no signals blocked, whatever the test runner blocked.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<std::string> env = MergedEnvironment(overrides);
  std::vector<char*> cargv = CStrings(argv);
  std::vector<char*> cenv = CStrings(env);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return absl::NotFoundError(absl::StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
  }
  if (!stdin_data.empty()) {
    // Small inputs only (below the pipe buffer); enough for tests.
    (void)!write(in_pipe[1], stdin_data.data(), stdin_data.size());
  }
  close(in_pipe[1]);
  *out_fd = out_pipe[0];
  *err_fd = err_pipe[0];
  return pid;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(std::vector<std::string> argv,
                                                              EnvOverrides env,
                                                              std::string stdin_data) {
  int out_fd = -1, err_fd = -1;
  absl::StatusOr<pid_t> pid = Spawn(std::move(argv), env, stdin_data, &out_fd, &err_fd);
  if (!pid.ok()) {
    return pid.status();
  }
  std::unique_ptr<Subprocess> p(new Subprocess());
  p->pid_ = *pid;
  p->reader_ = std::thread([raw = p.get(), out_fd, err_fd] { raw->ReadLoop(out_fd, err_fd); });
  return p;
}

void Subprocess::ReadLoop(int out_fd, int err_fd) {
  std::string partial[2];
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  char buf[8192];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        if (!partial[i].empty()) {
          std::lock_guard<std::mutex> lock(mu_);
          lines_.push_back(std::move(partial[i]));
        }
        continue;
      }
      partial[i].append(buf, static_cast<size_t>(n));
      size_t nl;
      std::lock_guard<std::mutex> lock(mu_);
      while ((nl = partial[i].find('\n')) != std::string::npos) {
        lines_.push_back(partial[i].substr(0, nl));
        partial[i].erase(0, nl + 1);
      }
    }
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

absl::StatusOr<std::string> Subprocess::WaitForLine(std::function<bool(absl::string_view)> match,
                                                    absl::Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout));
  size_t checked = 0;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    for (; checked < lines_.size(); ++checked) {
      if (match(lines_[checked])) {
        return lines_[checked];
      }
    }
    if (eof_) {
      return absl::AbortedError(absl::StrCat("the process ended without the expected line; "
                                             "its output:\n", absl::StrJoin(lines_, "\n")));
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      for (; checked < lines_.size(); ++checked) {
        if (match(lines_[checked])) {
          return lines_[checked];
        }
      }
      return absl::DeadlineExceededError(absl::StrCat(
          "no expected line within ", absl::FormatDuration(timeout), "; output so far:\n",
          absl::StrJoin(lines_, "\n")));
    }
  }
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && !exited_) {
    kill(pid_, sig);
  }
}

void Subprocess::Reap(bool block) {
  if (exited_ || pid_ <= 0) {
    return;
  }
  int status = 0;
  pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (r == pid_) {
    exited_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    Reap(false);
    if (exited_) {
      break;
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (reader_.joinable()) {
    reader_.join();
  }
  return exit_code_;
}

std::string Subprocess::output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::StrJoin(lines_, "\n");
}

Subprocess::~Subprocess() {
  Reap(false);
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    Reap(true);
  }
  if (reader_.joinable()) {
    reader_.join();
  }
}

absl::StatusOr<RunResult> Run(std::vector<std::string> argv, EnvOverrides env,
                              absl::Duration timeout, std::string stdin_data) {
  int out_fd = -1, err_fd = -1;
  absl::StatusOr<pid_t> pid = Spawn(std::move(argv), env, stdin_data, &out_fd, &err_fd);
  if (!pid.ok()) {
    return pid.status();
  }
  RunResult result;
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  const absl::Time deadline = absl::Now() + timeout;
  char buf[8192];
  bool timed_out = false;
  while (open_fds > 0) {
    const int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (wait_ms <= 0) {
      timed_out = true;
      break;
    }
    int rc = poll(fds, 2, wait_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        sinks[i]->append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (pollfd& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  if (timed_out) {
    kill(*pid, SIGKILL);
  }
  int status = 0;
  waitpid(*pid, &status, 0);
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        "command did not finish within ", absl::FormatDuration(timeout), "; stderr: ", result.err));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace fleetcore::testing
