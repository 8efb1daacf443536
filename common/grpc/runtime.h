// Process-wide settings every fleetcore binary applies first thing in main().
#pragma once

namespace fleetcore::grpc_util {

// Turns off Abseil's mutex deadlock detection. Debian's Abseil is built without NDEBUG, so
// it runs the detector on every absl::Mutex lock, and gRPC locks on every call: measured
// as a few percent of a gRPC server's CPU. Lock-order bugs are found by tests built
// against a debug Abseil, not in production.
void ConfigureRuntime();

}  // namespace fleetcore::grpc_util
