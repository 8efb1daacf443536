#include "services/gateway/retained_api.h"

#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/net/percent.h"
#include "common/pagination/page_token.h"
#include "nlohmann/json.hpp"
#include "services/gateway/authenticator.h"
#include "services/gateway/http_publish.h"

namespace fleetcore::gateway {
namespace {

constexpr absl::string_view kPath = "/retainedMessage";
constexpr char kRetainedPageQuery[] = "retained";

}  // namespace

bool RetainedApi::Handles(absl::string_view target) const {
  const absl::string_view path = target.substr(0, target.find('?'));
  return path == kPath || absl::StartsWith(path, absl::StrCat(kPath, "/"));
}

void RetainedApi::Handle(absl::string_view method, absl::string_view target,
                         const HeaderLookup&, std::string, const Identity* identity, Done done) {
  // Errors as the publish API's (JsonText: a message quoting a topic that is not UTF-8 once
  // decoded still makes JSON).
  auto fail = [&done](const absl::Status& status, int http_status = 0) {
    HttpReply reply = HttpPublishReply(status, "");
    done(http_status != 0 ? http_status : reply.status, std::move(reply.body));
  };
  if (method != "GET") {
    return fail(absl::InvalidArgumentError("the retained-message API is read with GET"), 405);
  }
  const size_t q = target.find('?');
  const absl::string_view path = target.substr(0, q);
  std::map<std::string, std::string> query;
  if (q != absl::string_view::npos && !AddFormParams(target.substr(q + 1), &query)) {
    return fail(absl::InvalidArgumentError("the query string has a malformed %-escape"));
  }
  const int64_t now = broker_->NowMs();
  if (path == kPath) {
    if (identity != nullptr && !identity->Allows(policy::Action::kListRetainedMessages, "")) {
      return fail(absl::PermissionDeniedError(
          "not authorized to list retained messages (iot:ListRetainedMessages)"));
    }
    auto max_results = query.find("maxResults");
    absl::StatusOr<int> limit = pagination::ParseMaxResults(
        max_results == query.end() ? std::nullopt
                                   : std::optional<absl::string_view>(max_results->second),
        50, 200);
    absl::StatusOr<std::string> after =
        pagination::DecodePageToken(query["nextToken"], kRetainedPageQuery);
    if (!limit.ok() || !after.ok()) {
      return fail(absl::InvalidArgumentError(!limit.ok() ? limit.status().message()
                                                         : after.status().message()));
    }
    // Expired messages are left out, so a page may hold fewer than the limit.
    std::vector<MessagePtr> page =
        broker_->retained().List(*after, static_cast<size_t>(*limit) + 1);
    nlohmann::json topics = nlohmann::json::array();
    for (size_t i = 0; i < page.size() && i < static_cast<size_t>(*limit); ++i) {
      const Message& m = *page[i];
      if (m.expires_at_ms.has_value() && *m.expires_at_ms <= now) continue;
      topics.push_back({{"topic", m.topic},
                        {"payloadSize", m.payload.size()},
                        {"qos", m.qos},
                        {"lastModifiedTime", m.published_at_ms}});
    }
    nlohmann::json out{{"retainedTopics", std::move(topics)}};
    if (page.size() > static_cast<size_t>(*limit)) {
      out["nextToken"] = pagination::EncodePageToken(page[*limit - 1]->topic, kRetainedPageQuery);
    }
    return done(200, out.dump());
  }
  std::string topic;
  if (!net::PercentDecode(path.substr(kPath.size() + 1), /*plus_is_space=*/false, &topic) ||
      topic.empty()) {
    return fail(
        absl::InvalidArgumentError("the topic in the path has a malformed %-escape, or is empty"));
  }
  if (identity != nullptr && !identity->Allows(policy::Action::kGetRetainedMessage, topic)) {
    return fail(absl::PermissionDeniedError(absl::StrCat(
        "not authorized to read the retained message of ", topic, " (iot:GetRetainedMessage)")));
  }
  MessagePtr m = broker_->retained().Get(topic);
  if (m == nullptr || (m->expires_at_ms.has_value() && *m->expires_at_ms <= now)) {
    return fail(absl::NotFoundError("The specified resource does not exist"));
  }
  nlohmann::json out{{"topic", m->topic},
                     {"payload", absl::Base64Escape(m->payload)},
                     {"qos", m->qos},
                     {"lastModifiedTime", m->published_at_ms}};
  if (!m->user_properties.empty()) {
    nlohmann::json properties = nlohmann::json::array();
    for (const mqtt::UserProperty& p : m->user_properties) {
      properties.push_back({{p.key, p.value}});
    }
    out["userProperties"] = absl::Base64Escape(properties.dump());
  }
  done(200, out.dump());
}

}  // namespace fleetcore::gateway
