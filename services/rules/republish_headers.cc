#include "services/rules/republish_headers.h"

#include <cstdint>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fleetcore::rules {

namespace gw = ::fleetcore::gateway::v1;

absl::Status SetRepublishHeader(absl::string_view name, const std::string& value,
                                gw::PublishRequest* out) {
  if (name == "payloadFormatIndicator") {
    if (value == "UTF8_DATA") {
      out->set_payload_format(gw::UTF8_DATA);
    } else if (value == "UNSPECIFIED_BYTES") {
      out->set_payload_format(gw::UNSPECIFIED_BYTES);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("is UTF8_DATA or UNSPECIFIED_BYTES, not \"", value, "\""));
    }
  } else if (name == "contentType") {
    out->set_content_type(value);
  } else if (name == "responseTopic") {
    out->set_response_topic(value);
  } else if (name == "correlationData") {
    std::string bytes;
    if (!absl::Base64Unescape(value, &bytes)) {
      return absl::InvalidArgumentError(absl::StrCat("is base64, not \"", value, "\""));
    }
    out->set_correlation_data(std::move(bytes));
  } else if (name == "messageExpiry") {
    int64_t seconds = 0;
    if (!absl::SimpleAtoi(value, &seconds) || seconds < 0 || seconds > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("is a number of seconds (0 to 4294967295), not \"", value, "\""));
    }
    out->set_message_expiry_seconds(seconds);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("is not a header: ", name));
  }
  return absl::OkStatus();
}

std::array<std::pair<const char*, const std::string*>, 5> RepublishHeaderFields(
    const fleetcore::rules::v1::RepublishHeaders& h) {
  return {{{"payloadFormatIndicator", &h.payload_format_indicator()},
           {"contentType", &h.content_type()},
           {"responseTopic", &h.response_topic()},
           {"correlationData", &h.correlation_data()},
           {"messageExpiry", &h.message_expiry()}}};
}

absl::Status ApplyRepublishHeaders(
    const fleetcore::rules::v1::RepublishHeaders& h,
    absl::FunctionRef<absl::StatusOr<std::string>(const std::string&)> substitute,
    gw::PublishRequest* out) {
  for (const auto& [name, text] : RepublishHeaderFields(h)) {
    if (text->empty()) continue;
    absl::StatusOr<std::string> value = substitute(*text);
    absl::Status s = value.ok() ? SetRepublishHeader(name, *value, out) : value.status();
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("headers.", name, ": ", s.message()));
  }
  for (int i = 0; i < h.user_properties_size(); ++i) {
    absl::StatusOr<std::string> key = substitute(h.user_properties(i).key());
    absl::StatusOr<std::string> value =
        key.ok() ? substitute(h.user_properties(i).value()) : key.status();
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("headers.userProperties[", i, "]: ", value.status().message()));
    }
    gw::UserProperty* p = out->add_user_properties();
    p->set_key(*std::move(key));
    p->set_value(*std::move(value));
  }
  return absl::OkStatus();
}

}  // namespace fleetcore::rules
