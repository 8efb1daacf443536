#include "common/iotsql/joda_time.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fleetcore::iotsql {
namespace {

constexpr const char* kMonths[] = {"January", "February", "March",     "April",
                                   "May",     "June",     "July",      "August",
                                   "September", "October", "November", "December"};
constexpr const char* kWeekdays[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                     "Friday", "Saturday", "Sunday"};

struct PatternToken {
  char letter = 0;  // 0: literal
  int count = 0;
  std::string literal;
};

absl::StatusOr<std::vector<PatternToken>> Tokenize(absl::string_view p) {
  std::vector<PatternToken> out;
  for (size_t i = 0; i < p.size();) {
    const char c = p[i];
    if (c == '\'') {
      std::string lit;
      size_t j = i + 1;
      if (j < p.size() && p[j] == '\'') {  // '' is a quote
        out.push_back({0, 0, "'"});
        i = j + 1;
        continue;
      }
      for (; j < p.size(); ++j) {
        if (p[j] == '\'') {
          if (j + 1 < p.size() && p[j + 1] == '\'') {
            lit.push_back('\'');
            ++j;
            continue;
          }
          break;
        }
        lit.push_back(p[j]);
      }
      if (j >= p.size()) return absl::InvalidArgumentError("an unterminated quote in the pattern");
      out.push_back({0, 0, std::move(lit)});
      i = j + 1;
      continue;
    }
    if (absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      if (std::string_view("yMdDEaHkhKmsSZz").find(c) == std::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("pattern letter '", std::string(1, c),
                                                       "' is not supported"));
      }
      size_t j = i;
      while (j < p.size() && p[j] == c) ++j;
      out.push_back({c, static_cast<int>(j - i), ""});
      i = j;
      continue;
    }
    out.push_back({0, 0, std::string(1, c)});
    ++i;
  }
  return out;
}

std::string Pad(int64_t v, int width) {
  return absl::StrFormat("%0*d", width, v);
}

std::string Offset(int seconds, bool colon) {
  const char sign = seconds < 0 ? '-' : '+';
  const int a = std::abs(seconds) / 60;
  return colon ? absl::StrFormat("%c%02d:%02d", sign, a / 60, a % 60)
               : absl::StrFormat("%c%02d%02d", sign, a / 60, a % 60);
}

}  // namespace

absl::StatusOr<std::string> FormatJoda(absl::string_view pattern, absl::Time t,
                                       absl::TimeZone zone) {
  absl::StatusOr<std::vector<PatternToken>> tokens = Tokenize(pattern);
  if (!tokens.ok()) return tokens.status();
  const absl::TimeZone::CivilInfo ci = zone.At(t);
  const absl::CivilSecond cs = ci.cs;
  const int64_t millis = absl::ToInt64Milliseconds(ci.subsecond);
  std::string out;
  for (const PatternToken& tok : *tokens) {
    const int n = tok.count;
    switch (tok.letter) {
      case 0:
        out += tok.literal;
        break;
      case 'y':
        out += n == 2 ? Pad(cs.year() % 100, 2) : Pad(cs.year(), n);
        break;
      case 'M':
        if (n >= 4) {
          out += kMonths[cs.month() - 1];
        } else if (n == 3) {
          out += std::string(kMonths[cs.month() - 1]).substr(0, 3);
        } else {
          out += Pad(cs.month(), n);
        }
        break;
      case 'd':
        out += Pad(cs.day(), n);
        break;
      case 'D':
        out += Pad(absl::GetYearDay(absl::CivilDay(cs)), n);
        break;
      case 'E': {
        const int wd = static_cast<int>(absl::GetWeekday(absl::CivilDay(cs)));  // Monday = 0
        out += n >= 4 ? std::string(kWeekdays[wd]) : std::string(kWeekdays[wd]).substr(0, 3);
        break;
      }
      case 'a':
        out += cs.hour() < 12 ? "AM" : "PM";
        break;
      case 'H':
        out += Pad(cs.hour(), n);
        break;
      case 'k':
        out += Pad(cs.hour() == 0 ? 24 : cs.hour(), n);
        break;
      case 'h':
        out += Pad(cs.hour() % 12 == 0 ? 12 : cs.hour() % 12, n);
        break;
      case 'K':
        out += Pad(cs.hour() % 12, n);
        break;
      case 'm':
        out += Pad(cs.minute(), n);
        break;
      case 's':
        out += Pad(cs.second(), n);
        break;
      case 'S': {
        std::string ms = Pad(millis, 3);
        if (n <= 3) {
          out += ms.substr(0, static_cast<size_t>(n));
        } else {
          out += ms + std::string(static_cast<size_t>(n - 3), '0');
        }
        break;
      }
      case 'Z':
        out += n >= 3 ? zone.name() : Offset(ci.offset, n == 2);
        break;
      case 'z':
        out += ci.zone_abbr;
        break;
    }
  }
  return out;
}

absl::StatusOr<absl::Time> ParseJoda(absl::string_view pattern, absl::string_view text,
                                     absl::TimeZone zone) {
  absl::StatusOr<std::vector<PatternToken>> tokens = Tokenize(pattern);
  if (!tokens.ok()) return tokens.status();
  int64_t year = 1970;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0, millis = 0;
  bool pm = false, has_ampm = false, twelve = false, day_of_year = false;
  std::optional<int> offset;
  absl::string_view rest = text;
  auto fail = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" does not match the pattern \"",
                                                   pattern, "\" at ", what));
  };
  auto number = [&](int max_digits, int64_t* out) {
    size_t k = 0;
    bool neg = false;
    if (!rest.empty() && (rest[0] == '-' || rest[0] == '+')) {
      neg = rest[0] == '-';
      rest.remove_prefix(1);
    }
    int64_t v = 0;
    max_digits = std::min(max_digits, 9);  // years beyond 999999999 are not dates
    while (k < rest.size() && k < static_cast<size_t>(max_digits) &&
           absl::ascii_isdigit(static_cast<unsigned char>(rest[k]))) {
      v = v * 10 + (rest[k] - '0');
      ++k;
    }
    if (k == 0) return false;
    rest.remove_prefix(k);
    *out = neg ? -v : v;
    return true;
  };
  auto name = [&](const char* const* names, int count, int* index) {
    for (int i = 0; i < count; ++i) {
      for (size_t len : {std::string_view(names[i]).size(), size_t{3}}) {
        absl::string_view candidate = absl::string_view(names[i]).substr(0, len);
        if (rest.size() >= len && absl::EqualsIgnoreCase(rest.substr(0, len), candidate)) {
          rest.remove_prefix(len);
          *index = i;
          return true;
        }
      }
    }
    return false;
  };
  for (size_t ti = 0; ti < tokens->size(); ++ti) {
    const PatternToken& tok = (*tokens)[ti];
    // A numeric field followed directly by another takes exactly its width.
    const bool adjacent =
        ti + 1 < tokens->size() && (*tokens)[ti + 1].letter != 0;
    const int width = adjacent ? tok.count : 9;
    int64_t v = 0;
    switch (tok.letter) {
      case 0:
        if (!absl::StartsWith(rest, tok.literal)) return fail(absl::StrCat("'", tok.literal, "'"));
        rest.remove_prefix(tok.literal.size());
        break;
      case 'y':
        if (!number(tok.count == 2 ? 2 : width, &v)) return fail("the year");
        year = tok.count == 2 ? 2000 + v : v;
        break;
      case 'M':
        if (tok.count >= 3) {
          int i = 0;
          if (!name(kMonths, 12, &i)) return fail("the month name");
          month = i + 1;
        } else {
          if (!number(adjacent ? tok.count : 2, &v)) return fail("the month");
          month = static_cast<int>(v);
        }
        break;
      case 'd':
        if (!number(adjacent ? tok.count : 2, &v)) return fail("the day");
        day = static_cast<int>(v);
        break;
      case 'D':
        if (!number(adjacent ? tok.count : 3, &v)) return fail("the day of the year");
        month = 1;
        day = static_cast<int>(v);
        day_of_year = true;
        break;
      case 'E': {
        int i = 0;
        if (!name(kWeekdays, 7, &i)) return fail("the weekday");
        break;
      }
      case 'a':
        if (rest.size() >= 2 && absl::EqualsIgnoreCase(rest.substr(0, 2), "AM")) {
          pm = false;
        } else if (rest.size() >= 2 && absl::EqualsIgnoreCase(rest.substr(0, 2), "PM")) {
          pm = true;
        } else {
          return fail("AM/PM");
        }
        has_ampm = true;
        rest.remove_prefix(2);
        break;
      case 'H':
      case 'k':
      case 'h':
      case 'K':
        if (!number(adjacent ? tok.count : 2, &v)) return fail("the hour");
        hour = static_cast<int>(v);
        if (tok.letter == 'k' && hour == 24) hour = 0;
        twelve = tok.letter == 'h' || tok.letter == 'K';
        break;
      case 'm':
        if (!number(adjacent ? tok.count : 2, &v)) return fail("the minutes");
        minute = static_cast<int>(v);
        break;
      case 's':
        if (!number(adjacent ? tok.count : 2, &v)) return fail("the seconds");
        second = static_cast<int>(v);
        break;
      case 'S': {
        const size_t before = rest.size();
        if (!number(adjacent ? tok.count : 9, &v)) return fail("the fraction of a second");
        int digits = static_cast<int>(before - rest.size());
        while (digits > 3) {
          v /= 10;
          --digits;
        }
        while (digits < 3) {
          v *= 10;
          ++digits;
        }
        millis = static_cast<int>(v);
        break;
      }
      case 'Z':
      case 'z': {
        if (!rest.empty() && (rest[0] == 'Z' || rest[0] == 'z')) {
          offset = 0;
          rest.remove_prefix(1);
          break;
        }
        if (absl::StartsWith(rest, "UTC") || absl::StartsWith(rest, "GMT")) {
          offset = 0;
          rest.remove_prefix(3);
          if (rest.empty() || (rest[0] != '+' && rest[0] != '-')) break;
        }
        if (rest.empty() || (rest[0] != '+' && rest[0] != '-')) return fail("the time zone");
        const int sign = rest[0] == '-' ? -1 : 1;
        rest.remove_prefix(1);
        int64_t hh = 0, mm = 0;
        if (!number(2, &hh)) return fail("the time zone");
        if (!rest.empty() && rest[0] == ':') rest.remove_prefix(1);
        if (!rest.empty() && absl::ascii_isdigit(static_cast<unsigned char>(rest[0])) &&
            !number(2, &mm)) {
          return fail("the time zone");
        }
        offset = sign * static_cast<int>(hh * 3600 + mm * 60);
        break;
      }
    }
  }
  if (!rest.empty()) return fail(absl::StrCat("\"", rest, "\" (left over)"));
  if (twelve || has_ampm) {
    if (hour == 12) hour = 0;
    if (pm) hour += 12;
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a valid time"));
  }
  const absl::CivilSecond cs(year, month, day, hour, minute, second);
  if (!day_of_year && (cs.month() != month || cs.day() != day)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a valid date"));
  }
  absl::Time t = offset.has_value()
                     ? absl::FromCivil(cs, absl::FixedTimeZone(*offset))
                     : absl::FromCivil(cs, zone);
  return t + absl::Milliseconds(millis);
}

}  // namespace fleetcore::iotsql
