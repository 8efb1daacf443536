// The asynchronous gRPC calls an object has started, so that it can cancel them and wait
// for their callbacks before it goes away (at shutdown, calls waiting for a peer that is
// down would otherwise call back into a destroyed object).
//
//   struct Call { grpc::ClientContext ctx; ...; InFlightCalls::Ticket ticket{calls, &ctx}; };
//   the callback deletes the Call when done with the object: the ticket leaves the set;
//   the owner's destructor (or InFlightCalls's own, as the owner's last member) cancels
//   what is left and waits.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/client_context.h"

namespace fleetcore::gateway {

class InFlightCalls {
 public:
  ~InFlightCalls() { CancelAndWait(); }

  void Add(grpc::ClientContext* ctx) {
    absl::MutexLock l(&mu_);
    calls_.insert(ctx);
  }
  void Remove(grpc::ClientContext* ctx) {
    absl::MutexLock l(&mu_);
    calls_.erase(ctx);
  }
  void CancelAndWait() {
    absl::MutexLock l(&mu_);
    for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
    mu_.Await(absl::Condition(
        +[](absl::flat_hash_set<grpc::ClientContext*>* c) { return c->empty(); }, &calls_));
  }

 // Registers a call for as long as it lives (a member after the ClientContext).
  class Ticket {
   public:
    Ticket(InFlightCalls* calls, grpc::ClientContext* ctx) : calls_(calls), ctx_(ctx) {
      calls_->Add(ctx_);
    }
    ~Ticket() { calls_->Remove(ctx_); }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    InFlightCalls* calls_;
    grpc::ClientContext* ctx_;
  };

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

// One asynchronous unary call: its context, messages and ticket. The callback deletes it.
template <typename Req, typename Resp>
struct TrackedCall {
  explicit TrackedCall(InFlightCalls* calls) : ticket(calls, &ctx) {}
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
  InFlightCalls::Ticket ticket;
  // Released before the ticket (e.g. a connection's request slot).
  std::shared_ptr<void> hold;
};

}  // namespace fleetcore::gateway
