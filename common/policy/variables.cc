#include "common/policy/variables.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace fleetcore::policy {
namespace {

constexpr std::array<absl::string_view, kCertFieldCount> kCertFieldNames = {
    "Country",   "Organization", "OrganizationalUnit", "DistinguishedNameQualifier",
    "State",     "CommonName",   "SerialNumber",       "Title",
    "Surname",   "GivenName",    "Initials",           "Pseudonym",
    "GenerationQualifier"};
constexpr std::array<absl::string_view, kAltNameKindCount> kAltNameNames = {
    "RFC822Name", "DNSName", "DirectoryName", "UniformResourceIdentifier", "IPAddress"};

// Consumes `prefix` case-insensitively.
bool ConsumeI(absl::string_view* s, absl::string_view prefix) {
  if (s->size() < prefix.size() || !absl::EqualsIgnoreCase(s->substr(0, prefix.size()), prefix)) {
    return false;
  }
  s->remove_prefix(prefix.size());
  return true;
}

// A multi-valued variable's field name with an optional ".N" or ".List" suffix.
template <size_t N>
bool ParseIndexedField(absl::string_view rest, const std::array<absl::string_view, N>& names,
                       VarRef* out) {
  for (size_t i = 0; i < N; ++i) {
    absl::string_view r = rest;
    if (!ConsumeI(&r, names[i])) continue;
    if (r.empty()) {
      out->field = static_cast<uint8_t>(i);
      out->index = 0;
      return true;
    }
    if (!absl::ConsumePrefix(&r, ".")) continue;
    if (absl::EqualsIgnoreCase(r, "List")) {
      out->field = static_cast<uint8_t>(i);
      out->index = -1;
      return true;
    }
    int index = 0;
    if (absl::SimpleAtoi(r, &index) && index >= 0) {
      out->field = static_cast<uint8_t>(i);
      out->index = index;
      return true;
    }
  }
  return false;
}

}  // namespace

absl::string_view CertFieldName(CertField field) {
  return kCertFieldNames[static_cast<size_t>(field)];
}

absl::string_view AltNameKindName(AltNameKind kind) {
  return kAltNameNames[static_cast<size_t>(kind)];
}

void CertificateInfo::ComputeAvailableKeys() {
  available_keys.clear();
  for (int i = 0; i < kCertFieldCount; ++i) {
    if (!subject[i].empty()) {
      available_keys.push_back(absl::StrCat("iot:Certificate.Subject.", kCertFieldNames[i]));
    }
  }
  for (int i = 0; i < kCertFieldCount; ++i) {
    if (!issuer[i].empty()) {
      available_keys.push_back(absl::StrCat("iot:Certificate.Issuer.", kCertFieldNames[i]));
    }
  }
  for (int i = 0; i < kAltNameKindCount; ++i) {
    if (!subject_alt_names[i].empty()) {
      available_keys.push_back(
          absl::StrCat("iot:Certificate.Subject.AlternativeName.", kAltNameNames[i]));
    }
    if (!issuer_alt_names[i].empty()) {
      available_keys.push_back(
          absl::StrCat("iot:Certificate.Issuer.AlternativeName.", kAltNameNames[i]));
    }
  }
  if (!serial_number.empty()) available_keys.push_back("iot:Certificate.SerialNumber");
}

VarRef ParseVariable(absl::string_view name) {
  VarRef v;
  if (name == "*" || name == "?" || name == "$") {
    v.kind = VarKind::kLiteral;
    v.attribute = std::string(name);
    return v;
  }
  absl::string_view r = name;
  if (absl::EqualsIgnoreCase(r, "iot:ClientId")) {
    v.kind = VarKind::kClientId;
  } else if (absl::EqualsIgnoreCase(r, "aws:SourceIp")) {
    v.kind = VarKind::kSourceIp;
  } else if (absl::EqualsIgnoreCase(r, "iot:DomainName")) {
    v.kind = VarKind::kDomainName;
  } else if (absl::EqualsIgnoreCase(r, "iot:ConnectAttributes")) {
    v.kind = VarKind::kConnectAttributes;
    v.index = -1;
  } else if (absl::EqualsIgnoreCase(r, "iot:LastWillTopic")) {
    v.kind = VarKind::kLastWillTopic;
  } else if (absl::EqualsIgnoreCase(r, "iot:Topic")) {
    v.kind = VarKind::kTopic;
  } else if (absl::EqualsIgnoreCase(r, "aws:CurrentTime")) {
    v.kind = VarKind::kCurrentTime;
  } else if (absl::EqualsIgnoreCase(r, "aws:EpochTime")) {
    v.kind = VarKind::kEpochTime;
  } else if (ConsumeI(&r, "iot:Connection.Thing.") || ConsumeI(&r, "iot:Thing.")) {
    // "iot:Thing.*" is the older spelling that AWS's own examples still use.
    if (absl::EqualsIgnoreCase(r, "ThingName")) {
      v.kind = VarKind::kThingName;
    } else if (absl::EqualsIgnoreCase(r, "ThingTypeName")) {
      v.kind = VarKind::kThingTypeName;
    } else if (absl::EqualsIgnoreCase(r, "IsAttached")) {
      v.kind = VarKind::kThingIsAttached;
    } else if (ConsumeI(&r, "Attributes[") && absl::ConsumeSuffix(&r, "]") && !r.empty()) {
      v.kind = VarKind::kThingAttribute;
      v.attribute = std::string(r);  // attribute names are case-sensitive
    }
  } else if (ConsumeI(&r, "iot:Certificate.")) {
    if (absl::EqualsIgnoreCase(r, "SerialNumber")) {
      v.kind = VarKind::kCertSerialNumber;
    } else if (absl::EqualsIgnoreCase(r, "AvailableKeys")) {
      v.kind = VarKind::kCertAvailableKeys;
      v.index = -1;
    } else {
      const bool subject = ConsumeI(&r, "Subject.");
      const bool issuer = !subject && ConsumeI(&r, "Issuer.");
      if (subject || issuer) {
        if (ConsumeI(&r, "AlternativeName.")) {
          if (ParseIndexedField(r, kAltNameNames, &v)) {
            v.kind = subject ? VarKind::kCertSubjectAltName : VarKind::kCertIssuerAltName;
          }
        } else if (ParseIndexedField(r, kCertFieldNames, &v)) {
          v.kind = subject ? VarKind::kCertSubject : VarKind::kCertIssuer;
        }
      }
    }
  }
  return v;
}

namespace internal {

absl::Span<const std::string> MultiValues(const VarRef& v, const Context& ctx) {
  const CertificateInfo* c = ctx.certificate;
  switch (v.kind) {
    case VarKind::kCertSubject:
      return c != nullptr ? absl::MakeConstSpan(c->subject[v.field]) : absl::Span<const std::string>();
    case VarKind::kCertIssuer:
      return c != nullptr ? absl::MakeConstSpan(c->issuer[v.field]) : absl::Span<const std::string>();
    case VarKind::kCertSubjectAltName:
      return c != nullptr ? absl::MakeConstSpan(c->subject_alt_names[v.field])
                          : absl::Span<const std::string>();
    case VarKind::kCertIssuerAltName:
      return c != nullptr ? absl::MakeConstSpan(c->issuer_alt_names[v.field])
                          : absl::Span<const std::string>();
    case VarKind::kCertAvailableKeys:
      return c != nullptr ? absl::MakeConstSpan(c->available_keys) : absl::Span<const std::string>();
    case VarKind::kConnectAttributes:
      return ctx.connect_attributes;
    default:
      return {};
  }
}

std::optional<absl::string_view> SingleValue(const VarRef& v, const Context& ctx) {
  switch (v.kind) {
    case VarKind::kClientId:
      return ctx.client_id.empty() ? std::nullopt : std::optional(ctx.client_id);
    case VarKind::kSourceIp:
      return ctx.source_ip.empty() ? std::nullopt : std::optional(ctx.source_ip);
    case VarKind::kDomainName:
      return ctx.domain_name.empty() ? std::nullopt : std::optional(ctx.domain_name);
    case VarKind::kLastWillTopic:
      return ctx.last_will_topic.empty() ? std::nullopt : std::optional(ctx.last_will_topic);
    case VarKind::kTopic:
      return ctx.topic.empty() ? std::nullopt : std::optional(ctx.topic);
    case VarKind::kThingName:
      if (ctx.thing == nullptr) return std::nullopt;
      return absl::string_view(ctx.thing->name);
    case VarKind::kThingTypeName:
      if (ctx.thing == nullptr || ctx.thing->type_name.empty()) return std::nullopt;
      return absl::string_view(ctx.thing->type_name);
    case VarKind::kThingIsAttached:
      if (ctx.thing == nullptr) return std::nullopt;
      return ctx.thing->attached ? absl::string_view("true") : absl::string_view("false");
    case VarKind::kThingAttribute: {
      if (ctx.thing == nullptr) return std::nullopt;
      auto it = ctx.thing->attributes.find(v.attribute);
      if (it == ctx.thing->attributes.end()) return std::nullopt;
      return absl::string_view(it->second);
    }
    case VarKind::kCertSerialNumber:
      if (ctx.certificate == nullptr || ctx.certificate->serial_number.empty()) return std::nullopt;
      return absl::string_view(ctx.certificate->serial_number);
    case VarKind::kLiteral:
      return absl::string_view(v.attribute);
    default:
      return std::nullopt;
  }
}

}  // namespace internal

std::optional<absl::string_view> Substitute(const VarRef& v, const Context& ctx) {
  if (v.index < 0) {
    return std::nullopt;  // ".List" has no single value to put into a string
  }
  std::optional<absl::string_view> out;
  ForEachValue(v, ctx, [&](absl::string_view value) { out = value; });
  if (!out.has_value() || v.kind == VarKind::kLiteral) {
    return out;
  }
  if (out->size() > 1024 || out->find_first_of("*$+?#") != absl::string_view::npos) {
    return std::nullopt;
  }
  return out;
}

}  // namespace fleetcore::policy
