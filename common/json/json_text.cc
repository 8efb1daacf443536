#include "common/json/json_text.h"

#include <vector>

#include "nlohmann/json.hpp"

namespace fleetcore::json_text {

std::string JsonText(const nlohmann::json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string AnswerPayload(const nlohmann::json& doc, bool cbor) {
  if (!cbor) return JsonText(doc);
  const std::vector<uint8_t> bytes = nlohmann::json::to_cbor(doc);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace fleetcore::json_text
