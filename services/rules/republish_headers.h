// A republish action's MQTT 5 headers (AWS's MqttHeaders) onto the message it publishes.
#pragma once

#include <array>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fleetcore/gateway/v1/gateway.pb.h"
#include "fleetcore/rules/v1/rules.pb.h"

namespace fleetcore::rules {

// The single-valued headers of `h` by AWS's name, in order (user properties aside).
std::array<std::pair<const char*, const std::string*>, 5> RepublishHeaderFields(
    const fleetcore::rules::v1::RepublishHeaders& h);

// Sets the property that header `name` ("payloadFormatIndicator", "contentType",
// "responseTopic", "correlationData", "messageExpiry") gives, from its substituted value.
// INVALID_ARGUMENT saying what the value must be (UTF8_DATA or UNSPECIFIED_BYTES, base64, a
// number of seconds).
absl::Status SetRepublishHeader(absl::string_view name, const std::string& value,
                                fleetcore::gateway::v1::PublishRequest* out);

// Every header of `h`, each value through `substitute` (its templates); an empty header is
// left out. Errors name the header: "headers.messageExpiry: ...".
absl::Status ApplyRepublishHeaders(
    const fleetcore::rules::v1::RepublishHeaders& h,
    absl::FunctionRef<absl::StatusOr<std::string>(const std::string&)> substitute,
    fleetcore::gateway::v1::PublishRequest* out);

}  // namespace fleetcore::rules
