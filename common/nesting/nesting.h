// How deeply a JSON text or a CBOR item nests, checked without recursion and without
// parsing, before a parser that recurses (nlohmann's CBOR reader; its copies and dumps of
// JSON) sees untrusted input: a 128 KB payload can nest 64,000 JSON levels or 128,000 CBOR
// levels, enough to overflow a thread's stack.
//
//   if (!JsonNestingWithin(payload, 64)) return BadRequest("nested too deeply");
//   json doc = json::parse(payload, nullptr, false);
//
// Neither validates: text that is not JSON (or bytes that are not CBOR) passes when its
// brackets (items) stay within the depth, and the parser then refuses it.
#pragma once

#include "absl/strings/string_view.h"

namespace fleetcore::nesting {

// Whether the arrays and objects of `text` (brackets outside strings) nest at most
// `max_depth` levels.
bool JsonNestingWithin(absl::string_view text, int max_depth);

// Whether the arrays, maps, tags and indefinite-length strings of the CBOR items in
// `bytes` nest at most `max_depth` levels. False also for a header that cannot be read
// (reserved additional information, a length running past the end).
bool CborNestingWithin(absl::string_view bytes, int max_depth);

}  // namespace fleetcore::nesting
