#include "services/gateway/io_thread.h"

#include <time.h>

#include <utility>

#include "absl/time/clock.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "common/log/log.h"

namespace fleetcore::gateway {
namespace {

thread_local IoThread* current_thread = nullptr;

}  // namespace

struct IoThread::Timer {
  explicit Timer(boost::asio::io_context& c) : timer(c) {}
  boost::asio::steady_timer timer;
};

IoThread::IoThread(int index, std::function<void(IoThread&)> on_tick)
    : index_(index),
      on_tick_(std::move(on_tick)),
      // One thread runs this context: Asio can skip some locking.
      context_(std::make_unique<boost::asio::io_context>(1)),
      tick_timer_(std::make_unique<Timer>(*context_)),
      scratch_(64 * 1024),
      now_ms_(absl::ToUnixMillis(absl::Now())) {}

IoThread::~IoThread() { Stop(); }

IoThread* IoThread::Current() { return current_thread; }

int64_t IoThread::MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void IoThread::Start() {
  ScheduleTick();
  thread_ = std::thread([this] {
    current_thread = this;
    auto work = boost::asio::make_work_guard(*context_);
    for (;;) {
      try {
        context_->run();
        break;
      } catch (const std::exception& e) {
        // A handler threw: a bug. Log it and keep serving the other connections.
        log::Error("I/O handler failed", {{"thread", index_}, {"error", e.what()}});
      }
    }
    current_thread = nullptr;
  });
}

void IoThread::Stop() {
  if (!thread_.joinable()) return;
  context_->stop();
  thread_.join();
}

void IoThread::ScheduleTick() {
  tick_timer_->timer.expires_after(std::chrono::seconds(1));
  tick_timer_->timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    now_ms_ = absl::ToUnixMillis(absl::Now());
    // A client may unregister itself while ticking (a timeout closes it).
    std::vector<ThreadClient*> clients(clients_.begin(), clients_.end());
    for (ThreadClient* c : clients) {
      if (clients_.contains(c)) c->Tick(now_ms_);
    }
    if (on_tick_) on_tick_(*this);
    ScheduleTick();
  });
}

void IoThread::Post(std::function<void()> fn) { boost::asio::post(*context_, std::move(fn)); }

void IoThread::RunAfter(int64_t delay_ms, std::function<void()> fn) {
  auto timer = std::make_shared<Timer>(*context_);
  timer->timer.expires_after(std::chrono::milliseconds(delay_ms));
  timer->timer.async_wait([timer, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec) fn();
  });
}

void IoThread::RequestFlush(std::shared_ptr<ThreadClient> client) {
  if (current_thread == this) {
    flushes_.push_back(std::move(client));
    if (in_event_) return;  // the EventScope runs it
    if (!flushes_posted_) {
      flushes_posted_ = true;
      boost::asio::post(*context_, [this] { RunFlushes(); });
    }
    return;
  }
  bool post = false;
  {
    absl::MutexLock l(&inbox_mu_);
    inbox_.push_back(std::move(client));
    if (!inbox_posted_) post = inbox_posted_ = true;
  }
  if (post) boost::asio::post(*context_, [this] { DrainInbox(); });
}

void IoThread::RunFlushes() {
  flushes_posted_ = false;
  std::vector<std::shared_ptr<ThreadClient>> batch;
  batch.swap(flushes_);
  for (const std::shared_ptr<ThreadClient>& c : batch) c->Flush();
  // Keep the vector's storage for the next batch.
  batch.clear();
  if (flushes_.empty()) flushes_.swap(batch);
}

void IoThread::DrainInbox() {
  std::vector<std::shared_ptr<ThreadClient>> batch;
  {
    absl::MutexLock l(&inbox_mu_);
    batch.swap(inbox_);
    inbox_posted_ = false;
  }
  for (const std::shared_ptr<ThreadClient>& c : batch) c->Flush();
}

}  // namespace fleetcore::gateway
