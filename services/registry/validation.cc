#include "services/registry/validation.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status/quoted.h"
#include "common/status/status_macros.h"

namespace fleetcore::registry {
namespace {

bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == ':' || c == '_' || c == '-'; }

bool IsAttributeNameChar(char c) {
  return absl::ascii_isalnum(c) || absl::StrContains("_.,@/:#-", c);
}

bool IsAttributeValueChar(char c) {
  return absl::ascii_isalnum(c) || absl::StrContains("_.,@/:#=[]-", c);
}

// Quotes a value for an error message, shortening very long ones.
std::string Quote(absl::string_view v) {
  if (v.size() > 64) {
    return absl::StrCat("\"", v.substr(0, 61), "...\"");
  }
  return Quoted(v);
}

}  // namespace

absl::Status ValidateName(absl::string_view field, absl::string_view value) {
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  if (value.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", Quote(value), " is longer than 128 characters"));
  }
  for (char c : value) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": ", Quote(value), " must be 1-128 characters of a-z A-Z 0-9 : _ -"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAttributes(absl::string_view field, const Attributes& attributes) {
  size_t total = 0;
  for (const auto& [name, value] : attributes) {
    if (name.empty() || name.size() > kMaxAttributeNameLength) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": attribute name ", Quote(name), " must be 1-128 characters long"));
    }
    for (char c : name) {
      if (!IsAttributeNameChar(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": attribute name ", Quote(name),
                         " may contain only a-z A-Z 0-9 _ . , @ / : # -"));
      }
    }
    if (value.size() > kMaxAttributeValueLength) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": the value of attribute ", Quote(name), " is longer than 800 characters"));
    }
    for (char c : value) {
      if (!IsAttributeValueChar(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": the value of attribute ", Quote(name), " (", Quote(value),
                         ") may contain only a-z A-Z 0-9 _ . , @ / : # = [ ] -"));
      }
    }
    total += name.size() + value.size();
  }
  if (total > kMaxAttributeBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": attributes total ", total, " bytes; at most 47 KB (48128 bytes) are allowed"));
  }
  return absl::OkStatus();
}

absl::Status ValidateThingAttributeCount(const Attributes& attributes, bool has_type) {
  const int limit = has_type ? kMaxAttributesWithType : kMaxAttributesWithoutType;
  if (static_cast<int>(attributes.size()) > limit) {
    if (!has_type) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attributePayload: a thing without a thing type can have at most 3 attributes, it "
          "would have ", attributes.size(), "; give it a thing type (up to 50 attributes)"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("attributePayload: a thing can have at most 50 attributes, it would have ",
                     attributes.size()));
  }
  return absl::OkStatus();
}

absl::Status ValidateDescription(absl::string_view field, absl::string_view value) {
  if (value.size() > kMaxDescriptionLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is longer than ", kMaxDescriptionLength, " characters"));
  }
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
      return absl::InvalidArgumentError(absl::StrCat(field, " contains control characters"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSearchableAttributes(const std::vector<std::string>& names) {
  if (static_cast<int>(names.size()) > kMaxSearchableAttributes) {
    return absl::InvalidArgumentError(absl::StrCat("searchableAttributes: at most ",
                                                   kMaxSearchableAttributes, " are allowed, got ",
                                                   names.size()));
  }
  for (const std::string& a : names) {
    FLEETCORE_RETURN_IF_ERROR(ValidateAttributes("searchableAttributes", {{a, ""}}));
  }
  return absl::OkStatus();
}

absl::Status ValidatePropagatingAttributes(const std::vector<PropagatingAttribute>& list) {
  constexpr absl::string_view kField = "mqtt5Configuration.propagatingAttributes";
  if (static_cast<int>(list.size()) > kMaxPropagatingAttributes) {
    return absl::InvalidArgumentError(absl::StrCat(kField, ": at most ", kMaxPropagatingAttributes,
                                                   " are allowed, got ", list.size()));
  }
  for (const PropagatingAttribute& a : list) {
    const absl::string_view key = a.user_property_key;
    bool key_ok = !key.empty() && key.size() <= 128;
    for (char c : key)
      key_ok = key_ok && (absl::ascii_isalnum(c) || c == ':' || c == '$' || c == '.');
    if (!key_ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(kField, ": userPropertyKey ", Quote(key),
                       " must be 1-128 characters of a-z A-Z 0-9 : $ ."));
    }
    if (a.thing_attribute.empty() == a.connection_attribute.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kField, ": userPropertyKey ", Quote(key),
                       " needs exactly one of thingAttribute and connectionAttribute"));
    }
    if (!a.thing_attribute.empty()) {
      FLEETCORE_RETURN_IF_ERROR(ValidateAttributes(kField, {{a.thing_attribute, ""}}));
    } else if (a.connection_attribute != "iot:ClientId" &&
               a.connection_attribute != "iot:Thing.ThingName") {
      return absl::InvalidArgumentError(
          absl::StrCat(kField, ": connectionAttribute ", Quote(a.connection_attribute),
                       " must be iot:ClientId or iot:Thing.ThingName"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePrincipal(absl::string_view principal) {
  const std::string expected =
      "a certificate ARN like arn:aws:iot:REGION:ACCOUNT:cert/<64 hex characters>";
  if (principal.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("principal is required: ", expected));
  }
  absl::string_view p = principal;
  if (!absl::ConsumePrefix(&p, "arn:aws:iot:")) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal ", Quote(principal), " must be ", expected));
  }
  const size_t cert = p.find(":cert/");
  if (cert == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal ", Quote(principal), " must be ", expected));
  }
  absl::string_view region_account = p.substr(0, cert);
  absl::string_view id = p.substr(cert + 6);
  const size_t colon = region_account.find(':');
  bool ok = colon != absl::string_view::npos &&
            aws::Arns::Validate(region_account.substr(0, colon),
                                region_account.substr(colon + 1))
                .ok() &&
            id.size() == 64;
  for (char c : id) {
    ok = ok && (absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'));
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal ", Quote(principal), " must be ", expected));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> NameFromNameOrArn(const aws::Arns& arns, absl::string_view name,
                                              absl::string_view arn, absl::string_view type,
                                              absl::string_view name_field,
                                              absl::string_view arn_field) {
  if (arn.empty()) {
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("give ", name_field, " or ", arn_field));
    }
    return std::string(name);
  }
  std::optional<std::string> from_arn = arns.ParseResource(arn, type);
  if (!from_arn.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(arn_field, ": ", Quote(arn), " is not a ",
                                                   type, " ARN of ", arns.Make(type, "NAME")));
  }
  if (!name.empty() && name != *from_arn) {
    return absl::InvalidArgumentError(absl::StrCat(name_field, " ", Quote(name), " and ",
                                                   arn_field, " ", Quote(arn),
                                                   " name different resources"));
  }
  return *from_arn;
}

Attributes ApplyAttributeUpdate(const Attributes& current, const AttributeUpdate& update) {
  Attributes out = update.merge ? current : Attributes();
  for (const auto& [k, v] : update.attributes) {
    if (v.empty()) {
      out.erase(k);
    } else {
      out[k] = v;
    }
  }
  return out;
}

}  // namespace fleetcore::registry
