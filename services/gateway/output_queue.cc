#include "services/gateway/output_queue.h"

#include <utility>

namespace fleetcore::gateway {
namespace {

// An owned chunk takes appends up to this size; then a new one starts, so no single
// string grows (and reallocates) without bound under a burst.
constexpr size_t kChunkBytes = 64 * 1024;

}  // namespace

void OutputQueue::CloseTail() {
  if (!tail_open_) return;
  closed_bytes_ += chunks_.back().bytes.size();
  tail_open_ = false;
}

std::string& OutputQueue::Tail() {
  if (!tail_open_ || chunks_.back().bytes.size() >= kChunkBytes) {
    CloseTail();
    chunks_.emplace_back();
    tail_open_ = true;
  }
  return chunks_.back().bytes;
}

void OutputQueue::AppendPayload(const MessagePtr& message, bool gather) {
  const std::string& payload = message->payload;
  if (!gather || payload.size() < kReferenceFrom) {
    Tail().append(payload);
    return;
  }
  CloseTail();
  chunks_.push_back(Chunk{.payload = message});
  closed_bytes_ += payload.size();
}

size_t OutputQueue::Peek(iovec* out, size_t max) {
  size_t n = 0;
  size_t offset = head_offset_;
  for (size_t i = head_; i < chunks_.size() && n < max; ++i) {
    const absl::string_view v = chunks_[i].view();
    if (v.size() > offset) {
      out[n].iov_base = const_cast<char*>(v.data() + offset);
      out[n].iov_len = v.size() - offset;
      ++n;
    }
    offset = 0;
  }
  return n;
}

absl::string_view OutputQueue::Front() {
  for (size_t i = head_; i < chunks_.size(); ++i) {
    const absl::string_view v = chunks_[i].view();
    const size_t offset = i == head_ ? head_offset_ : 0;
    if (v.size() > offset) return v.substr(offset);
  }
  return {};
}

void OutputQueue::Consume(size_t n) {
  while (n > 0 && head_ < chunks_.size()) {
    const size_t chunk_size = chunks_[head_].view().size();
    const size_t available = chunk_size - head_offset_;
    if (n < available) {
      head_offset_ += n;
      return;
    }
    n -= available;
    if (tail_open_ && head_ + 1 == chunks_.size()) {
      head_offset_ = chunk_size;  // the open tail is written: everything is
      break;
    }
    closed_bytes_ -= chunk_size;
    head_offset_ = 0;
    ++head_;
  }
  if (size() == 0) {
    Clear();
  } else if (head_ >= 64) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
}

void OutputQueue::Clear() {
  chunks_.clear();
  if (chunks_.capacity() > 16) chunks_.shrink_to_fit();
  head_ = 0;
  head_offset_ = 0;
  closed_bytes_ = 0;
  tail_open_ = false;
}

}  // namespace fleetcore::gateway
