// The bytes a connection has yet to write: encoded packet headers and small payloads in
// owned chunks, and large payloads by reference to their shared Message (the fan-out
// path: one payload, many sockets, no copy per subscriber). Empty, it owns no memory, so
// idle connections stay small.
//
// Thread safety: none; one connection's thread.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "services/gateway/message.h"

namespace fleetcore::gateway {

class OutputQueue {
 public:
  // Payloads from this size on are referenced rather than copied (when gathering).
  static constexpr size_t kReferenceFrom = 1024;

  // The chunk being appended to, for encoders that write into a std::string.
  std::string& Tail();
  void Append(absl::string_view bytes) { Tail().append(bytes.data(), bytes.size()); }
  // Appends `message`'s payload: by reference when `gather` and it is large, else copied.
  void AppendPayload(const MessagePtr& message, bool gather);

  bool empty() const { return size() == 0; }
  // Bytes waiting.
  size_t size() const {
    return closed_bytes_ + (tail_open_ ? chunks_.back().bytes.size() : 0) - head_offset_;
  }

  // Fills up to `max` iovecs with the bytes from the front; returns how many.
  size_t Peek(iovec* out, size_t max);
  // The first contiguous run of bytes.
  absl::string_view Front();
  // Drops `n` written bytes from the front.
  void Consume(size_t n);
  // Frees everything (the connection is gone).
  void Clear();

 private:
  struct Chunk {
    std::string bytes;    // owned bytes, or
    MessagePtr payload;   // a referenced payload
    absl::string_view view() const {
      return payload != nullptr ? absl::string_view(payload->payload) : absl::string_view(bytes);
    }
  };
  void CloseTail();

  std::vector<Chunk> chunks_;
  size_t head_ = 0;          // first chunk not yet written
  size_t head_offset_ = 0;   // bytes of it already written
  size_t closed_bytes_ = 0;  // bytes of the chunks from head_ on, but an open tail
  bool tail_open_ = false;   // the last chunk is owned and still takes appends
};

}  // namespace fleetcore::gateway
