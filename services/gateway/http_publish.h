// HTTPS publish as AWS IoT Core serves it (its data plane's Publish):
//
//   POST /topics/{url-encoded topic}?qos=0|1&retain=true|false&contentType=..&
//        messageExpiry=N&responseTopic=..
//   x-amz-mqtt5-user-properties: base64 of [{"key": "value"}, ...]
//   x-amz-mqtt5-payload-format-indicator: UNSPECIFIED_BYTES | UTF8_DATA
//   x-amz-mqtt5-correlation-data: base64
//
// answered 200 {"message":"OK","traceId":"..."}, or an error status with
// {"message":"...","traceId":"..."}. Pure: the web transport does the I/O.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/gateway/broker_limits.h"
#include "services/gateway/message.h"

namespace fleetcore::gateway {

// Looks up a request header by lower-case name; empty when absent.
using HeaderLookup = std::function<std::string(absl::string_view name)>;

// The message a publish request carries. Errors: NOT_FOUND for a target outside
// /topics/, INVALID_ARGUMENT for a bad topic or parameter (the message says which),
// RESOURCE_EXHAUSTED for a payload over the limit.
absl::StatusOr<std::shared_ptr<Message>> ParseHttpPublish(absl::string_view target,
                                                          const HeaderLookup& headers,
                                                          std::string body,
                                                          const BrokerLimits& limits,
                                                          int64_t now_ms);

// The MQTT 5 properties AWS's data plane takes as headers (x-amz-mqtt5-user-properties,
// -payload-format-indicator, -correlation-data), checked against `body` and set on `*m`;
// INVALID_ARGUMENT says which is wrong.
absl::Status ReadMqtt5Headers(const HeaderLookup& headers, absl::string_view body, Message* m);

struct HttpReply {
  int status = 200;
  std::string body;  // JSON
};
// 200 for OK; 400, 404, 413, 500 ... for the error's code.
HttpReply HttpPublishReply(const absl::Status& status, absl::string_view trace_id);

// The AWS IoT data plane's error type for an HTTP status (`x-amzn-ErrorType`, from which the
// AWS SDKs raise their modeled exceptions: 404 ResourceNotFoundException, 409
// ConflictException, ...); empty for a status that has none.
absl::string_view AwsErrorType(int status);

// The parameters of a query string or an application/x-www-form-urlencoded body ('+' is a
// space; a repeated name keeps its last value), added to `*out`; false for a malformed escape.
bool AddFormParams(absl::string_view form, std::map<std::string, std::string>* out);

// The custom-authorizer values a client presented (authorizer name, token, signature), from
// its MQTT user name's query string ("dev?x-amz-customauthorizer-name=a&token=t"), an HTTP
// request's (or WebSocket upgrade's) query string, and its headers (may be null), the first
// found winning in that order. Values are percent-decoded and a '+' stays a '+': the AWS IoT
// Device SDKs put the base64 signature into the user name unencoded when it is given so
// (their WebSocket builders always do), and AWS accepts it.
std::map<std::string, std::string> AuthorizerParams(
    absl::string_view username, absl::string_view http_query,
    const std::map<std::string, std::string>* http_headers);

}  // namespace fleetcore::gateway
