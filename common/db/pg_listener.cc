#include "common/db/pg_listener.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/db/pg_pool.h"
#include "common/log/log.h"
#include "pqxx/except"
#include "pqxx/notification"

namespace fleetcore::db {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel,
           const PgListener::OnNotify& on_notify)
      : pqxx::notification_receiver(conn, channel), on_notify_(on_notify) {}

  void operator()(const std::string& payload, int /*backend_pid*/) override {
    on_notify_(channel(), payload);
  }

 private:
  const PgListener::OnNotify& on_notify_;
};

}  // namespace

PgListener::PgListener(std::string url, std::vector<std::string> channels, OnNotify on_notify,
                       OnReconnect on_reconnect)
    : url_(std::move(url)),
      channels_(std::move(channels)),
      on_notify_(std::move(on_notify)),
      on_reconnect_(std::move(on_reconnect)) {}

absl::StatusOr<std::unique_ptr<PgListener>> PgListener::Start(std::string url,
                                                              std::vector<std::string> channels,
                                                              OnNotify on_notify,
                                                              OnReconnect on_reconnect) {
  if (absl::Status s = WaitForPostgres(url, absl::Seconds(30)); !s.ok()) {
    return s;
  }
  std::unique_ptr<PgListener> l(new PgListener(std::move(url), std::move(channels),
                                               std::move(on_notify), std::move(on_reconnect)));
  l->thread_ = std::thread([p = l.get()] { p->Run(); });
  // Wait (bounded) for the first LISTEN so no event after Start() returns is missed.
  bool ready;
  {
    std::unique_lock<std::mutex> lock(l->mu_);
    ready = l->cv_.wait_for(lock, std::chrono::seconds(30), [&] { return l->connected_.load(); });
  }
  if (!ready) {
    return absl::UnavailableError(absl::StrCat("NOTIFY listener could not LISTEN on ",
                                               RedactUrl(l->url_), " within 30s"));
  }
  return l;
}

PgListener::~PgListener() {
  stop_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
}

void PgListener::Run() {
  bool first = true;
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stop_) {
    try {
      pqxx::connection conn(url_);
      std::vector<std::unique_ptr<Receiver>> receivers;
      for (const std::string& ch : channels_) {
        receivers.push_back(std::make_unique<Receiver>(conn, ch, on_notify_));
      }
      // Receivers LISTEN lazily; make sure LISTEN has been sent before reporting ready.
      conn.get_notifs();
      {
        std::lock_guard<std::mutex> lock(mu_);
        connected_ = true;
      }
      cv_.notify_all();
      backoff = absl::Milliseconds(100);
      if (!first) {
        reconnects_.fetch_add(1);
        log::Info("NOTIFY listener reconnected", {{"database", RedactUrl(url_)}});
        if (on_reconnect_) {
          on_reconnect_();
        }
      }
      first = false;
      while (!stop_) {
        conn.await_notification(0, 200000);
      }
      receivers.clear();
    } catch (const std::exception& e) {
      if (connected_) {
        log::Warn("NOTIFY listener lost its connection; reconnecting",
                  {{"database", RedactUrl(url_)}, {"error", e.what()}});
      }
      connected_ = false;
      std::this_thread::sleep_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(backoff)));
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  }
  connected_ = false;
}

}  // namespace fleetcore::db
