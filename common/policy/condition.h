// One condition of a statement's Condition element: an operator, a key and its values,
// evaluated as IAM does:
//   - values of one key are ORed; keys of one operator and operators are ANDed (by the
//     statement);
//   - a key missing from the context makes positive operators false and negated ones
//     (StringNotEquals, NotIpAddress, ...) true, except ...IfExists (true) and Null;
//   - ForAnyValue: some context value satisfies the operator (false for no values);
//     ForAllValues: every context value does (true for no values).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/policy/context.h"
#include "common/policy/template.h"
#include "common/policy/variables.h"

namespace fleetcore::policy {

enum class ConditionOp : uint8_t {
  kStringEquals,
  kStringEqualsIgnoreCase,
  kStringLike,
  kNumericEquals,
  kNumericLessThan,
  kNumericLessThanEquals,
  kNumericGreaterThan,
  kNumericGreaterThanEquals,
  kDateEquals,
  kDateLessThan,
  kDateLessThanEquals,
  kDateGreaterThan,
  kDateGreaterThanEquals,
  kBool,
  kIpAddress,
  kArnLike,  // ArnEquals and ArnLike are the same in IAM: per-component wildcards
  kNull,
};

enum class SetQualifier : uint8_t { kNone, kForAnyValue, kForAllValues };

// An IPv4 or IPv6 address block ("10.0.0.0/8", "2001:db8::/32", or one address).
struct Cidr {
  int family = 0;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> address{};
  int prefix_bits = 0;
  static std::optional<Cidr> Parse(absl::string_view text);
  bool Contains(absl::string_view ip) const;
};

// ISO 8601 ("2026-11-26T12:00:00Z", with or without seconds/fraction/offset, or a date) or
// seconds since the epoch.
std::optional<absl::Time> ParsePolicyTime(absl::string_view text);

class Condition {
 public:
  // `op_name` as written ("StringNotEqualsIfExists", "ForAllValues:StringEquals", ...).
  // INVALID_ARGUMENT names what is wrong, without the location (the parser adds it).
  static absl::StatusOr<Condition> Create(absl::string_view op_name, absl::string_view key,
                                          std::vector<std::string> values, bool variables);

  bool Evaluate(const Context& ctx) const;

  const std::string& key_name() const { return key_name_; }
  // The key (unless it is Null's subject, whose absence is the point) and the variables of
  // the values that have no value in `ctx`.
  std::vector<std::string> MissingValues(const Context& ctx) const;
  // Whether the key or a value is an iot:Connection.Thing.* variable.
  bool UsesThing() const;

 private:
  bool MatchesAny(absl::string_view context_value, const Context& ctx) const;
  bool MatchesValue(size_t i, absl::string_view context_value, const Context& ctx) const;

  ConditionOp op_ = ConditionOp::kStringEquals;
  bool negated_ = false;
  bool if_exists_ = false;
  SetQualifier set_ = SetQualifier::kNone;
  std::string key_name_;
  VarRef key_;
  std::vector<Template> values_;
  // Parsed once for values without variables.
  std::vector<std::optional<double>> numbers_;
  std::vector<std::optional<absl::Time>> times_;
  std::vector<std::optional<Cidr>> cidrs_;
  std::vector<std::optional<bool>> bools_;
};

}  // namespace fleetcore::policy
