#include "common/net/percent.h"

#include "absl/strings/str_split.h"

namespace fleetcore::net {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool PercentDecode(absl::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool DecodeQuery(absl::string_view query, bool plus_is_space,
                 std::vector<std::pair<std::string, std::string>>* out) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    std::string name, value;
    if (!PercentDecode(pair.substr(0, eq), plus_is_space, &name) ||
        !PercentDecode(eq == absl::string_view::npos ? "" : pair.substr(eq + 1), plus_is_space,
                       &value)) {
      return false;
    }
    pairs.emplace_back(std::move(name), std::move(value));
  }
  for (auto& p : pairs) out->push_back(std::move(p));
  return true;
}

}  // namespace fleetcore::net
