// Joda-Time patterns, as AWS IoT SQL's parse_time() and time_to_epoch() take them:
//   FormatJoda("yyyy-MM-dd HH:mm:ss z", t, utc)  -> "2018-03-02 14:13:20 UTC"
//   ParseJoda("yyyy-MM-dd HH:mm:ss", "2018-03-02 14:13:20", utc) -> the instant
//
// Letters: y (year; yy two digits), M (month: 1-2 digits, MMM "Mar", MMMM "March"), d (day of
// month), D (day of year), E (EEE "Fri", EEEE "Friday"), a (AM/PM), H (0-23), k (1-24),
// h (1-12), K (0-11), m, s, S (fraction of a second, as many digits as letters), Z (+0000;
// ZZ +00:00; ZZZ the zone id), z (the zone's abbreviation). A run of one letter is one field;
// its length pads numbers with zeros. Text in single quotes is literal ('' is a quote);
// other characters are literal. Any other letter is an error.
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fleetcore::iotsql {

absl::StatusOr<std::string> FormatJoda(absl::string_view pattern, absl::Time t,
                                       absl::TimeZone zone);
// Fields the pattern lacks default to 1970-01-01 00:00:00.000 in `zone`; an offset in the
// text (Z) wins over `zone`.
absl::StatusOr<absl::Time> ParseJoda(absl::string_view pattern, absl::string_view text,
                                     absl::TimeZone zone);

}  // namespace fleetcore::iotsql
