// What a device, or any caller outside the operator's own network, is told of a failed
// request. A client error's message says what was wrong with the request and is the
// caller's to act on. A failure of the service itself (Postgres down, a peer unreachable or
// slow, a bug) has a message naming the parts behind it (addresses, queries, peers), which
// helps only the operator, who finds it in the service's log: outside callers get AWS's
// fixed words instead.
//
//   reply["message"] = PublicMessage(status);
//
// Thread safety: a pure function.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace fleetcore {

// "Service Unavailable" for UNAVAILABLE and DEADLINE_EXCEEDED; "Internal service failure"
// for INTERNAL, UNKNOWN, DATA_LOSS and UNIMPLEMENTED; otherwise the status's own message.
std::string PublicMessage(const absl::Status& status);

// True for the codes PublicMessage hides: the service's failures, not the caller's.
bool IsServerError(const absl::Status& status);

}  // namespace fleetcore
