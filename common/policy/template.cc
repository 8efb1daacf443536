#include "common/policy/template.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/policy/glob.h"

namespace fleetcore::policy {

absl::StatusOr<Template> Template::Parse(absl::string_view text, bool variables) {
  Template t;
  t.text_ = std::string(text);
  if (!variables) {
    t.parts_.push_back({.literal = std::string(text)});
    return t;
  }
  size_t pos = 0;
  std::string literal;
  while (pos < text.size()) {
    const size_t open = text.find("${", pos);
    if (open == absl::string_view::npos) {
      absl::StrAppend(&literal, text.substr(pos));
      break;
    }
    absl::StrAppend(&literal, text.substr(pos, open - pos));
    const size_t close = text.find('}', open + 2);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\" has a ${ without its closing }"));
    }
    const absl::string_view name = text.substr(open + 2, close - open - 2);
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" has an empty ${}"));
    }
    if (!literal.empty()) {
      t.parts_.push_back({.literal = std::move(literal)});
      literal.clear();
    }
    t.parts_.push_back(
        {.var = ParseVariable(name), .var_name = std::string(name), .is_var = true});
    t.has_variables_ = true;
    pos = close + 1;
  }
  if (!literal.empty() || t.parts_.empty()) {
    t.parts_.push_back({.literal = std::move(literal)});
  }
  return t;
}

std::optional<absl::string_view> Template::Expand(const Context& ctx, char* buf, size_t size,
                                                  bool glob) const {
  if (!has_variables_) {
    return absl::string_view(text_);
  }
  size_t n = 0;
  for (const Part& p : parts_) {
    absl::string_view piece;
    if (p.is_var && p.var.kind == VarKind::kLiteral && glob && p.var.attribute != "$") {
      static constexpr char kStar[] = {kLiteralStar}, kQuestion[] = {kLiteralQuestion};
      piece = p.var.attribute == "*" ? absl::string_view(kStar, 1) : absl::string_view(kQuestion, 1);
    } else if (p.is_var) {
      std::optional<absl::string_view> value = Substitute(p.var, ctx);
      if (!value.has_value()) return std::nullopt;
      piece = *value;
    } else {
      piece = p.literal;
    }
    if (n + piece.size() > size) return std::nullopt;
    std::memcpy(buf + n, piece.data(), piece.size());
    n += piece.size();
  }
  return absl::string_view(buf, n);
}

std::vector<std::string> Template::VariableNames() const {
  std::vector<std::string> out;
  for (const Part& p : parts_) {
    if (p.is_var) out.push_back(p.var_name);
  }
  return out;
}

bool Template::UsesThing() const {
  return std::any_of(parts_.begin(), parts_.end(),
                     [](const Part& p) { return p.is_var && IsThingVariable(p.var.kind); });
}

std::vector<std::string> Template::MissingVariables(const Context& ctx) const {
  std::vector<std::string> out;
  for (const Part& p : parts_) {
    if (p.is_var && p.var.kind != VarKind::kLiteral && !Substitute(p.var, ctx).has_value()) {
      out.push_back(p.var_name);
    }
  }
  return out;
}

}  // namespace fleetcore::policy
