#include "common/db/pg_rows.h"

#include "absl/strings/str_cat.h"

namespace fleetcore::db {

std::string TimestampFrom(absl::string_view micros) {
  return absl::StrCat("'epoch'::timestamptz + (", micros, " * interval '1 microsecond')");
}

std::string TimestampParam(int n) { return TimestampFrom(absl::StrCat("$", n, "::bigint")); }

std::string MicrosOf(const std::string& column) {
  return absl::StrCat("(extract(epoch FROM ", column, ") * 1000000)::bigint");
}

std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace fleetcore::db
