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

struct Field {
  std::string name;
};
struct Index {
  long long n;
};
struct Project {
  bool flatten;  // "[]" rather than "[*]"
};
using Step = std::variant<Field, Index, Project>;

absl::StatusOr<std::vector<Step>> ParseQuery(absl::string_view q) {
  std::vector<Step> steps;
  size_t i = 0;
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--query: ", why, " at \"", q.substr(i),
                     "\" (fleetctl takes a.b, a[0], a[*].b and a[].b)"));
  };
  bool expect_name = true;  // at the start and after '.'
  while (i < q.size()) {
    const char c = q[i];
    if (expect_name && c == '"') {
      const size_t end = q.find('"', i + 1);
      if (end == absl::string_view::npos) return refuse("an unclosed quote");
      steps.push_back(Field{std::string(q.substr(i + 1, end - i - 1))});
      i = end + 1;
      expect_name = false;
    } else if (expect_name && (absl::ascii_isalpha(c) || c == '_')) {
      size_t end = i;
      while (end < q.size() && (absl::ascii_isalnum(q[end]) || q[end] == '_')) ++end;
      steps.push_back(Field{std::string(q.substr(i, end - i))});
      i = end;
      expect_name = false;
    } else if (c == '[') {
      const size_t end = q.find(']', i);
      if (end == absl::string_view::npos) return refuse("an unclosed [");
      const absl::string_view inside = absl::StripAsciiWhitespace(q.substr(i + 1, end - i - 1));
      long long n = 0;
      if (inside.empty() || inside == "*") {
        steps.push_back(Project{inside.empty()});
      } else if (absl::SimpleAtoi(inside, &n)) {
        steps.push_back(Index{n});
      } else {
        return refuse("not an index");
      }
      i = end + 1;
      expect_name = false;
    } else if (!expect_name && c == '.') {
      ++i;
      expect_name = true;
    } else {
      return refuse("unexpected text");
    }
  }
  if (expect_name) return refuse(steps.empty() ? "an empty query" : "a '.' with no name after it");
  return steps;
}

json Apply(const std::vector<Step>& steps, size_t at, const json& v) {
  if (at == steps.size()) return v;
  const Step& step = steps[at];
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
  absl::StatusOr<std::vector<Step>> steps = ParseQuery(query);
  if (!steps.ok()) return steps.status();
  return Apply(*steps, 0, doc);
}

std::string TextOutput(const json& value) {
  std::vector<std::string> lines;
  Text(value, "", nullptr, &lines);
  return lines.empty() ? "" : absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

}  // namespace fleetcore::fleetctl
