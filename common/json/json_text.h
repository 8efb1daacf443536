// JSON text of a document that may hold strings from outside (a topic, a URL, a certificate
// field, a device's bytes): bytes that are not UTF-8 are written as U+FFFD. nlohmann's own
// dump() throws on them, and an exception on an I/O or gRPC thread ends the process.
//
//   reply.body = json_text::JsonText(body);
#pragma once

#include <string>

#include "nlohmann/json_fwd.hpp"

namespace fleetcore::json_text {

// Compact (no spaces), as dump() writes it.
std::string JsonText(const nlohmann::json& doc);

// A service's answer as a message payload, in its request's format: CBOR for AWS's /cbor
// request topics (strings written as they are), else JsonText.
std::string AnswerPayload(const nlohmann::json& doc, bool cbor);

}  // namespace fleetcore::json_text
