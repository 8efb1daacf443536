#include "common/nesting/nesting.h"

#include <cstdint>
#include <vector>

namespace fleetcore::nesting {

bool JsonNestingWithin(absl::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

bool CborNestingWithin(absl::string_view bytes, int max_depth) {
  constexpr uint64_t kIndefinite = UINT64_MAX;
  // Items still expected by each open container (kIndefinite: until a break).
  std::vector<uint64_t> open;
  size_t i = 0;
  // Counts one finished item against the innermost definite containers, closing those
  // that are complete.
  auto finished = [&open] {
    while (!open.empty() && open.back() != kIndefinite) {
      if (--open.back() > 0) return;
      open.pop_back();
    }
  };
  while (i < bytes.size()) {
    const uint8_t initial = static_cast<uint8_t>(bytes[i++]);
    const int major = initial >> 5;
    const int info = initial & 0x1f;
    if (initial == 0xff) {  // break: ends the innermost indefinite container
      if (open.empty() || open.back() != kIndefinite) return false;
      open.pop_back();
      finished();
      continue;
    }
    uint64_t argument = static_cast<uint64_t>(info);
    bool indefinite = false;
    if (info >= 24 && info <= 27) {
      const size_t n = size_t{1} << (info - 24);
      if (bytes.size() - i < n) return false;
      argument = 0;
      for (size_t k = 0; k < n; ++k) argument = (argument << 8) | static_cast<uint8_t>(bytes[i++]);
    } else if (info == 31) {
      if (major < 2 || major > 5) return false;  // no indefinite integers or tags
      indefinite = true;
    } else if (info > 27) {
      return false;
    }
    switch (major) {
      case 0:
      case 1:
      case 7:
        finished();
        break;
      case 2:
      case 3:
        if (indefinite) {
          open.push_back(kIndefinite);
          if (open.size() > static_cast<size_t>(max_depth)) return false;
        } else {
          if (bytes.size() - i < argument) return false;
          i += static_cast<size_t>(argument);
          finished();
        }
        break;
      case 4:
      case 5:
      case 6: {
        uint64_t items = kIndefinite;
        if (!indefinite) {
          // Every item takes a byte at least: more than the bytes left cannot be CBOR.
          const uint64_t left = bytes.size() - i;
          if (major == 6) {
            items = 1;
          } else if (argument > left || (major == 5 && argument > left / 2)) {
            return false;
          } else {
            items = major == 5 ? argument * 2 : argument;
          }
        }
        if (items == 0) {  // an empty array or map is a level too
          if (open.size() + 1 > static_cast<size_t>(max_depth)) return false;
          finished();
          break;
        }
        open.push_back(items);
        if (open.size() > static_cast<size_t>(max_depth)) return false;
        break;
      }
    }
  }
  return true;
}

}  // namespace fleetcore::nesting
