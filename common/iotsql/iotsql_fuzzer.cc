// libFuzzer target: any bytes as an AWS IoT SQL statement. Parsing must never crash or
// hang, and a statement that parses must evaluate JSON and non-JSON payloads, and serve as
// a substitution template, without crashing (the lookups answered by a fake); the same bytes as a Joda-Time pattern (and as
// text for one) must format and parse without crashing.
#include <cstddef>
#include <cstdint>

#include "common/iotsql/iotsql.h"
#include "common/iotsql/joda_time.h"

namespace {

// get_thing_shadow(): lamp-1's classic shadow exists, its named shadow "down" fails, the
// rest are missing; get_registry_data(): lamp-1 is described, its groups fail.
class Lookups final : public fleetcore::iotsql::ServiceLookups {
 public:
  absl::StatusOr<nlohmann::json> GetThingShadow(absl::string_view thing,
                                                absl::string_view shadow) override {
    if (thing != "lamp-1") return absl::NotFoundError("no shadow");
    if (shadow == "down") return absl::UnavailableError("down");
    return nlohmann::json::parse(
        R"({"state": {"reported": {"on": true, "level": [1, 2]}}, "version": 3})");
  }
  absl::StatusOr<nlohmann::json> GetRegistryData(absl::string_view api,
                                                 absl::string_view thing) override {
    if (thing != "lamp-1") return absl::NotFoundError("no thing");
    if (api == "ListThingGroupsForThing") return absl::UnavailableError("down");
    return nlohmann::json::parse(R"({"thingName": "lamp-1", "attributes": {"max": "30"}})");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetcore::iotsql;
  const absl::string_view sql(reinterpret_cast<const char*>(data), size);
  static Lookups lookups;
  const MessageContext ctx{.topic = "sensors/lamp-1/data", .client_id = "lamp-1",
                           .principal = "p", .timestamp_ms = 1700000000000,
                           .lookups = &lookups};
  for (SqlVersion v : {SqlVersion::k2016_03_23, SqlVersion::k2015_10_08}) {
    absl::StatusOr<Statement> st = Statement::Parse(sql, v);
    if (!st.ok()) continue;
    (void)st->Evaluate(R"({"temperature": 31.5, "a": {"b": [1, "2", {"c": null}]}, "s": "x"})",
                       ctx);
    (void)st->Evaluate("\x01\x02 not json", ctx);
  }
  (void)Statement::Substitute(sql, R"({"a": 1})", ctx);
  (void)FormatJoda(sql, absl::FromUnixMillis(1520000000123), absl::UTCTimeZone());
  (void)ParseJoda(sql, "2018-03-02 14:13:20.123 +0100", absl::UTCTimeZone());
  (void)ParseJoda("yyyy-MM-dd HH:mm:ss.SSS Z", sql, absl::UTCTimeZone());
  return 0;
}
