// Files that hold secrets (a CA's private key, the policy service's sealing key): read only
// while they are private to their owner, written new and never over an existing file.
//
//   FLEETCORE_RETURN_IF_ERROR(tls::CheckPrivateFile(path, "the CA key"));
//   FLEETCORE_ASSIGN_OR_RETURN(std::string pem, tls::ReadFile(path));
//   absl::Status s = tls::WriteNewFile(path, pem, 0600);  // ALREADY_EXISTS if it exists
//
// Errors: FAILED_PRECONDITION with the path, the reason and, for a file others can read,
// the command that fixes it.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetcore::tls {

absl::StatusOr<std::string> ReadFile(const std::string& path);

// OK when `path` exists and neither its group nor others may read or write it; `what`
// names it in the message ("the CA key").
absl::Status CheckPrivateFile(const std::string& path, absl::string_view what);

// Writes `data` to a new file with `mode`, synced; ALREADY_EXISTS if it exists.
absl::Status WriteNewFile(const std::string& path, absl::string_view data, mode_t mode);

}  // namespace fleetcore::tls
