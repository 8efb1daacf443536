#include "common/net/listen_address.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fleetcore::net {

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", address, "\" must be host:port, like 127.0.0.1:6051"));
  }
  HostPort hp;
  hp.host = std::string(address.substr(0, colon));
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  if (!absl::SimpleAtoi(address.substr(colon + 1), &hp.port) || hp.port < 0 ||
      hp.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", address, "\" has no valid port (0-65535)"));
  }
  return hp;
}

absl::Status ProbeListen(absl::string_view what, absl::string_view address) {
  absl::StatusOr<HostPort> hp = ParseHostPort(address);
  if (!hp.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", hp.status().message()));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = absl::StrCat(hp->port);
  if (int rc = getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot resolve host \"", hp->host,
                                                   "\": ", gai_strerror(rc)));
  }
  absl::Status result = absl::OkStatus();
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  if (fd < 0) {
    result = absl::InternalError(absl::StrCat(what, ": socket(): ", std::strerror(errno)));
  } else {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
      const int err = errno;
      if (err == EADDRINUSE) {
        result = absl::FailedPreconditionError(absl::StrCat(
            what, ": ", address, " is already in use; stop the process holding it or "
            "choose another port"));
      } else if (err == EADDRNOTAVAIL) {
        result = absl::InvalidArgumentError(
            absl::StrCat(what, ": ", address, " is not an address of this machine"));
      } else if (err == EACCES) {
        result = absl::PermissionDeniedError(absl::StrCat(
            what, ": not allowed to listen on ", address, " (ports below 1024 need privileges)"));
      } else {
        result = absl::UnavailableError(
            absl::StrCat(what, ": cannot listen on ", address, ": ", std::strerror(err)));
      }
    }
    close(fd);
  }
  freeaddrinfo(res);
  return result;
}

}  // namespace fleetcore::net
