#include "common/iotsql/iotsql.h"

#include "common/iotsql/joda_time.h"
#include "common/iotsql/md2.h"
#include "common/iotsql/special_casing.h"
#include "common/json/json_text.h"
#include "common/nesting/nesting.h"

#include <locale.h>
#include <openssl/evp.h>
#include <wchar.h>
#include <wctype.h>

#include <algorithm>
#include <iterator>
#include <climits>
#include <cmath>
#include <cwchar>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "re2/re2.h"

namespace fleetcore::iotsql {

using json = nlohmann::json;

struct Expr {
  enum class Kind {
    kLiteral, kPath, kCall, kUnary, kBinary, kCase, kObject, kArray, kStar, kSelect,
    kVariable  // @name, set by the statement's SET clause (`op` is the name)
  };
  Kind kind = Kind::kLiteral;
  json literal;
  // kPath: field names, or (empty name) an index expression in `args`.
  std::vector<std::string> fields;
  std::vector<int> index_of_arg;  // per field: -1, or the index expression in args
  std::string op;                 // operator or function name (lower case)
  std::vector<std::shared_ptr<const Expr>> args;
  bool case_subject = false, case_else = false;
  std::vector<std::string> keys;  // kObject
  // kSelect (a nested query, 2016-03-23): `args` are the items (kStar for *) with their
  // `aliases`, over each element of the array `from`, kept when `where` holds.
  // kPath with `from`: the path starts at that expression's value, not the payload.
  bool select_value = false;
  std::vector<std::vector<std::string>> aliases;
  std::shared_ptr<const Expr> from, where;
  // kBinary: the length of the chain of binary operators below it (a+b+c+... is built as
  // a loop, not by recursion), bounded while parsing.
  int chain = 1;
};

namespace {

using ExprPtr = std::shared_ptr<const Expr>;

// Statements are evaluated recursively: their trees are kept shallow enough for any stack.
constexpr int kMaxNesting = 64;   // parentheses, calls, NOT and unary minus inside each other
constexpr int kMaxDepth = 256;    // any path from the root of an expression to a leaf
constexpr int kMaxPayloadNesting = 256;  // deeper payloads are not read as JSON

// The depth of the tree under `root`, walked without recursion.
int TreeDepth(const Expr& root) {
  std::vector<std::pair<const Expr*, int>> stack{{&root, 1}};
  int max = 0;
  while (!stack.empty()) {
    const auto [e, d] = stack.back();
    stack.pop_back();
    max = std::max(max, d);
    for (const ExprPtr& a : e->args) {
      if (a != nullptr) stack.emplace_back(a.get(), d + 1);
    }
    if (e->from != nullptr) stack.emplace_back(e->from.get(), d + 1);
    if (e->where != nullptr) stack.emplace_back(e->where.get(), d + 1);
  }
  return max;
}

// ---- lexer ------------------------------------------------------------------------------

enum class Tok { kEnd, kIdent, kNumber, kString, kSymbol };

struct Token {
  Tok type = Tok::kEnd;
  std::string text;  // identifier (as written), number text, string content, or symbol
  int line = 1, col = 1;
};

absl::StatusOr<std::vector<Token>> Lex(absl::string_view sql) {
  std::vector<Token> out;
  int line = 1, col = 1;
  size_t i = 0;
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("line ", line, ", column ", col, ": ", what));
  };
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\n') {
      ++line;
      col = 1;
      ++i;
      continue;
    }
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      ++i;
      ++col;
      continue;
    }
    Token t;
    t.line = line;
    t.col = col;
    const size_t start = i;
    if (absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$') {
      while (i < sql.size() && (absl::ascii_isalnum(static_cast<unsigned char>(sql[i])) ||
                                sql[i] == '_' || sql[i] == '$')) {
        ++i;
      }
      t.type = Tok::kIdent;
      t.text = std::string(sql.substr(start, i - start));
    } else if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      while (i < sql.size() && (absl::ascii_isdigit(static_cast<unsigned char>(sql[i])) ||
                                sql[i] == '.' || sql[i] == 'e' || sql[i] == 'E' ||
                                ((sql[i] == '-' || sql[i] == '+') &&
                                 (sql[i - 1] == 'e' || sql[i - 1] == 'E')))) {
        ++i;
      }
      t.type = Tok::kNumber;
      t.text = std::string(sql.substr(start, i - start));
    } else if (c == '\'' || c == '"') {
      ++i;
      std::string s;
      bool closed = false;
      while (i < sql.size()) {
        if (sql[i] == '\\' && i + 1 < sql.size()) {
          s += sql[i + 1];
          i += 2;
          continue;
        }
        if (sql[i] == c) {
          if (i + 1 < sql.size() && sql[i + 1] == c) {  // '' inside '...'
            s += c;
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        if (sql[i] == '\n') ++line;
        s += sql[i++];
      }
      if (!closed) return error("a string is not closed");
      t.type = Tok::kString;
      t.text = std::move(s);
    } else {
      static const char* kTwo[] = {"<>", "!=", "<=", ">="};
      t.type = Tok::kSymbol;
      for (const char* two : kTwo) {
        if (sql.substr(i, 2) == two) t.text = two;
      }
      if (t.text.empty()) {
        if (std::string("=<>+-*/%(),.[]{}:@").find(c) == std::string::npos) {
          return error(absl::StrCat("unexpected character '", std::string(1, c), "'"));
        }
        t.text = std::string(1, c);
      }
      i += t.text.size();
    }
    col += static_cast<int>(i - start);
    out.push_back(std::move(t));
  }
  Token end;
  end.line = line;
  end.col = col;
  out.push_back(end);
  return out;
}

// ---- parser -----------------------------------------------------------------------------

// The registry APIs get_registry_data() reads.
bool IsRegistryApi(absl::string_view name) {
  return name == "DescribeThing" || name == "ListThingGroupsForThing";
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, SqlVersion version)
      : t_(std::move(tokens)), version_(version) {}

  // In a statement, @name must have been SET before it is used; a substitution template
  // may name any of its rule's variables (`strict_variables` false).
  std::set<std::string> variables;
  bool strict_variables = true;
  // Set once a function that reads another service (get_thing_shadow, get_registry_data)
  // is parsed.
  bool calls_services = false;

  absl::Status Error(const Token& at, absl::string_view what) const {
    const std::string found = at.type == Tok::kEnd ? "the end" : absl::StrCat("'", at.text, "'");
    return absl::InvalidArgumentError(
        absl::StrCat("line ", at.line, ", column ", at.col, ": ", what, ", found ", found));
  }
  const Token& Peek() const { return t_[pos_]; }
  void Advance() { ++pos_; }
  bool IsKeyword(const Token& t, absl::string_view kw) const {
    return t.type == Tok::kIdent && absl::EqualsIgnoreCase(t.text, kw);
  }
  bool IsSymbol(absl::string_view s) const {
    return Peek().type == Tok::kSymbol && Peek().text == s;
  }
  bool Accept(absl::string_view kw) {
    if (IsKeyword(Peek(), kw)) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool AcceptSymbol(absl::string_view s) {
    if (IsSymbol(s)) {
      ++pos_;
      return true;
    }
    return false;
  }

  absl::StatusOr<ExprPtr> ParseExpr() {
    return Nested([this] { return ParseOr(); });
  }

  // Runs a parse step one nesting level deeper, refusing beyond kMaxNesting.
  template <typename F>
  absl::StatusOr<ExprPtr> Nested(F step) {
    if (nesting_ >= kMaxNesting) {
      return Error(Peek(), absl::StrCat("the expression is nested more than ", kMaxNesting,
                                        " levels deep"));
    }
    ++nesting_;
    absl::StatusOr<ExprPtr> r = step();
    --nesting_;
    if (r.ok() && TreeDepth(**r) > kMaxDepth) {
      return Error(Peek(), absl::StrCat("the expression is more than ", kMaxDepth,
                                        " levels deep"));
    }
    return r;
  }

  // The items after SELECT [VALUE]: expressions (kStar for *) with their alias paths.
  absl::Status ParseSelectList(bool* value, std::vector<ExprPtr>* items,
                               std::vector<std::vector<std::string>>* aliases) {
    *value = Accept("VALUE");
    do {
      std::vector<std::string> alias;
      if (!*value && AcceptSymbol("*")) {
        auto star = std::make_shared<Expr>();
        star->kind = Expr::Kind::kStar;
        items->push_back(star);
        aliases->push_back({});
        continue;
      }
      absl::StatusOr<ExprPtr> e = ParseExpr();
      if (!e.ok()) return e.status();
      if (Accept("AS")) {
        do {
          const Token& name = Peek();
          if (name.type != Tok::kIdent) return Error(name, "expected a name after AS");
          alias.push_back(name.text);
          Advance();
        } while (AcceptSymbol("."));
      } else if ((*e)->kind == Expr::Kind::kPath) {
        // The last field name, as AWS names an unaliased field.
        for (auto it = (*e)->fields.rbegin(); it != (*e)->fields.rend(); ++it) {
          if (!it->empty()) {
            alias.push_back(*it);
            break;
          }
        }
      } else if ((*e)->kind == Expr::Kind::kCall) {
        alias.push_back((*e)->op);
      } else {
        alias.push_back(absl::StrCat("_", ++unnamed_));
      }
      items->push_back(*e);
      aliases->push_back(std::move(alias));
      if (*value) break;
    } while (AcceptSymbol(","));
    return absl::OkStatus();
  }

  // After "(SELECT": the rest of a nested query, up to and including ")".
  absl::StatusOr<ExprPtr> ParseNestedSelect() {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::kSelect;
    if (absl::Status s = ParseSelectList(&e->select_value, &e->args, &e->aliases); !s.ok()) {
      return s;
    }
    if (!Accept("FROM")) return Error(Peek(), "expected FROM and an array field in the nested SELECT");
    absl::StatusOr<ExprPtr> from = ParseExpr();
    if (!from.ok()) return from;
    e->from = *from;
    if (Accept("WHERE")) {
      absl::StatusOr<ExprPtr> w = ParseExpr();
      if (!w.ok()) return w;
      e->where = *w;
    }
    if (!AcceptSymbol(")")) return Error(Peek(), "expected ')' after the nested SELECT");
    return ExprPtr(e);
  }

  absl::StatusOr<ExprPtr> ParseOr() {
    auto left = ParseAnd();
    while (left.ok() && Accept("OR")) {
      auto right = ParseAnd();
      if (!right.ok()) return right;
      left = Binary("or", *left, *right);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> ParseAnd() {
    auto left = ParseNot();
    while (left.ok() && Accept("AND")) {
      auto right = ParseNot();
      if (!right.ok()) return right;
      left = Binary("and", *left, *right);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> ParseNot() {
    if (Accept("NOT")) {
      auto operand = Nested([this] { return ParseNot(); });
      if (!operand.ok()) return operand;
      auto e = std::make_shared<Expr>();
      e->kind = Expr::Kind::kUnary;
      e->op = "not";
      e->args = {*operand};
      return ExprPtr(e);
    }
    return ParseComparison();
  }
  absl::StatusOr<ExprPtr> ParseComparison() {
    auto left = ParseAdditive();
    if (!left.ok()) return left;
    for (const char* op : {"=", "<>", "!=", "<", "<=", ">", ">="}) {
      if (AcceptSymbol(op)) {
        auto right = ParseAdditive();
        if (!right.ok()) return right;
        return Binary(std::string(op) == "!=" ? "<>" : op, *left, *right);
      }
    }
    return left;
  }
  absl::StatusOr<ExprPtr> ParseAdditive() {
    auto left = ParseMultiplicative();
    while (left.ok() && (IsSymbol("+") || IsSymbol("-"))) {
      const std::string op = t_[pos_++].text;
      auto right = ParseMultiplicative();
      if (!right.ok()) return right;
      left = Binary(op, *left, *right);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> ParseMultiplicative() {
    auto left = ParseUnary();
    while (left.ok() && (IsSymbol("*") || IsSymbol("/") || IsSymbol("%"))) {
      const std::string op = t_[pos_++].text;
      auto right = ParseUnary();
      if (!right.ok()) return right;
      left = Binary(op, *left, *right);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> ParseUnary() {
    if (AcceptSymbol("-")) {
      auto operand = Nested([this] { return ParseUnary(); });
      if (!operand.ok()) return operand;
      auto e = std::make_shared<Expr>();
      e->kind = Expr::Kind::kUnary;
      e->op = "-";
      e->args = {*operand};
      return ExprPtr(e);
    }
    return ParsePrimary();
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Peek();
    auto e = std::make_shared<Expr>();
    if (t.type == Tok::kNumber) {
      ++pos_;
      int64_t i;
      double d;
      if (absl::SimpleAtoi(t.text, &i)) {
        e->literal = i;
      } else if (absl::SimpleAtod(t.text, &d)) {
        e->literal = d;
      } else {
        return Error(t, "not a number");
      }
      return ExprPtr(e);
    }
    if (t.type == Tok::kString) {
      ++pos_;
      e->literal = t.text;
      return ExprPtr(e);
    }
    if (IsKeyword(t, "TRUE") || IsKeyword(t, "FALSE")) {
      ++pos_;
      e->literal = IsKeyword(t, "TRUE");
      return ExprPtr(e);
    }
    if (IsKeyword(t, "NULL")) {
      ++pos_;
      e->literal = nullptr;
      return ExprPtr(e);
    }
    if (IsKeyword(t, "CASE")) return ParseCase();
    if (AcceptSymbol("@")) {
      const Token& name = Peek();
      if (name.type != Tok::kIdent) return Error(name, "expected a variable name after '@'");
      if (strict_variables && !variables.contains(name.text)) {
        return Error(name, absl::StrCat("@", name.text, " is not SET before it is used"));
      }
      ++pos_;
      e->kind = Expr::Kind::kVariable;
      e->op = name.text;
      return ParsePostfix(ExprPtr(e));
    }
    if (AcceptSymbol("(")) {
      if (IsKeyword(Peek(), "SELECT")) {
        if (version_ != SqlVersion::k2016_03_23) {
          return Error(Peek(), "nested SELECT needs SQL version 2016-03-23");
        }
        Advance();
        return ParsePostfix(ParseNestedSelect());
      }
      auto inner = ParseExpr();
      if (!inner.ok()) return inner;
      if (!AcceptSymbol(")")) return Error(Peek(), "expected ')'");
      return ParsePostfix(inner);
    }
    if (IsSymbol("{") && version_ == SqlVersion::k2016_03_23) {
      ++pos_;
      e->kind = Expr::Kind::kObject;
      if (!AcceptSymbol("}")) {
        do {
          const Token& key = Peek();
          if (key.type != Tok::kString && key.type != Tok::kIdent) {
            return Error(key, "expected a key in the object literal");
          }
          ++pos_;
          if (!AcceptSymbol(":")) return Error(Peek(), "expected ':' after the key");
          auto v = ParseExpr();
          if (!v.ok()) return v;
          e->keys.push_back(key.text);
          e->args.push_back(*v);
        } while (AcceptSymbol(","));
        if (!AcceptSymbol("}")) return Error(Peek(), "expected '}'");
      }
      return ExprPtr(e);
    }
    if (IsSymbol("[") && version_ == SqlVersion::k2016_03_23) {
      ++pos_;
      e->kind = Expr::Kind::kArray;
      if (!AcceptSymbol("]")) {
        do {
          auto v = ParseExpr();
          if (!v.ok()) return v;
          e->args.push_back(*v);
        } while (AcceptSymbol(","));
        if (!AcceptSymbol("]")) return Error(Peek(), "expected ']'");
      }
      return ExprPtr(e);
    }
    if (t.type == Tok::kIdent && !IsReserved(t)) {
      ++pos_;
      if (AcceptSymbol("(")) {
        e->kind = Expr::Kind::kCall;
        e->op = absl::AsciiStrToLower(t.text);
        if (e->op == "cast") return ParseCast(e);
        if (!AcceptSymbol(")")) {
          do {
            if (IsSymbol("*") && (e->op == "encode")) {
              ++pos_;
              auto star = std::make_shared<Expr>();
              star->kind = Expr::Kind::kStar;
              e->args.push_back(star);
              continue;
            }
            auto a = ParseExpr();
            if (!a.ok()) return a;
            e->args.push_back(*a);
          } while (AcceptSymbol(","));
          if (!AcceptSymbol(")")) return Error(Peek(), "expected ')' after the arguments");
        }
        if (absl::Status s = CheckCall(t, *e); !s.ok()) return s;
        if ((e->op == "sourceip" || e->op == "transform") &&
            version_ != SqlVersion::k2016_03_23) {
          return Error(t, absl::StrCat(e->op, "() needs SQL version 2016-03-23"));
        }
        if (e->op == "get_thing_shadow" || e->op == "get_registry_data") {
          if (version_ != SqlVersion::k2016_03_23) {
            return Error(t, absl::StrCat(e->op, "() needs SQL version 2016-03-23"));
          }
          const Expr& api = *e->args[0];
          if (e->op == "get_registry_data" && api.kind == Expr::Kind::kLiteral &&
              !(api.literal.is_string() &&
                IsRegistryApi(api.literal.get_ref<const std::string&>()))) {
            return Error(t, "get_registry_data() reads 'DescribeThing' or "
                            "'ListThingGroupsForThing'");
          }
          calls_services = true;
        }
        return ParsePostfix(ExprPtr(e));
      }
      e->kind = Expr::Kind::kPath;
      e->fields.push_back(t.text);
      e->index_of_arg.push_back(-1);
      if (absl::Status s = ParsePathTail(e.get()); !s.ok()) return s;
      return ExprPtr(e);
    }
    return Error(t, "expected a value, a field or a function");
  }

  // ".field" and "[index]" after a field: appended to path `e`.
  absl::Status ParsePathTail(Expr* e) {
    for (;;) {
      if (AcceptSymbol(".")) {
        const Token& f = Peek();
        if (f.type != Tok::kIdent) return Error(f, "expected a field name after '.'");
        ++pos_;
        e->fields.push_back(f.text);
        e->index_of_arg.push_back(-1);
      } else if (AcceptSymbol("[")) {
        auto idx = ParseExpr();
        if (!idx.ok()) return idx.status();
        if (!AcceptSymbol("]")) return Error(Peek(), "expected ']'");
        e->fields.push_back("");
        e->index_of_arg.push_back(static_cast<int>(e->args.size()));
        e->args.push_back(*idx);
      } else {
        return absl::OkStatus();
      }
    }
  }

  // A function call, parenthesized expression or nested query followed by ".field" or
  // "[index]" (get((SELECT ...), 0).v): a path from that value.
  absl::StatusOr<ExprPtr> ParsePostfix(absl::StatusOr<ExprPtr> base) {
    if (!base.ok() || !(IsSymbol(".") || IsSymbol("["))) return base;
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::kPath;
    e->from = *base;
    if (absl::Status s = ParsePathTail(e.get()); !s.ok()) return s;
    return ExprPtr(e);
  }

  absl::StatusOr<ExprPtr> ParseCase() {
    ++pos_;  // CASE
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::kCase;
    if (!IsKeyword(Peek(), "WHEN")) {
      auto subject = ParseExpr();
      if (!subject.ok()) return subject;
      e->case_subject = true;
      e->args.push_back(*subject);
    }
    bool any = false;
    while (Accept("WHEN")) {
      auto when = ParseExpr();
      if (!when.ok()) return when;
      if (!Accept("THEN")) return Error(Peek(), "expected THEN");
      auto then = ParseExpr();
      if (!then.ok()) return then;
      e->args.push_back(*when);
      e->args.push_back(*then);
      any = true;
    }
    if (!any) return Error(Peek(), "expected WHEN");
    if (Accept("ELSE")) {
      auto otherwise = ParseExpr();
      if (!otherwise.ok()) return otherwise;
      e->args.push_back(*otherwise);
      e->case_else = true;
    }
    if (!Accept("END")) return Error(Peek(), "expected END to close CASE");
    return ExprPtr(e);
  }

  absl::StatusOr<ExprPtr> ParseCast(std::shared_ptr<Expr> e) {
    auto v = ParseExpr();
    if (!v.ok()) return v;
    if (!Accept("AS")) return Error(Peek(), "expected AS in cast(value AS type)");
    const Token& type = Peek();
    static const char* kTypes[] = {"String", "Nvarchar", "Text", "Ntext", "Varchar", "Int",
                                   "Integer", "Double", "Decimal", "Bool", "Boolean"};
    bool known = false;
    for (const char* k : kTypes) known |= IsKeyword(type, k);
    if (!known) return Error(type, "expected a type (String, Int, Double, Decimal, Boolean)");
    ++pos_;
    if (!AcceptSymbol(")")) return Error(Peek(), "expected ')' after the type");
    auto lit = std::make_shared<Expr>();
    lit->literal = absl::AsciiStrToLower(type.text);
    e->args = {*v, lit};
    return ExprPtr(e);
  }

  absl::Status CheckCall(const Token& at, const Expr& e) const {
    struct Arity {
      const char* name;
      int min, max;
    };
    static const Arity kFunctions[] = {
        {"topic", 0, 1},      {"clientid", 0, 0},   {"principal", 0, 0},
        {"timestamp", 0, 0},  {"newuuid", 0, 0},    {"accountid", 0, 0},
        {"sql_version", 0, 0}, {"abs", 1, 1},       {"ceil", 1, 1},
        {"floor", 1, 1},      {"round", 1, 1},      {"sqrt", 1, 1},
        {"power", 2, 2},      {"mod", 2, 2},        {"sign", 1, 1},
        {"ln", 1, 1},         {"log", 1, 1},        {"exp", 1, 1},
        {"concat", 1, 100},   {"upper", 1, 1},      {"lower", 1, 1},
        {"trim", 1, 1},       {"ltrim", 1, 1},      {"rtrim", 1, 1},
        {"substring", 2, 3},  {"length", 1, 1},     {"startswith", 2, 2},
        {"endswith", 2, 2},   {"replace", 3, 3},    {"indexof", 2, 2},
        {"isnull", 1, 1},     {"isundefined", 1, 1}, {"get", 2, 2},
        {"encode", 2, 2},     {"decode", 2, 2},     {"md2", 1, 1},        {"md5", 1, 1},
        {"sha1", 1, 1},       {"sha256", 1, 1},     {"sha512", 1, 1},
        {"regexp_matches", 2, 2}, {"regexp_replace", 3, 3}, {"regexp_substr", 2, 2},
        {"numbytes", 1, 1},   {"chr", 1, 1},
        {"traceid", 0, 0},    {"trunc", 2, 2},      {"remainder", 2, 2},
        {"sin", 1, 1},        {"cos", 1, 1},        {"tan", 1, 1},
        {"asin", 1, 1},       {"acos", 1, 1},       {"atan", 1, 1},
        {"sinh", 1, 1},       {"cosh", 1, 1},       {"tanh", 1, 1},
        {"atan2", 2, 2},      {"bitand", 2, 2},     {"bitor", 2, 2},
        {"bitxor", 2, 2},     {"bitnot", 1, 1},     {"rand", 0, 0},
        {"nanvl", 2, 2},      {"lpad", 2, 2},       {"rpad", 2, 2},
        {"sha224", 1, 1},     {"sha384", 1, 1},
        {"parse_time", 2, 3}, {"time_to_epoch", 2, 2},
        {"get_mqtt_property", 1, 1}, {"get_user_properties", 1, 1},
        {"get_thing_shadow", 2, 3}, {"get_registry_data", 3, 3}, {"sourceip", 0, 0},
        {"get_or_default", 1, 2}, {"transform", 3, 3}};
    for (const Arity& f : kFunctions) {
      if (e.op == f.name) {
        const int n = static_cast<int>(e.args.size());
        if (n < f.min || n > f.max) {
          return absl::InvalidArgumentError(absl::StrCat(
              "line ", at.line, ", column ", at.col, ": ", at.text, "() takes ",
              f.min == f.max ? absl::StrCat(f.min) : absl::StrCat(f.min, " to ", f.max),
              " argument", f.min == 1 && f.max == 1 ? "" : "s", ", got ", n));
        }
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError(absl::StrCat("line ", at.line, ", column ", at.col,
                                                   ": unknown function ", at.text, "()"));
  }

  bool IsReserved(const Token& t) const {
    for (const char* kw : {"SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "WHEN", "THEN",
                           "ELSE", "END", "VALUE"}) {
      if (IsKeyword(t, kw)) return true;
    }
    return false;
  }

  absl::StatusOr<ExprPtr> Binary(const std::string& op, ExprPtr l, ExprPtr r) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::kBinary;
    e->op = op;
    e->chain = std::max(l->chain, r->chain) + 1;
    if (e->chain > kMaxDepth) {
      return Error(Peek(), absl::StrCat("more than ", kMaxDepth, " operators in a row"));
    }
    e->args = {std::move(l), std::move(r)};
    return ExprPtr(e);
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
  SqlVersion version_;
  int unnamed_ = 0;  // unaliased expressions: _1, _2, ...
  int nesting_ = 0;
};

// ---- values -------------------------------------------------------------------------------

// Whether `s` is -?\d+(\.\d+)?([eE]-?\d+)?, AWS's numeric strings. A scan: std::regex
// recursed once per character, and a device's string of 100,000 digits overflowed the stack.
bool IsNumeric(absl::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && absl::ascii_isdigit(s[i])) ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digits()) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && s[i] == '-') ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// A number, or a string that reads as one (AWS's implicit String -> Decimal).
std::optional<double> AsNumber(const Value& v) {
  if (!v.has_value()) return std::nullopt;
  if (v->is_number()) return v->get<double>();
  if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    if (IsNumeric(s)) {
      double d;
      if (absl::SimpleAtod(s, &d)) return d;
    }
  }
  return std::nullopt;
}

std::optional<bool> AsBool(const Value& v) {
  if (!v.has_value()) return std::nullopt;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_string()) {
    if (absl::EqualsIgnoreCase(v->get_ref<const std::string&>(), "true")) return true;
    if (absl::EqualsIgnoreCase(v->get_ref<const std::string&>(), "false")) return false;
  }
  return std::nullopt;
}


std::string AsText(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  return json_text::JsonText(j);
}

// `d` as an Int64 when it is finite and in range (casting anything else is undefined).
std::optional<int64_t> ToInt64(double d) {
  if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return std::nullopt;
  return static_cast<int64_t>(d);
}

// Int64 +, -, *, / and % that say when the result does not fit (then AWS's Decimal
// arithmetic applies).
std::optional<int64_t> IntOp(char op, int64_t a, int64_t b) {
  int64_t r = 0;
  switch (op) {
    case '+':
      if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
      return r;
    case '-':
      if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
      return r;
    case '*':
      if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
      return r;
    case '/':
      if (b == -1 && a == INT64_MIN) return std::nullopt;
      return a / b;
    default:  // '%'
      if (b == -1) return 0;
      return a % b;
  }
}

json Number(double d, bool both_int) {
  if (both_int && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
  return d;
}

// 2016-03-23: whole-number decimals become Int.
void Normalize(json& j, SqlVersion version) {
  if (version != SqlVersion::k2016_03_23) return;
  if (j.is_number_float()) {
    const double d = j.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) {
      j = static_cast<int64_t>(d);
    }
  } else if (j.is_structured()) {
    for (json& c : j) Normalize(c, version);
  }
}

std::string HashHex(const EVP_MD* md, const std::string& in) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(in.data(), in.size(), out, &n, md, nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(out), static_cast<size_t>(n)));
}

struct Env {
  const json* payload = nullptr;  // null when the payload is not JSON
  absl::string_view raw;
  const MessageContext* ctx = nullptr;
  SqlVersion version = SqlVersion::k2016_03_23;
  const json* variables = nullptr;  // the SET clause's values (an object), if any
  // The first failed lookup (then the evaluation's result is not used), and the lookups'
  // answers so far: a statement naming the same shadow twice asks once.
  std::optional<LookupFailure>* failure = nullptr;
  std::map<std::string, Value>* lookups = nullptr;
};

Value Eval(const Expr& e, const Env& env);

// upper() and lower() on any letter, as AWS's (Java's String.toUpperCase() and
// toLowerCase()) do: "é" -> "É", "ß" -> "SS", "ﬁ" -> "FI", "İ" -> "i̇", and a word's final
// "Σ" -> "ς". Unicode's case mappings: the one-for-one ones from glibc's built-in C.UTF-8
// locale (whatever the process's own locale), the longer ones from SpecialCasing
// (special_casing.h). Bytes that are not UTF-8 stay as they are.
std::string ChangeCase(absl::string_view s, bool upper) {
  static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  if (utf8 == static_cast<locale_t>(0)) {
    return upper ? absl::AsciiStrToUpper(s) : absl::AsciiStrToLower(s);
  }
  // The character at byte i and its length; 0 for a byte that does not begin one.
  auto decode = [&](size_t i, wchar_t* wc) -> size_t {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      *wc = c;
      return 1;
    }
    std::mbstate_t st{};
    const locale_t old = uselocale(utf8);
    const size_t n = mbrtowc(wc, s.data() + i, s.size() - i, &st);
    uselocale(old);
    return n == static_cast<size_t>(-1) || n == static_cast<size_t>(-2) ? 0 : n;
  };
  auto append = [&](std::string& out, wint_t wc) {
    char buf[MB_LEN_MAX];
    std::mbstate_t st{};
    const locale_t old = uselocale(utf8);
    const size_t m = wcrtomb(buf, static_cast<wchar_t>(wc), &st);
    uselocale(old);
    if (m != static_cast<size_t>(-1)) out.append(buf, m);
    return m != static_cast<size_t>(-1);
  };
  std::string out;
  out.reserve(s.size());
  bool after_letter = false;  // for the final sigma
  size_t i = 0;
  while (i < s.size()) {
    wchar_t wc = 0;
    const size_t n = decode(i, &wc);
    if (n == 0) {
      out += s[i++];  // not UTF-8: kept
      after_letter = false;
      continue;
    }
    if (wc < 0x80) {
      out += static_cast<char>(upper ? absl::ascii_toupper(static_cast<unsigned char>(wc))
                                     : absl::ascii_tolower(static_cast<unsigned char>(wc)));
    } else if (upper) {
      const auto* special = std::lower_bound(
          std::begin(kSpecialUpper), std::end(kSpecialUpper), static_cast<char32_t>(wc),
          [](const SpecialUpper& row, char32_t c) { return row.letter < c; });
      if (special != std::end(kSpecialUpper) && special->letter == static_cast<char32_t>(wc)) {
        out += special->upper;
      } else {
        if (!append(out, towupper_l(static_cast<wint_t>(wc), utf8))) out.append(s.data() + i, n);
      }
    } else if (wc == 0x130) {  // "İ": an i and a combining dot above
      out += "i\u0307";
    } else if (wc == 0x3A3) {  // "Σ": "ς" ending a word, "σ" elsewhere
      wchar_t next = 0;
      const bool letter_follows = i + n < s.size() && decode(i + n, &next) != 0 &&
                                  iswalpha_l(static_cast<wint_t>(next), utf8);
      append(out, after_letter && !letter_follows ? 0x3C2 : 0x3C3);
    } else {
      if (!append(out, towlower_l(static_cast<wint_t>(wc), utf8))) out.append(s.data() + i, n);
    }
    after_letter = iswalpha_l(static_cast<wint_t>(wc), utf8) != 0;
    i += n;
  }
  return out;
}

// `pattern` compiled, kept per thread for the next messages (a rule's pattern is nearly
// always a literal; compiling costs far more than matching a reading). Shared: evaluating
// another argument may compile, and evict, patterns while this one is in use.
std::shared_ptr<const RE2> CompiledRegexp(const std::string& pattern) {
  thread_local std::map<std::string, std::shared_ptr<const RE2>> cache;
  if (auto it = cache.find(pattern); it != cache.end()) return it->second;
  if (cache.size() >= 256) cache.clear();  // bounded: patterns computed from messages
  RE2::Options options;
  options.set_log_errors(false);
  return cache.emplace(pattern, std::make_shared<const RE2>(pattern, options)).first->second;
}

// A Java replacement ("$1", "\\$" for a dollar) as an RE2 rewrite ("\\1", "\\\\" for a backslash).
std::string Re2Rewrite(absl::string_view java) {
  std::string out;
  for (size_t i = 0; i < java.size(); ++i) {
    const char c = java[i];
    if (c == '\\' && i + 1 < java.size()) {
      const char next = java[++i];  // taken literally
      if (next == '\\') {
        out += "\\\\";
      } else {
        out += next;
      }
    } else if (c == '$' && i + 1 < java.size() && absl::ascii_isdigit(java[i + 1])) {
      out += '\\';
      out += java[++i];
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  return out;
}

// The characters (code points) of UTF-8 text: its bytes that do not continue a character.
size_t CharCount(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The byte offset where character `chars` begins (the size when there are no more).
size_t ByteOffsetOfChar(absl::string_view s, size_t chars) {
  size_t i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (chars == 0) return i;
    --chars;
  }
  return s.size();
}

// get_thing_shadow(thing[, shadow], roleArn) and get_registry_data(api, thing, roleArn).
// The role is the IAM role AWS reads with; fleetcore's rules service reads with its own
// credentials, so it is not used.
Value Lookup(const Expr& e, const Env& env) {
  if (env.failure->has_value()) return std::nullopt;  // the result is not used anyway
  auto text = [&](size_t i) -> std::optional<std::string> {
    Value v = Eval(*e.args[i], env);
    if (!v.has_value() || !v->is_string()) return std::nullopt;
    return v->get<std::string>();
  };
  const bool shadow_call = e.op == "get_thing_shadow";
  std::optional<std::string> thing;
  std::optional<std::string> second;  // the shadow's name, or the registry API
  if (shadow_call) {
    thing = text(0);
    second = e.args.size() == 3 ? text(1) : std::string();
  } else {
    second = text(0);
    thing = text(1);
    if (second && !IsRegistryApi(*second)) return std::nullopt;
  }
  if (!thing || !second) return std::nullopt;
  // What was asked for: the failure's resource, and the key of the answers so far.
  const std::string resource =
      !shadow_call    ? *thing
      : second->empty() ? *thing
                        : absl::StrCat(*thing, "/shadow/name/", *second);
  const std::string key = absl::StrCat(e.op, " ", resource, " ", shadow_call ? "" : *second);
  if (auto it = env.lookups->find(key); it != env.lookups->end()) return it->second;
  Value answer;
  absl::Status failed;
  if (env.ctx->lookups == nullptr) {
    failed = absl::FailedPreconditionError("other services cannot be read here");
  } else if (absl::StatusOr<json> doc =
                 shadow_call ? env.ctx->lookups->GetThingShadow(*thing, *second)
                             : env.ctx->lookups->GetRegistryData(*second, *thing);
             doc.ok()) {
    answer = *std::move(doc);
  } else if (!LookupFoundNothing(doc.status())) {
    failed = doc.status();
  }
  if (!failed.ok()) {
    *env.failure = LookupFailure{e.op, resource, std::move(failed)};
    return std::nullopt;
  }
  env.lookups->emplace(key, answer);
  return answer;
}

// transform('enrichArray', object, array): each object of the array with the object's
// attributes added (replacing those of the same name). Undefined for another mode, an
// element that is not an object, or a result over AWS's 128 KiB, which is checked while it
// grows: a few hundred elements times a large object would otherwise take megabytes.
Value Transform(const Expr& e, const Env& env) {
  constexpr size_t kMaxResultBytes = 128 * 1024;
  Value mode = Eval(*e.args[0], env);
  if (!mode.has_value() || *mode != "enrichArray") return std::nullopt;
  Value attributes = Eval(*e.args[1], env);
  Value elements = Eval(*e.args[2], env);
  if (!attributes.has_value() || !attributes->is_object() || !elements.has_value() ||
      !elements->is_array()) {
    return std::nullopt;
  }
  json out = json::array();
  size_t bytes = 2;  // []
  for (json& element : *elements) {
    if (!element.is_object()) return std::nullopt;
    for (const auto& [key, value] : attributes->items()) element[key] = value;
    bytes += json_text::JsonText(element).size() + 1;
    if (bytes > kMaxResultBytes) return std::nullopt;
    out.push_back(std::move(element));
  }
  return out;
}

Value EvalCall(const Expr& e, const Env& env) {
  const std::string& f = e.op;
  auto arg = [&](size_t i) -> Value { return Eval(*e.args[i], env); };
  auto str_arg = [&](size_t i) -> std::optional<std::string> {
    Value v = arg(i);
    if (!v.has_value() || v->is_null()) return std::nullopt;
    return AsText(*v);
  };
  if (f == "topic") {
    const std::string& topic = env.ctx->topic;
    if (e.args.empty()) return json(topic);
    std::optional<double> n = AsNumber(arg(0));
    if (!n) return std::nullopt;
    absl::string_view t = topic;
    // Basic Ingest's $aws/rules/{rule}/ prefix is not part of the topic.
    if (absl::StartsWith(t, "$aws/rules/")) {
      std::vector<absl::string_view> p = absl::StrSplit(t, absl::MaxSplits('/', 3));
      t = p.size() == 4 ? p[3] : "";
    }
    std::vector<absl::string_view> parts = absl::StrSplit(t, '/');
    if (!(*n >= 1 && *n <= static_cast<double>(parts.size()))) return std::nullopt;
    return json(std::string(parts[static_cast<size_t>(*n) - 1]));
  }
  if (f == "clientid") return json(env.ctx->client_id.empty() ? "n/a" : env.ctx->client_id);
  if (f == "sourceip") {
    if (env.ctx->source_ip.empty()) return std::nullopt;
    return json(env.ctx->source_ip);
  }
  if (f == "get_thing_shadow" || f == "get_registry_data") return Lookup(e, env);
  // The default (or Undefined without one) when the expression is Undefined or null, or
  // fails: a lookup that got no answer is then not the rule's failure.
  if (f == "get_or_default") {
    std::optional<LookupFailure> failed;
    Env inner = env;
    inner.failure = &failed;
    Value v = Eval(*e.args[0], inner);
    if (!failed.has_value() && v.has_value() && !v->is_null()) return v;
    if (e.args.size() < 2) return std::nullopt;
    return arg(1);
  }
  if (f == "transform") return Transform(e, env);
  // MQTT 5: get_mqtt_property('content_type' | 'format_indicator' | 'response_topic' |
  // 'correlation_data' (base64)), and the values of one user property, in order.
  if (f == "get_mqtt_property") {
    const MessageContext& c = *env.ctx;
    std::optional<std::string> name = str_arg(0);
    if (!name) return std::nullopt;
    if (*name == "content_type" && c.content_type) return json(*c.content_type);
    if (*name == "response_topic" && c.response_topic) return json(*c.response_topic);
    if (*name == "correlation_data" && c.correlation_data) {
      return json(absl::Base64Escape(*c.correlation_data));
    }
    if (*name == "format_indicator" && c.utf8_payload) {
      return json(*c.utf8_payload ? "UTF8_DATA" : "UNSPECIFIED_BYTES");
    }
    return std::nullopt;
  }
  if (f == "get_user_properties") {
    std::optional<std::string> key = str_arg(0);
    if (!key) return std::nullopt;
    json values = json::array();
    for (const auto& [k, v] : env.ctx->user_properties) {
      if (k == *key) values.push_back(v);
    }
    if (values.empty()) return std::nullopt;
    return values;
  }
  if (f == "principal") return json(env.ctx->principal);
  if (f == "timestamp") return json(env.ctx->timestamp_ms);
  if (f == "accountid") return json("000000000000");
  if (f == "sql_version") {
    return json(env.version == SqlVersion::k2016_03_23 ? "2016-03-23" : "2015-10-08");
  }
  if (f == "newuuid" || f == "traceid") {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    uint64_t a = rng(), b = rng();
    a = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x4000;  // version 4
    b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
    char buf[40];
    snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
             static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFFF),
             static_cast<unsigned>(b >> 48),
             static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
    return json(std::string(buf));
  }
  static const std::map<std::string, double (*)(double)> kMath = {
      {"ceil", [](double x) { return std::ceil(x); }},
      {"floor", [](double x) { return std::floor(x); }},
      {"round", [](double x) { return std::round(x); }},
      {"sqrt", [](double x) { return std::sqrt(x); }},
      {"ln", [](double x) { return std::log(x); }},
      {"log", [](double x) { return std::log10(x); }},
      {"exp", [](double x) { return std::exp(x); }},
      {"sign", [](double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; }},
      {"sin", [](double x) { return std::sin(x); }},
      {"cos", [](double x) { return std::cos(x); }},
      {"tan", [](double x) { return std::tan(x); }},
      {"asin", [](double x) { return std::asin(x); }},
      {"acos", [](double x) { return std::acos(x); }},
      {"atan", [](double x) { return std::atan(x); }},
      {"sinh", [](double x) { return std::sinh(x); }},
      {"cosh", [](double x) { return std::cosh(x); }},
      {"tanh", [](double x) { return std::tanh(x); }},
  };
  if (auto it = kMath.find(f); it != kMath.end()) {
    std::optional<double> x = AsNumber(arg(0));
    if (!x) return std::nullopt;
    const double r = it->second(*x);
    if (!std::isfinite(r)) return std::nullopt;
    const bool integral = f == "ceil" || f == "floor" || f == "round" || f == "sign";
    return Number(r, integral);
  }
  if (f == "trunc") {
    // trunc(2.3456, 2) = 2.34: toward zero at that many decimals.
    std::optional<double> x = AsNumber(arg(0)), n = AsNumber(arg(1));
    if (!x || !n) return std::nullopt;
    const double scale = std::pow(10.0, std::trunc(*n));
    const double r = std::trunc(*x * scale) / scale;
    if (!std::isfinite(r)) return std::nullopt;
    return Number(r, *n <= 0);
  }
  if (f == "atan2") {
    std::optional<double> y = AsNumber(arg(0)), x = AsNumber(arg(1));
    if (!y || !x) return std::nullopt;
    return json(std::atan2(*y, *x));
  }
  if (f == "rand") {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return json(std::uniform_real_distribution<double>(0.0, 1.0)(rng));
  }
  if (f == "nanvl") {
    // The first argument unless it is not a number (NaN, or not numeric), else the second.
    Value a = arg(0);
    std::optional<double> x = AsNumber(a);
    if (x && !std::isnan(*x)) return a;
    return arg(1);
  }
  if (f == "bitand" || f == "bitor" || f == "bitxor" || f == "bitnot") {
    Value a = arg(0);
    if (!a || !a->is_number_integer()) return std::nullopt;
    const int64_t x = a->get<int64_t>();
    if (f == "bitnot") return json(~x);
    Value b = arg(1);
    if (!b || !b->is_number_integer()) return std::nullopt;
    const int64_t y = b->get<int64_t>();
    return json(f == "bitand" ? (x & y) : f == "bitor" ? (x | y) : (x ^ y));
  }
  if (f == "abs") {
    Value v = arg(0);
    if (!AsNumber(v)) return std::nullopt;
    if (v->is_number_integer() && v->get<int64_t>() != INT64_MIN) {
      return json(std::llabs(v->get<int64_t>()));
    }
    return json(std::fabs(*AsNumber(v)));
  }
  if (f == "power" || f == "mod" || f == "remainder") {
    Value a = arg(0), b = arg(1);
    std::optional<double> x = AsNumber(a), y = AsNumber(b);
    if (!x || !y) return std::nullopt;
    const bool ints = a->is_number_integer() && b->is_number_integer();
    if (f == "mod" || f == "remainder") {
      if (*y == 0) return std::nullopt;
      return ints ? json(*IntOp('%', a->get<int64_t>(), b->get<int64_t>()))
                  : json(std::fmod(*x, *y));
    }
    const double r = std::pow(*x, *y);
    if (!std::isfinite(r)) return std::nullopt;
    return Number(r, ints && *y >= 0);
  }
  if (f == "concat") {
    std::string out;
    for (size_t i = 0; i < e.args.size(); ++i) {
      Value v = arg(i);
      if (!v.has_value()) return std::nullopt;
      out += AsText(*v);
    }
    return json(out);
  }
  if (f == "upper" || f == "lower" || f == "trim" || f == "ltrim" || f == "rtrim") {
    std::optional<std::string> s = str_arg(0);
    if (!s) return std::nullopt;
    if (f == "upper") return json(ChangeCase(*s, /*upper=*/true));
    if (f == "lower") return json(ChangeCase(*s, /*upper=*/false));
    absl::string_view v = *s;
    if (f != "rtrim") v = absl::StripLeadingAsciiWhitespace(v);
    if (f != "ltrim") v = absl::StripTrailingAsciiWhitespace(v);
    return json(std::string(v));
  }
  if (f == "length" || f == "numbytes") {
    std::optional<std::string> s = str_arg(0);
    if (!s) return std::nullopt;
    if (f == "numbytes") return json(static_cast<int64_t>(s->size()));
    return json(static_cast<int64_t>(CharCount(*s)));
  }
  if (f == "substring") {
    // In characters, as length() counts them (not bytes: a cut through a character would
    // leave text that is not UTF-8).
    std::optional<std::string> s = str_arg(0);
    std::optional<double> from = AsNumber(arg(1));
    if (!s || !from) return std::nullopt;
    const double size = static_cast<double>(CharCount(*s));
    const size_t a = static_cast<size_t>(std::clamp<double>(*from, 0, size));
    size_t b = static_cast<size_t>(size);
    if (e.args.size() == 3) {
      std::optional<double> to = AsNumber(arg(2));
      if (!to) return std::nullopt;
      b = static_cast<size_t>(std::clamp<double>(*to, 0, size));
    }
    if (b < a) return json("");
    const size_t begin = ByteOffsetOfChar(*s, a);
    return json(s->substr(begin, ByteOffsetOfChar(*s, b) - begin));
  }
  if (f == "lpad" || f == "rpad") {
    // lpad('hello', 2) = '  hello': that many spaces on one side.
    std::optional<std::string> s = str_arg(0);
    std::optional<double> n = AsNumber(arg(1));
    if (!s || !n || *n < 0 || *n > 65536) return std::nullopt;
    const std::string pad(static_cast<size_t>(*n), ' ');
    return json(f == "lpad" ? pad + *s : *s + pad);
  }
  if (f == "parse_time") {
    std::optional<std::string> pattern = str_arg(0);
    std::optional<double> number = AsNumber(arg(1));
    std::optional<int64_t> ms = number ? ToInt64(*number) : std::nullopt;
    if (!pattern || !ms) return std::nullopt;
    absl::TimeZone zone = absl::UTCTimeZone();
    if (e.args.size() == 3) {
      std::optional<std::string> name = str_arg(2);
      if (!name || !absl::LoadTimeZone(*name, &zone)) return std::nullopt;
    }
    absl::StatusOr<std::string> out =
        FormatJoda(*pattern, absl::FromUnixMillis(*ms), zone);
    if (!out.ok()) return std::nullopt;
    return json(*std::move(out));
  }
  if (f == "time_to_epoch") {
    std::optional<std::string> text = str_arg(0), pattern = str_arg(1);
    if (!text || !pattern) return std::nullopt;
    absl::StatusOr<absl::Time> t = ParseJoda(*pattern, *text, absl::UTCTimeZone());
    if (!t.ok()) return std::nullopt;
    return json(absl::ToUnixMillis(*t));
  }
  if (f == "startswith" || f == "endswith" || f == "indexof") {
    std::optional<std::string> s = str_arg(0), p = str_arg(1);
    if (!s || !p) return std::nullopt;
    if (f == "startswith") return json(absl::StartsWith(*s, *p));
    if (f == "endswith") return json(absl::EndsWith(*s, *p));
    const size_t at = s->find(*p);  // a character's index, as substring() takes it
    return json(at == std::string::npos ? int64_t{-1}
                                        : static_cast<int64_t>(CharCount(s->substr(0, at))));
  }
  if (f == "replace") {
    std::optional<std::string> s = str_arg(0), from = str_arg(1), to = str_arg(2);
    if (!s || !from || !to || from->empty()) return std::nullopt;
    std::string out;
    size_t i = 0;
    for (size_t at; (at = s->find(*from, i)) != std::string::npos; i = at + from->size()) {
      out += s->substr(i, at - i) + *to;
    }
    return json(out + s->substr(i));
  }
  if (f == "regexp_matches" || f == "regexp_replace" || f == "regexp_substr") {
    // RE2: time linear in the text, and no recursion. (std::regex recursed once per
    // character: '(a|b)*c' on a device's 100 KB string overflowed the stack.) Java's
    // lookaround and backreferences are not supported: such a pattern is Undefined.
    std::optional<std::string> s = str_arg(0), pattern = str_arg(1);
    if (!s || !pattern) return std::nullopt;
    const std::shared_ptr<const RE2> compiled = CompiledRegexp(*pattern);
    const RE2& re = *compiled;
    if (!re.ok()) return std::nullopt;
    if (f == "regexp_matches") return json(RE2::PartialMatch(*s, re));
    if (f == "regexp_substr") {
      re2::StringPiece whole;
      if (!re.Match(*s, 0, s->size(), RE2::UNANCHORED, &whole, 1)) return json("");
      return json(std::string(whole.data(), whole.size()));
    }
    std::optional<std::string> with = str_arg(2);
    if (!with) return std::nullopt;
    const std::string rewrite = Re2Rewrite(*with);
    if (std::string error; !re.CheckRewriteString(rewrite, &error)) return std::nullopt;
    std::string out = *s;
    RE2::GlobalReplace(&out, re, rewrite);
    return json(std::move(out));
  }
  if (f == "chr") {
    std::optional<double> n = AsNumber(arg(0));
    if (!n || *n < 0 || *n > 127) return std::nullopt;
    return json(std::string(1, static_cast<char>(*n)));
  }
  if (f == "isnull") {
    Value v = arg(0);
    return json(v.has_value() && v->is_null());
  }
  if (f == "isundefined") return json(!arg(0).has_value());
  if (f == "get") {
    Value c = arg(0), k = arg(1);
    if (!c || !k) return std::nullopt;
    if (c->is_array()) {
      std::optional<double> i = AsNumber(k);
      if (!i || *i < 0 || *i >= static_cast<double>(c->size())) return std::nullopt;
      return (*c)[static_cast<size_t>(*i)];
    }
    if (c->is_object()) {
      auto it = c->find(AsText(*k));
      if (it == c->end()) return std::nullopt;
      return *it;
    }
    return std::nullopt;
  }
  if (f == "encode" || f == "decode") {
    std::optional<std::string> scheme = str_arg(1);
    if (!scheme || !absl::EqualsIgnoreCase(*scheme, "base64")) return std::nullopt;
    std::string in;
    if (e.args[0]->kind == Expr::Kind::kStar) {
      in = std::string(env.raw);
    } else {
      std::optional<std::string> s = str_arg(0);
      if (!s) return std::nullopt;
      in = *s;
    }
    if (f == "encode") return json(absl::Base64Escape(in));
    std::string out;
    if (!absl::Base64Unescape(in, &out)) return json(nullptr);
    json parsed = json::parse(out, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) return parsed;
    return json(out);
  }
  if (f == "md2" || f == "md5" || f == "sha1" || f == "sha224" || f == "sha256" ||
      f == "sha384" || f == "sha512") {
    std::optional<std::string> s = str_arg(0);
    if (!s) return std::nullopt;
    if (f == "md2") {
      const std::array<uint8_t, 16> digest = Md2(*s);
      return json(absl::BytesToHexString(absl::string_view(
          reinterpret_cast<const char*>(digest.data()), digest.size())));
    }
    const EVP_MD* md = f == "md5"      ? EVP_md5()
                       : f == "sha1"   ? EVP_sha1()
                       : f == "sha224" ? EVP_sha224()
                       : f == "sha256" ? EVP_sha256()
                       : f == "sha384" ? EVP_sha384()
                                       : EVP_sha512();
    return json(HashHex(md, *s));
  }
  if (f == "cast") {
    Value v = arg(0);
    const std::string type = e.args[1]->literal.get<std::string>();
    if (!v.has_value()) return std::nullopt;
    if (type == "string" || type == "nvarchar" || type == "text" || type == "ntext" ||
        type == "varchar") {
      return json(AsText(*v));
    }
    if (type == "bool" || type == "boolean") {
      if (v->is_number()) return json(v->get<double>() != 0);
      std::optional<bool> b = AsBool(v);
      if (!b) return std::nullopt;
      return json(*b);
    }
    std::optional<double> d = v->is_boolean() ? std::optional<double>(v->get<bool>() ? 1 : 0)
                                              : AsNumber(v);
    if (!d) return std::nullopt;
    if (type == "int" || type == "integer") {
      std::optional<int64_t> i = ToInt64(std::trunc(*d));
      if (!i) return std::nullopt;
      return json(*i);
    }
    return json(*d);
  }
  return std::nullopt;
}

Value Compare(const std::string& op, const Value& l, const Value& r) {
  if (!l.has_value() || !r.has_value()) return std::nullopt;
  if (op == "=" || op == "<>") {
    bool eq;
    if (l->is_number() && r->is_number()) {
      eq = l->get<double>() == r->get<double>();
    } else if (l->type() != r->type() &&
               !(l->is_number() && r->is_number())) {
      eq = false;
    } else {
      eq = *l == *r;
    }
    return json(op == "=" ? eq : !eq);
  }
  std::optional<double> a = AsNumber(l), b = AsNumber(r);
  if (!a || !b) return std::nullopt;
  if (op == "<") return json(*a < *b);
  if (op == "<=") return json(*a <= *b);
  if (op == ">") return json(*a > *b);
  return json(*a >= *b);
}

Value Arithmetic(const std::string& op, const Value& l, const Value& r) {
  if (!l.has_value() || !r.has_value()) return std::nullopt;
  if (op == "+" && (l->is_string() || r->is_string())) return json(AsText(*l) + AsText(*r));
  std::optional<double> a = AsNumber(l), b = AsNumber(r);
  if (!a || !b) return std::nullopt;
  const bool ints = l->is_number_integer() && r->is_number_integer();
  if ((op == "/" || op == "%") && *b == 0) return std::nullopt;
  if (ints) {
    if (std::optional<int64_t> v = IntOp(op[0], l->get<int64_t>(), r->get<int64_t>())) {
      return json(*v);
    }
  }
  if (op == "+") return json(*a + *b);
  if (op == "-") return json(*a - *b);
  if (op == "*") return json(*a * *b);
  if (op == "/") return json(*a / *b);
  return json(std::fmod(*a, *b));
}

void SetPath(json& out, const std::vector<std::string>& path, json value) {
  json* cur = &out;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    json& next = (*cur)[path[i]];
    if (!next.is_object()) next = json::object();
    cur = &next;
  }
  (*cur)[path.back()] = std::move(value);
}

// The value at path `e`'s fields and indexes under `start`, or Undefined.
Value WalkPath(const Expr& e, const json& start, const Env& env) {
  const json* cur = &start;
  for (size_t i = 0; i < e.fields.size(); ++i) {
    if (e.index_of_arg[i] >= 0) {
      std::optional<double> idx =
          AsNumber(Eval(*e.args[static_cast<size_t>(e.index_of_arg[i])], env));
      if (!idx || !cur->is_array() || *idx < 0 || *idx >= static_cast<double>(cur->size())) {
        return std::nullopt;
      }
      cur = &(*cur)[static_cast<size_t>(*idx)];
      continue;
    }
    if (!cur->is_object()) return std::nullopt;
    auto it = cur->find(e.fields[i]);
    if (it == cur->end()) return std::nullopt;
    cur = &*it;
  }
  return *cur;
}

// One SELECT item into `out`: * (null or kStar) merges an object payload, an Undefined value
// is dropped, anything else lands at its alias path.
void AddItem(json& out, const Expr* expr, const std::vector<std::string>& alias,
             const Env& env) {
  if (expr == nullptr || expr->kind == Expr::Kind::kStar) {
    if (env.payload != nullptr && env.payload->is_object()) out.update(*env.payload);
    return;
  }
  Value v = Eval(*expr, env);
  if (v.has_value()) SetPath(out, alias, *std::move(v));
}

Value Eval(const Expr& e, const Env& env) {
  switch (e.kind) {
    case Expr::Kind::kSelect: {
      // A nested query: the items over each element of the FROM array.
      Value from = Eval(*e.from, env);
      if (!from.has_value() || !from->is_array()) return std::nullopt;
      json out = json::array();
      for (const json& element : *from) {
        Env inner = env;
        inner.payload = &element;
        if (e.where != nullptr && AsBool(Eval(*e.where, inner)) != true) continue;
        if (e.select_value) {
          Value v = Eval(*e.args[0], inner);
          if (v.has_value()) out.push_back(*std::move(v));
          continue;
        }
        json item = json::object();
        for (size_t i = 0; i < e.args.size(); ++i) {
          AddItem(item, e.args[i].get(), e.aliases[i], inner);
        }
        out.push_back(std::move(item));
      }
      return out;
    }
    case Expr::Kind::kLiteral:
      return e.literal;
    case Expr::Kind::kVariable: {
      if (env.variables == nullptr) return std::nullopt;
      auto it = env.variables->find(e.op);
      if (it == env.variables->end()) return std::nullopt;
      return *it;
    }
    case Expr::Kind::kStar:
      return env.payload != nullptr ? Value(*env.payload) : Value(json(std::string(env.raw)));
    case Expr::Kind::kPath: {
      // From the payload, or from the value of `from` (a call, a nested query...).
      if (e.from == nullptr) {
        if (env.payload == nullptr) return std::nullopt;
        return WalkPath(e, *env.payload, env);
      }
      Value base = Eval(*e.from, env);
      if (!base.has_value()) return std::nullopt;
      return WalkPath(e, *base, env);
    }
    case Expr::Kind::kCall:
      return EvalCall(e, env);
    case Expr::Kind::kUnary: {
      Value v = Eval(*e.args[0], env);
      if (e.op == "not") {
        std::optional<bool> b = AsBool(v);
        if (!b) return std::nullopt;
        return json(!*b);
      }
      if (!v.has_value()) return std::nullopt;
      if (v->is_number_integer() && v->get<int64_t>() != INT64_MIN) {
        return json(-v->get<int64_t>());
      }
      std::optional<double> d = AsNumber(v);
      if (!d) return std::nullopt;
      return json(-*d);
    }
    case Expr::Kind::kBinary: {
      if (e.op == "and" || e.op == "or") {
        std::optional<bool> a = AsBool(Eval(*e.args[0], env));
        if (e.op == "and" && a == false) return json(false);
        if (e.op == "or" && a == true) return json(true);
        std::optional<bool> b = AsBool(Eval(*e.args[1], env));
        if (e.op == "and" && b == false) return json(false);
        if (e.op == "or" && b == true) return json(true);
        if (!a || !b) return std::nullopt;
        return json(e.op == "and" ? (*a && *b) : (*a || *b));
      }
      Value l = Eval(*e.args[0], env), r = Eval(*e.args[1], env);
      if (e.op == "=" || e.op == "<>" || e.op == "<" || e.op == "<=" || e.op == ">" ||
          e.op == ">=") {
        return Compare(e.op, l, r);
      }
      return Arithmetic(e.op, l, r);
    }
    case Expr::Kind::kCase: {
      size_t i = 0;
      Value subject;
      if (e.case_subject) subject = Eval(*e.args[i++], env);
      const size_t pairs_end = e.args.size() - (e.case_else ? 1 : 0);
      for (; i + 1 < pairs_end; i += 2) {
        Value when = Eval(*e.args[i], env);
        const bool hit = e.case_subject ? Compare("=", subject, when) == Value(json(true))
                                        : AsBool(when) == true;
        if (hit) return Eval(*e.args[i + 1], env);
      }
      if (e.case_else) return Eval(*e.args.back(), env);
      return std::nullopt;
    }
    case Expr::Kind::kObject: {
      json out = json::object();
      for (size_t i = 0; i < e.keys.size(); ++i) {
        Value v = Eval(*e.args[i], env);
        if (v.has_value()) out[e.keys[i]] = *v;
      }
      return out;
    }
    case Expr::Kind::kArray: {
      json out = json::array();
      for (const ExprPtr& a : e.args) {
        Value v = Eval(*a, env);
        if (v.has_value()) out.push_back(*v);
      }
      return out;
    }
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<SqlVersion> ParseSqlVersion(absl::string_view s) {
  if (s.empty() || s == "2016-03-23") return SqlVersion::k2016_03_23;
  if (s == "2015-10-08") return SqlVersion::k2015_10_08;
  return absl::InvalidArgumentError(
      absl::StrCat("awsIotSqlVersion \"", s, "\" is not 2016-03-23 or 2015-10-08"));
}

absl::StatusOr<Statement> Statement::Parse(absl::string_view sql, SqlVersion version) {
  absl::StatusOr<std::vector<Token>> tokens = Lex(sql);
  if (!tokens.ok()) return tokens.status();
  Parser p(*std::move(tokens), version);
  Statement st;
  st.version_ = version;
  // SET @a = expr, @b = expr: variables for the rest of the statement, later ones able to
  // use earlier ones, and for the rule's substitution templates.
  if (p.Accept("SET")) {
    do {
      if (!p.AcceptSymbol("@")) return p.Error(p.Peek(), "expected @name after SET");
      const Token name = p.Peek();
      if (name.type != Tok::kIdent) return p.Error(name, "expected a variable name after '@'");
      p.Advance();
      if (!p.AcceptSymbol("=")) return p.Error(p.Peek(), "expected '=' after the variable");
      absl::StatusOr<ExprPtr> value = p.ParseExpr();
      if (!value.ok()) return value.status();
      if (!p.variables.insert(name.text).second) {
        return p.Error(name, absl::StrCat("@", name.text, " is SET twice"));
      }
      st.sets_.emplace_back(name.text, *value);
    } while (p.AcceptSymbol(","));
  }
  if (!p.Accept("SELECT")) return p.Error(p.Peek(), "expected SELECT");
  std::vector<ExprPtr> items;
  std::vector<std::vector<std::string>> aliases;
  if (absl::Status s = p.ParseSelectList(&st.value_, &items, &aliases); !s.ok()) return s;
  for (size_t k = 0; k < items.size(); ++k) {
    st.items_.push_back(Item{.expr = items[k]->kind == Expr::Kind::kStar ? nullptr : items[k],
                             .alias = std::move(aliases[k])});
  }
  if (p.Accept("FROM")) {
    const Token& from = p.Peek();
    if (from.type != Tok::kString) {
      return p.Error(from, "expected a quoted topic filter after FROM, like 'sensors/+/data'");
    }
    st.from_ = from.text;
    p.Advance();
  }
  if (p.Accept("WHERE")) {
    absl::StatusOr<ExprPtr> w = p.ParseExpr();
    if (!w.ok()) return w.status();
    st.where_ = *w;
  }
  if (p.Peek().type != Tok::kEnd) return p.Error(p.Peek(), "expected FROM, WHERE or the end");
  st.calls_services_ = p.calls_services;
  return st;
}

// Not JSON, or nesting more than kMaxPayloadNesting levels: discarded (then it is
// evaluated as binary: copying or printing a document recurses through it, and a 128 KB
// payload can nest 64,000 levels).
Payload::Payload(std::string bytes)
    : bytes_(std::move(bytes)),
      json_(nesting::JsonNestingWithin(bytes_, kMaxPayloadNesting)
                ? nlohmann::json::parse(bytes_.begin(), bytes_.end(), nullptr,
                                        /*allow_exceptions=*/false)
                : nlohmann::json(nlohmann::json::value_t::discarded)) {}

Result Statement::Evaluate(const Payload& payload, const MessageContext& context) const {
  Result r;
  std::map<std::string, Value> lookups;
  Env env{.payload = payload.json(), .raw = payload.bytes(), .ctx = &context,
          .version = version_, .failure = &r.failure, .lookups = &lookups};
  if (!sets_.empty()) {
    r.variables = json::object();
    env.variables = &r.variables;
    for (const auto& [name, expr] : sets_) {
      Value v = Eval(*expr, env);
      if (v.has_value()) r.variables[name] = *std::move(v);  // Undefined: not set
    }
  }
  if (where_ != nullptr && AsBool(Eval(*where_, env)) != true) return r;
  if (r.failure.has_value()) return r;
  r.selected = true;
  if (value_) {
    Value v = Eval(*items_[0].expr, env);
    if (r.failure.has_value()) {
      r.selected = false;
      return r;
    }
    if (!v.has_value()) return r;
    Normalize(*v, version_);
    r.output = v->is_string() ? v->get<std::string>() : json_text::JsonText(*v);
    return r;
  }
  if (items_.size() == 1 && items_[0].expr == nullptr) {
    // SELECT * alone: the payload as it came (binary passes through, as on AWS).
    r.output = payload.bytes();
    return r;
  }
  json out = json::object();
  for (const Item& item : items_) AddItem(out, item.expr.get(), item.alias, env);
  if (r.failure.has_value()) {
    r.selected = false;
    return r;
  }
  Normalize(out, version_);
  r.output = json_text::JsonText(out);
  return r;
}

absl::StatusOr<std::string> Statement::Substitute(absl::string_view template_text,
                                                  absl::string_view payload,
                                                  const MessageContext& context,
                                                  SqlVersion version,
                                                  const nlohmann::json* variables) {
  absl::StatusOr<Template> t = Template::Parse(template_text, version);
  if (!t.ok()) return t.status();
  return t->Render(Payload(std::string(payload)), context, variables);
}

bool LookupFoundNothing(const absl::Status& status) {
  return status.code() == absl::StatusCode::kNotFound ||
         status.code() == absl::StatusCode::kInvalidArgument;
}

absl::Status LookupFailure::NamedStatus() const {
  return absl::Status(status.code(),
                      absl::StrCat(function, "(", resource, "): ", status.message()));
}

absl::StatusOr<Template> Template::Parse(absl::string_view text, SqlVersion version) {
  Template t;
  t.version_ = version;
  size_t i = 0;
  for (;;) {
    const size_t open = text.find("${", i);
    if (open == absl::string_view::npos) break;
    const size_t close = text.find('}', open);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("a ${ in the template is not closed");
    }
    absl::StatusOr<std::vector<Token>> tokens = Lex(text.substr(open + 2, close - open - 2));
    if (!tokens.ok()) return tokens.status();
    Parser p(*std::move(tokens), version);
    p.strict_variables = false;
    absl::StatusOr<ExprPtr> e = p.ParseExpr();
    if (!e.ok()) return e.status();
    if (p.Peek().type != Tok::kEnd) {
      return p.Error(p.Peek(), "expected } after the expression of ${...}");
    }
    t.text_.emplace_back(text.substr(i, open - i));
    t.exprs_.push_back(*std::move(e));
    i = close + 1;
  }
  t.text_.emplace_back(text.substr(i));
  return t;
}

absl::StatusOr<std::string> Template::Render(const Payload& payload,
                                             const MessageContext& context,
                                             const nlohmann::json* variables) const {
  std::optional<LookupFailure> failure;
  std::map<std::string, Value> lookups;
  Env env{.payload = payload.json(), .raw = payload.bytes(), .ctx = &context,
          .version = version_, .variables = variables, .failure = &failure,
          .lookups = &lookups};
  std::string out = text_[0];
  for (size_t k = 0; k < exprs_.size(); ++k) {
    Value v = Eval(*exprs_[k], env);
    if (failure.has_value()) return failure->NamedStatus();
    if (v.has_value()) out += AsText(*v);
    out += text_[k + 1];
  }
  return out;
}

bool TopicMatches(absl::string_view filter, absl::string_view topic) {
  std::vector<absl::string_view> f = absl::StrSplit(filter, '/');
  std::vector<absl::string_view> t = absl::StrSplit(topic, '/');
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

}  // namespace fleetcore::iotsql
