#include "common/policy/actions.h"

#include <array>

#include "absl/strings/match.h"
#include "common/policy/glob.h"

namespace fleetcore::policy {
namespace {

struct ActionInfo {
  absl::string_view name;
  absl::string_view resource_type;
};

constexpr std::array<ActionInfo, kActionCount> kActions = {{
    {"iot:Connect", "client"},
    {"iot:Publish", "topic"},
    {"iot:Subscribe", "topicfilter"},
    {"iot:Receive", "topic"},
    {"iot:RetainPublish", "topic"},
    {"iot:GetRetainedMessage", "topic"},
    {"iot:ListRetainedMessages", "*"},
    {"iot:GetThingShadow", "thing"},
    {"iot:UpdateThingShadow", "thing"},
    {"iot:DeleteThingShadow", "thing"},
    {"iot:ListNamedShadowsForThing", "thing"},
    {"iot:DescribeJobExecution", "thing"},
    {"iot:GetPendingJobExecutions", "thing"},
    {"iot:UpdateJobExecution", "thing"},
    {"iot:StartNextPendingJobExecution", "thing"},
    {"iot:AssumeRoleWithCertificate", "rolealias"},
    {"iot:SendDirectMessage", "client"},
    {"iot:GetConnection", "client"},
    {"iot:DeleteConnection", "client"},
    {"iot:ListSubscriptions", "client"},
}};

}  // namespace

absl::string_view ActionName(Action action) {
  return kActions[static_cast<size_t>(action)].name;
}

absl::string_view ResourceType(Action action) {
  return kActions[static_cast<size_t>(action)].resource_type;
}

std::optional<Action> ParseAction(absl::string_view name) {
  for (size_t i = 0; i < kActions.size(); ++i) {
    if (absl::EqualsIgnoreCase(kActions[i].name, name)) {
      return static_cast<Action>(i);
    }
  }
  return std::nullopt;
}

ActionMask MatchActions(absl::string_view pattern) {
  ActionMask mask = 0;
  for (size_t i = 0; i < kActions.size(); ++i) {
    if (GlobMatch(pattern, kActions[i].name, /*ignore_case=*/true)) {
      mask |= ActionMask{1} << i;
    }
  }
  return mask;
}

}  // namespace fleetcore::policy
