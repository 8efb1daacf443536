// libFuzzer target: any bytes as a SearchIndex query (or a dynamic group's). Parsing must
// never crash, hang or recurse without bound; a query that parses must match documents and
// turn into SQL that carries every value of the query as a parameter, never in its text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_replace.h"
#include "services/registry/index_query.h"

namespace {

using fleetcore::registry::IndexDocument;
using fleetcore::registry::SqlFieldSource;
using fleetcore::registry::SqlParams;

// The only quoted literal the SQL may hold: the test for a number.
constexpr char kNumberPattern[] = "'^-?[0-9]+(\\.[0-9]+)?$'";

std::vector<SqlFieldSource> Fields(absl::string_view field, SqlParams& params) {
  if (field.empty()) return {{.value = "v"}, {.value = "m.w", .from_where = "FROM m WHERE true"}};
  return {{.value = "f(" + params.Add(std::string(field)) + ")"}};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetcore::registry;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  static const IndexDocument kThing = {{"thingName", {"Lamp-12"}},
                                       {"thingTypeName", {"lamp"}},
                                       {"thingGroupNames", {"berlin", "floor-2"}},
                                       {"attributes.floor", {"2"}},
                                       {"attributes.serial", {"ab%_\\c"}}};
  for (const IndexSchema* schema : {&ThingIndexSchema(), &ThingGroupIndexSchema()}) {
    absl::StatusOr<IndexQuery> q = ParseIndexQuery(text, *schema);
    if (!q.ok()) continue;
    (void)MatchesIndexQuery(*q, kThing);
    SqlParams params(3);
    const std::string sql = IndexQueryToSql(*q, Fields, params);
    const std::string unquoted = absl::StrReplaceAll(sql, {{kNumberPattern, ""}});
    if (unquoted.find('\'') != std::string::npos) {
      std::abort();  // a value of the query reached the SQL's text
    }
  }
  return 0;
}
