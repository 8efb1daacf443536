// libFuzzer target: the nesting checks against nlohmann's parsers, on the same bytes read as
// JSON text and as CBOR. The checks must never crash, hang or read out of bounds, and must
// never be laxer than the parsers: a document the parser reads at depth D fails the check
// below D. (The check may be stricter: it counts what nlohmann reads past, like text after a
// NUL byte, and subtrees a duplicate key overwrites; nesting_test.cc checks it is exact on
// ordinary documents.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/nesting/nesting.h"
#include "nlohmann/json.hpp"

namespace {

using json = nlohmann::json;

// The depth of `doc` (a scalar is 0, [] is 1), walked without recursion.
int Depth(const json& doc) {
  int deepest = 0;
  std::vector<std::pair<const json*, int>> todo{{&doc, 0}};
  while (!todo.empty()) {
    auto [j, d] = todo.back();
    todo.pop_back();
    if (!j->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (const json& child : *j) todo.push_back({&child, d + 1});
  }
  return deepest;
}

void Require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  // Parsed only when shallow enough for the parser's own recursion (and the fuzzer's stack).
  constexpr int kLimit = 200;
  if (fleetcore::nesting::JsonNestingWithin(input, kLimit)) {
    json doc = json::parse(input.begin(), input.end(), nullptr, false);
    if (!doc.is_discarded()) {
      const int d = Depth(doc);
      if (d > 0) Require(!fleetcore::nesting::JsonNestingWithin(input, d - 1));
    }
  }
  if (fleetcore::nesting::CborNestingWithin(input, kLimit)) {
    json doc = json::from_cbor(input, /*strict=*/true, /*allow_exceptions=*/false);
    if (!doc.is_discarded()) {
      const int d = Depth(doc);
      if (d > 0) Require(!fleetcore::nesting::CborNestingWithin(input, d - 1));
    }
  }
  return 0;
}
