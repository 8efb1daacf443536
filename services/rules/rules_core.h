// The rules service's rules: topic rules validated at creation (the SQL parses with the
// rule's SQL version, every action is complete and its templates parse), stored as AWS's
// payload, listed by name or topic, enabled and disabled; and EvaluateRule, the dry run.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/aws/arn.h"
#include "common/time/clock.h"
#include "fleetcore/rules/v1/rules.pb.h"
#include "services/rules/rules_store.h"

namespace fleetcore::iotsql {
struct MessageContext;
class ServiceLookups;
}  // namespace fleetcore::iotsql

namespace fleetcore::rules {

class DestinationsCore;

namespace pb = ::fleetcore::rules::v1;

// Whether a republish action may publish to `topic` (after "$$" became "$"): anything but
// AWS IoT Jobs' topics ($aws/things/{thing}/jobs/...), which AWS refuses too: devices must
// not get job documents or notifications a rule made up.
bool RepublishTopicAllowed(absl::string_view topic);

// A message's MQTT 5 properties into the context its rules are evaluated in.
void AddProperties(const pb::MessageProperties& properties, iotsql::MessageContext* context);

class RulesCore {
 public:
  // `lookups` answers get_thing_shadow() in EvaluateRule's dry runs; null: such a dry run
  // is FAILED_PRECONDITION. `destinations`, when set, gets the destinations of the http
  // actions of rules created and replaced (DestinationsCore::EnsureFor).
  RulesCore(RulesStore* store, const aws::Arns* arns, const Clock* clock,
            iotsql::ServiceLookups* lookups = nullptr, DestinationsCore* destinations = nullptr)
      : store_(store),
        arns_(arns),
        clock_(clock),
        lookups_(lookups),
        destinations_(destinations) {}

  absl::Status Create(const std::string& name, const pb::TopicRulePayload& payload);
  absl::Status Replace(const std::string& name, const pb::TopicRulePayload& payload);
  absl::StatusOr<pb::GetTopicRuleResponse> Get(const std::string& name);
  absl::StatusOr<pb::ListTopicRulesResponse> List(const pb::ListTopicRulesRequest& request);
  absl::Status Delete(const std::string& name);
  absl::Status SetDisabled(const std::string& name, bool disabled);
  absl::StatusOr<pb::EvaluateRuleResponse> Evaluate(const pb::EvaluateRuleRequest& request);

  // INVALID_ARGUMENT naming what is wrong (the SQL's line and column, the action's field).
  static absl::Status Validate(const pb::TopicRulePayload& payload, std::string* topic_pattern);
  // 1-128 of [a-zA-Z0-9_].
  static absl::Status ValidateName(absl::string_view name);

 private:
  RulesStore* store_;
  const aws::Arns* arns_;
  const Clock* clock_;
  iotsql::ServiceLookups* lookups_;
  DestinationsCore* destinations_;
};

}  // namespace fleetcore::rules
