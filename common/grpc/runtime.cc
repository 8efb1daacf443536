#include "common/grpc/runtime.h"

#include "absl/synchronization/mutex.h"

namespace fleetcore::grpc_util {

void ConfigureRuntime() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

}  // namespace fleetcore::grpc_util
