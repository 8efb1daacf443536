// AWS-shaped ARNs for fleetcore's resources: arn:aws:iot:{region}:{account}:{type}/{name}.
// The region and account are configuration (the same on every service of one install), so
// policies and tools written for AWS IoT Core read the same on fleetcore.
//
//   Arns arns("us-east-1", "123456789012");
//   arns.Thing("lamp-1")   // "arn:aws:iot:us-east-1:123456789012:thing/lamp-1"
//   arns.ParseResource("arn:aws:iot:us-east-1:123456789012:thing/lamp-1", "thing")  // "lamp-1"
//
// Thread safety: immutable after construction.
#pragma once

#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace fleetcore::aws {

class Arns {
 public:
  Arns(std::string region, std::string account_id);

  // Checks that region and account look like AWS's (for clear start-up errors).
  static absl::Status Validate(absl::string_view region, absl::string_view account_id);

  const std::string& region() const { return region_; }
  const std::string& account_id() const { return account_id_; }

  std::string Thing(absl::string_view name) const { return Make("thing", name); }
  std::string ThingType(absl::string_view name) const { return Make("thingtype", name); }
  std::string ThingGroup(absl::string_view name) const { return Make("thinggroup", name); }
  std::string BillingGroup(absl::string_view name) const { return Make("billinggroup", name); }
  std::string Cert(absl::string_view id) const { return Make("cert", id); }
  std::string CaCert(absl::string_view id) const { return Make("cacert", id); }
  std::string Policy(absl::string_view name) const { return Make("policy", name); }
  std::string Make(absl::string_view type, absl::string_view name) const;

  // The part after "{type}/" when `arn` is an ARN of this region and account with that
  // resource type; nullopt otherwise.
  std::optional<std::string> ParseResource(absl::string_view arn, absl::string_view type) const;

 private:
  std::string region_;
  std::string account_id_;
  std::string prefix_;  // "arn:aws:iot:{region}:{account}:"
};

}  // namespace fleetcore::aws
