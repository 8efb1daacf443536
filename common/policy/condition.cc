#include "common/policy/condition.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/policy/glob.h"

namespace fleetcore::policy {
namespace {

struct OpInfo {
  absl::string_view name;
  ConditionOp op;
  bool negated;
};

constexpr OpInfo kOps[] = {
    {"StringEquals", ConditionOp::kStringEquals, false},
    {"StringNotEquals", ConditionOp::kStringEquals, true},
    {"StringEqualsIgnoreCase", ConditionOp::kStringEqualsIgnoreCase, false},
    {"StringNotEqualsIgnoreCase", ConditionOp::kStringEqualsIgnoreCase, true},
    {"StringLike", ConditionOp::kStringLike, false},
    {"StringNotLike", ConditionOp::kStringLike, true},
    {"NumericEquals", ConditionOp::kNumericEquals, false},
    {"NumericNotEquals", ConditionOp::kNumericEquals, true},
    {"NumericLessThan", ConditionOp::kNumericLessThan, false},
    {"NumericLessThanEquals", ConditionOp::kNumericLessThanEquals, false},
    {"NumericGreaterThan", ConditionOp::kNumericGreaterThan, false},
    {"NumericGreaterThanEquals", ConditionOp::kNumericGreaterThanEquals, false},
    {"DateEquals", ConditionOp::kDateEquals, false},
    {"DateNotEquals", ConditionOp::kDateEquals, true},
    {"DateLessThan", ConditionOp::kDateLessThan, false},
    {"DateLessThanEquals", ConditionOp::kDateLessThanEquals, false},
    {"DateGreaterThan", ConditionOp::kDateGreaterThan, false},
    {"DateGreaterThanEquals", ConditionOp::kDateGreaterThanEquals, false},
    {"Bool", ConditionOp::kBool, false},
    {"IpAddress", ConditionOp::kIpAddress, false},
    {"NotIpAddress", ConditionOp::kIpAddress, true},
    {"ArnEquals", ConditionOp::kArnLike, false},
    {"ArnNotEquals", ConditionOp::kArnLike, true},
    {"ArnLike", ConditionOp::kArnLike, false},
    {"ArnNotLike", ConditionOp::kArnLike, true},
    {"Null", ConditionOp::kNull, false},
};

bool IsNumeric(ConditionOp op) {
  return op >= ConditionOp::kNumericEquals && op <= ConditionOp::kNumericGreaterThanEquals;
}
bool IsDate(ConditionOp op) {
  return op >= ConditionOp::kDateEquals && op <= ConditionOp::kDateGreaterThanEquals;
}

std::optional<bool> ParseBool(absl::string_view s) {
  if (absl::EqualsIgnoreCase(s, "true")) return true;
  if (absl::EqualsIgnoreCase(s, "false")) return false;
  return std::nullopt;
}

template <typename T>
bool Compare(ConditionOp op, T a, T b) {
  switch (op) {
    case ConditionOp::kNumericEquals:
    case ConditionOp::kDateEquals:
      return a == b;
    case ConditionOp::kNumericLessThan:
    case ConditionOp::kDateLessThan:
      return a < b;
    case ConditionOp::kNumericLessThanEquals:
    case ConditionOp::kDateLessThanEquals:
      return a <= b;
    case ConditionOp::kNumericGreaterThan:
    case ConditionOp::kDateGreaterThan:
      return a > b;
    case ConditionOp::kNumericGreaterThanEquals:
    case ConditionOp::kDateGreaterThanEquals:
      return a >= b;
    default:
      return false;
  }
}

// ArnLike: the six colon-separated components match one by one (the last keeps its colons).
bool ArnMatch(absl::string_view pattern, absl::string_view arn) {
  absl::InlinedVector<absl::string_view, 6> p = absl::StrSplit(pattern, absl::MaxSplits(':', 5));
  absl::InlinedVector<absl::string_view, 6> a = absl::StrSplit(arn, absl::MaxSplits(':', 5));
  if (p.size() != 6 || a.size() != 6) {
    return GlobMatch(pattern, arn);
  }
  for (size_t i = 0; i < 6; ++i) {
    if (!GlobMatch(p[i], a[i])) return false;
  }
  return true;
}

}  // namespace

std::optional<Cidr> Cidr::Parse(absl::string_view text) {
  Cidr c;
  absl::string_view addr = text;
  int bits = -1;
  if (size_t slash = text.find('/'); slash != absl::string_view::npos) {
    addr = text.substr(0, slash);
    if (!absl::SimpleAtoi(text.substr(slash + 1), &bits)) return std::nullopt;
  }
  char buf[INET6_ADDRSTRLEN + 1];
  if (addr.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, addr.data(), addr.size());
  buf[addr.size()] = '\0';
  if (inet_pton(AF_INET, buf, c.address.data()) == 1) {
    c.family = AF_INET;
    if (bits < 0) bits = 32;
    if (bits > 32) return std::nullopt;
  } else if (inet_pton(AF_INET6, buf, c.address.data()) == 1) {
    c.family = AF_INET6;
    if (bits < 0) bits = 128;
    if (bits > 128) return std::nullopt;
  } else {
    return std::nullopt;
  }
  c.prefix_bits = bits;
  return c;
}

bool Cidr::Contains(absl::string_view ip) const {
  std::optional<Cidr> other = Parse(ip);
  if (!other.has_value() || other->family != family) return false;
  int bits = prefix_bits;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((address[i] & mask) != (other->address[i] & mask)) return false;
  }
  return true;
}

std::optional<absl::Time> ParsePolicyTime(absl::string_view text) {
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    if (!std::isfinite(seconds)) return std::nullopt;
    // absl saturates beyond its range (a cast to int64 would be undefined).
    return absl::UnixEpoch() + absl::Seconds(seconds);
  }
  absl::Time t;
  std::string err;
  for (const char* format : {"%Y-%m-%d%ET%H:%M:%E*S%Ez", "%Y-%m-%d%ET%H:%M%Ez", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, text, &t, &err)) return t;
  }
  return std::nullopt;
}

absl::StatusOr<Condition> Condition::Create(absl::string_view op_name, absl::string_view key,
                                            std::vector<std::string> values, bool variables) {
  Condition c;
  absl::string_view name = op_name;
  if (absl::ConsumePrefix(&name, "ForAnyValue:")) {
    c.set_ = SetQualifier::kForAnyValue;
  } else if (absl::ConsumePrefix(&name, "ForAllValues:")) {
    c.set_ = SetQualifier::kForAllValues;
  }
  if (absl::ConsumeSuffix(&name, "IfExists")) {
    c.if_exists_ = true;
  }
  const OpInfo* info = nullptr;
  for (const OpInfo& o : kOps) {
    if (o.name == name) info = &o;
  }
  if (info == nullptr || (info->op == ConditionOp::kNull && (c.if_exists_ || c.set_ != SetQualifier::kNone))) {
    return absl::InvalidArgumentError(absl::StrCat("unknown condition operator \"", op_name, "\""));
  }
  c.op_ = info->op;
  c.negated_ = info->negated;
  c.key_name_ = std::string(key);
  c.key_ = ParseVariable(key);
  if (values.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("condition key \"", key, "\" has no values"));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    absl::StatusOr<Template> t = Template::Parse(values[i], variables);
    if (!t.ok()) return t.status();
    const bool literal = !t->has_variables();
    const std::string& v = values[i];
    c.numbers_.push_back(std::nullopt);
    c.times_.push_back(std::nullopt);
    c.cidrs_.push_back(std::nullopt);
    c.bools_.push_back(std::nullopt);
    if (literal) {
      auto bad = [&](absl::string_view what) {
        return absl::InvalidArgumentError(absl::StrCat("value \"", v, "\" of ", op_name,
                                                       " is not ", what));
      };
      if (IsNumeric(c.op_)) {
        double d;
        if (!absl::SimpleAtod(v, &d)) return bad("a number");
        c.numbers_.back() = d;
      } else if (IsDate(c.op_)) {
        c.times_.back() = ParsePolicyTime(v);
        if (!c.times_.back().has_value()) return bad("a date (ISO 8601 or epoch seconds)");
      } else if (c.op_ == ConditionOp::kIpAddress) {
        c.cidrs_.back() = Cidr::Parse(v);
        if (!c.cidrs_.back().has_value()) return bad("an IP address or CIDR block");
      } else if (c.op_ == ConditionOp::kBool || c.op_ == ConditionOp::kNull) {
        c.bools_.back() = ParseBool(v);
        if (!c.bools_.back().has_value()) return bad("true or false");
      }
    }
    c.values_.push_back(*std::move(t));
  }
  return c;
}

bool Condition::MatchesValue(size_t i, absl::string_view ctx_value, const Context& ctx) const {
  char buf[2048];
  const bool glob = op_ == ConditionOp::kStringLike || op_ == ConditionOp::kArnLike;
  std::optional<absl::string_view> expanded = values_[i].Expand(ctx, buf, sizeof(buf), glob);
  if (!expanded.has_value()) return false;  // a variable without value matches nothing
  switch (op_) {
    case ConditionOp::kStringEquals:
      return ctx_value == *expanded;
    case ConditionOp::kStringEqualsIgnoreCase:
      return absl::EqualsIgnoreCase(ctx_value, *expanded);
    case ConditionOp::kStringLike:
      return GlobMatch(*expanded, ctx_value);
    case ConditionOp::kArnLike:
      return ArnMatch(*expanded, ctx_value);
    case ConditionOp::kBool: {
      std::optional<bool> want = bools_[i].has_value() ? bools_[i] : ParseBool(*expanded);
      std::optional<bool> have = ParseBool(ctx_value);
      return want.has_value() && have.has_value() && *want == *have;
    }
    case ConditionOp::kIpAddress: {
      std::optional<Cidr> cidr = cidrs_[i].has_value() ? cidrs_[i] : Cidr::Parse(*expanded);
      return cidr.has_value() && cidr->Contains(ctx_value);
    }
    default:
      break;
  }
  if (IsNumeric(op_)) {
    double want, have;
    if (numbers_[i].has_value()) {
      want = *numbers_[i];
    } else if (!absl::SimpleAtod(*expanded, &want)) {
      return false;
    }
    if (!absl::SimpleAtod(ctx_value, &have)) return false;
    return Compare(op_, have, want);
  }
  if (IsDate(op_)) {
    std::optional<absl::Time> want = times_[i].has_value() ? times_[i] : ParsePolicyTime(*expanded);
    std::optional<absl::Time> have = ParsePolicyTime(ctx_value);
    return want.has_value() && have.has_value() && Compare(op_, *have, *want);
  }
  return false;
}

bool Condition::MatchesAny(absl::string_view ctx_value, const Context& ctx) const {
  for (size_t i = 0; i < values_.size(); ++i) {
    if (MatchesValue(i, ctx_value, ctx)) return true;
  }
  return false;
}

std::vector<std::string> Condition::MissingValues(const Context& ctx) const {
  std::vector<std::string> out;
  const bool time_key = key_.kind == VarKind::kCurrentTime || key_.kind == VarKind::kEpochTime;
  if (op_ != ConditionOp::kNull &&
      (time_key ? ctx.now == absl::InfinitePast()
                : ForEachValue(key_, ctx, [](absl::string_view) {}) == 0)) {
    out.push_back(key_name_);
  }
  for (const Template& t : values_) {
    for (std::string& v : t.MissingVariables(ctx)) out.push_back(std::move(v));
  }
  return out;
}

bool Condition::UsesThing() const {
  return IsThingVariable(key_.kind) ||
         std::any_of(values_.begin(), values_.end(), [](const Template& t) { return t.UsesThing(); });
}

bool Condition::Evaluate(const Context& ctx) const {
  absl::InlinedVector<absl::string_view, 8> have;
  std::string time_text;  // only for the time keys
  if (key_.kind == VarKind::kCurrentTime || key_.kind == VarKind::kEpochTime) {
    if (ctx.now != absl::InfinitePast()) {
      time_text = key_.kind == VarKind::kEpochTime
                      ? absl::StrCat(absl::ToUnixSeconds(ctx.now))
                      : absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", ctx.now, absl::UTCTimeZone());
      have.push_back(time_text);
    }
  } else if (key_.kind != VarKind::kUnknown && key_.kind != VarKind::kLiteral) {
    VarRef all = key_;
    if (set_ != SetQualifier::kNone) all.index = -1;  // sets see every value
    ForEachValue(all, ctx, [&](absl::string_view v) { have.push_back(v); });
  }

  if (op_ == ConditionOp::kNull) {
    // "Null": true means the key must be absent, false that it must be present.
    for (const std::optional<bool>& b : bools_) {
      if (b.has_value() && *b == have.empty()) return true;
    }
    return false;
  }
  if (have.empty()) {
    if (if_exists_ || set_ == SetQualifier::kForAllValues) return true;
    if (set_ == SetQualifier::kForAnyValue) return false;
    return negated_;
  }
  auto holds = [&](absl::string_view v) { return MatchesAny(v, ctx) != negated_; };
  switch (set_) {
    case SetQualifier::kForAnyValue:
      for (absl::string_view v : have) {
        if (holds(v)) return true;
      }
      return false;
    case SetQualifier::kForAllValues:
      for (absl::string_view v : have) {
        if (!holds(v)) return false;
      }
      return true;
    case SetQualifier::kNone:
      return holds(have.front());
  }
  return false;
}

}  // namespace fleetcore::policy
