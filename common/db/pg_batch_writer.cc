#include "common/db/pg_batch_writer.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "pqxx/pqxx"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace fleetcore::db {

struct PgBatchWriter::Slot {
  std::string row;
  bool done = false;
  absl::StatusOr<bool> result = false;
};

PgBatchWriter::PgBatchWriter(PgPool* pool, Options options, prometheus::Registry* metrics)
    : pool_(pool), options_(std::move(options)) {
  if (metrics == nullptr) return;
  batch_rows_ = &prometheus::BuildHistogram()
                     .Name("fleetcore_db_batch_rows")
                     .Help("Rows written per statement by a group-commit writer.")
                     .Register(*metrics)
                     .Add({{"writer", options_.name}},
                          prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64});
}

absl::StatusOr<bool> PgBatchWriter::Write(std::string row) {
  Slot slot{.row = std::move(row)};
  // Wakes this caller only when its row is done or it may lead the next batch: absl::Mutex
  // evaluates the condition for each waiter, so a finished batch wakes only its own callers.
  struct Wake {
    const PgBatchWriter* w;
    const Slot* slot;
    bool operator()() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return slot->done || (w->in_flight_ < w->options_.max_in_flight && !w->queue_.empty());
    }
  } wake{this, &slot};
  absl::MutexLock lock(&mu_);
  queue_.push_back(&slot);
  for (;;) {
    mu_.Await(absl::Condition(&wake));
    if (slot.done) return slot.result;
    // Lead a batch: everything queued, up to max_batch, whoever's it is.
    const size_t n = std::min(queue_.size(), static_cast<size_t>(options_.max_batch));
    std::vector<Slot*> batch(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
    ++in_flight_;
    mu_.Unlock();
    Run(batch);
    mu_.Lock();
    --in_flight_;
    for (Slot* s : batch) s->done = true;
  }
}

void PgBatchWriter::Run(const std::vector<Slot*>& batch) {
  if (batch_rows_ != nullptr) batch_rows_->Observe(static_cast<double>(batch.size()));
  size_t size = 2;
  for (const Slot* s : batch) size += s->row.size() + 1;
  std::string rows;
  rows.reserve(size);
  rows.push_back('[');
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i > 0) rows.push_back(',');
    rows.append(batch[i]->row);
  }
  rows.push_back(']');
  absl::flat_hash_set<int64_t> written;
  absl::Status s = pool_->Query([&](pqxx::transaction_base& tx) -> absl::Status {
    const pqxx::result r = tx.exec_prepared(options_.statement, rows);
    for (const pqxx::row& row : r) written.insert(row[0].as<int64_t>());
    return absl::OkStatus();
  });
  for (size_t i = 0; i < batch.size(); ++i) {
    if (s.ok()) {
      batch[i]->result = written.contains(static_cast<int64_t>(i) + 1);
    } else {
      batch[i]->result = s;
    }
  }
}

}  // namespace fleetcore::db
