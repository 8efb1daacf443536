// A fixed pool of worker threads with a bounded queue, for work that blocks (Postgres
// queries, outbound HTTP) and so must not run on gRPC's callback threads or an Asio loop.
//
//   Executor pool(8, /*max_queued=*/10000);
//   if (!pool.TrySubmit([] { ... })) { /* overloaded: answer RESOURCE_EXHAUSTED */ }
//
// Thread safety: TrySubmit may be called from any thread. The destructor runs what is
// queued, then joins the workers.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace fleetcore::grpc_util {

class Executor {
 public:
  Executor(int threads, size_t max_queued);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // False when the queue is full; the task is then not run.
  bool TrySubmit(absl::AnyInvocable<void() &&> task);

  size_t queued() const;

 private:
  void Work();

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<absl::AnyInvocable<void() &&>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fleetcore::grpc_util
