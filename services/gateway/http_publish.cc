#include "services/gateway/http_publish.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/json_text.h"
#include "common/mqtt/codec.h"
#include "common/net/percent.h"
#include "common/status/public_message.h"
#include "nlohmann/json.hpp"

namespace fleetcore::gateway {
namespace {

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

}  // namespace

bool AddFormParams(absl::string_view form, std::map<std::string, std::string>* out) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (!net::DecodeQuery(form, /*plus_is_space=*/true, &pairs)) return false;
  for (auto& [name, value] : pairs) (*out)[name] = std::move(value);
  return true;
}

absl::string_view AwsErrorType(int status) {
  switch (status) {
    case 400: return "InvalidRequestException";
    case 401: return "UnauthorizedException";
    case 403: return "ForbiddenException";
    case 404: return "ResourceNotFoundException";
    case 405: return "MethodNotAllowedException";
    case 409: return "ConflictException";
    case 413: return "RequestEntityTooLargeException";
    case 415: return "UnsupportedDocumentEncodingException";
    case 429: return "ThrottlingException";
    case 500: return "InternalFailureException";
    case 503: return "ServiceUnavailableException";
    case 504: return "GatewayTimeoutException";
    default: return "";
  }
}

namespace {

// The query part of a user name ("dev?x-amz-customauthorizer-name=a&token=t"),
// percent-decoded with '+' kept (a base64 signature sent unencoded).
std::map<std::string, std::string> UsernameParams(absl::string_view username) {
  std::map<std::string, std::string> out;
  const size_t q = username.find('?');
  if (q == absl::string_view::npos) return out;
  for (absl::string_view kv : absl::StrSplit(username.substr(q + 1), '&', absl::SkipEmpty())) {
    const size_t eq = kv.find('=');
    std::string key, value;
    if (!net::PercentDecode(kv.substr(0, eq), /*plus_is_space=*/false, &key) ||
        !net::PercentDecode(eq == absl::string_view::npos ? "" : kv.substr(eq + 1),
                            /*plus_is_space=*/false, &value)) {
      continue;
    }
    out[key] = value;
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> AuthorizerParams(
    absl::string_view username, absl::string_view http_query,
    const std::map<std::string, std::string>* http_headers) {
  std::map<std::string, std::string> out = UsernameParams(username);
  if (!http_query.empty()) {
    for (auto& [k, v] : UsernameParams(absl::StrCat("?", http_query))) out.emplace(k, v);
  }
  if (http_headers != nullptr) {
    for (const auto& [k, v] : *http_headers) out.emplace(k, v);
  }
  return out;
}

absl::Status ReadMqtt5Headers(const HeaderLookup& headers, absl::string_view body, Message* m) {
  if (const std::string pfi = headers("x-amz-mqtt5-payload-format-indicator"); !pfi.empty()) {
    if (pfi == "UTF8_DATA") {
      m->payload_format_indicator = 1;
      if (!mqtt::ValidUtf8(body)) return Invalid("the payload is not the UTF-8 it says it is");
    } else if (pfi == "UNSPECIFIED_BYTES") {
      m->payload_format_indicator = 0;
    } else {
      return Invalid("x-amz-mqtt5-payload-format-indicator must be UNSPECIFIED_BYTES or UTF8_DATA");
    }
  }
  if (const std::string cd = headers("x-amz-mqtt5-correlation-data"); !cd.empty()) {
    std::string data;
    if (!absl::Base64Unescape(cd, &data)) {
      return Invalid("x-amz-mqtt5-correlation-data must be base64");
    }
    m->correlation_data = std::move(data);
  }
  if (const std::string up = headers("x-amz-mqtt5-user-properties"); !up.empty()) {
    std::string json;
    if (!absl::Base64Unescape(up, &json)) {
      return Invalid("x-amz-mqtt5-user-properties must be base64");
    }
    const nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_array()) {
      return Invalid("x-amz-mqtt5-user-properties must hold a JSON array of objects");
    }
    for (const nlohmann::json& item : doc) {
      if (!item.is_object()) {
        return Invalid("x-amz-mqtt5-user-properties must hold a JSON array of objects");
      }
      for (auto it = item.begin(); it != item.end(); ++it) {
        if (!it.value().is_string()) {
          return Invalid("x-amz-mqtt5-user-properties values must be strings");
        }
        m->user_properties.push_back({it.key(), it.value().get<std::string>()});
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Message>> ParseHttpPublish(absl::string_view target,
                                                          const HeaderLookup& headers,
                                                          std::string body,
                                                          const BrokerLimits& limits,
                                                          int64_t now_ms) {
  constexpr absl::string_view kPrefix = "/topics/";
  if (!absl::StartsWith(target, kPrefix)) {
    return absl::NotFoundError("no such resource; publish with POST /topics/{topic}");
  }
  target.remove_prefix(kPrefix.size());
  const size_t q = target.find('?');
  const absl::string_view path = target.substr(0, q);
  const absl::string_view query = q == absl::string_view::npos ? "" : target.substr(q + 1);

  auto m = std::make_shared<Message>();
  if (!net::PercentDecode(path, false, &m->topic) || m->topic.empty()) {
    return Invalid("the topic in the path is empty or badly URL-encoded");
  }
  if (!mqtt::ValidTopicName(m->topic) || !WithinTopicLimits(limits, m->topic) ||
      !ClientMayPublishTo(m->topic)) {
    return Invalid(absl::StrCat("topic \"", m->topic, "\" is not a valid topic to publish to (at most ",
                                limits.max_topic_bytes, " bytes and ", limits.max_topic_slashes,
                                " slashes, no wildcards, no reserved $ topic)"));
  }
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    std::string name, value;
    if (!net::PercentDecode(pair.substr(0, eq), true, &name) ||
        !net::PercentDecode(eq == absl::string_view::npos ? "" : pair.substr(eq + 1), true,
                            &value)) {
      return Invalid("badly URL-encoded query parameter");
    }
    if (name == "qos") {
      int qos;
      if (!absl::SimpleAtoi(value, &qos) || qos < 0 || qos > 1) {
        return Invalid("qos must be 0 or 1");
      }
      m->qos = static_cast<uint8_t>(qos);
    } else if (name == "retain") {
      if (value != "true" && value != "false") return Invalid("retain must be true or false");
      m->retain = value == "true";
    } else if (name == "contentType") {
      // An MQTT 5 UTF-8 string property: subscribers (and the rules) get it as such.
      if (!mqtt::ValidUtf8(value)) return Invalid("contentType must be UTF-8 text");
      m->content_type = value;
    } else if (name == "responseTopic") {
      if (!mqtt::ValidTopicName(value)) return Invalid("responseTopic is not a valid topic");
      m->response_topic = value;
    } else if (name == "messageExpiry") {
      int64_t seconds;
      if (!absl::SimpleAtoi(value, &seconds) || seconds < 0) {
        return Invalid("messageExpiry must be a number of seconds");
      }
      m->expires_at_ms = now_ms + std::clamp<int64_t>(seconds, 1, 604800) * 1000;
    } else {
      return Invalid(absl::StrCat("unknown query parameter \"", name, "\""));
    }
  }
  if (m->retain && m->topic[0] == '$') return Invalid("reserved topics cannot be retained");
  if (body.size() > limits.max_payload_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("payload of ", body.size(), " bytes is over the limit of ",
                     limits.max_payload_bytes));
  }
  if (absl::Status s = ReadMqtt5Headers(headers, body, m.get()); !s.ok()) return s;
  m->payload = std::move(body);
  Seal(m.get());
  return m;
}

HttpReply HttpPublishReply(const absl::Status& status, absl::string_view trace_id) {
  HttpReply reply;
  nlohmann::json body;
  body["message"] = status.ok() ? "OK" : PublicMessage(status);
  body["traceId"] = std::string(trace_id);
  // The message may quote the request (an unknown parameter's name): bytes that are not
  // UTF-8 become U+FFFD. nlohmann would throw on them, ending the gateway.
  reply.body = json_text::JsonText(body);
  switch (status.code()) {
    case absl::StatusCode::kOk: reply.status = 200; break;
    case absl::StatusCode::kInvalidArgument: reply.status = 400; break;
    case absl::StatusCode::kNotFound: reply.status = 404; break;
    case absl::StatusCode::kResourceExhausted: reply.status = 413; break;
    case absl::StatusCode::kUnauthenticated: reply.status = 401; break;
    case absl::StatusCode::kPermissionDenied: reply.status = 403; break;
    case absl::StatusCode::kUnavailable: reply.status = 503; break;
    default: reply.status = 500; break;
  }
  return reply;
}

}  // namespace fleetcore::gateway
