#include "services/gateway/broker_limits.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace fleetcore::gateway {

absl::Duration EffectiveKeepAlive(const BrokerLimits& limits, uint16_t requested) {
  if (limits.keep_alive_max == absl::ZeroDuration()) return absl::Seconds(requested);
  const absl::Duration asked = absl::Seconds(requested);
  if (requested == 0 || asked > limits.keep_alive_max) return limits.keep_alive_max;
  if (asked < limits.keep_alive_min) return limits.keep_alive_min;
  return asked;
}

bool WithinTopicLimits(const BrokerLimits& limits, absl::string_view topic) {
  if (topic.empty()) return false;
  // Basic Ingest's $aws/rules/{rule}/ prefix does not count (AWS).
  if (absl::StartsWith(topic, "$aws/rules/")) {
    const size_t rule_end = topic.find('/', 11);
    if (rule_end != absl::string_view::npos) topic.remove_prefix(rule_end + 1);
  }
  if (topic.size() > limits.max_topic_bytes) return false;
  int slashes = 0;
  for (char c : topic) slashes += c == '/';
  return slashes <= limits.max_topic_slashes;
}

bool WithinShareNameLimit(absl::string_view name) {
  size_t chars = 0;
  for (char c : name) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return chars <= kMaxShareNameChars;
}

bool ClientMayPublishTo(absl::string_view topic) {
  if (topic.empty() || topic[0] != '$') return true;
  if (ParseProvisioningTopic(topic).has_value()) return true;
  std::vector<absl::string_view> parts = absl::StrSplit(topic, '/');
  // Basic Ingest: $aws/rules/{rule}[/...]
  if (parts.size() >= 3 && parts[0] == "$aws" && parts[1] == "rules" && !parts[2].empty()) {
    return true;
  }
  return ParseShadowTopic(topic).has_value() || ParseJobsTopic(topic).has_value() ||
         ParseDefenderTopic(topic).has_value();
}

std::optional<ShadowTopic> ParseShadowTopic(absl::string_view topic) {
  std::vector<absl::string_view> parts = absl::StrSplit(topic, '/');
  if (parts.size() < 5 || parts[0] != "$aws" || parts[1] != "things" || parts[2].empty() ||
      parts[3] != "shadow") {
    return std::nullopt;
  }
  ShadowTopic out{.thing_name = std::string(parts[2])};
  absl::string_view op;
  if (parts.size() == 5) {
    op = parts[4];
  } else if (parts.size() == 7 && parts[4] == "name" && !parts[5].empty()) {
    op = parts[6];
    out.shadow_name = std::string(parts[5]);
  } else {
    return std::nullopt;
  }
  if (op != "get" && op != "update" && op != "delete") return std::nullopt;
  out.operation = std::string(op);
  out.prefix = std::string(topic.substr(0, topic.size() - op.size() - 1));
  return out;
}

std::optional<JobsTopic> ParseJobsTopic(absl::string_view topic) {
  std::vector<absl::string_view> parts = absl::StrSplit(topic, '/');
  if (parts.size() < 5 || parts.size() > 6 || parts[0] != "$aws" || parts[1] != "things" ||
      parts[2].empty() || parts[3] != "jobs") {
    return std::nullopt;
  }
  JobsTopic out{.thing_name = std::string(parts[2])};
  if (parts.size() == 5) {
    if (parts[4] != "get" && parts[4] != "start-next") return std::nullopt;
    out.operation = std::string(parts[4]);
    return out;
  }
  // A job id: [a-zA-Z0-9_-]{1,64}, or $next for the next pending execution.
  const absl::string_view id = parts[4];
  if (id.empty() || id.size() > 64) return std::nullopt;
  if (id != "$next") {
    for (char c : id) {
      if (!absl::ascii_isalnum(c) && c != '_' && c != '-') return std::nullopt;
    }
  }
  if (parts[5] != "get" && parts[5] != "update") return std::nullopt;
  out.job_id = std::string(id);
  out.operation = parts[5] == "get" ? "describe" : "update";
  return out;
}

std::optional<DefenderTopic> ParseDefenderTopic(absl::string_view topic) {
  std::vector<absl::string_view> parts = absl::StrSplit(topic, '/');
  if (parts.size() != 6 || parts[0] != "$aws" || parts[1] != "things" || parts[2].empty() ||
      parts[3] != "defender" || parts[4] != "metrics" ||
      (parts[5] != "json" && parts[5] != "cbor")) {
    return std::nullopt;
  }
  return DefenderTopic{.thing_name = std::string(parts[2]), .cbor = parts[5] == "cbor"};
}

std::optional<ProvisioningTopic> ParseProvisioningTopic(absl::string_view topic) {
  std::vector<absl::string_view> parts = absl::StrSplit(topic, '/');
  const absl::string_view format = parts.back();
  if (format != "json" && format != "cbor") return std::nullopt;
  ProvisioningTopic out{.cbor = format == "cbor"};
  if (parts.size() == 4 && parts[0] == "$aws" && parts[1] == "certificates" &&
      (parts[2] == "create" || parts[2] == "create-from-csr")) {
    out.operation = std::string(parts[2]);
    return out;
  }
  if (parts.size() == 5 && parts[0] == "$aws" && parts[1] == "provisioning-templates" &&
      !parts[2].empty() && parts[3] == "provision") {
    out.operation = "provision";
    out.template_name = std::string(parts[2]);
    return out;
  }
  return std::nullopt;
}

}  // namespace fleetcore::gateway
