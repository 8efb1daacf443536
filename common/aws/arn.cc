#include "common/aws/arn.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace fleetcore::aws {

Arns::Arns(std::string region, std::string account_id)
    : region_(std::move(region)),
      account_id_(std::move(account_id)),
      prefix_(absl::StrCat("arn:aws:iot:", region_, ":", account_id_, ":")) {}

absl::Status Arns::Validate(absl::string_view region, absl::string_view account_id) {
  if (region.empty() || region.size() > 32) {
    return absl::InvalidArgumentError("region must be 1-32 characters, like us-east-1");
  }
  for (char c : region) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "region \"", region, "\" may contain only lower-case letters, digits and '-'"));
    }
  }
  if (account_id.size() != 12) {
    return absl::InvalidArgumentError(
        absl::StrCat("account id \"", account_id, "\" must be exactly 12 digits"));
  }
  for (char c : account_id) {
    if (!absl::ascii_isdigit(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("account id \"", account_id, "\" must be exactly 12 digits"));
    }
  }
  return absl::OkStatus();
}

std::string Arns::Make(absl::string_view type, absl::string_view name) const {
  return absl::StrCat(prefix_, type, "/", name);
}

std::optional<std::string> Arns::ParseResource(absl::string_view arn,
                                               absl::string_view type) const {
  if (!absl::ConsumePrefix(&arn, prefix_) || !absl::ConsumePrefix(&arn, type) ||
      !absl::ConsumePrefix(&arn, "/") || arn.empty()) {
    return std::nullopt;
  }
  return std::string(arn);
}

}  // namespace fleetcore::aws
