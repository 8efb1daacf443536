#include "tools/fleetctl/output.h"

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fleetcore::fleetctl {
namespace {

using json = nlohmann::json;

struct Step;
using Path = std::vector<Step>;

struct Field {
  std::string name;
};
struct Index {
  long long n;
};
struct Project {
  bool flatten;  // "[]" rather than "[*]"
};
// "[a, b]" and "{x: a, y: b}": each expression applied to the value.
struct MultiList {
  std::vector<Path> items;
};
struct MultiHash {
  std::vector<std::pair<std::string, Path>> items;
};
struct Step {
  std::variant<Field, Index, Project, MultiList, MultiHash> kind;
};

class QueryParser {
 public:
  explicit QueryParser(absl::string_view q) : q_(q) {}

  absl::StatusOr<Path> Parse() {
    absl::StatusOr<Path> path = ParsePath();
    if (!path.ok()) return path;
    if (i_ < q_.size()) return Refuse("unexpected text");
    return path;
  }

 private:
  absl::Status Refuse(absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat("--query: ", why, " at \"", q_.substr(i_),
                     "\" (fleetctl takes a.b, a[0], a[*].b, a[].b, [a, b] and {x: a, y: b})"));
  }
  void SkipSpaces() {
    while (i_ < q_.size() && q_[i_] == ' ') ++i_;
  }
  bool At(char c) {
    SkipSpaces();
    return i_ < q_.size() && q_[i_] == c;
  }

  // A path up to the end, or to the ',', ']' or '}' that ends it inside a multiselect.
  absl::StatusOr<Path> ParsePath() {
    Path path;
    bool expect_name = true;  // at the start and after '.'
    for (;;) {
      SkipSpaces();
      if (i_ >= q_.size() || At(',') || At(']') || At('}')) break;
      const char c = q_[i_];
      if (expect_name && (c == '"' || absl::ascii_isalpha(c) || c == '_')) {
        absl::StatusOr<std::string> name = ParseName();
        if (!name.ok()) return name.status();
        path.push_back({Field{*std::move(name)}});
        expect_name = false;
      } else if (expect_name && c == '{') {
        absl::StatusOr<Step> hash = ParseHash();
        if (!hash.ok()) return hash.status();
        path.push_back(*std::move(hash));
        expect_name = false;
      } else if (c == '[') {
        absl::StatusOr<Step> bracket = ParseBracket(/*multiselect_allowed=*/expect_name);
        if (!bracket.ok()) return bracket.status();
        path.push_back(*std::move(bracket));
        expect_name = false;
      } else if (!expect_name && c == '.') {
        ++i_;
        expect_name = true;
      } else {
        return Refuse("unexpected text");
      }
    }
    if (expect_name) {
      return Refuse(path.empty() ? "an empty expression" : "a '.' with no name after it");
    }
    return path;
  }

  absl::StatusOr<std::string> ParseName() {
    if (q_[i_] == '"') {
      const size_t end = q_.find('"', i_ + 1);
      if (end == absl::string_view::npos) return Refuse("an unclosed quote");
      std::string name(q_.substr(i_ + 1, end - i_ - 1));
      i_ = end + 1;
      return name;
    }
    const size_t start = i_;
    while (i_ < q_.size() && (absl::ascii_isalnum(q_[i_]) || q_[i_] == '_')) ++i_;
    if (i_ == start) return Refuse("expected a name");
    return std::string(q_.substr(start, i_ - start));
  }

  // "[N]", "[*]", "[]", or (where a name may stand) a multiselect list "[a, b]".
  absl::StatusOr<Step> ParseBracket(bool multiselect_allowed) {
    ++i_;  // '['
    SkipSpaces();
    const size_t close = q_.find(']', i_);
    if (close == absl::string_view::npos) return Refuse("an unclosed [");
    const absl::string_view inside = absl::StripAsciiWhitespace(q_.substr(i_, close - i_));
    long long n = 0;
    if (inside.empty() || inside == "*") {
      i_ = close + 1;
      return Step{Project{inside.empty()}};
    }
    if (absl::SimpleAtoi(inside, &n)) {
      i_ = close + 1;
      return Step{Index{n}};
    }
    if (!multiselect_allowed) return Refuse("not an index (a list [a, b] goes after a '.')");
    MultiList list;
    for (;;) {
      absl::StatusOr<Path> item = ParsePath();
      if (!item.ok()) return item.status();
      list.items.push_back(*std::move(item));
      if (At(',')) {
        ++i_;
        continue;
      }
      if (At(']')) {
        ++i_;
        return Step{std::move(list)};
      }
      return Refuse("expected ',' or ']'");
    }
  }

  absl::StatusOr<Step> ParseHash() {
    ++i_;  // '{'
    MultiHash hash;
    for (;;) {
      SkipSpaces();
      if (i_ >= q_.size()) return Refuse("an unclosed {");
      absl::StatusOr<std::string> key = ParseName();
      if (!key.ok()) return key.status();
      if (!At(':')) return Refuse("expected ':' after the key");
      ++i_;
      absl::StatusOr<Path> value = ParsePath();
      if (!value.ok()) return value.status();
      hash.items.emplace_back(*std::move(key), *std::move(value));
      if (At(',')) {
        ++i_;
        continue;
      }
      if (At('}')) {
        ++i_;
        return Step{std::move(hash)};
      }
      return Refuse("expected ',' or '}'");
    }
  }

  absl::string_view q_;
  size_t i_ = 0;
};

json Apply(const Path& steps, size_t at, const json& v) {
  if (at == steps.size()) return v;
  const auto& step = steps[at].kind;
  if (const auto* f = std::get_if<Field>(&step)) {
    if (!v.is_object()) return nullptr;
    auto it = v.find(f->name);
    return it == v.end() ? json(nullptr) : Apply(steps, at + 1, *it);
  }
  if (const auto* ix = std::get_if<Index>(&step)) {
    if (!v.is_array()) return nullptr;
    const long long size = static_cast<long long>(v.size());
    const long long n = ix->n < 0 ? size + ix->n : ix->n;
    if (n < 0 || n >= size) return nullptr;
    return Apply(steps, at + 1, v[static_cast<size_t>(n)]);
  }
  if (const auto* list = std::get_if<MultiList>(&step)) {
    if (v.is_null()) return nullptr;
    json out = json::array();
    for (const Path& item : list->items) out.push_back(Apply(item, 0, v));
    return Apply(steps, at + 1, out);
  }
  if (const auto* hash = std::get_if<MultiHash>(&step)) {
    if (v.is_null()) return nullptr;
    json out = json::object();
    for (const auto& [key, item] : hash->items) out[key] = Apply(item, 0, v);
    return Apply(steps, at + 1, out);
  }
  const auto& p = std::get<Project>(step);
  if (!v.is_array()) return nullptr;
  std::vector<const json*> elements;
  for (const json& e : v) {
    if (p.flatten && e.is_array()) {
      for (const json& inner : e) elements.push_back(&inner);
    } else {
      elements.push_back(&e);
    }
  }
  json out = json::array();
  for (const json* e : elements) {
    json r = Apply(steps, at + 1, *e);
    if (!r.is_null()) out.push_back(std::move(r));
  }
  return out;
}

std::string Scalar(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  return v.dump();
}

// The AWS CLI's text layout: an object's scalars on one line (in key order, or in the
// order of `keys` for an element of a list of objects, blank where it has none), led by
// the upper-cased name of the field that holds it; then its lists and objects, each led by
// its own name; a list of scalars on one line, or one line each under a name.
void Text(const json& v, const std::string& name, const std::vector<std::string>* keys,
          std::vector<std::string>* lines) {
  const std::string label = absl::AsciiStrToUpper(name);
  if (v.is_object()) {
    std::vector<std::string> cells;
    std::vector<std::pair<std::string, const json*>> nested;
    if (keys == nullptr) {
      for (const auto& [k, e] : v.items()) {  // nlohmann keeps keys sorted
        if (e.is_structured()) {
          nested.emplace_back(k, &e);
        } else {
          cells.push_back(Scalar(e));
        }
      }
    } else {
      for (const std::string& k : *keys) {
        auto it = v.find(k);
        cells.push_back(it == v.end() ? "" : Scalar(*it));
      }
      for (const auto& [k, e] : v.items()) {
        if (e.is_structured()) nested.emplace_back(k, &e);
      }
    }
    if (!cells.empty()) {
      if (!name.empty()) cells.insert(cells.begin(), label);
      lines->push_back(absl::StrJoin(cells, "\t"));
    }
    for (const auto& [k, e] : nested) Text(*e, k, nullptr, lines);
    return;
  }
  if (v.is_array()) {
    if (v.empty()) return;
    bool objects = false, lists = false;
    for (const json& e : v) {
      objects |= e.is_object();
      lists |= e.is_array();
    }
    if (objects) {
      std::vector<std::string> all;  // the scalar keys of all the objects, sorted
      for (const json& e : v) {
        if (!e.is_object()) continue;
        for (const auto& [k, x] : e.items()) {
          if (!x.is_structured()) all.push_back(k);
        }
      }
      std::sort(all.begin(), all.end());
      all.erase(std::unique(all.begin(), all.end()), all.end());
      for (const json& e : v) Text(e, name, e.is_object() ? &all : nullptr, lines);
      return;
    }
    std::vector<std::string> scalars;
    for (const json& e : v) {
      if (!e.is_structured()) scalars.push_back(Scalar(e));
    }
    if (!scalars.empty()) {
      if (name.empty()) {
        lines->push_back(absl::StrJoin(scalars, "\t"));
      } else {
        for (const std::string& s : scalars) lines->push_back(absl::StrCat(label, "\t", s));
      }
    }
    if (lists) {
      for (const json& e : v) {
        if (e.is_structured()) Text(e, name, nullptr, lines);
      }
    }
    return;
  }
  lines->push_back(Scalar(v));
}

}  // namespace

absl::StatusOr<json> ApplyQuery(const json& doc, absl::string_view query) {
  absl::StatusOr<Path> path = QueryParser(query).Parse();
  if (!path.ok()) return path.status();
  return Apply(*path, 0, doc);
}

std::string TextOutput(const json& value) {
  std::vector<std::string> lines;
  Text(value, "", nullptr, &lines);
  return lines.empty() ? "" : absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

}  // namespace fleetcore::fleetctl
