// Collects the events a store announces with Postgres NOTIFY, for tests that check what a
// change announced:
//
//   NotifyCollector<PolicyEvent> events(db->url(), kPolicyChannel, &PgPolicyStore::ParseEvent);
//   ... changes ...
//   std::vector<PolicyEvent> got = events.WaitFor(3);   // bounded wait
//
// A payload `parse` rejects fails the test.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/db/pg_listener.h"
#include "gtest/gtest.h"

namespace fleetcore::testing {

template <typename Event>
class NotifyCollector {
 public:
  using Parse = std::function<std::optional<Event>(absl::string_view payload)>;

  NotifyCollector(const std::string& url, const std::string& channel, Parse parse,
                  std::function<void(const Event&)> also = nullptr)
      : parse_(std::move(parse)), also_(std::move(also)) {
    auto listener = db::PgListener::Start(
        url, {channel},
        [this](absl::string_view, absl::string_view payload) {
          std::optional<Event> e = parse_(payload);
          ASSERT_TRUE(e.has_value()) << "unparsable NOTIFY payload: " << payload;
          if (also_) also_(*e);
          std::lock_guard<std::mutex> lock(mu_);
          events_.push_back(*std::move(e));
          cv_.notify_all();
        },
        nullptr);
    if (!listener.ok()) {
      ADD_FAILURE() << listener.status();
      return;
    }
    listener_ = std::move(*listener);
  }

  // The events so far, oldest first, once at least `n` have arrived (or after 10 s).
  std::vector<Event> WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return events_.size() >= n; });
    return events_;
  }

 private:
  Parse parse_;
  std::function<void(const Event&)> also_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  // Last: stopped first, before what its callback uses goes away.
  std::unique_ptr<db::PgListener> listener_;
};

}  // namespace fleetcore::testing
