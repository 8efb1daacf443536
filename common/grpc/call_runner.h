// Runs the body of every unary RPC of a service: checks the admin token, assigns a request
// id, moves the body onto a worker pool (bodies block on Postgres and must not run on
// gRPC's callback threads), and finishes the call with the body's status mapped once.
//
//   grpc::ServerUnaryReactor* RegistryService::CreateThing(
//       grpc::CallbackServerContext* ctx, const CreateThingRequest* req,
//       CreateThingResponse* resp) {
//     return calls_.Run(ctx, [this, req, resp](const CallContext& call) -> absl::Status {
//       FLEETCORE_ASSIGN_OR_RETURN(Thing thing, core_.CreateThing(ToDomain(*req)));
//       ToProto(thing, resp);
//       return absl::OkStatus();
//     });
//   }
//
// Status handling: INTERNAL details are logged with the request id and replaced by a
// generic message; UNAVAILABLE is logged as a warning; other codes pass through unchanged.
// A body (or fast path) that throws a std::exception fails its call with INTERNAL the same
// way; the service goes on.
// A full worker queue answers RESOURCE_EXHAUSTED. The request id comes from the client's
// x-request-id metadata when it sent a sane one, and is echoed in the response metadata.
//
// Thread safety: Run may be called concurrently; the body runs on a worker thread.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/grpc/executor.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"

namespace fleetcore::grpc_util {

// What an RPC body knows about its call.
struct CallContext {
  std::string request_id;
  absl::string_view method;
  std::string peer;
};

// The admin API's bearer token. Empty disables the check (development only; the service
// warns at start). Comparison is constant-time.
class AdminAuth {
 public:
  explicit AdminAuth(std::string token);
  bool enabled() const { return !token_digest_.empty(); }
  // UNAUTHENTICATED with a message that says what to send.
  absl::Status Check(const grpc::ServerContextBase& ctx) const;

 private:
  std::string token_digest_;  // SHA-256 of the token
};

class CallRunner {
 public:
  // `auth` may be null (no check). Nothing is owned.
  CallRunner(Executor* executor, const AdminAuth* auth);

  template <typename Fn>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, Fn fn) {
    return Dispatch(ctx, std::nullopt,
                    absl::AnyInvocable<absl::Status(const CallContext&) &&>(std::move(fn)));
  }

  // Like Run, but first tries `fast` on the calling (gRPC) thread: when it can answer without
  // blocking (from memory) it returns the status and the call finishes at once, with no hop
  // to the worker pool; when it returns nullopt, `body` runs on the pool as in Run.
  template <typename Fast, typename Fn>
  grpc::ServerUnaryReactor* RunWithFastPath(grpc::CallbackServerContext* ctx, Fast fast, Fn fn) {
    return Dispatch(ctx,
                    absl::FunctionRef<std::optional<absl::Status>()>(fast),
                    absl::AnyInvocable<absl::Status(const CallContext&) &&>(std::move(fn)));
  }

  // For calls answered from memory: `fn` (returning absl::Status) always runs on the calling
  // thread, never queued behind the pool's blocking work.
  template <typename Fn>
  grpc::ServerUnaryReactor* RunInline(grpc::CallbackServerContext* ctx, Fn fn) {
    return RunWithFastPath(
        ctx, [&fn]() -> std::optional<absl::Status> { return fn(); },
        [](const CallContext&) -> absl::Status {
          return absl::InternalError("unreachable: answered on the calling thread");
        });
  }

  // For calls answered later (waiting on something else than a thread): `fn` runs on the
  // calling thread and calls `finish` once, then or later from any thread, after writing
  // the response. The status is mapped as Run maps it.
  using Finish = std::function<void(absl::Status)>;
  template <typename Fn>
  grpc::ServerUnaryReactor* RunAsync(grpc::CallbackServerContext* ctx, Fn fn) {
    return DispatchAsync(ctx,
                         absl::AnyInvocable<void(const CallContext&, Finish) &&>(std::move(fn)));
  }

 private:
  // The call's context, or nullopt when the admin token refused it (the call is finished).
  std::optional<CallContext> Begin(grpc::CallbackServerContext* ctx,
                                   grpc::ServerUnaryReactor* reactor);
  // Finishes the call with `status`, INTERNAL details logged and replaced.
  static void End(grpc::ServerUnaryReactor* reactor, const CallContext& call,
                  absl::Status status);
  grpc::ServerUnaryReactor* DispatchAsync(
      grpc::CallbackServerContext* ctx,
      absl::AnyInvocable<void(const CallContext&, Finish) &&> fn);
  grpc::ServerUnaryReactor* Dispatch(
      grpc::CallbackServerContext* ctx,
      std::optional<absl::FunctionRef<std::optional<absl::Status>()>> fast,
      absl::AnyInvocable<absl::Status(const CallContext&) &&> body);

  std::string NewRequestId();

  Executor* executor_;
  const AdminAuth* auth_;
  // Request ids are "<random per-process prefix>-<counter>": unique across replicas and
  // restarts, and cheap enough for every call (a UUID costs a CSPRNG call and formatting).
  std::string id_prefix_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace fleetcore::grpc_util
