// One I/O thread: an Asio io_context run by one thread, with the connections pinned to it.
// The gateway runs one per core. Work for a connection from another thread (a message
// for its session, a kick) arrives through RequestFlush/Post and is batched: a burst of
// deliveries costs one wake-up of the thread, and each connection flushes once per
// batch, so its socket sees one write for many packets.
//
// Thread safety: Post and RequestFlush from any thread; the rest on the thread itself.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace fleetcore::gateway {

// What a thread does with the connections flushed or ticked on it.
class ThreadClient {
 public:
  virtual ~ThreadClient() = default;
  // Moves the session's waiting messages into the socket.
  virtual void Flush() = 0;
  // Once a second: timeouts.
  virtual void Tick(int64_t now_ms) = 0;
};

// Per-thread counters, written only by their thread and added to the metrics each second.
struct ThreadStats {
  uint64_t received[3] = {0, 0, 0};  // PUBLISH by QoS
  uint64_t sent[3] = {0, 0, 0};
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t dropped_too_large = 0;    // over a client's Maximum Packet Size
  uint64_t dropped_expired = 0;
  uint64_t enriched = 0;  // PUBLISH given its thing type's propagating attributes
  // Publish-to-delivery latency, by bucket (GatewayMetrics::kLatencyBounds) and sum.
  std::vector<double> latency_buckets;
  double latency_sum = 0;
};

class IoThread {
 public:
  // `on_tick` runs on the thread once a second, after the connections' ticks (metrics).
  IoThread(int index, std::function<void(IoThread&)> on_tick);
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  boost::asio::io_context& context() { return *context_; }
  int index() const { return index_; }

  void Start();
  // Stops the io_context and joins the thread.
  void Stop();

  // The I/O thread running the caller, or null.
  static IoThread* Current();

  // Runs `fn` on the thread. Any thread.
  void Post(std::function<void()> fn);
  // Runs `fn` on the thread after `delay_ms` (a rare path: each call makes a timer). On
  // the thread.
  void RunAfter(int64_t delay_ms, std::function<void()> fn);
  // Flushes `client` on the thread after the current batch. Any thread.
  void RequestFlush(std::shared_ptr<ThreadClient> client);

  // Marks the handling of one socket event on this thread: the flushes it requests run
  // when it ends, without a round through the io_context (a post costs the reactor an
  // extra epoll_wait per event).
  class EventScope {
   public:
    explicit EventScope(IoThread* thread) : thread_(thread), outer_(!thread->in_event_) {
      thread_->in_event_ = true;
    }
    ~EventScope() {
      if (!outer_) return;
      thread_->in_event_ = false;
      if (!thread_->flushes_.empty()) thread_->RunFlushes();
    }
    EventScope(const EventScope&) = delete;
    EventScope& operator=(const EventScope&) = delete;

   private:
    IoThread* thread_;
    bool outer_;
  };

  // Connections to tick (their timeouts). On the thread.
  void Register(ThreadClient* client) { clients_.insert(client); }
  void Unregister(ThreadClient* client) { clients_.erase(client); }
  size_t connection_count() const { return clients_.size(); }

  // A buffer for reads, shared by all connections of the thread: a connection only keeps
  // the bytes of a partial packet.
  char* scratch() { return scratch_.data(); }
  size_t scratch_size() const { return scratch_.size(); }

  // Unix milliseconds, refreshed by every tick and batch: coarse, cheap.
  int64_t now_ms() const { return now_ms_; }
  // Monotonic nanoseconds, read now.
  static int64_t MonotonicNs();

  ThreadStats& stats() { return stats_; }

 private:
  void ScheduleTick();
  void RunFlushes();
  void DrainInbox();

  const int index_;
  std::function<void(IoThread&)> on_tick_;
  std::unique_ptr<boost::asio::io_context> context_;
  struct Timer;
  std::unique_ptr<Timer> tick_timer_;
  std::thread thread_;
  std::vector<char> scratch_;
  int64_t now_ms_ = 0;
  ThreadStats stats_;

  absl::flat_hash_set<ThreadClient*> clients_;
  std::vector<std::shared_ptr<ThreadClient>> flushes_;
  bool flushes_posted_ = false;
  bool in_event_ = false;

  absl::Mutex inbox_mu_;
  std::vector<std::shared_ptr<ThreadClient>> inbox_ ABSL_GUARDED_BY(inbox_mu_);
  bool inbox_posted_ ABSL_GUARDED_BY(inbox_mu_) = false;
};

}  // namespace fleetcore::gateway
