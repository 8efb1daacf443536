// A fixed-size pool of libpqxx connections to one Postgres database, the transaction
// helpers every Pg*Store uses, and the start-up wait for Postgres.
//
//   FLEETCORE_ASSIGN_OR_RETURN(auto pool, PgPool::Create(db_options, metrics, prepare));
//   absl::Status s = pool->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
//     tx.exec_prepared("insert_thing", name, attrs);
//     return absl::OkStatus();
//   });
//
// Transact retries the whole body on serialization failure or deadlock (so the body must
// have no effect outside the transaction) and maps pqxx exceptions to Status:
//   broken connection, Postgres down        -> UNAVAILABLE (the connection is replaced)
// An idle connection that Postgres closed (a restart) is replaced before use, not reported.
//   unique violation                        -> ALREADY_EXISTS
//   foreign-key violation                   -> FAILED_PRECONDITION
//   serialization failure after retries     -> ABORTED
//   anything else                           -> INTERNAL (details for the log)
// Query() runs the body without BEGIN/COMMIT: one round trip for single-statement reads.
//
// Thread safety: all methods may be called concurrently; a connection is used by one
// caller at a time.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/flag_set.h"
#include "pqxx/connection"
#include "pqxx/transaction_base"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Gauge;
}  // namespace prometheus

namespace fleetcore::db {

struct DbOptions {
  // libpq URL or keyword string; may carry a password, so it is treated as a secret.
  std::string url;
  // The password, when it comes separately (a Docker or Kubernetes secret file) rather
  // than inside url; ConnectionUrl() combines them.
  std::string password;
  int pool_size = 8;
  // How long start-up waits for Postgres to accept connections.
  absl::Duration connect_timeout = absl::Seconds(30);
  // How long a call waits for a free connection before UNAVAILABLE.
  absl::Duration acquire_timeout = absl::Seconds(5);
  // Postgres statement_timeout for every connection (0: none).
  absl::Duration statement_timeout = absl::Seconds(30);
  // Shown in pg_stat_activity.
  std::string application_name = "fleetcore";
};

// Registers --db-url (also --db-url-file), --db-password (also --db-password-file),
// --db-pool-size, --db-connect-timeout, --db-statement-timeout, and folds the password into
// the URL after parsing (see FinishFlags).
void RegisterFlags(config::FlagSet& flags, DbOptions* options);
// After parsing: moves a separately given password into url.
void FinishFlags(DbOptions* options);

// The URL with any password replaced by "***", for logs and errors.
std::string RedactUrl(absl::string_view url);

// `url` with `password` put in (percent-encoded in a URL, quoted in a keyword string);
// `url` unchanged when password is empty.
std::string WithPassword(absl::string_view url, absl::string_view password);

// Tries to connect until it succeeds or `timeout` passes, backing off from 100 ms to 2 s.
// UNAVAILABLE names the (redacted) URL, how long it tried and the last error.
absl::Status WaitForPostgres(const std::string& url, absl::Duration timeout);

enum class Isolation { kReadCommitted, kRepeatableRead, kSerializable };

// The Status for an exception thrown by libpqxx (see the table above).
absl::Status StatusFromPqxx(const std::exception& e);

// Queues a NOTIFY on `channel` within `tx`; Postgres delivers it when `tx` commits, and not
// at all when it rolls back. The payload must stay under 8000 bytes.
void Notify(pqxx::transaction_base& tx, absl::string_view channel, absl::string_view payload);

class PgPool {
 public:
  // Runs once on every new connection, e.g. to prepare statements.
  using Prepare = std::function<void(pqxx::connection_base&)>;

  // Waits for Postgres (connect_timeout), opens one connection to check the URL, and
  // registers fleetcore_db_* metrics when `metrics` is not null.
  static absl::StatusOr<std::unique_ptr<PgPool>> Create(const DbOptions& options,
                                                        prometheus::Registry* metrics,
                                                        Prepare prepare = nullptr);
  ~PgPool();

  using Body = absl::FunctionRef<absl::Status(pqxx::transaction_base&)>;
  absl::Status Transact(Body body, Isolation isolation = Isolation::kReadCommitted);
  absl::Status Query(Body body);

  int size() const { return options_.pool_size; }

 private:
  struct Conn;
  class Lease;
  explicit PgPool(DbOptions options, Prepare prepare);
  absl::StatusOr<std::unique_ptr<Conn>> Open();
  absl::StatusOr<std::unique_ptr<Conn>> Acquire();
  void Release(std::unique_ptr<Conn> conn, bool broken);
  template <typename Tx>
  absl::Status RunOnce(Body body, bool* retryable);

  const DbOptions options_;
  const Prepare prepare_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  int open_ = 0;  // connections that exist, idle or leased

  prometheus::Gauge* busy_gauge_ = nullptr;
  prometheus::Gauge* idle_gauge_ = nullptr;
  prometheus::Counter* retries_ = nullptr;
  prometheus::Counter* closed_ = nullptr;
  prometheus::Family<prometheus::Counter>* errors_ = nullptr;
};

}  // namespace fleetcore::db
