#include "services/ca/ca_types.h"

namespace fleetcore::ca {
namespace {

constexpr std::pair<CertStatus, absl::string_view> kStatuses[] = {
    {CertStatus::kActive, "ACTIVE"},
    {CertStatus::kInactive, "INACTIVE"},
    {CertStatus::kRevoked, "REVOKED"},
    {CertStatus::kPendingTransfer, "PENDING_TRANSFER"},
    {CertStatus::kRegisterInactive, "REGISTER_INACTIVE"},
    {CertStatus::kPendingActivation, "PENDING_ACTIVATION"},
};

}  // namespace

absl::string_view StatusName(CertStatus status) {
  for (const auto& [s, name] : kStatuses) {
    if (s == status) return name;
  }
  return "";
}

std::optional<CertStatus> ParseStatus(absl::string_view name) {
  for (const auto& [s, n] : kStatuses) {
    if (n == name) return s;
  }
  return std::nullopt;
}

absl::string_view ModeName(CertMode mode) {
  return mode == CertMode::kSniOnly ? "SNI_ONLY" : "DEFAULT";
}

std::optional<CertMode> ParseMode(absl::string_view name) {
  if (name == "DEFAULT") return CertMode::kDefault;
  if (name == "SNI_ONLY") return CertMode::kSniOnly;
  return std::nullopt;
}

absl::string_view TemplateTypeName(TemplateType type) {
  return type == TemplateType::kJitp ? "JITP" : "FLEET_PROVISIONING";
}

std::optional<TemplateType> ParseTemplateType(absl::string_view name) {
  if (name == "FLEET_PROVISIONING") return TemplateType::kFleetProvisioning;
  if (name == "JITP") return TemplateType::kJitp;
  return std::nullopt;
}

}  // namespace fleetcore::ca
