#include "common/status/public_message.h"

namespace fleetcore {

bool IsServerError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnimplemented:
      return true;
    default:
      return false;
  }
}

std::string PublicMessage(const absl::Status& status) {
  if (!IsServerError(status)) return std::string(status.message());
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    return "Service Unavailable";
  }
  return "Internal service failure";
}

}  // namespace fleetcore
