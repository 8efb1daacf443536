// Policy variables: ${iot:ClientId} and friends, parsed once into a VarRef and resolved
// against a Context without allocating. The same names serve as condition keys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "common/policy/context.h"

namespace fleetcore::policy {

enum class VarKind : uint8_t {
  kUnknown,  // a name fleetcore does not know (e.g. a Cognito variable): never resolves
  kClientId,
  kSourceIp,
  kDomainName,
  kThingName,
  kThingTypeName,
  kThingAttribute,
  kThingIsAttached,
  kCertSubject,
  kCertIssuer,
  kCertSubjectAltName,
  kCertIssuerAltName,
  kCertSerialNumber,
  kCertAvailableKeys,
  kConnectAttributes,
  kLastWillTopic,
  kTopic,  // iot:Topic: a direct message's topic (SendDirectMessage only)
  kCurrentTime,
  kEpochTime,
  kLiteral,  // ${*}, ${?}, ${$}: the character itself
};

struct VarRef {
  VarKind kind = VarKind::kUnknown;
  uint8_t field = 0;        // CertField or AltNameKind
  int index = 0;            // which value of a multi-valued variable; -1: all (".List")
  std::string attribute;    // kThingAttribute: the attribute name; kLiteral: the character
};

// Whether the variable is one of iot:Connection.Thing.* (resolved from the connection's thing).
inline bool IsThingVariable(VarKind kind) {
  return kind == VarKind::kThingName || kind == VarKind::kThingTypeName ||
         kind == VarKind::kThingAttribute || kind == VarKind::kThingIsAttached;
}

// Parses the text between "${" and "}" (e.g. "iot:Connection.Thing.Attributes[room]"),
// or a condition key. Names are case-insensitive; unknown names give kUnknown.
VarRef ParseVariable(absl::string_view name);

// The values of a variable in `ctx` (several for multi-valued ones). Calls `out` once per
// value; returns how many there were. Time variables are not handled here.
template <typename Fn>
int ForEachValue(const VarRef& v, const Context& ctx, Fn&& out);

// The single value to substitute for ${...} in a resource or condition value, or nullopt
// when it cannot be resolved: missing, out of range, a ".List", longer than 1024
// characters, or containing one of * $ + ? # (AWS does not substitute those values).
std::optional<absl::string_view> Substitute(const VarRef& v, const Context& ctx);

// ---- implementation of the template

namespace internal {
absl::Span<const std::string> MultiValues(const VarRef& v, const Context& ctx);
std::optional<absl::string_view> SingleValue(const VarRef& v, const Context& ctx);
}  // namespace internal

template <typename Fn>
int ForEachValue(const VarRef& v, const Context& ctx, Fn&& out) {
  absl::Span<const std::string> many = internal::MultiValues(v, ctx);
  if (!many.empty()) {
    if (v.index < 0) {
      for (const std::string& s : many) out(absl::string_view(s));
      return static_cast<int>(many.size());
    }
    if (static_cast<size_t>(v.index) < many.size()) {
      out(absl::string_view(many[static_cast<size_t>(v.index)]));
      return 1;
    }
    return 0;
  }
  std::optional<absl::string_view> one = internal::SingleValue(v, ctx);
  if (one.has_value()) {
    out(*one);
    return 1;
  }
  return 0;
}

}  // namespace fleetcore::policy
