#include "services/gateway/direct_api.h"

#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log/log.h"
#include "common/net/percent.h"
#include "nlohmann/json.hpp"
#include "services/gateway/authenticator.h"
#include "services/gateway/http_publish.h"

namespace fleetcore::gateway {
namespace {

constexpr absl::string_view kPrefix = "/connections/";
constexpr absl::string_view kSuffix = "/messages";

// The path's client id, percent-decoded; nullopt for another path.
std::optional<std::string> ClientIdOf(absl::string_view target) {
  absl::string_view path = target.substr(0, target.find('?'));
  if (!absl::ConsumePrefix(&path, kPrefix) || !absl::ConsumeSuffix(&path, kSuffix) ||
      path.empty() || absl::StrContains(path, "/")) {
    return std::nullopt;
  }
  std::string id;
  if (!net::PercentDecode(path, /*plus_is_space=*/false, &id)) return std::nullopt;
  return id;
}

// The request's query parameters and headers as a SendDirectMessageRequest.
absl::StatusOr<v1::SendDirectMessageRequest> ParseRequest(absl::string_view target,
                                                          const HeaderLookup& headers,
                                                          std::string body) {
  std::optional<std::string> client_id = ClientIdOf(target);
  if (!client_id.has_value()) {
    return absl::InvalidArgumentError("the client id in the path is badly URL-encoded");
  }
  v1::SendDirectMessageRequest req;
  req.set_client_id(*client_id);
  std::map<std::string, std::string> query;
  const size_t q = target.find('?');
  if (q != absl::string_view::npos && !AddFormParams(target.substr(q + 1), &query)) {
    return absl::InvalidArgumentError("the query string has a malformed %-escape");
  }
  for (const auto& [name, value] : query) {
    if (name == "topic") {
      req.set_topic(value);
    } else if (name == "confirmation") {
      if (value != "true" && value != "false") {
        return absl::InvalidArgumentError("confirmation must be true or false");
      }
      req.set_confirmation(value == "true");
    } else if (name == "timeout") {
      int seconds;
      if (!absl::SimpleAtoi(value, &seconds) || seconds < 1) {
        return absl::InvalidArgumentError("timeout must be a number of seconds, at least 1");
      }
      req.set_timeout_seconds(seconds);
    } else if (name == "contentType") {
      req.set_content_type(value);
    } else if (name == "responseTopic") {
      req.set_response_topic(value);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown query parameter \"", name, "\""));
    }
  }
  if (req.topic().empty()) return absl::InvalidArgumentError("the topic parameter is required");
  Message properties;
  if (absl::Status s = ReadMqtt5Headers(headers, body, &properties); !s.ok()) return s;
  if (properties.payload_format_indicator.has_value()) {
    req.set_payload_format(*properties.payload_format_indicator == 1 ? v1::UTF8_DATA
                                                                     : v1::UNSPECIFIED_BYTES);
  }
  if (properties.correlation_data.has_value()) {
    req.set_correlation_data(*properties.correlation_data);
  }
  for (const mqtt::UserProperty& p : properties.user_properties) {
    v1::UserProperty* u = req.add_user_properties();
    u->set_key(p.key);
    u->set_value(p.value);
  }
  req.set_payload(std::move(body));
  return req;
}

}  // namespace

bool DirectApi::Handles(absl::string_view target) const {
  absl::string_view path = target.substr(0, target.find('?'));
  return absl::StartsWith(path, kPrefix) && absl::EndsWith(path, kSuffix);
}

void DirectApi::Handle(absl::string_view method, absl::string_view target,
                       const HeaderLookup& headers, std::string body, const Identity* identity,
                       Done done) {
  const std::string trace_id = ids_->NewUuid();
  // Errors as the publish API's, and AWS's codes for those it has not: 429 for a client
  // whose queue is full, 504 for no PUBACK in time.
  auto reply = [done, trace_id](const absl::Status& status, bool delivering) {
    if (status.code() == absl::StatusCode::kDeadlineExceeded) {
      // The client's doing, not a server failure: said as it is (our own words, ASCII).
      const nlohmann::json b{{"message", std::string(status.message())}, {"traceId", trace_id}};
      return done(504, b.dump());
    }
    HttpReply r = HttpPublishReply(status, trace_id);
    if (delivering && status.code() == absl::StatusCode::kResourceExhausted) r.status = 429;
    done(r.status, std::move(r.body));
  };
  if (method != "POST") {
    HttpReply r = HttpPublishReply(
        absl::InvalidArgumentError("send a direct message with POST"), trace_id);
    return done(405, std::move(r.body));
  }
  absl::StatusOr<v1::SendDirectMessageRequest> req =
      ParseRequest(target, headers, std::move(body));
  if (!req.ok()) return reply(req.status(), false);
  if (identity != nullptr) {
    const policy::Decision d = identity->Decide(policy::Action::kSendDirectMessage,
                                                req->client_id(), {}, "", req->topic());
    if (!d.allowed()) {
      log::Info("action denied", {{"principal", identity->principal()},
                                  {"action", "iot:SendDirectMessage"},
                                  {"resource", req->client_id()},
                                  {"topic", req->topic()},
                                  {"reason", identity->Explain(d)}});
      return reply(absl::PermissionDeniedError(absl::StrCat(
                       "not authorized to send direct messages to client \"", req->client_id(),
                       "\" on \"", req->topic(), "\" (iot:SendDirectMessage)")),
                   false);
    }
  }
  direct_->Send(*req, [reply](absl::Status s) { reply(s, true); });
}

}  // namespace fleetcore::gateway
