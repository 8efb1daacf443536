// Group commit for single-row writes that many callers make at the same time: each
// caller's row joins the next batch, one statement writes the whole batch in one commit,
// and each caller learns whether its own row was written.
//
//   // Prepared on every connection: one json parameter, the batch's rows; returns the
//   // 1-based position of every row it wrote, e.g.
//   //   UPDATE t SET v = r.v
//   //   FROM ROWS FROM (json_to_recordset($1) AS (k text, v bigint, old bigint))
//   //        WITH ORDINALITY AS r(k, v, old, i)
//   //   WHERE t.k = r.k AND t.v = r.old RETURNING r.i
//   PgBatchWriter writer(pool, {.statement = "t_store_batch", .name = "t"}, metrics);
//   absl::StatusOr<bool> written = writer.Write(R"({"k":"a","v":2,"old":1})");
//
// Why: a commit costs Postgres a WAL flush and a round trip's worth of work, and a
// statement its parse-bind-execute overhead, whatever the row. With the shadow service's
// 16 concurrent writers, Postgres's CPU per update fell by a third (docs/benchmarks.md).
//
// There is no batching thread and no timer: the caller that finds fewer than
// `max_in_flight` batches running takes everything queued (up to `max_batch` rows, its own
// included if still queued) and runs it; the others wait for the batch that holds their
// row. A lone caller therefore writes at once, and batches grow only while earlier ones
// are in Postgres. A failed statement fails every row of its batch with its status (the
// batch is one transaction: none of it was written).
//
// Thread safety: Write may be called concurrently; it blocks.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/db/pg_pool.h"

namespace prometheus {
class Histogram;
class Registry;
}  // namespace prometheus

namespace fleetcore::db {

class PgBatchWriter {
 public:
  struct Options {
    // The prepared statement: one json parameter, returns the written rows' positions.
    std::string statement;
    // The writer's name, the label of its metrics.
    std::string name;
    int max_batch = 64;
    int max_in_flight = 2;
  };

  // `metrics` may be null; otherwise fleetcore_db_batch_rows{writer} (rows per batch).
  PgBatchWriter(PgPool* pool, Options options, prometheus::Registry* metrics);

  // `row` is one JSON object. Blocks until the batch holding it has run: true when the
  // statement wrote it, false when the statement's condition left it out.
  absl::StatusOr<bool> Write(std::string row);

 private:
  struct Slot;
  void Run(const std::vector<Slot*>& batch);

  PgPool* const pool_;
  const Options options_;
  prometheus::Histogram* batch_rows_ = nullptr;
  absl::Mutex mu_;
  std::deque<Slot*> queue_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fleetcore::db
