// Parsing and checking of "host:port" listen addresses, so that every listener of every
// service reports a taken or invalid port the same clear way before it starts.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace fleetcore::net {

struct HostPort {
  std::string host;  // "127.0.0.1", "0.0.0.0", "::", "localhost"
  int port = 0;      // 0: any free port
};

// Accepts "host:port" and "[v6]:port". InvalidArgument names the problem.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// Binds a TCP socket to the address and releases it at once: FailedPrecondition when the
// port is taken ("127.0.0.1:9101 is already in use"), InvalidArgument when the host is not
// a local address. `what` names the listener in the message ("metrics listener").
absl::Status ProbeListen(absl::string_view what, absl::string_view address);

}  // namespace fleetcore::net
