#include "common/json/json_text.h"

#include "nlohmann/json.hpp"

namespace fleetcore::json_text {

std::string JsonText(const nlohmann::json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fleetcore::json_text
