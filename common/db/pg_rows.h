// What every Pg*Store repeats, said once: reading rows into domain values, running the
// statements of a transaction without letting pqxx exceptions reach domain code, and
// exact timestamp conversion.
//
//   absl::StatusOr<std::vector<Thing>> things =
//       db::QueryRows<Thing>(pool, "SELECT ... WHERE name > $1", ThingFromRow, after);
//
//   class PgTx : public RegistryTx, private db::TxStatements { ... Rows<T>(sql, fn, args) ... };
//   pool.Transact([&](pqxx::transaction_base& t) {
//     PgTx tx(t);
//     absl::Status s = body(tx);
//     tx.Finish();   // re-throws a serialization failure or a broken connection
//     return s;
//   });
//
// This header includes pqxx: include it from Pg*Store .cc files only.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/db/pg_pool.h"
#include "pqxx/pqxx"

namespace fleetcore::db {

// Timestamps travel as microseconds since the epoch: exact both ways.
inline int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
inline absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }
// SQL turning `micros`, an SQL expression of microseconds since the epoch, into a
// timestamptz (NULL stays NULL).
std::string TimestampFrom(absl::string_view micros);
// The same for parameter $n.
std::string TimestampParam(int n);
// SQL reading a timestamptz column as microseconds.
std::string MicrosOf(const std::string& column);

// A Postgres text[] literal of `values`, for "= ANY($1::text[])".
std::string TextArray(const std::vector<std::string>& values);

// Every row of `sql` mapped by `row_fn`, in one round trip outside a transaction.
template <typename T, typename RowFn, typename... Params>
absl::StatusOr<std::vector<T>> QueryRows(PgPool& pool, const std::string& sql, RowFn row_fn,
                                         const Params&... params) {
  std::vector<T> out;
  absl::Status s = pool.Query([&](pqxx::transaction_base& tx) -> absl::Status {
    for (const auto& row : tx.exec_params(sql, params...)) out.push_back(row_fn(row));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

// The first row of `sql` mapped by `row_fn`, or nullopt.
template <typename T, typename RowFn, typename... Params>
absl::StatusOr<std::optional<T>> QueryOne(PgPool& pool, const std::string& sql, RowFn row_fn,
                                          const Params&... params) {
  absl::StatusOr<std::vector<T>> rows = QueryRows<T>(pool, sql, row_fn, params...);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<T>();
  return std::optional<T>(std::move(rows->front()));
}

// The statements of one transaction. Exceptions never leave these methods: each returns a
// Status, and the failures the pool must act on (a broken connection, a serialization
// failure or deadlock to retry) are kept and re-thrown by Finish() once the domain code's
// body has returned.
class TxStatements {
 public:
  explicit TxStatements(pqxx::transaction_base& tx) : tx_(tx) {}

  template <typename... Params>
  absl::Status Exec(const std::string& sql, const Params&... params) {
    return Guard([&]() -> absl::Status {
      tx_.exec_params(sql, params...);
      return absl::OkStatus();
    });
  }
  // The same for a statement the connection prepared (the pool's Prepare hook).
  template <typename... Params>
  absl::Status ExecPrepared(const std::string& name, const Params&... params) {
    return Guard([&]() -> absl::Status {
      tx_.exec_prepared(name, params...);
      return absl::OkStatus();
    });
  }

  // The number of rows `sql` changed.
  template <typename... Params>
  absl::StatusOr<int64_t> ExecCount(const std::string& sql, const Params&... params) {
    return Guard([&]() -> absl::StatusOr<int64_t> {
      return static_cast<int64_t>(tx_.exec_params(sql, params...).affected_rows());
    });
  }

  template <typename T, typename RowFn, typename... Params>
  absl::StatusOr<std::vector<T>> Rows(const std::string& sql, RowFn row_fn,
                                      const Params&... params) {
    return Guard([&]() -> absl::StatusOr<std::vector<T>> {
      std::vector<T> out;
      for (const auto& row : tx_.exec_params(sql, params...)) out.push_back(row_fn(row));
      return out;
    });
  }

  template <typename T, typename RowFn, typename... Params>
  absl::StatusOr<std::optional<T>> One(const std::string& sql, RowFn row_fn,
                                       const Params&... params) {
    absl::StatusOr<std::vector<T>> rows = Rows<T>(sql, row_fn, params...);
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return std::optional<T>();
    return std::optional<T>(std::move(rows->front()));
  }

  // Runs `f`, turning an exception into a Status.
  template <typename F>
  auto Guard(F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const pqxx::broken_connection& e) {
      failure_ = std::current_exception();
      return StatusFromPqxx(e);
    } catch (const pqxx::in_doubt_error& e) {
      failure_ = std::current_exception();
      return StatusFromPqxx(e);
    } catch (const pqxx::transaction_rollback& e) {  // serialization failure, deadlock
      failure_ = std::current_exception();
      return StatusFromPqxx(e);
    } catch (const std::exception& e) {
      return StatusFromPqxx(e);
    }
  }

  // Re-throws the kept failure, if any, for the pool to retry or replace the connection.
  void Finish() {
    if (failure_ != nullptr) std::rethrow_exception(failure_);
  }

  pqxx::transaction_base& tx() { return tx_; }

 private:
  pqxx::transaction_base& tx_;
  std::exception_ptr failure_;
};

}  // namespace fleetcore::db
