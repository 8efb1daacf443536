// Receives Postgres NOTIFY events on a set of channels, on its own connection and thread,
// and reconnects by itself when the connection drops.
//
//   auto listener = PgListener::Start(url, {"fleetcore_registry"},
//       [&](absl::string_view channel, absl::string_view payload) { cache.Drop(payload); },
//       [&] { cache.Clear(); });   // after a reconnect: events may have been missed
//
// Notifications are delivered in commit order, one at a time, on the listener's thread;
// callbacks must be quick and must not block. on_reconnect runs after every reconnection
// (not after the first connection), because NOTIFYs sent while disconnected are lost.
//
// Thread safety: construction and destruction from one thread; callbacks run on the
// listener thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include "absl/strings/string_view.h"
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace fleetcore::db {

class PgListener {
 public:
  using OnNotify = std::function<void(absl::string_view channel, absl::string_view payload)>;
  using OnReconnect = std::function<void()>;

  // Returns once the first connection listens on every channel, or UNAVAILABLE after
  // `connect_timeout` (the start-up wait).
  static absl::StatusOr<std::unique_ptr<PgListener>> Start(std::string url,
                                                           std::vector<std::string> channels,
                                                           OnNotify on_notify,
                                                           OnReconnect on_reconnect);
  ~PgListener();

  bool connected() const { return connected_.load(); }
  // How many times the connection was re-established after a loss.
  int reconnects() const { return reconnects_.load(); }

 private:
  PgListener(std::string url, std::vector<std::string> channels, OnNotify on_notify,
             OnReconnect on_reconnect);
  void Run();

  const std::string url_;
  const std::vector<std::string> channels_;
  const OnNotify on_notify_;
  const OnReconnect on_reconnect_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::atomic<int> reconnects_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace fleetcore::db
