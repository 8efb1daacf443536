#include "services/gateway/connections_api.h"

#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log/log.h"
#include "common/net/listen_address.h"
#include "common/net/percent.h"
#include "common/pagination/page_token.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "services/gateway/authenticator.h"
#include "services/gateway/http_publish.h"

namespace fleetcore::gateway {
namespace {

constexpr absl::string_view kPrefix = "/connections/";
constexpr char kSubscriptionsPageQuery[] = "subscriptions";

// /connections/{clientId}[/{resource}]?{query}
struct Target {
  std::string client_id;
  std::string resource;  // "", "subscriptions" or "messages"
  std::map<std::string, std::string> query;
};

absl::StatusOr<Target> ParseTarget(absl::string_view target) {
  const size_t q = target.find('?');
  absl::string_view path = target.substr(0, q);
  absl::ConsumePrefix(&path, kPrefix);
  Target t;
  const size_t slash = path.find('/');
  if (slash != absl::string_view::npos) t.resource = std::string(path.substr(slash + 1));
  if (!net::PercentDecode(path.substr(0, slash), /*plus_is_space=*/false, &t.client_id)) {
    return absl::InvalidArgumentError("the client id in the path is badly URL-encoded");
  }
  if (absl::Status s = CheckApiClientId(t.client_id); !s.ok()) return s;
  if (q != absl::string_view::npos && !AddFormParams(target.substr(q + 1), &t.query)) {
    return absl::InvalidArgumentError("the query string has a malformed %-escape");
  }
  return t;
}

// A true|false query parameter (false when absent), or INVALID_ARGUMENT.
absl::StatusOr<bool> Flag(const Target& t, const std::string& name) {
  auto it = t.query.find(name);
  if (it == t.query.end() || it->second == "false") return false;
  if (it->second == "true") return true;
  return absl::InvalidArgumentError(absl::StrCat(name, " must be true or false"));
}

// INVALID_ARGUMENT naming a query parameter the call does not take.
absl::Status OnlyParameters(const Target& t, std::initializer_list<absl::string_view> known) {
  for (const auto& [name, value] : t.query) {
    bool ok = false;
    for (absl::string_view k : known) ok = ok || name == k;
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("unknown query parameter \"", name, "\""));
    }
  }
  return absl::OkStatus();
}

// The direct message the query parameters and headers describe.
absl::StatusOr<v1::SendDirectMessageRequest> DirectRequest(const Target& t,
                                                           const HeaderLookup& headers,
                                                           std::string body) {
  if (absl::Status s = OnlyParameters(
          t, {"topic", "confirmation", "timeout", "contentType", "responseTopic"});
      !s.ok()) {
    return s;
  }
  v1::SendDirectMessageRequest req;
  req.set_client_id(t.client_id);
  absl::StatusOr<bool> confirmation = Flag(t, "confirmation");
  if (!confirmation.ok()) return confirmation.status();
  req.set_confirmation(*confirmation);
  for (const auto& [name, value] : t.query) {
    if (name == "topic") {
      req.set_topic(value);
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

// Splits "ip:port" ("[ip]:port" for IPv6) into `out`'s `ip_key` and `port_key`; nothing
// when it is not an address ("unknown").
void PutAddress(absl::string_view address, const char* ip_key, const char* port_key,
                nlohmann::json* out) {
  absl::StatusOr<net::HostPort> hp = net::ParseHostPort(address);
  if (!hp.ok()) return;
  (*out)[ip_key] = std::move(hp->host);
  (*out)[port_key] = hp->port;
}

int64_t Millis(const google::protobuf::Timestamp& t) {
  return google::protobuf::util::TimeUtil::TimestampToMilliseconds(t);
}

// AWS's GetConnection answer.
nlohmann::json ConnectionJson(const std::string& client_id,
                              const pb::DescribeConnectionResponse& d, bool socket) {
  nlohmann::json out{{"clientId", client_id}, {"connected", d.connected()}};
  if (d.connected()) {
    const pb::Connection& c = d.connection();
    out["cleanSession"] = c.clean_start();
    out["keepAliveDuration"] = c.keep_alive_seconds();
    out["connectedSince"] = Millis(c.connected_at());
    if (!c.thing_name().empty()) out["thingName"] = c.thing_name();
    if (socket) {
      PutAddress(c.remote_address(), "sourceIp", "sourcePort", &out);
      PutAddress(c.local_address(), "targetIp", "targetPort", &out);
    }
  } else {
    out["cleanSession"] = !d.session().persistent();
    if (d.session().has_disconnected_at()) {
      out["disconnectedSince"] = Millis(d.session().disconnected_at());
    }
    if (!d.session().disconnect_reason().empty()) {
      out["disconnectReason"] = d.session().disconnect_reason();
    }
  }
  if (d.session().persistent()) out["sessionExpiry"] = d.session().session_expiry_seconds();
  return out;
}

}  // namespace

bool ConnectionsApi::Handles(absl::string_view target) const {
  return absl::StartsWith(target, kPrefix);
}

void ConnectionsApi::Handle(absl::string_view method, absl::string_view target,
                            const HeaderLookup& headers, std::string body,
                            const Identity* identity, Done done) {
  const std::string trace_id = ids_->NewUuid();
  // Errors as the publish API's, and AWS's codes for those it has not: 429 for a client
  // whose queue is full or a DeleteConnection over its quota (`busy`: RESOURCE_EXHAUSTED is
  // not a payload too large there), 504 for no PUBACK in time.
  auto fail = [done, trace_id](const absl::Status& status, bool busy = false) {
    if (status.code() == absl::StatusCode::kDeadlineExceeded) {
      // The client's doing, not a server failure: said as it is (our own words, ASCII).
      const nlohmann::json b{{"message", std::string(status.message())}, {"traceId", trace_id}};
      return done(504, b.dump());
    }
    HttpReply r = HttpPublishReply(status, trace_id);
    if (busy && status.code() == absl::StatusCode::kResourceExhausted) r.status = 429;
    done(r.status, std::move(r.body));
  };
  absl::StatusOr<Target> t = ParseTarget(target);
  if (!t.ok()) return fail(t.status());

  policy::Action action;
  if (t->resource.empty()) {
    if (method != "GET" && method != "DELETE") {
      return done(405, HttpPublishReply(absl::InvalidArgumentError(
                                            "a connection is read with GET, ended with DELETE"),
                                        trace_id)
                           .body);
    }
    action = method == "GET" ? policy::Action::kGetConnection : policy::Action::kDeleteConnection;
  } else if (t->resource == "subscriptions" || t->resource == "messages") {
    const bool subscriptions = t->resource == "subscriptions";
    if (method != (subscriptions ? "GET" : "POST")) {
      return done(405, HttpPublishReply(absl::InvalidArgumentError(absl::StrCat(
                                            subscriptions ? "GET" : "POST", " only")),
                                        trace_id)
                           .body);
    }
    action = subscriptions ? policy::Action::kListSubscriptions
                           : policy::Action::kSendDirectMessage;
  } else {
    return fail(absl::NotFoundError(
        "no such resource: /connections/{clientId}, .../subscriptions or .../messages"));
  }

  std::optional<v1::SendDirectMessageRequest> direct;
  if (action == policy::Action::kSendDirectMessage) {
    absl::StatusOr<v1::SendDirectMessageRequest> req =
        DirectRequest(*t, headers, std::move(body));
    if (!req.ok()) return fail(req.status());
    direct = *std::move(req);
  }
  if (identity != nullptr) {
    const std::string topic = direct.has_value() ? direct->topic() : "";
    const policy::Decision d = identity->Decide(action, t->client_id, {}, "", topic);
    if (!d.allowed()) {
      const absl::string_view name = policy::ActionName(action);
      if (metrics_ != nullptr) metrics_->Denied(name);
      log::Info("action denied", {{"principal", identity->principal()},
                                  {"action", name},
                                  {"resource", t->client_id},
                                  {"topic", topic},
                                  {"reason", identity->Explain(d)}});
      return fail(absl::PermissionDeniedError(
          absl::StrCat("not authorized: ", name, " on client \"", t->client_id, "\"",
                       topic.empty() ? "" : absl::StrCat(" with topic \"", topic, "\""))));
    }
  }

  switch (action) {
    case policy::Action::kSendDirectMessage:
      return direct_->Send(*direct, [fail](absl::Status s) { fail(s, /*busy=*/true); });
    case policy::Action::kDeleteConnection: {
      if (absl::Status s = OnlyParameters(*t, {"cleanSession", "preventWillMessage"});
          !s.ok()) {
        return fail(s);
      }
      absl::StatusOr<bool> clean = Flag(*t, "cleanSession");
      absl::StatusOr<bool> no_will = Flag(*t, "preventWillMessage");
      if (!clean.ok()) return fail(clean.status());
      if (!no_will.ok()) return fail(no_will.status());
      pb::DeleteConnectionRequest req;
      req.set_client_id(t->client_id);
      req.set_clean_session(*clean);
      req.set_prevent_will_message(*no_will);
      return service_->Delete(req, [fail, done](absl::Status s) {
        if (!s.ok()) return fail(s, /*busy=*/true);
        done(200, "{}");
      });
    }
    case policy::Action::kGetConnection: {
      if (absl::Status s = OnlyParameters(*t, {"includeSocketInformation"}); !s.ok()) {
        return fail(s);
      }
      absl::StatusOr<bool> socket = Flag(*t, "includeSocketInformation");
      if (!socket.ok()) return fail(socket.status());
      return service_->Describe(
          t->client_id, [fail, done, id = t->client_id, socket = *socket](
                            absl::StatusOr<pb::DescribeConnectionResponse> d) {
            if (!d.ok()) return fail(d.status());
            done(200, ConnectionJson(id, *d, socket).dump());
          });
    }
    case policy::Action::kListSubscriptions: {
      if (absl::Status s = OnlyParameters(*t, {"maxResults", "nextToken"}); !s.ok()) {
        return fail(s);
      }
      auto max_results = t->query.find("maxResults");
      absl::StatusOr<int> limit = pagination::ParseMaxResults(
          max_results == t->query.end() ? std::nullopt
                                        : std::optional<absl::string_view>(max_results->second),
          50, 250);
      absl::StatusOr<std::string> after =
          pagination::DecodePageToken(t->query["nextToken"], kSubscriptionsPageQuery);
      if (!limit.ok()) return fail(limit.status());
      if (!after.ok()) return fail(after.status());
      return service_->Describe(
          t->client_id, [fail, done, limit = *limit, after = *after](
                            absl::StatusOr<pb::DescribeConnectionResponse> d) {
            if (!d.ok()) return fail(d.status());
            // In filter order (DescribeConnection sorts them).
            nlohmann::json list = nlohmann::json::array();
            std::string last;
            bool more = false;
            for (const pb::Subscription& s : d->session().subscriptions()) {
              if (s.topic_filter() <= after) continue;
              if (static_cast<int>(list.size()) == limit) {
                more = true;
                break;
              }
              list.push_back({{"topicFilter", s.topic_filter()}, {"qos", s.qos()}});
              last = s.topic_filter();
            }
            nlohmann::json out{{"subscriptions", std::move(list)}};
            if (more) out["nextToken"] = pagination::EncodePageToken(last, kSubscriptionsPageQuery);
            done(200, out.dump());
          });
    }
    default:
      return fail(absl::InternalError("unreachable"));
  }
}

}  // namespace fleetcore::gateway
