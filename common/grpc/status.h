// The one mapping between absl::Status and grpc::Status. Abseil and gRPC share the
// canonical code numbering, so the mapping keeps code and message and never guesses.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace fleetcore::grpc_util {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace fleetcore::grpc_util
