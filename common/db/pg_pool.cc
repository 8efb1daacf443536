#include "common/db/pg_pool.h"

#include <poll.h>

#include <chrono>
#include <random>
#include <regex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log/log.h"
#include "pqxx/except"
#include "pqxx/nontransaction"
#include "pqxx/transaction"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace fleetcore::db {
namespace {

constexpr int kMaxAttempts = 5;

}  // namespace

struct PgPool::Conn {
  std::unique_ptr<pqxx::connection> conn;
};

void RegisterFlags(config::FlagSet& flags, DbOptions* o) {
  flags.AddSecret("db-url", &o->url,
                  "Postgres connection URL, e.g. postgresql://user:pass@127.0.0.1:5432/fleetcore.");
  flags.AddSecret("db-password", &o->password,
                  "Postgres password, when --db-url carries none (e.g. from a secret file).");
  flags.AddInt("db-pool-size", &o->pool_size, "Postgres connections in the pool.", 1, 512);
  flags.AddDuration("db-connect-timeout", &o->connect_timeout,
                    "How long start-up waits for Postgres to accept connections.");
  flags.AddDuration("db-statement-timeout", &o->statement_timeout,
                    "Postgres statement_timeout for every query (0s: none).");
}

void FinishFlags(DbOptions* o) {
  o->url = WithPassword(o->url, o->password);
  o->password.clear();
}

std::string WithPassword(absl::string_view url, absl::string_view password) {
  if (password.empty()) {
    return std::string(url);
  }
  const size_t scheme = url.find("://");
  if (scheme == absl::string_view::npos) {
    std::string quoted;
    for (char c : password) {
      if (c == '\\' || c == '\'') quoted.push_back('\\');
      quoted.push_back(c);
    }
    return absl::StrCat(url, " password='", quoted, "'");
  }
  std::string encoded;
  for (unsigned char c : password) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      encoded.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&encoded, "%%%02X", c);
    }
  }
  const size_t start = scheme + 3;
  size_t end = url.find_first_of("/?", start);
  if (end == absl::string_view::npos) end = url.size();
  absl::string_view authority = url.substr(start, end - start);
  const size_t at = authority.rfind('@');
  std::string user;
  absl::string_view host = authority;
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = authority.substr(0, at);
    user = std::string(userinfo.substr(0, userinfo.find(':')));
    host = authority.substr(at + 1);
  }
  return absl::StrCat(url.substr(0, start), user, ":", encoded, "@", host, url.substr(end));
}

std::string RedactUrl(absl::string_view url) {
  std::string s(url);
  // URL form: scheme://user:password@host
  static const std::regex kUrlPassword(R"(^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@]*@)");
  s = std::regex_replace(s, kUrlPassword, "$1:***@");
  // Keyword form and URL query: password=... up to the next space or &.
  static const std::regex kKeywordPassword(R"((password=)('[^']*'|[^ &]*))");
  s = std::regex_replace(s, kKeywordPassword, "$1***");
  return s;
}

absl::Status StatusFromPqxx(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat("database unavailable: ", e.what()));
  }
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(
        "database connection lost during commit; the change may or may not have been applied");
  }
  if (dynamic_cast<const pqxx::unique_violation*>(&e) != nullptr) {
    return absl::AlreadyExistsError(e.what());
  }
  if (dynamic_cast<const pqxx::foreign_key_violation*>(&e) != nullptr) {
    return absl::FailedPreconditionError(e.what());
  }
  if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr ||
      dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) {
    return absl::AbortedError(
        absl::StrCat("concurrent update conflict, retry the request: ", e.what()));
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e); sql != nullptr) {
    // 57014: statement timeout / cancel; 57P01..57P03: server shutting down or starting.
    const std::string& state = sql->sqlstate();
    if (state == "57014") {
      return absl::DeadlineExceededError(absl::StrCat("database query timed out: ", e.what()));
    }
    if (state.rfind("57P", 0) == 0 || state.rfind("08", 0) == 0) {
      return absl::UnavailableError(absl::StrCat("database unavailable: ", e.what()));
    }
    return absl::InternalError(absl::StrCat("SQL error ", state, ": ", e.what(),
                                            " in query: ", sql->query()));
  }
  return absl::InternalError(absl::StrCat("database error: ", e.what()));
}

void Notify(pqxx::transaction_base& tx, absl::string_view channel, absl::string_view payload) {
  tx.exec_params("SELECT pg_notify($1, $2)", std::string(channel), std::string(payload));
}

absl::Status WaitForPostgres(const std::string& url, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(100);
  std::string last_error;
  for (;;) {
    try {
      pqxx::connection conn(url);
      return absl::OkStatus();
    } catch (const std::exception& e) {
      last_error = e.what();
      // libpq ends its messages with a newline.
      while (!last_error.empty() && (last_error.back() == '\n' || last_error.back() == ' ')) {
        last_error.pop_back();
      }
    }
    if (absl::Now() + backoff > deadline) {
      return absl::UnavailableError(absl::StrCat(
          "cannot connect to Postgres at ", RedactUrl(url), " within ",
          absl::FormatDuration(timeout), ": ", last_error,
          " (is Postgres running, and are --db-url / FLEETCORE_DB_URL right?)"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(backoff)));
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

PgPool::PgPool(DbOptions options, Prepare prepare)
    : options_(std::move(options)), prepare_(std::move(prepare)) {}

PgPool::~PgPool() = default;

absl::StatusOr<std::unique_ptr<PgPool>> PgPool::Create(const DbOptions& options,
                                                       prometheus::Registry* metrics,
                                                       Prepare prepare) {
  if (options.url.empty()) {
    return absl::InvalidArgumentError("no database URL: set --db-url or FLEETCORE_DB_URL");
  }
  if (absl::Status s = WaitForPostgres(options.url, options.connect_timeout); !s.ok()) {
    return s;
  }
  std::unique_ptr<PgPool> pool(new PgPool(options, std::move(prepare)));
  if (metrics != nullptr) {
    auto& conns = prometheus::BuildGauge()
                      .Name("fleetcore_db_pool_connections")
                      .Help("Postgres connections of the pool, by state.")
                      .Register(*metrics);
    pool->busy_gauge_ = &conns.Add({{"state", "busy"}});
    pool->idle_gauge_ = &conns.Add({{"state", "idle"}});
    pool->retries_ = &prometheus::BuildCounter()
                          .Name("fleetcore_db_transaction_retries_total")
                          .Help("Transactions retried after a serialization failure or deadlock.")
                          .Register(*metrics)
                          .Add({});
    pool->closed_ = &prometheus::BuildCounter()
                         .Name("fleetcore_db_pool_closed_connections_total")
                         .Help("Idle connections found closed by Postgres (a restart, a "
                               "failover, a terminated backend) and replaced before use.")
                         .Register(*metrics)
                         .Add({});
    pool->errors_ = &prometheus::BuildCounter()
                         .Name("fleetcore_db_errors_total")
                         .Help("Database calls that failed, by status code.")
                         .Register(*metrics);
  }
  // Open one connection now so a wrong URL, password or database fails at start.
  auto first = pool->Open();
  if (!first.ok()) {
    return first.status();
  }
  std::lock_guard<std::mutex> lock(pool->mu_);
  pool->open_ = 1;
  pool->idle_.push_back(std::move(*first));
  if (pool->idle_gauge_ != nullptr) {
    pool->idle_gauge_->Set(1);
  }
  return pool;
}

absl::StatusOr<std::unique_ptr<PgPool::Conn>> PgPool::Open() {
  try {
    auto c = std::make_unique<Conn>();
    c->conn = std::make_unique<pqxx::connection>(options_.url);
    pqxx::nontransaction setup(*c->conn);
    setup.exec(absl::StrCat("SET application_name = ", setup.quote(options_.application_name)));
    setup.exec(absl::StrCat("SET statement_timeout = ",
                            absl::ToInt64Milliseconds(options_.statement_timeout)));
    setup.commit();
    if (prepare_) {
      prepare_(*c->conn);
    }
    return c;
  } catch (const std::exception& e) {
    return StatusFromPqxx(e);
  }
}

namespace {

// True when Postgres has closed an idle connection: it sent its last message (a restart's
// "terminating connection due to administrator command") or the socket reached EOF. An
// idle connection of the pool has nothing else to read, so anything readable means closed.
bool ClosedByServer(const pqxx::connection& c) {
  const int fd = c.sock();
  if (fd < 0) return true;
  pollfd p{.fd = fd, .events = POLLIN | POLLRDHUP, .revents = 0};
  return ::poll(&p, 1, 0) != 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgPool::Conn>> PgPool::Acquire() {
  for (;;) {
    std::unique_ptr<Conn> idle;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const bool got = cv_.wait_for(
          lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.acquire_timeout)),
          [&] { return !idle_.empty() || open_ < options_.pool_size; });
      if (!got) {
        return absl::UnavailableError(absl::StrCat(
            "no database connection free within ", absl::FormatDuration(options_.acquire_timeout),
            " (all ", options_.pool_size, " busy); retry later or raise --db-pool-size"));
      }
      if (!idle_.empty()) {
        idle = std::move(idle_.back());
        idle_.pop_back();
        if (idle_gauge_ != nullptr) idle_gauge_->Decrement();
      } else {
        ++open_;
      }
    }
    if (idle != nullptr) {
      // After a Postgres restart or failover every idle connection is dead; finding out
      // here (one poll, no round trip) spares the caller an error on a healthy database.
      if (ClosedByServer(*idle->conn)) {
        if (closed_ != nullptr) closed_->Increment();
        {
          std::lock_guard<std::mutex> lock(mu_);
          --open_;
        }
        cv_.notify_one();
        continue;  // the next idle one, or a new connection
      }
      if (busy_gauge_ != nullptr) busy_gauge_->Increment();
      return idle;
    }
    auto c = Open();
    if (!c.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
      cv_.notify_one();
      return c.status();
    }
    if (busy_gauge_ != nullptr) busy_gauge_->Increment();
    return c;
  }
}

void PgPool::Release(std::unique_ptr<Conn> conn, bool broken) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (busy_gauge_ != nullptr) {
      busy_gauge_->Decrement();
    }
    if (broken || conn->conn == nullptr || !conn->conn->is_open()) {
      --open_;  // dropped; a later Acquire opens a fresh one
    } else {
      idle_.push_back(std::move(conn));
      if (idle_gauge_ != nullptr) {
        idle_gauge_->Increment();
      }
    }
  }
  cv_.notify_one();
}

template <typename Tx>
absl::Status PgPool::RunOnce(Body body, bool* retryable) {
  *retryable = false;
  auto conn = Acquire();
  if (!conn.ok()) {
    return conn.status();
  }
  bool broken = false;
  bool threw = true;
  absl::Status status;
  try {
    Tx tx(*(*conn)->conn);
    status = body(tx);
    if (status.ok()) {
      tx.commit();
    }
    // On error the transaction's destructor rolls back.
    threw = false;
  } catch (const pqxx::broken_connection& e) {
    broken = true;
    status = StatusFromPqxx(e);
  } catch (const pqxx::in_doubt_error& e) {
    broken = true;
    status = StatusFromPqxx(e);
  } catch (const pqxx::serialization_failure& e) {
    *retryable = true;
    status = StatusFromPqxx(e);
  } catch (const pqxx::deadlock_detected& e) {
    *retryable = true;
    status = StatusFromPqxx(e);
  } catch (const std::exception& e) {
    status = StatusFromPqxx(e);
    broken = status.code() == absl::StatusCode::kUnavailable;
  }
  Release(std::move(*conn), broken);
  if (threw && errors_ != nullptr) {
    errors_->Add({{"code", absl::StatusCodeToString(status.code())}}).Increment();
  }
  return status;
}

absl::Status PgPool::Transact(Body body, Isolation isolation) {
  absl::Status status;
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    bool retryable = false;
    switch (isolation) {
      case Isolation::kReadCommitted:
        status = RunOnce<pqxx::transaction<pqxx::read_committed>>(body, &retryable);
        break;
      case Isolation::kRepeatableRead:
        status = RunOnce<pqxx::transaction<pqxx::repeatable_read>>(body, &retryable);
        break;
      case Isolation::kSerializable:
        status = RunOnce<pqxx::transaction<pqxx::serializable>>(body, &retryable);
        break;
    }
    if (!retryable) {
      break;
    }
    if (retries_ != nullptr) {
      retries_->Increment();
    }
    // Randomised back-off keeps two retrying writers from colliding again.
    thread_local std::minstd_rand rng(std::random_device{}());
    std::this_thread::sleep_for(std::chrono::microseconds(500 * attempt + rng() % 1000));
  }
  return status;
}

absl::Status PgPool::Query(Body body) {
  bool retryable = false;
  return RunOnce<pqxx::nontransaction>(body, &retryable);
}

}  // namespace fleetcore::db
