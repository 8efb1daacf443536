#include "services/gateway/defender_responder.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/json/json_text.h"
#include "nlohmann/json.hpp"
#include "services/gateway/broker_limits.h"
#include "services/gateway/defender_report.h"

namespace fleetcore::gateway {

using json = nlohmann::json;

void DefenderResponder::MaybeAnswer(const MessagePtr& message) {
  const std::optional<DefenderTopic> topic = ParseDefenderTopic(message->topic);
  if (!topic.has_value()) return;
  const DefenderReportCheck check = CheckDefenderReport(message->payload, topic->cbor);
  const bool accepted = check.error.empty();
  json answer = {{"thingName", topic->thing_name},
                 {"status", accepted ? "ACCEPTED" : "REJECTED"},
                 {"timestamp", broker_->NowMs()}};
  if (check.report_id.has_value()) answer["reportId"] = *check.report_id;
  if (!accepted) {
    answer["statusDetails"] = {{"ErrorCode", check.error_code}, {"ErrorMessage", check.error}};
  }
  if (metrics_ != nullptr) metrics_->DefenderReport(topic->cbor ? "cbor" : "json", accepted);
  broker_->PublishAnswer(absl::StrCat(message->topic, accepted ? "/accepted" : "/rejected"),
                         json_text::AnswerPayload(answer, topic->cbor));
}

}  // namespace fleetcore::gateway
