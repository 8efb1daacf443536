// AWS IoT provisioning templates (fleet provisioning and JITP): parse and validate a template
// body once, then resolve it with a device's parameters into a plan of what to create.
// A pure library: no I/O; ProvisioningCore carries the plan out.
//
//   FLEETCORE_ASSIGN_OR_RETURN(ProvisioningTemplate t,
//                              ProvisioningTemplate::Parse(body,
//                              TemplateType::kFleetProvisioning));
//   FLEETCORE_ASSIGN_OR_RETURN(ProvisioningPlan plan, t.Resolve({{"SerialNumber", "123"},
//       {"AWS::IoT::Certificate::Id", cert_id}}));
//
// Supported: Parameters (Type String or Number, Default), Mappings (two levels), Resources
// of type AWS::IoT::Thing (ThingName, AttributePayload, ThingTypeName, ThingGroups,
// OverrideSettings), AWS::IoT::Certificate (CertificateId, Status, ThingPrincipalType) and
// AWS::IoT::Policy (PolicyName or PolicyDocument), the intrinsics Ref, Fn::Join,
// Fn::Select, Fn::Split, Fn::Sub and Fn::FindInMap, and DeviceConfiguration (fleet
// provisioning). Errors are INVALID_ARGUMENT with the JSON path of the fault, e.g.
// `Resources.thing.Properties.ThingName: Ref names "Serial", which is not a parameter`.
//
// Thread safety: a parsed template is immutable.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetcore::ca {

enum class TemplateType { kFleetProvisioning, kJitp };

// What to do with a property of a thing that exists already.
enum class Override { kDoNothing, kReplace, kFail, kMerge };

struct ThingPlan {
  std::string logical_name;
  std::string thing_name;
  std::optional<std::string> thing_type_name;
  std::optional<std::map<std::string, std::string>> attributes;
  std::optional<std::vector<std::string>> thing_groups;
  // The billing group a new thing starts in (an existing thing's is left as it is: AWS
  // defines no override setting for it).
  std::optional<std::string> billing_group;
  Override attributes_override = Override::kDoNothing;
  Override thing_type_override = Override::kDoNothing;
  Override thing_groups_override = Override::kDoNothing;
};

struct CertificatePlan {
  std::string logical_name;
  std::string certificate_id;
  bool active = true;      // Status ACTIVE (default) or INACTIVE
  bool exclusive = false;  // ThingPrincipalType EXCLUSIVE_THING
};

struct PolicyPlan {
  std::string logical_name;
  std::string policy_name;      // an existing policy, or the name to create
  std::string policy_document;  // empty: use the existing policy `policy_name`
};

struct ProvisioningPlan {
  std::optional<ThingPlan> thing;
  std::optional<CertificatePlan> certificate;
  std::vector<PolicyPlan> policies;
  std::map<std::string, std::string> device_configuration;
};

// AWS's parameters from a device certificate (JITP): AWS::IoT::Certificate::CommonName,
// ::Country, ::Organization, ::OrganizationalUnit, ::DistinguishedNameQualifier,
// ::StateName, ::SerialNumber, ::Id.
inline constexpr char kCertificateIdParameter[] = "AWS::IoT::Certificate::Id";

class ProvisioningTemplate {
 public:
  // At most 10,000 bytes, as AWS.
  static absl::StatusOr<ProvisioningTemplate> Parse(absl::string_view body, TemplateType type);

  // `parameters` override the template's defaults. A declared parameter with neither is an
  // error, as is an intrinsic that fails (Fn::Select out of range, a missing map key).
  absl::StatusOr<ProvisioningPlan> Resolve(
      const std::map<std::string, std::string>& parameters) const;

  const std::vector<std::string>& parameter_names() const;

 private:
  struct Impl;
  explicit ProvisioningTemplate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace fleetcore::ca
