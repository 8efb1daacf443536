#include "services/gateway/jobs_responder.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/json/json_text.h"
#include "common/nesting/nesting.h"
#include "nlohmann/json.hpp"
#include "services/gateway/broker_limits.h"

namespace fleetcore::gateway {

void JobsResponder::MaybeAnswer(const MessagePtr& message) {
  const std::optional<JobsTopic> topic = ParseJobsTopic(message->topic);
  if (!topic.has_value()) return;
  using json = nlohmann::json;
  // The request: optional (an empty payload is an empty request), else a JSON object of a
  // few levels (a device's deeply nested document is refused before it is parsed: copying
  // or freeing one recurses once per level).
  constexpr int kMaxNesting = 8;
  json request = json::object();
  bool valid = true;
  if (!message->payload.empty()) {
    valid = nesting::JsonNestingWithin(message->payload, kMaxNesting);
    if (valid) request = json::parse(message->payload, nullptr, /*allow_exceptions=*/false);
    valid = valid && request.is_object();
  }
  json answer = {{"timestamp", broker_->NowMs()}};
  if (valid) {
    if (auto it = request.find("clientToken"); it != request.end() && it->is_string()) {
      answer["clientToken"] = *it;
    }
  }
  bool accepted = true;
  if (!valid) {
    accepted = false;
    answer["code"] = "InvalidJson";
    answer["message"] = "the request is not a JSON object (of at most 8 levels)";
  } else if (topic->operation == "get") {
    answer["inProgressJobs"] = json::array();
    answer["queuedJobs"] = json::array();
  } else if ((topic->operation == "describe" && topic->job_id != "$next") ||
             topic->operation == "update") {
    accepted = false;
    answer["code"] = "ResourceNotFound";
    answer["message"] = absl::StrCat("no job execution ", topic->job_id, " for thing ",
                                     topic->thing_name, ": fleetcore has no jobs");
  }
  // start-next and $next/get: accepted, without an execution (none is pending).
  if (metrics_ != nullptr) metrics_->JobsRequest(topic->operation, accepted);
  broker_->PublishAnswer(absl::StrCat(message->topic, accepted ? "/accepted" : "/rejected"),
                         json_text::JsonText(answer));
}

}  // namespace fleetcore::gateway
