#include <condition_variable>
#include <mutex>

#include "common/db/pg_listener.h"
#include "common/db/pg_pool.h"
#include "common/testing/status_matchers.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"

namespace fleetcore::db {
namespace {

using ::fleetcore::testing::TestDatabase;

// Collects notifications and reconnects, and waits (bounded) for them.
class Inbox {
 public:
  void Add(std::string channel, std::string payload) {
    std::lock_guard<std::mutex> lock(mu_);
    got_.emplace_back(std::move(channel), std::move(payload));
    cv_.notify_all();
  }
  void Reconnected() {
    std::lock_guard<std::mutex> lock(mu_);
    ++reconnects_;
    cv_.notify_all();
  }
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(15), [&] { return got_.size() >= n; });
  }
  bool WaitForReconnect() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(15), [&] { return reconnects_ > 0; });
  }
  std::vector<std::pair<std::string, std::string>> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> got_;
  int reconnects_ = 0;
};

void Send(const std::string& url, const std::string& channel, const std::string& payload) {
  pqxx::connection c(url);
  pqxx::work w(c);
  Notify(w, channel, payload);
  w.commit();
}

TEST(PgListenerTest, DeliversCommittedNotificationsOnly) {
  ASSERT_OK_AND_ASSIGN(auto db, TestDatabase::Create(false));
  Inbox inbox;
  ASSERT_OK_AND_ASSIGN(
      auto listener,
      PgListener::Start(db->url(), {"alpha", "beta"},
                        [&](absl::string_view ch, absl::string_view p) {
                          inbox.Add(std::string(ch), std::string(p));
                        },
                        [&] { inbox.Reconnected(); }));
  {
    pqxx::connection c(db->url());
    pqxx::work w(c);
    Notify(w, "alpha", "rolled back");
    w.abort();
  }
  Send(db->url(), "alpha", "one");
  Send(db->url(), "gamma", "not listened to");
  Send(db->url(), "beta", "two");
  ASSERT_TRUE(inbox.WaitFor(2));
  auto got = inbox.got();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::make_pair(std::string("alpha"), std::string("one")));
  EXPECT_EQ(got[1], std::make_pair(std::string("beta"), std::string("two")));
}

TEST(PgListenerTest, ReconnectsAfterItsConnectionIsKilled) {
  ASSERT_OK_AND_ASSIGN(auto db, TestDatabase::Create(false));
  Inbox inbox;
  ASSERT_OK_AND_ASSIGN(
      auto listener,
      PgListener::Start(db->url(), {"alpha"},
                        [&](absl::string_view ch, absl::string_view p) {
                          inbox.Add(std::string(ch), std::string(p));
                        },
                        [&] { inbox.Reconnected(); }));
  {
    pqxx::connection admin(db->url());
    pqxx::nontransaction n(admin);
    n.exec_params(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND "
        "pid <> pg_backend_pid()",
        db->name());
  }
  ASSERT_TRUE(inbox.WaitForReconnect());
  EXPECT_EQ(listener->reconnects(), 1);
  Send(db->url(), "alpha", "after");
  ASSERT_TRUE(inbox.WaitFor(1));
  EXPECT_EQ(inbox.got().back().second, "after");
}

}  // namespace
}  // namespace fleetcore::db
