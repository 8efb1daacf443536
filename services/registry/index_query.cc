#include "services/registry/index_query.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status/quoted.h"

namespace fleetcore::registry {
namespace {

enum class Tok {
  kWord,
  kPhrase,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kLBrace,
  kRBrace,
  kColon,
  kCmp,
  kMinus,
  kAnd,
  kOr,
  kNot,
  kTo,
  kEnd
};

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;       // the value with escapes resolved (kWord, kPhrase), or the operator
  std::string like;       // kWord, kPhrase: the lowercased LIKE pattern
  bool wildcard = false;  // kWord: has an unescaped * or ?
  bool leading_wildcard = false;  // kWord: starts with one
  size_t pos = 0;                 // 1-based character of the token in the query
};

bool IsSpecial(char c) {
  return c == '(' || c == ')' || c == '[' || c == ']' || c == '{' || c == '}' || c == ':' ||
         c == '"' || c == '<' || c == '>';
}

// A literal character of a LIKE pattern.
void AppendLiteral(std::string& like, char c) {
  if (c == '%' || c == '_' || c == '\\') like.push_back('\\');
  like.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
}

absl::Status Fault(absl::string_view what, size_t pos) {
  return absl::InvalidArgumentError(absl::StrCat("queryString: ", what, " at character ", pos));
}

// A '-' excludes what follows when it starts a clause: not after a field's colon, a
// comparison or a range's opening or TO, where it is a value's sign.
bool MinusStartsClause(const std::vector<Token>& tokens) {
  if (tokens.empty()) return true;
  switch (tokens.back().kind) {
    case Tok::kColon:
    case Tok::kCmp:
    case Tok::kLBracket:
    case Tok::kLBrace:
    case Tok::kTo:
    case Tok::kMinus:
      return false;
    default:
      return true;
  }
}

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view q) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < q.size()) {
    const char c = q[i];
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    Token t;
    t.pos = i + 1;
    if (c == '"') {
      t.kind = Tok::kPhrase;
      ++i;
      bool closed = false;
      while (i < q.size()) {
        char d = q[i++];
        if (d == '"') {
          closed = true;
          break;
        }
        if (d == '\\') {
          if (i == q.size()) break;
          d = q[i++];
        }
        t.text.push_back(d);
        AppendLiteral(t.like, d);
      }
      if (!closed) return Fault("the phrase is not closed with \"", t.pos);
    } else if (c == '<' || c == '>') {
      t.kind = Tok::kCmp;
      t.text = std::string(1, c);
      ++i;
      if (i < q.size() && q[i] == '=') {
        t.text.push_back('=');
        ++i;
      }
    } else if (IsSpecial(c)) {
      static constexpr std::pair<char, Tok> kSingles[] = {
          {'(', Tok::kLParen}, {')', Tok::kRParen}, {'[', Tok::kLBracket}, {']', Tok::kRBracket},
          {'{', Tok::kLBrace}, {'}', Tok::kRBrace}, {':', Tok::kColon}};
      for (const auto& [ch, kind] : kSingles) {
        if (ch == c) t.kind = kind;
      }
      t.text = std::string(1, c);
      ++i;
    } else if (c == '-' && MinusStartsClause(out) && i + 1 < q.size() &&
               !absl::ascii_isspace(static_cast<unsigned char>(q[i + 1]))) {
      t.kind = Tok::kMinus;
      t.text = "-";
      ++i;
    } else {
      t.kind = Tok::kWord;
      bool escaped_any = false;
      while (i < q.size()) {
        char d = q[i];
        if (absl::ascii_isspace(static_cast<unsigned char>(d)) || IsSpecial(d)) break;
        ++i;
        if (d == '\\') {
          if (i == q.size()) return Fault("nothing follows the escape \\", i);
          d = q[i++];
          escaped_any = true;
          t.text.push_back(d);
          AppendLiteral(t.like, d);
        } else if (d == '*' || d == '?') {
          if (t.text.empty()) t.leading_wildcard = true;
          t.wildcard = true;
          t.text.push_back(d);
          t.like.push_back(d == '*' ? '%' : '_');
        } else {
          t.text.push_back(d);
          AppendLiteral(t.like, d);
        }
      }
      if (!escaped_any) {
        if (t.text == "AND") t.kind = Tok::kAnd;
        if (t.text == "OR") t.kind = Tok::kOr;
        if (t.text == "NOT") t.kind = Tok::kNot;
        if (t.text == "TO") t.kind = Tok::kTo;
      }
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.pos = q.size() + 1;
  out.push_back(end);
  return out;
}

bool IsNumber(absl::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  const size_t int_start = i;
  while (i < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == int_start) return false;
  if (i == s.size()) return true;
  if (s[i] != '.') return false;
  ++i;
  const size_t frac_start = i;
  while (i < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) ++i;
  return i > frac_start && i == s.size();
}

double ToNumber(absl::string_view s) { return std::strtod(std::string(s).c_str(), nullptr); }

// Why `field` is not one of the schema's, or "" when it is.
std::string FieldFault(const IndexSchema& schema, absl::string_view field) {
  if (std::find(schema.fields.begin(), schema.fields.end(), field) != schema.fields.end()) {
    return "";
  }
  if (!schema.open_prefix.empty() && absl::StartsWith(field, schema.open_prefix) &&
      field.size() > schema.open_prefix.size()) {
    return "";
  }
  for (const std::string& prefix : schema.missing_prefixes) {
    if (absl::StartsWith(field, prefix)) {
      return absl::StrCat("field ", field, " is not in index ", schema.index_name, ": ",
                          schema.missing_reason);
    }
  }
  return absl::StrCat("index ", schema.index_name, " has no field ", field,
                      " (its fields: ", absl::StrJoin(schema.fields, ", "), ", ",
                      schema.open_prefix, "<name>)");
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const IndexSchema& schema, size_t length)
      : tokens_(std::move(tokens)), schema_(schema), length_(length) {}

  absl::StatusOr<IndexQuery> Parse() {
    absl::StatusOr<IndexQuery> q = ParseOr("");
    if (!q.ok()) return q;
    if (Peek().kind != Tok::kEnd) {
      return Fault(absl::StrCat("unexpected ", Describe(Peek())), Peek().pos);
    }
    if (terms_ > kMaxQueryTerms) {
      return absl::InvalidArgumentError(
          absl::StrCat("queryString: the query has ", terms_, " terms; at most ", kMaxQueryTerms));
    }
    if (leading_wildcards_ > 1) {
      return absl::InvalidArgumentError(
          "queryString: only one term of a query may start with a wildcard");
    }
    if (leading_wildcards_ == 1 && length_ > kMaxLeadingWildcardQueryLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("queryString: a query with a term that starts with a wildcard is at most ",
                       kMaxLeadingWildcardQueryLength, " characters; this one has ", length_));
    }
    return q;
  }

 private:
  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(at_ + ahead, tokens_.size() - 1)];
  }
  const Token& Next() { return tokens_[std::min(at_++, tokens_.size() - 1)]; }

  static std::string Describe(const Token& t) {
    if (t.kind == Tok::kEnd) return "end of the query";
    return Quoted(t.text);
  }

  static IndexQuery Combine(IndexQuery::Op op, std::vector<IndexQuery> items) {
    if (items.size() == 1) return std::move(items.front());
    IndexQuery q;
    q.op = op;
    q.children = std::move(items);
    return q;
  }

  // Within field grouping, `field` is the group's field; otherwise empty.
  absl::StatusOr<IndexQuery> ParseOr(const std::string& field) {
    std::vector<IndexQuery> items;
    do {
      absl::StatusOr<IndexQuery> q = ParseAnd(field);
      if (!q.ok()) return q;
      items.push_back(*std::move(q));
    } while (Peek().kind == Tok::kOr && (Next(), true));
    return Combine(IndexQuery::Op::kOr, std::move(items));
  }

  bool StartsClause(const Token& t) const {
    switch (t.kind) {
      case Tok::kWord:
      case Tok::kPhrase:
      case Tok::kLParen:
      case Tok::kNot:
      case Tok::kMinus:
        return true;
      default:
        return false;
    }
  }

  absl::StatusOr<IndexQuery> ParseAnd(const std::string& field) {
    std::vector<IndexQuery> items;
    while (true) {
      if (!items.empty()) {
        if (Peek().kind == Tok::kAnd) {
          Next();
        } else if (!StartsClause(Peek())) {
          break;
        }
      }
      absl::StatusOr<IndexQuery> q = ParseUnary(field);
      if (!q.ok()) return q;
      items.push_back(*std::move(q));
    }
    return Combine(IndexQuery::Op::kAnd, std::move(items));
  }

  // Each ( and NOT goes one level deeper; the depth is capped so that no query can exhaust
  // the stack of the parser or of the matchers that walk its tree.
  absl::Status Deeper(const Token& t) {
    if (++depth_ > kMaxQueryNesting) {
      return Fault(absl::StrCat("nested more than ", kMaxQueryNesting, " deep"), t.pos);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<IndexQuery> ParseUnary(const std::string& field) {
    if (Peek().kind == Tok::kNot || Peek().kind == Tok::kMinus) {
      if (absl::Status s = Deeper(Next()); !s.ok()) return s;
      absl::StatusOr<IndexQuery> inner = ParseUnary(field);
      --depth_;
      if (!inner.ok()) return inner;
      IndexQuery q;
      q.op = IndexQuery::Op::kNot;
      q.children.push_back(*std::move(inner));
      return q;
    }
    return ParsePrimary(field);
  }

  absl::StatusOr<IndexQuery> ParseGroup(const std::string& field) {
    const Token open = Next();
    if (absl::Status s = Deeper(open); !s.ok()) return s;
    absl::StatusOr<IndexQuery> q = ParseOr(field);
    --depth_;
    if (!q.ok()) return q;
    if (Peek().kind != Tok::kRParen) {
      return Fault(absl::StrCat("expected ) to close the ( at character ", open.pos, ", found ",
                                Describe(Peek())),
                   Peek().pos);
    }
    Next();
    return q;
  }

  absl::StatusOr<IndexQuery> ParsePrimary(const std::string& field) {
    const Token& t = Peek();
    if (t.kind == Tok::kLParen) return ParseGroup(field);
    if (t.kind == Tok::kWord && (Peek(1).kind == Tok::kColon || Peek(1).kind == Tok::kCmp)) {
      if (!field.empty()) {
        return Fault(absl::StrCat("a field inside the grouping of field ", field), t.pos);
      }
      const Token name = Next();
      if (absl::Status s = CheckField(name); !s.ok()) return s;
      const Token op = Next();
      if (op.kind == Tok::kCmp) return ParseComparison(name.text, op);
      if (Peek().kind == Tok::kLParen) return ParseGroup(name.text);
      return ParseTermValue(name.text);
    }
    return ParseTermValue(field);
  }

  absl::Status CheckField(const Token& name) const {
    if (name.wildcard) return Fault("a field name cannot have wildcards", name.pos);
    const std::string fault = FieldFault(schema_, name.text);
    return fault.empty() ? absl::OkStatus() : Fault(fault, name.pos);
  }

  IndexQuery MakeTerm(IndexTerm term) {
    ++terms_;
    IndexQuery q;
    q.term = std::move(term);
    return q;
  }

  absl::StatusOr<IndexQuery> ParseTermValue(const std::string& field) {
    const Token& t = Peek();
    if (t.kind == Tok::kLBracket || t.kind == Tok::kLBrace) {
      if (field.empty()) {
        return Fault("a range needs a field, as in attributes.floor:[1 TO 5]", t.pos);
      }
      return ParseRange(field);
    }
    if (t.kind != Tok::kWord && t.kind != Tok::kPhrase) {
      return Fault(absl::StrCat("expected a term, found ", Describe(t)), t.pos);
    }
    const Token v = Next();
    // "*" alone matches every value (and, without a field, everything): not a leading
    // wildcard in AWS's sense.
    if (v.leading_wildcard && v.like != "%") ++leading_wildcards_;
    return MakeTerm({.field = field, .kind = IndexTerm::Kind::kMatch, .like = v.like});
  }

  // A range's bound or a comparison's value: nullopt for an open bound (*).
  absl::StatusOr<std::optional<std::string>> ParseBound(absl::string_view where) {
    const Token& t = Peek();
    if (t.kind != Tok::kWord && t.kind != Tok::kPhrase) {
      return Fault(absl::StrCat("expected ", where, ", found ", Describe(t)), t.pos);
    }
    const Token v = Next();
    if (v.kind == Tok::kWord && v.wildcard) {
      if (v.text == "*") return std::optional<std::string>();
      return Fault("a bound cannot have wildcards (only * alone, for an open bound)", v.pos);
    }
    return std::optional<std::string>(absl::AsciiStrToLower(v.text));
  }

  static bool AllNumbers(const IndexTerm& t) {
    if (!t.lower.has_value() && !t.upper.has_value()) return false;
    return (!t.lower.has_value() || IsNumber(*t.lower)) &&
           (!t.upper.has_value() || IsNumber(*t.upper));
  }

  absl::StatusOr<IndexQuery> ParseComparison(const std::string& field, const Token& op) {
    absl::StatusOr<std::optional<std::string>> bound =
        ParseBound(absl::StrCat("a value after ", op.text));
    if (!bound.ok()) return bound.status();
    if (!bound->has_value()) return Fault("a comparison needs a value, not *", op.pos);
    IndexTerm term{.field = field, .kind = IndexTerm::Kind::kRange};
    const bool inclusive = op.text.size() == 2;
    if (op.text[0] == '<') {
      term.upper = **bound;
      term.upper_inclusive = inclusive;
    } else {
      term.lower = **bound;
      term.lower_inclusive = inclusive;
    }
    term.numeric = AllNumbers(term);
    return MakeTerm(std::move(term));
  }

  absl::StatusOr<IndexQuery> ParseRange(const std::string& field) {
    const Token open = Next();
    IndexTerm term{.field = field, .kind = IndexTerm::Kind::kRange};
    term.lower_inclusive = open.kind == Tok::kLBracket;
    absl::StatusOr<std::optional<std::string>> lower = ParseBound("the range's lower bound");
    if (!lower.ok()) return lower.status();
    if (Peek().kind != Tok::kTo) {
      return Fault(absl::StrCat("expected TO in the range, found ", Describe(Peek())), Peek().pos);
    }
    Next();
    absl::StatusOr<std::optional<std::string>> upper = ParseBound("the range's upper bound");
    if (!upper.ok()) return upper.status();
    const Token& close = Peek();
    if (close.kind != Tok::kRBracket && close.kind != Tok::kRBrace) {
      return Fault(absl::StrCat("expected ] or } to close the range at character ", open.pos,
                                ", found ", Describe(close)),
                   close.pos);
    }
    term.upper_inclusive = close.kind == Tok::kRBracket;
    Next();
    term.lower = *std::move(lower);
    term.upper = *std::move(upper);
    term.numeric = AllNumbers(term);
    return MakeTerm(std::move(term));
  }

  std::vector<Token> tokens_;
  const IndexSchema& schema_;
  size_t length_;
  size_t at_ = 0;
  int terms_ = 0;
  int leading_wildcards_ = 0;
  int depth_ = 0;
};

// LIKE's matching: % any run, _ one character, \\ escapes; bytes compared as they are.
// Greedy, going back only to the last %: time linear in the value times the pattern.
bool Like(absl::string_view v, absl::string_view pattern) {
  size_t vi = 0, pi = 0;
  size_t star_p = absl::string_view::npos, star_v = 0;
  while (vi < v.size()) {
    if (pi < pattern.size() && pattern[pi] == '%') {
      star_p = ++pi;
      star_v = vi;
      continue;
    }
    if (pi < pattern.size()) {
      size_t len = 1;
      char want = pattern[pi];
      if (want == '\\' && pi + 1 < pattern.size()) {
        want = pattern[pi + 1];
        len = 2;
      }
      if ((pattern[pi] == '_' && len == 1) || want == v[vi]) {
        pi += len;
        ++vi;
        continue;
      }
    }
    if (star_p == absl::string_view::npos) return false;
    pi = star_p;
    vi = ++star_v;
  }
  while (pi < pattern.size() && pattern[pi] == '%') ++pi;
  return pi == pattern.size();
}

bool InRange(const IndexTerm& t, const std::string& value) {
  if (t.numeric) {
    if (!IsNumber(value)) return false;
    const double v = ToNumber(value);
    if (t.lower.has_value()) {
      const double lo = ToNumber(*t.lower);
      if (t.lower_inclusive ? v < lo : v <= lo) return false;
    }
    if (t.upper.has_value()) {
      const double hi = ToNumber(*t.upper);
      if (t.upper_inclusive ? v > hi : v >= hi) return false;
    }
    return true;
  }
  const std::string v = absl::AsciiStrToLower(value);
  if (t.lower.has_value() && (t.lower_inclusive ? v < *t.lower : v <= *t.lower)) return false;
  if (t.upper.has_value() && (t.upper_inclusive ? v > *t.upper : v >= *t.upper)) return false;
  return true;
}

bool TermMatches(const IndexTerm& t, const std::string& value) {
  if (t.kind == IndexTerm::Kind::kRange) return InRange(t, value);
  return Like(absl::AsciiStrToLower(value), t.like);
}

// The numeric value of an SQL text expression, NULL when it is not a number.
std::string SqlNumber(const std::string& v) {
  return absl::StrCat("(CASE WHEN ", v, " ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN (", v, ")::numeric END)");
}

// `v` with A-Z lowered and nothing else, as absl::AsciiStrToLower does in memory: lower()
// under the "C" collation lowers ASCII only (under the database's locale it would lower
// other letters too), and as fast as lower() is (translate() took 8 times as long).
std::string SqlAsciiLower(const std::string& v) {
  return absl::StrCat("lower((", v, ") COLLATE \"C\")");
}

std::string TermSql(const IndexTerm& t, const std::string& v, SqlParams& params) {
  if (t.kind == IndexTerm::Kind::kMatch) {
    return absl::StrCat(SqlAsciiLower(v), " LIKE ", params.Add(t.like));
  }
  const std::string left =
      t.numeric ? SqlNumber(v) : absl::StrCat(SqlAsciiLower(v), " COLLATE \"C\"");
  const char* cast = t.numeric ? "::numeric" : "";
  std::vector<std::string> parts = {absl::StrCat(t.numeric ? left : v, " IS NOT NULL")};
  if (t.lower.has_value()) {
    parts.push_back(
        absl::StrCat(left, t.lower_inclusive ? " >= " : " > ", params.Add(*t.lower), cast));
  }
  if (t.upper.has_value()) {
    parts.push_back(
        absl::StrCat(left, t.upper_inclusive ? " <= " : " < ", params.Add(*t.upper), cast));
  }
  return absl::StrJoin(parts, " AND ");
}

}  // namespace

const IndexSchema& ThingIndexSchema() {
  static const IndexSchema* const kSchema =
      new IndexSchema{.index_name = kThingIndex,
                      .fields = {"thingName", "thingId", "thingTypeName", "thingGroupNames"},
                      .missing_prefixes = {"shadow.", "connectivity.", "deviceDefender."},
                      .missing_reason =
                          "fleetcore indexes the registry's data (thingIndexingMode REGISTRY): "
                          "no shadow, connectivity or Device Defender fields",
                      .open_prefix = "attributes."};
  return *kSchema;
}

const IndexSchema& ThingGroupIndexSchema() {
  static const IndexSchema* const kSchema = new IndexSchema{
      .index_name = kThingGroupIndex,
      .fields = {"thingGroupName", "thingGroupId", "thingGroupDescription", "parentGroupNames"},
      .open_prefix = "attributes."};
  return *kSchema;
}

absl::Status CheckIndexField(const IndexSchema& schema, absl::string_view field) {
  const std::string fault = FieldFault(schema, field);
  return fault.empty() ? absl::OkStatus() : absl::InvalidArgumentError(fault);
}

std::string SqlIndexNumber(const std::string& v) { return SqlNumber(v); }

std::string SqlParams::Add(std::string value) {
  values_.push_back(std::move(value));
  return absl::StrCat("$", next_++);
}

absl::StatusOr<IndexQuery> ParseIndexQuery(absl::string_view text, const IndexSchema& schema) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("queryString: empty; \"*\" matches everything");
  }
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(text);
  if (!tokens.ok()) return tokens.status();
  return Parser(*std::move(tokens), schema, text.size()).Parse();
}

bool MatchesIndexQuery(const IndexQuery& query, const IndexDocument& doc) {
  switch (query.op) {
    case IndexQuery::Op::kAnd:
      return std::all_of(query.children.begin(), query.children.end(),
                         [&](const IndexQuery& c) { return MatchesIndexQuery(c, doc); });
    case IndexQuery::Op::kOr:
      return std::any_of(query.children.begin(), query.children.end(),
                         [&](const IndexQuery& c) { return MatchesIndexQuery(c, doc); });
    case IndexQuery::Op::kNot:
      return !MatchesIndexQuery(query.children.front(), doc);
    case IndexQuery::Op::kTerm:
      break;
  }
  const IndexTerm& t = query.term;
  for (const auto& [field, values] : doc) {
    if (!t.field.empty() && field != t.field) continue;
    for (const std::string& v : values) {
      if (TermMatches(t, v)) return true;
    }
  }
  return false;
}

namespace {

// The statistics of `values`, count included.
IndexStatistics StatisticsOf(const std::vector<double>& values) {
  IndexStatistics s{.count = static_cast<int64_t>(values.size())};
  if (values.empty()) return s;
  double sum = 0, squares = 0;
  for (double v : values) {
    sum += v;
    squares += v * v;
  }
  const double n = static_cast<double>(values.size());
  const double mean = sum / n;
  double deviations = 0;
  for (double v : values) deviations += (v - mean) * (v - mean);
  s.average = mean;
  s.sum = sum;
  s.minimum = *std::min_element(values.begin(), values.end());
  s.maximum = *std::max_element(values.begin(), values.end());
  s.sum_of_squares = squares;
  s.variance = deviations / n;
  s.std_deviation = std::sqrt(*s.variance);
  return s;
}

}  // namespace

double PercentileOf(const std::vector<double>& sorted, double percent) {
  const double position = percent / 100 * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (position - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

IndexAggregationResult AggregateDocuments(const std::vector<IndexDocument>& docs,
                                          const IndexAggregation& a) {
  IndexAggregationResult r;
  std::vector<const std::vector<std::string>*> values;  // of each document that has some
  for (const IndexDocument& doc : docs) {
    auto it = doc.find(a.field);
    if (it != doc.end() && !it->second.empty()) values.push_back(&it->second);
  }
  std::vector<double> numbers;
  bool all_numbers = true;
  for (const auto* vs : values) {
    for (const std::string& v : *vs) {
      if (IsNumber(v)) {
        numbers.push_back(ToNumber(v));
      } else {
        all_numbers = false;
      }
    }
  }
  switch (a.kind) {
    case IndexAggregation::Kind::kStatistics:
      if (a.numeric && all_numbers && !numbers.empty()) {
        r.statistics = StatisticsOf(numbers);
      } else {
        r.statistics.count = static_cast<int64_t>(values.size());
      }
      break;
    case IndexAggregation::Kind::kCardinality: {
      std::set<std::string> distinct;
      for (const auto* vs : values) distinct.insert(vs->begin(), vs->end());
      r.cardinality = static_cast<int64_t>(distinct.size());
      break;
    }
    case IndexAggregation::Kind::kPercentiles:
      std::sort(numbers.begin(), numbers.end());
      if (!numbers.empty()) {
        for (double p : a.percents) r.percentiles.emplace_back(p, PercentileOf(numbers, p));
      }
      break;
    case IndexAggregation::Kind::kBuckets: {
      std::map<std::string, int64_t> counts;
      for (const auto* vs : values) {
        for (const std::string& v : std::set<std::string>(vs->begin(), vs->end())) ++counts[v];
      }
      for (const auto& [key, count] : counts) r.buckets.push_back({key, count});
      std::stable_sort(
          r.buckets.begin(), r.buckets.end(),
          [](const IndexBucket& x, const IndexBucket& y) { return x.count > y.count; });
      if (static_cast<int>(r.buckets.size()) > a.max_buckets) r.buckets.resize(a.max_buckets);
      r.total_count = static_cast<int64_t>(docs.size());
      break;
    }
  }
  return r;
}

IndexDocument ThingIndexDocument(const ThingDocument& d) {
  const Thing& t = d.thing;
  IndexDocument doc{
      {"thingName", {t.name}}, {"thingId", {t.id}}, {"thingGroupNames", d.group_names}};
  if (!t.type_name.empty()) doc["thingTypeName"] = {t.type_name};
  for (const auto& [k, v] : t.attributes) doc["attributes." + k] = {v};
  return doc;
}

IndexDocument ThingGroupIndexDocument(const ThingGroupDocument& d) {
  const ThingGroup& g = d.group;
  IndexDocument doc{
      {"thingGroupName", {g.name}},
      {"thingGroupId", {g.id}},
      {"thingGroupDescription",
       absl::StrSplit(g.description, absl::ByAnyChar(" \t\n\v\f\r"), absl::SkipEmpty())},
      {"parentGroupNames", d.parent_names}};
  for (const auto& [k, v] : g.attributes) doc["attributes." + k] = {v};
  return doc;
}

std::string IndexQueryToSql(const IndexQuery& query, const SqlFieldMapper& fields,
                            SqlParams& params) {
  std::vector<std::string> parts;
  switch (query.op) {
    case IndexQuery::Op::kAnd:
    case IndexQuery::Op::kOr:
      for (const IndexQuery& c : query.children) {
        parts.push_back(IndexQueryToSql(c, fields, params));
      }
      return absl::StrCat(
          "(", absl::StrJoin(parts, query.op == IndexQuery::Op::kAnd ? " AND " : " OR "), ")");
    case IndexQuery::Op::kNot:
      return absl::StrCat("(NOT ", IndexQueryToSql(query.children.front(), fields, params), ")");
    case IndexQuery::Op::kTerm:
      break;
  }
  for (const SqlFieldSource& source : fields(query.term.field, params)) {
    const std::string condition = TermSql(query.term, source.value, params);
    if (!source.many()) {
      // NULL (no such value) counts as false, so that NOT finds the things without it.
      parts.push_back(absl::StrCat("coalesce((", condition, "), false)"));
    } else {
      parts.push_back(absl::StrCat("EXISTS (", source.with, "SELECT 1 ", source.from_where, " AND ",
                                   condition, ")"));
    }
  }
  if (parts.empty()) return "false";
  return absl::StrCat("(", absl::StrJoin(parts, " OR "), ")");
}

}  // namespace fleetcore::registry
