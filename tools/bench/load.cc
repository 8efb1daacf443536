#include "tools/bench/load.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace fleetcore::bench {
namespace {

using Clock = std::chrono::steady_clock;

class Recorder {
 public:
  void Record(Clock::time_point scheduled, bool ok) {
    const auto now = Clock::now();
    if (!measuring_.load(std::memory_order_relaxed) || scheduled < window_start_) {
      return;
    }
    const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(now - scheduled).count();
    std::lock_guard<std::mutex> lock(mu_);
    latencies_.push_back(us);
    if (!ok) ++errors_;
  }
  void StartWindow() {
    window_start_ = Clock::now();
    measuring_ = true;
  }
  void StopWindow() { measuring_ = false; }
  Clock::time_point window_start() const { return window_start_; }

  nlohmann::json Summary(double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    std::sort(latencies_.begin(), latencies_.end());
    auto pct = [&](double p) -> int64_t {
      if (latencies_.empty()) return 0;
      return latencies_[std::min(latencies_.size() - 1,
                                 static_cast<size_t>(p * static_cast<double>(latencies_.size())))];
    };
    return {{"seconds", seconds},
            {"calls", latencies_.size()},
            {"errors", errors_},
            {"calls_per_second", static_cast<double>(latencies_.size()) / seconds},
            {"p50_us", pct(0.50)},
            {"p99_us", pct(0.99)},
            {"p999_us", pct(0.999)}};
  }

 private:
  std::atomic<bool> measuring_{false};
  Clock::time_point window_start_;
  std::mutex mu_;
  std::vector<int64_t> latencies_;
  int64_t errors_ = 0;
};

// Counts calls in flight and lets the pacing thread wait for a free slot.
class Slots {
 public:
  explicit Slots(int n) : free_(n), total_(n) {}
  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++free_;
    }
    cv_.notify_all();
  }
  void WaitAllFree() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return free_ == total_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
  const int total_;
};

}  // namespace

nlohmann::json RunLoad(const LoadOptions& o, const IssueFn& issue) {
  Recorder recorder;
  Slots slots(o.concurrency);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> seq{0};
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::milliseconds(absl::ToInt64Milliseconds(o.warmup));
  const auto measure_to =
      measure_from + std::chrono::milliseconds(absl::ToInt64Milliseconds(o.duration));

  // One pacing thread starts every call, so a call that fails inline cannot recurse. Closed
  // loop: start whenever a slot is free. Rate mode: start at the scheduled time (or as soon
  // after it as a slot frees), and count latency from the schedule.
  std::thread pacer([&] {
    const auto interval = std::chrono::duration<double>(o.rate > 0 ? 1.0 / o.rate : 0.0);
    for (int64_t i = 0; !stop.load(); ++i) {
      auto scheduled = Clock::now();
      if (o.rate > 0) {
        scheduled =
            start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
        std::this_thread::sleep_until(scheduled);
      }
      slots.Acquire();
      if (o.rate <= 0) scheduled = Clock::now();
      issue(seq.fetch_add(1), [&, scheduled](bool ok) {
        recorder.Record(scheduled, ok);
        slots.Release();
      });
    }
  });
  std::this_thread::sleep_until(measure_from);
  recorder.StartWindow();
  std::this_thread::sleep_until(measure_to);
  recorder.StopWindow();
  const double seconds = std::chrono::duration<double>(Clock::now() - recorder.window_start()).count();
  stop = true;
  pacer.join();
  slots.WaitAllFree();
  nlohmann::json out = recorder.Summary(seconds);
  out["concurrency"] = o.concurrency;
  if (o.rate > 0) out["offered_rate"] = o.rate;
  return out;
}

}  // namespace fleetcore::bench
