// A string of a policy document that may contain ${...} variables: a Resource pattern or a
// condition value. Parsed once; Expand writes the substituted text into a caller's buffer,
// so evaluating allocates nothing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/policy/context.h"
#include "common/policy/variables.h"

namespace fleetcore::policy {

class Template {
 public:
  // INVALID_ARGUMENT for an unterminated or empty ${}. With `variables` false (policy
  // Version 2008-10-17), ${...} is literal text, as in IAM.
  static absl::StatusOr<Template> Parse(absl::string_view text, bool variables);

  const std::string& text() const { return text_; }
  bool has_variables() const { return has_variables_; }

  // The text with variables substituted, written into buf[0..size); nullopt when a
  // variable has no value (see Substitute) or the result does not fit. For a pattern that
  // GlobMatch will use (`glob`), the escapes ${*} and ${?} become kLiteralStar and
  // kLiteralQuestion, which GlobMatch compares as the plain characters; otherwise they
  // become '*' and '?'.
  std::optional<absl::string_view> Expand(const Context& ctx, char* buf, size_t size,
                                          bool glob) const;

  // Variables used, for explanations ("${iot:Connection.Thing.ThingName} has no value").
  std::vector<std::string> VariableNames() const;
  // The names of the variables used that have no value in `ctx`.
  std::vector<std::string> MissingVariables(const Context& ctx) const;
  // Whether an iot:Connection.Thing.* variable is used.
  bool UsesThing() const;

 private:
  struct Part {
    std::string literal;  // when !is_var
    VarRef var;
    std::string var_name;  // the text between ${ and }
    bool is_var = false;
  };
  std::string text_;
  std::vector<Part> parts_;
  bool has_variables_ = false;
};

}  // namespace fleetcore::policy
