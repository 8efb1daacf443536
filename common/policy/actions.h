// The AWS IoT policy actions fleetcore knows, as a bitmask for compiled statements.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace fleetcore::policy {

enum class Action : uint8_t {
  kConnect,
  kPublish,
  kSubscribe,
  kReceive,
  kRetainPublish,
  kGetRetainedMessage,
  kListRetainedMessages,
  kGetThingShadow,
  kUpdateThingShadow,
  kDeleteThingShadow,
  kListNamedShadowsForThing,
  kDescribeJobExecution,
  kGetPendingJobExecutions,
  kUpdateJobExecution,
  kStartNextPendingJobExecution,
  kAssumeRoleWithCertificate,
  kSendDirectMessage,
  kGetConnection,
  kDeleteConnection,
  kListSubscriptions,
};
inline constexpr int kActionCount = 20;

using ActionMask = uint32_t;
inline constexpr ActionMask kAllActions = (ActionMask{1} << kActionCount) - 1;
inline constexpr ActionMask Bit(Action a) { return ActionMask{1} << static_cast<int>(a); }

// "iot:Publish"
absl::string_view ActionName(Action action);
// Case-insensitive, like IAM: "iot:publish" is iot:Publish.
std::optional<Action> ParseAction(absl::string_view name);

// The actions an Action element's entry names: an exact name, or a pattern with * and ?
// ("iot:*", "iot:Get*", "*"). 0 when it names none.
ActionMask MatchActions(absl::string_view pattern);

// The ARN resource type an action applies to: "client", "topic", "topicfilter", "thing", ...
absl::string_view ResourceType(Action action);

}  // namespace fleetcore::policy
