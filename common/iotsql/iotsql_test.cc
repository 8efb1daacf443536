// AWS IoT SQL conformance: (statement, payload, expected output) rows from the examples in
// AWS's documentation (reference §6), plus the error messages a person acts on.
#include "common/iotsql/iotsql.h"

#include "common/iotsql/joda_time.h"
#include "common/iotsql/md2.h"

#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::iotsql {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

MATCHER_P(IsOkAndHoldsString, want, "") {
  if (!arg.ok()) {
    *result_listener << arg.status();
    return false;
  }
  *result_listener << "\"" << *arg << "\"";
  return *arg == want;
}

const MessageContext kContext{.topic = "sensors/lamp-1/data",
                              .client_id = "lamp-1",
                              .principal = "abc123",
                              .timestamp_ms = 1700000000123};

// AWS's SenML-like example for nested queries.
constexpr char kSenml[] = R"({"e": [
    {"n": "temperature", "u": "Cel", "t": 1234, "v": 22.5},
    {"n": "light", "u": "lm", "t": 1235, "v": 135},
    {"n": "acidity", "u": "pH", "t": 1235, "v": 7}]})";

struct Row {
  std::string name;
  std::string sql;
  std::string payload;
  std::optional<std::string> output;  // nullopt: not selected (WHERE false)
};

class ConformanceTest : public ::testing::TestWithParam<Row> {};

TEST_P(ConformanceTest, MatchesAws) {
  const Row& row = GetParam();
  absl::StatusOr<Statement> st = Statement::Parse(row.sql);
  ASSERT_TRUE(st.ok()) << st.status();
  Result r = st->Evaluate(row.payload, kContext);
  if (!row.output.has_value()) {
    EXPECT_FALSE(r.selected) << r.output;
    return;
  }
  ASSERT_TRUE(r.selected);
  json want = json::parse(*row.output, nullptr, false);
  json got = json::parse(r.output, nullptr, false);
  if (!want.is_discarded() && !got.is_discarded()) {
    EXPECT_EQ(got, want) << r.output;
  } else {
    EXPECT_EQ(r.output, *row.output);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Aws, ConformanceTest,
    ::testing::Values(
        // The seed's high-temperature rule.
        Row{"where_true", "SELECT * FROM 'sensors/+/data' WHERE temperature > 30",
            R"({"temperature": 31.5, "unit": "C"})", R"({"temperature": 31.5, "unit": "C"})"},
        Row{"where_false", "SELECT * FROM 'sensors/+/data' WHERE temperature > 30",
            R"({"temperature": 21})", std::nullopt},
        Row{"where_missing_field_is_undefined", "SELECT * FROM 't' WHERE temperature > 30",
            R"({"humidity": 40})", std::nullopt},
        // Numeric strings compare as numbers.
        Row{"numeric_string", "SELECT * FROM 't' WHERE temperature > 30", R"({"temperature": "35"})",
            R"({"temperature": "35"})"},
        Row{"projection_alias", "SELECT temperature AS t, unit FROM 't'",
            R"({"temperature": 25, "unit": "C", "x": 1})", R"({"t": 25, "unit": "C"})"},
        Row{"star_plus_field", "SELECT *, 15 AS speed FROM 't'", R"({"a": 1})",
            R"({"a": 1, "speed": 15})"},
        Row{"nested_and_dotted_alias", "SELECT state.reported.color AS bar.baz FROM 't'",
            R"({"state": {"reported": {"color": "red"}}})", R"({"bar": {"baz": "red"}})"},
        Row{"array_index", "SELECT readings[1] AS second FROM 't'", R"({"readings": [10, 20, 30]})",
            R"({"second": 20})"},
        Row{"undefined_dropped", "SELECT a, nothere FROM 't'", R"({"a": null})", R"({"a": null})"},
        Row{"context_functions",
            "SELECT topic(2) AS device, topic() AS t, clientid() AS c, principal() AS p, "
            "timestamp() AS ts FROM 'sensors/+/data'",
            "{}",
            R"({"device": "lamp-1", "t": "sensors/lamp-1/data", "c": "lamp-1", "p": "abc123",
                "ts": 1700000000123})"},
        Row{"arithmetic_and_2016_whole_decimals", "SELECT a * 2 AS d, a / 2 AS h, 10.0 AS w FROM 't'",
            R"({"a": 5})", R"({"d": 10, "h": 2, "w": 10})"},
        Row{"decimal_math", "SELECT (temperature - 32) * 5.0 / 9 AS c FROM 't'",
            R"({"temperature": 212})", R"({"c": 100})"},
        Row{"string_concat_plus", "SELECT 'id-' + topic(2) AS id FROM 't'", "{}",
            R"({"id": "id-lamp-1"})"},
        Row{"string_functions",
            "SELECT upper(name) AS u, lower('AbC') AS l, concat(name, '-', 2) AS c, "
            "substring(name, 1, 3) AS s, length(name) AS n, startswith(name, 'la') AS sw, "
            "replace(name, 'a', 'o') AS r, trim('  x ') AS t FROM 't'",
            R"({"name": "lamp"})",
            R"({"u": "LAMP", "l": "abc", "c": "lamp-2", "s": "am", "n": 4, "sw": true, "r": "lomp",
                "t": "x"})"},
        // Any letter changes case, as in Java.
        Row{"upper_lower_unicode",
            "SELECT upper(a) AS u, lower(b) AS l FROM 't'",
            R"({"a": "Grün, élan, ωmega", "b": "ÀÉÎ ÕÜ ΣΤΟΑ"})",
            R"({"u": "GRÜN, ÉLAN, ΩMEGA", "l": "àéî õü στοα"})"},
        // Java's longer mappings (SpecialCasing), and the final sigma.
        Row{"upper_lower_special_casing",
            "SELECT upper(a) AS u, lower(b) AS l, lower(c) AS g FROM 't'",
            R"({"a": "Straße, ﬁle, ﬃ, ᾳ, ŉ", "b": "İSTANBUL", "c": "ΟΔΟΣ ΚΑΙ ΣΑΣ. Σ ΑΣ, ΑΣ"})",
            R"({"u": "STRASSE, FILE, FFI, ΑΙ, ʼN", "l": "i̇stanbul",
                "g": "οδος και σας. σ ας, ας"})"},
        // Characters, not bytes: "é" and "ü" are two bytes each in UTF-8.
        Row{"string_functions_count_characters",
            "SELECT substring(name, 1, 3) AS s, length(name) AS n, indexof(name, 'l') AS i, "
            "substring(name, 4) AS rest FROM 't'",
            R"({"name": "héllü!"})", R"({"s": "él", "n": 6, "i": 2, "rest": "ü!"})"},
        Row{"math_functions",
            "SELECT abs(-3) AS a, ceil(1.2) AS c, floor(1.8) AS f, round(2.5) AS r, "
            "power(2, 10) AS p, mod(7, 3) AS m, sqrt(16) AS s FROM 't'",
            "{}", R"({"a": 3, "c": 2, "f": 1, "r": 3, "p": 1024, "m": 1, "s": 4})"},
        Row{"more_math",
            "SELECT trunc(2.3123, 2) AS t, trunc(2.3, 0) AS t0, remainder(8, 3) AS r, "
            "bitand(13, 5) AS ba, bitor(8, 5) AS bo, bitxor(8, 5) AS bx, bitnot(13) AS bn, "
            "nanvl(8, 1) AS n, atan2(0, 1) AS a2, sin(0) AS s0 FROM 't'",
            "{}",
            R"({"t": 2.31, "t0": 2, "r": 2, "ba": 5, "bo": 13, "bx": 13, "bn": -14, "n": 8,
                "a2": 0.0, "s0": 0.0})"},
        Row{"pads_and_more_hashes",
            "SELECT lpad('hello', 2) AS l, rpad('hello', 2) AS r, sha224('abc') AS s224, "
            "sha384('abc') AS s384 FROM 't'",
            "{}",
            R"({"l": "  hello", "r": "hello  ",
                "s224": "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
                "s384": "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"})"},
        // AWS's parse_time examples, and time_to_epoch back.
        Row{"parse_time",
            "SELECT parse_time('yyyy-MM-dd HH:mm:ss z', 1520000000000) AS utc, "
            "parse_time('yyyy-MM-dd HH:mm:ss', 1520000000000, 'America/Belize') AS belize, "
            "parse_time('yyyy-MM-dd HH:mm:ss z', 1520000000000, 'Asia/Seoul') AS seoul, "
            "time_to_epoch('2018-03-02 14:13:20', 'yyyy-MM-dd HH:mm:ss') AS back, "
            "time_to_epoch('2020-3-3 12:03:17', 'yyyy-MM-dd HH:mm:ss') AS short, "
            "parse_time('yyyy-MM-dd', 'soon') AS bad FROM 't'",
            "{}",
            R"({"utc": "2018-03-02 14:13:20 UTC", "belize": "2018-03-02 08:13:20",
                "seoul": "2018-03-02 23:13:20 KST", "back": 1520000000000,
                "short": 1583236997000})"},
        // AWS's nested object queries (2016-03-23).
        Row{"nested_select_where",
            "SELECT (SELECT v FROM e WHERE n = 'temperature') AS temperature FROM 'my/topic'",
            kSenml, R"({"temperature": [{"v": 22.5}]})"},
        Row{"nested_select_value", "SELECT (SELECT VALUE n FROM e) AS sensors FROM 'my/topic'",
            kSenml, R"({"sensors": ["temperature", "light", "acidity"]})"},
        Row{"nested_select_get",
            "SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v AS temperature "
            "FROM 'my/topic'",
            kSenml, R"({"temperature": 22.5})"},
        Row{"nested_select_star_and_not_an_array",
            "SELECT (SELECT *, 1 AS one FROM e WHERE v > 100) AS bright, "
            "(SELECT VALUE n FROM nothere) AS none FROM 'my/topic'",
            kSenml, R"({"bright": [{"n": "light", "u": "lm", "t": 1235, "v": 135, "one": 1}]})"},
        // AWS's transform() example, then its result as a nested query's FROM.
        Row{"transform_enrich_array",
            R"(SELECT VALUE transform("enrichArray", attributes, values) FROM 't')",
            R"({"attributes": {"data1": 1, "data2": 2}, "values": [{"a": 3}, {"b": 4}, {"c": 5}]})",
            R"([{"a": 3, "data1": 1, "data2": 2}, {"b": 4, "data1": 1, "data2": 2},
                {"c": 5, "data1": 1, "data2": 2}])"},
        Row{"transform_in_a_nested_query",
            "SELECT (SELECT VALUE v + offset FROM transform('enrichArray', cal, e)) AS fixed "
            "FROM 't'",
            R"({"cal": {"offset": 10, "v": 0}, "e": [{"v": 1}, {"v": 2}]})",
            // The object's attributes replace the element's of the same name.
            R"({"fixed": [10, 10]})"},
        Row{"transform_undefined",
            "SELECT transform('enrichArray', a, nums) AS n, transform('other', a, objs) AS m, "
            "transform('enrichArray', nums, objs) AS o, transform('enrichArray', a, a) AS p, "
            "transform('enrichArray', a, objs) AS ok FROM 't'",
            R"({"a": {"k": 1}, "nums": [1, 2], "objs": [{}]})", R"({"ok": [{"k": 1}]})"},
        Row{"get_or_default",
            "SELECT get_or_default(missing, 'none') AS m, get_or_default(n, 0) AS n, "
            "get_or_default(x, 0) AS x, get_or_default(missing) AS u, "
            "get_or_default(sqrt('x'), 'bad') AS b FROM 't'",
            R"({"n": null, "x": 5})", R"({"m": "none", "n": 0, "x": 5, "b": "bad"})"},
        Row{"case_with_subject",
            "SELECT CASE color WHEN 'red' THEN 'stop' WHEN 'green' THEN 'go' ELSE 'wait' END AS "
            "action FROM 't'",
            R"({"color": "green"})", R"({"action": "go"})"},
        Row{"case_searched_no_else_is_undefined",
            "SELECT CASE WHEN t > 30 THEN 'hot' END AS level FROM 't'", R"({"t": 10})", "{}"},
        Row{"cast_and_types",
            "SELECT cast(n AS Int) AS i, cast(n AS String) AS s, cast('true' AS Boolean) AS b, "
            "isUndefined(missing) AS u, isNull(z) AS z FROM 't'",
            R"({"n": 3.7, "z": null})", R"({"i": 3, "s": "3.7", "b": true, "u": true, "z": true})"},
        Row{"get_with_keys_and_indexes", "SELECT get(get(mydata, 'item2'), 0) AS v FROM 't'",
            R"({"mydata": {"item2": [7, 8]}})", R"({"v": 7})"},
        Row{"and_or_not_with_strings", "SELECT * FROM 't' WHERE flag AND NOT off OR never",
            R"({"flag": "true", "off": false})", R"({"flag": "true", "off": false})"},
        Row{"equality_rules", "SELECT 1 = 1.0 AS a, 'a' = 1 AS b, [1,2] = [1,2] AS c, "
            "{'x': 1, 'y': 2} = {'y': 2, 'x': 1} AS d, 1 <> 2 AS e FROM 't'",
            "{}", R"({"a": true, "b": false, "c": true, "d": true, "e": true})"},
        Row{"value_select", "SELECT VALUE temperature FROM 't'", R"({"temperature": 21})", "21"},
        Row{"object_and_array_literals", "SELECT {'lat': lat, 'long': lng} AS pos, [lat, lng] AS "
            "pair FROM 't'",
            R"({"lat": 1.5, "lng": 2.5})", R"({"pos": {"lat": 1.5, "long": 2.5}, "pair": [1.5, 2.5]})"},
        Row{"hashes_and_base64", "SELECT md5('abc') AS m, sha256('abc') AS s, md2('abc') AS m2, "
            "encode('hello', 'base64') AS e, decode('aGVsbG8=', 'base64') AS d FROM 't'",
            "{}",
            R"({"m": "900150983cd24fb0d6963f7d28e17f72", "m2": "da853b0d3f88d99b30283a69e6ded6bb",
                "s": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "e": "aGVsbG8=", "d": "hello"})"},
        Row{"regexp", "SELECT regexp_matches(id, '^lamp-[0-9]+$') AS m, "
            "regexp_replace(id, '[0-9]', 'N') AS r FROM 't'",
            R"({"id": "lamp-12"})", R"({"m": true, "r": "lamp-NN"})"},
        // Java's replacement syntax ($1 a group, \$ a dollar), the whole match, characters.
        Row{"regexp_groups",
            "SELECT regexp_replace(id, '([a-z]+)-([0-9]+)', '$2:$1 \\$') AS r, "
            "regexp_substr(id, '[0-9]+') AS s, regexp_matches(id, 'é.p') AS u, "
            "regexp_substr(id, 'x') AS none FROM 't'",
            R"({"id": "lé-lamp-12"})",
            R"({"r": "lé-12:lamp $", "s": "12", "u": false, "none": ""})"},
        // Non-JSON payloads: * passes the bytes through; fields are Undefined; functions work.
        Row{"binary_star", "SELECT * FROM 't'", "\x01\x02raw", "\x01\x02raw"},
        Row{"binary_fields_undefined", "SELECT temperature FROM 't' WHERE timestamp() > 0",
            "not json", "{}"},
        Row{"binary_encode_star", "SELECT encode(*, 'base64') AS data FROM 't'", "\x01\x02",
            R"({"data": "AQI="})"},
        // JSON nested more than 256 levels is read as binary: nothing recurses through it.
        Row{"too_deep_is_binary", "SELECT a, encode(*, 'base64') = '' AS empty FROM 't'",
            R"({"a": )" + std::string(60000, '[') + std::string(60000, ']') + "}",
            R"({"empty": false})"},
        Row{"deep_enough_is_json", "SELECT a[0][0] AS x FROM 't'", R"({"a": [[7]]})",
            R"({"x": 7})"},
        Row{"division_by_zero_is_undefined", "SELECT 1 / 0 AS x, 'a' > 1 AS y FROM 't'", "{}",
            "{}"}),
    [](const ::testing::TestParamInfo<Row>& info) { return info.param.name; });

TEST(IotSql, ErrorsSayWhereAndWhat) {
  auto err = [](absl::string_view sql) {
    absl::StatusOr<Statement> st = Statement::Parse(sql);
    EXPECT_FALSE(st.ok()) << sql;
    return st.ok() ? std::string() : std::string(st.status().message());
  };
  EXPECT_THAT(err("SELEC * FROM 't'"), HasSubstr("line 1, column 1: expected SELECT"));
  EXPECT_THAT(err("SELECT * FROM sensors"),
              HasSubstr("line 1, column 15: expected a quoted topic filter after FROM"));
  EXPECT_THAT(err("SELECT * FROM 't' WHERE temperature >"),
              HasSubstr("expected a value, a field or a function, found the end"));
  EXPECT_THAT(err("SELECT nope(1) FROM 't'"), HasSubstr("unknown function nope()"));
  EXPECT_THAT(err("SELECT topic(1, 2) FROM 't'"), HasSubstr("topic() takes 0 to 1 arguments"));
  EXPECT_THAT(err("SELECT 'open FROM 't'"), HasSubstr("line 1, column 21: a string is not closed"));
  EXPECT_THAT(err("SELECT a\nFROM 't' WHERE b = = c"), HasSubstr("line 2, column 20"));
  EXPECT_THAT(err("SELECT CASE a WHEN 1 THEN 2 FROM 't'"), HasSubstr("expected END"));
  EXPECT_THAT(err("SELECT cast(a AS Blob) FROM 't'"), HasSubstr("expected a type"));
}

TEST(IotSql, DeepStatementsAreRefusedNotOverflowingTheStack) {
  auto err = [](const std::string& sql) {
    absl::StatusOr<Statement> st = Statement::Parse(sql);
    EXPECT_FALSE(st.ok()) << sql.substr(0, 40);
    return st.ok() ? std::string() : std::string(st.status().message());
  };
  EXPECT_THAT(err("SELECT " + std::string(10000, '(') + "1" + std::string(10000, ')')),
              HasSubstr("nested more than 64 levels deep"));
  EXPECT_THAT(err("SELECT " + std::string(10000, '-') + "1"), HasSubstr("nested more than"));
  std::string chain = "1";
  for (int i = 0; i < 10000; ++i) chain += "+1";
  EXPECT_THAT(err("SELECT " + chain + " AS n FROM 't'"), HasSubstr("operators in a row"));
  // Chains inside nesting add up: refused by total depth.
  std::string deep = "1";
  for (int i = 0; i < 40; ++i) {
    std::string inner = deep;
    for (int k = 0; k < 20; ++k) inner += "+1";
    deep = "abs(" + inner + ")";
  }
  EXPECT_THAT(err("SELECT " + deep + " AS n FROM 't'"), HasSubstr("levels deep"));
  // Within the bounds, fine.
  EXPECT_TRUE(Statement::Parse("SELECT " + std::string(30, '(') + "1" + std::string(30, ')') +
                               " AS n FROM 't'")
                  .ok());
}

// A pattern stays usable while another argument compiles more than the per-thread cache
// holds (found reading the cache: the third argument used to be evaluated after the lookup).
TEST(IotSql, RegexpsComputedFromMessagesDoNotOutliveTheirUse) {
  ASSERT_OK_AND_ASSIGN(
      Statement st,
      Statement::Parse("SELECT regexp_replace('aXb', 'X', (SELECT VALUE regexp_substr(v, v) "
                       "FROM e)[0]) AS r FROM 't'"));
  std::string items;
  for (int i = 0; i < 300; ++i) absl::StrAppend(&items, i == 0 ? "" : ",", R"({"v": "p)", i, R"("})");
  const std::string payload = absl::StrCat(R"({"e": [)", items, "]}");
  EXPECT_EQ(json::parse(st.Evaluate(payload, kContext).output), json::parse(R"({"r": "ap0b"})"));
}

// A device's long string: numeric conversion and regexps take time in proportion to it,
// never stack (std::regex recursed per character and a 100 KB string overflowed the stack).
TEST(IotSql, LongStringsFromDevices) {
  const std::string digits(200000, '1');
  const std::string payload = R"({"t": ")" + digits + R"(", "s": ")" +
                              std::string(200000, 'a') + R"("})";
  ASSERT_OK_AND_ASSIGN(Statement st,
                       Statement::Parse("SELECT t > 30 AS hot, regexp_matches(s, '(a|b)*c') AS m "
                                        "FROM 'sensors/#'"));
  EXPECT_EQ(json::parse(st.Evaluate(payload, kContext).output),
            json::parse(R"({"hot": true, "m": false})"));
}

// transform()'s result is at most 128 KiB, as AWS's: beyond, Undefined, found before the
// whole result is built (each element gets a copy of the object's attributes).
TEST(IotSql, TransformIsBounded) {
  ASSERT_OK_AND_ASSIGN(Statement st,
                       Statement::Parse("SELECT transform('enrichArray', a, e) AS t FROM 't'"));
  auto payload = [](int elements) {
    json p = {{"a", {{"note", std::string(2000, 'x')}}}, {"e", json::array()}};
    for (int i = 0; i < elements; ++i) p["e"].push_back({{"i", i}});
    return p.dump();
  };
  Result r = st.Evaluate(payload(60), kContext);
  ASSERT_TRUE(r.selected);
  EXPECT_EQ(json::parse(r.output)["t"].size(), 60u);
  r = st.Evaluate(payload(70), kContext);  // 70 copies of 2 KB: over 128 KiB
  ASSERT_TRUE(r.selected);
  EXPECT_EQ(r.output, "{}");
}

TEST(IotSql, IntegerOverflowBecomesDecimal) {
  absl::StatusOr<Statement> st = Statement::Parse(
      "SELECT 9223372036854775807 + 1 AS a, -9223372036854775807 - 10 AS b, "
      "4611686018427387904 * 4 AS c, abs(i) AS d, -i AS e, i / -1 AS f, mod(i, -1) AS g, "
      "cast(1e300 AS Int) AS h, topic(1e300) AS t, substring('abc', -1e300, 1e300) AS s, "
      "parse_time('yyyy', 1e300) AS p FROM 't'");
  ASSERT_TRUE(st.ok()) << st.status();
  Result r = st->Evaluate(R"({"i": -9223372036854775808})", kContext);
  json out = json::parse(r.output);
  EXPECT_DOUBLE_EQ(out["a"].get<double>(), 9223372036854775808.0);
  EXPECT_DOUBLE_EQ(out["b"].get<double>(), -9223372036854775817.0);
  EXPECT_DOUBLE_EQ(out["c"].get<double>(), 18446744073709551616.0);
  EXPECT_DOUBLE_EQ(out["d"].get<double>(), 9223372036854775808.0);
  EXPECT_DOUBLE_EQ(out["e"].get<double>(), 9223372036854775808.0);
  EXPECT_DOUBLE_EQ(out["f"].get<double>(), 9223372036854775808.0);
  EXPECT_EQ(out["g"], 0);
  EXPECT_FALSE(out.contains("h"));  // out of Int range: Undefined
  EXPECT_FALSE(out.contains("t"));
  EXPECT_EQ(out["s"], "abc");
  EXPECT_FALSE(out.contains("p"));
}

TEST(IotSql, FromAndTopicFilters) {
  absl::StatusOr<Statement> st = Statement::Parse("SELECT * FROM 'sensors/+/data'");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->from(), "sensors/+/data");
  EXPECT_TRUE(TopicMatches("sensors/+/data", "sensors/lamp-1/data"));
  EXPECT_FALSE(TopicMatches("sensors/+/data", "sensors/lamp-1/status"));
  EXPECT_TRUE(TopicMatches("sensors/#", "sensors/a/b/c"));
  EXPECT_TRUE(TopicMatches("sensors/#", "sensors"));
  EXPECT_FALSE(TopicMatches("sensors/+", "sensors/a/b"));
}

TEST(IotSql, SubstitutionTemplates) {
  absl::StatusOr<std::string> s = Statement::Substitute(
      "${topic()}/republish/${upper(unit)}", R"({"unit": "c"})", kContext);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, "sensors/lamp-1/data/republish/C");
  s = Statement::Substitute("${replace(topic(), '/', '-') + '-' + timestamp()}", "{}", kContext);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "sensors-lamp-1-data-1700000000123");
  EXPECT_FALSE(Statement::Substitute("${topic(", "{}", kContext).ok());
}

TEST(IotSql, SourceIp) {
  MessageContext context = kContext;
  context.source_ip = "192.0.2.7";
  ASSERT_OK_AND_ASSIGN(Statement st,
                       Statement::Parse("SELECT sourceip() AS ip, * FROM 'sensors/#'"));
  EXPECT_EQ(json::parse(st.Evaluate(R"({"t": 1})", context).output),
            json::parse(R"({"ip": "192.0.2.7", "t": 1})"));
  // A message from a service has no address: Undefined.
  EXPECT_EQ(json::parse(st.Evaluate(R"({"t": 1})", kContext).output), json::parse(R"({"t": 1})"));
  EXPECT_THAT(Statement::Parse("SELECT sourceip() AS ip FROM 't'", SqlVersion::k2015_10_08)
                  .status()
                  .message(),
              HasSubstr("sourceip() needs SQL version 2016-03-23"));
}

TEST(IotSql, TemplatesParseOnceAndRenderOnEachMessage) {
  ASSERT_OK_AND_ASSIGN(Template t, Template::Parse("alerts/${topic(2)}/${upper(unit)}${n}"));
  EXPECT_THAT(t.Render(Payload(R"({"unit": "c"})"), kContext),
              IsOkAndHoldsString("alerts/lamp-1/C"));  // Undefined: nothing
  EXPECT_THAT(t.Render(Payload(R"({"unit": "f", "n": 7})"), kContext),
              IsOkAndHoldsString("alerts/lamp-1/F7"));
  EXPECT_THAT(t.Render(Payload("\x01 not json"), kContext),
              IsOkAndHoldsString("alerts/lamp-1/"));
  ASSERT_OK_AND_ASSIGN(t, Template::Parse("no substitution"));
  EXPECT_THAT(t.Render(Payload("{}"), kContext), IsOkAndHoldsString("no substitution"));
  // What follows the expression must be its closing brace.
  EXPECT_THAT(Template::Parse("a/${topic(2) x}").status().message(),
              HasSubstr("expected } after the expression of ${...}"));
  EXPECT_THAT(Template::Parse("a/${topic(2)").status().message(), HasSubstr("not closed"));
  // Parsing evaluates nothing: a template naming a shadow parses without any lookups.
  EXPECT_OK(Template::Parse("a/${get_thing_shadow('lamp-1', 'r').state.reported.room}"));
}

TEST(IotSql, Mqtt5Properties) {
  MessageContext ctx = kContext;
  ctx.utf8_payload = true;
  ctx.content_type = "application/json";
  ctx.response_topic = "lamps/lamp-1/replies";
  ctx.correlation_data = std::string("\x01\x02\xff", 3);
  ctx.user_properties = {{"site", "north"}, {"fw", "1.2"}, {"site", "annex"}};
  auto eval = [&](const std::string& sql, const MessageContext& c) {
    absl::StatusOr<Statement> st = Statement::Parse(sql);
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() ? json::parse(st->Evaluate(R"({"v": 1})", c).output) : json();
  };
  EXPECT_EQ(eval("SELECT get_mqtt_property('content_type') AS ct, "
                 "get_mqtt_property('format_indicator') AS f, "
                 "get_mqtt_property('response_topic') AS rt, "
                 "get_mqtt_property('correlation_data') AS cd, "
                 "get_user_properties('site') AS site, get_user_properties('fw') AS fw "
                 "FROM 'sensors/#'",
                 ctx),
            json::parse(R"({"ct": "application/json", "f": "UTF8_DATA",
                            "rt": "lamps/lamp-1/replies", "cd": "AQL/",
                            "site": ["north", "annex"], "fw": ["1.2"]})"));
  // Absent (an MQTT 3.1.1 publisher, or a name it does not know): Undefined, so no field.
  EXPECT_EQ(eval("SELECT v, get_mqtt_property('content_type') AS ct, "
                 "get_user_properties('site') AS site, get_mqtt_property('nope') AS n "
                 "FROM 'sensors/#'",
                 kContext),
            json::parse(R"({"v": 1})"));
  ctx.utf8_payload = false;
  EXPECT_EQ(eval("SELECT get_mqtt_property('format_indicator') AS f FROM 'a'", ctx),
            json::parse(R"({"f": "UNSPECIFIED_BYTES"})"));
  absl::StatusOr<std::string> topic =
      Statement::Substitute("${get_user_properties('site')[1]}/${get_mqtt_property('content_type')}", "{}", ctx);
  ASSERT_TRUE(topic.ok()) << topic.status();
  EXPECT_EQ(*topic, "annex/application/json");
  EXPECT_FALSE(Statement::Parse("SELECT get_mqtt_property() FROM 'a'").ok());
}

TEST(IotSql, SetClauseVariables) {
  absl::StatusOr<Statement> st = Statement::Parse(
      "SET @f = temperature * 1.8 + 32, @hot = @f > 90, @first = e[0] "
      "SELECT @f AS fahrenheit, @hot AS hot, @first.n AS name FROM 'sensors/#' WHERE @hot");
  ASSERT_TRUE(st.ok()) << st.status();
  Result r = st->Evaluate(R"({"temperature": 35, "e": [{"n": "a"}]})", kContext);
  ASSERT_TRUE(r.selected);
  EXPECT_EQ(json::parse(r.output), json::parse(R"({"fahrenheit": 95.0, "hot": true, "name": "a"})"));
  EXPECT_EQ(r.variables, json::parse(R"({"f": 95.0, "hot": true, "first": {"n": "a"}})"));
  EXPECT_FALSE(st->Evaluate(R"({"temperature": 20})", kContext).selected);
  // An Undefined value leaves the variable unset, and so Undefined where it is used.
  r = st->Evaluate(R"({"humidity": 1})", kContext);
  EXPECT_FALSE(r.selected);
  EXPECT_EQ(r.variables, json::object());

  // The rule's templates see the variables.
  r = st->Evaluate(R"({"temperature": 40, "e": []})", kContext);
  absl::StatusOr<std::string> topic =
      Statement::Substitute("alerts/${@f}/${@nope}", R"({"temperature": 40})", kContext,
                            SqlVersion::k2016_03_23, &r.variables);
  ASSERT_TRUE(topic.ok()) << topic.status();
  EXPECT_EQ(*topic, "alerts/104.0/");

  // No SET: no variables.
  EXPECT_TRUE(Statement::Parse("SELECT * FROM 'a'")->Evaluate("{}", kContext).variables.is_null());

  auto error = [](const std::string& sql) {
    absl::StatusOr<Statement> bad = Statement::Parse(sql);
    EXPECT_FALSE(bad.ok()) << sql;
    return bad.ok() ? std::string() : std::string(bad.status().message());
  };
  EXPECT_THAT(error("SELECT @x AS y FROM 'a'"), HasSubstr("@x is not SET before it is used"));
  EXPECT_THAT(error("SET @a = @b, @b = 1 SELECT @a FROM 'a'"), HasSubstr("@b is not SET"));
  EXPECT_THAT(error("SET @a = 1, @a = 2 SELECT @a FROM 'a'"), HasSubstr("@a is SET twice"));
  EXPECT_THAT(error("SET a = 1 SELECT a FROM 'a'"), HasSubstr("expected @name after SET"));
  EXPECT_THAT(error("SET @a 1 SELECT @a FROM 'a'"), HasSubstr("expected '=' after the variable"));
  EXPECT_THAT(error("SET @a = 1 FROM 'a'"), HasSubstr("expected SELECT"));
}

TEST(IotSql, SqlVersions) {
  EXPECT_EQ(*ParseSqlVersion("2015-10-08"), SqlVersion::k2015_10_08);
  EXPECT_EQ(*ParseSqlVersion(""), SqlVersion::k2016_03_23);
  EXPECT_FALSE(ParseSqlVersion("beta").ok());
  // 2015-10-08 keeps whole-number decimals as decimals, and has no object literals.
  absl::StatusOr<Statement> old = Statement::Parse("SELECT 10.0 AS w FROM 't'",
                                                   SqlVersion::k2015_10_08);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->Evaluate("{}", kContext).output, R"({"w":10.0})");
  EXPECT_FALSE(Statement::Parse("SELECT {'a': 1} AS o FROM 't'", SqlVersion::k2015_10_08).ok());
  EXPECT_THAT(Statement::Parse("SELECT transform('enrichArray', a, b) AS t FROM 't'",
                               SqlVersion::k2015_10_08)
                  .status()
                  .message(),
              HasSubstr("transform() needs SQL version 2016-03-23"));
}

// Shadows and registry answers as the services would give them, and the calls made.
class FakeLookups : public ServiceLookups {
 public:
  absl::StatusOr<json> GetRegistryData(absl::string_view api,
                                       absl::string_view thing) override {
    calls.push_back(absl::StrCat(api, "|", thing));
    if (!answer.ok()) return answer;
    auto it = registry.find(absl::StrCat(api, "|", thing));
    if (it == registry.end()) return absl::NotFoundError("Thing not found");
    return it->second;
  }
  std::map<std::string, json> registry;
  absl::StatusOr<json> GetThingShadow(absl::string_view thing,
                                      absl::string_view shadow) override {
    calls.push_back(absl::StrCat(thing, "|", shadow));
    if (!answer.ok()) return answer;
    auto it = shadows.find(absl::StrCat(thing, "|", shadow));
    if (it == shadows.end()) {
      return absl::NotFoundError(absl::StrCat("No shadow exists with name: '", thing, "'"));
    }
    return it->second;
  }
  std::map<std::string, json> shadows;
  absl::Status answer;  // not OK: every call fails so
  std::vector<std::string> calls;
};

TEST(IotSql, GetThingShadowReadsTheShadowOnce) {
  FakeLookups lookups;
  lookups.shadows["lamp-1|"] = {{"state", {{"reported", {{"alarm", "ON"}, {"level", 3}}}}},
                                {"version", 7}};
  lookups.shadows["lamp-1|config"] = {{"state", {{"desired", {{"threshold", 30}}}}},
                                      {"version", 2}};
  MessageContext context = kContext;
  context.lookups = &lookups;
  // AWS's example: the rule fires only while the thing's shadow reports the alarm on; the
  // classic shadow is asked once though the statement names it twice.
  ASSERT_OK_AND_ASSIGN(
      Statement st,
      Statement::Parse("SELECT *, get_thing_shadow(topic(2), 'arn:aws:iam::123456789012:role/"
                       "AllowsThingShadowAccess').state.reported.level AS level FROM "
                       "'sensors/+/data' WHERE get_thing_shadow(topic(2), 'arn:aws:iam::"
                       "123456789012:role/AllowsThingShadowAccess').state.reported.alarm = "
                       "'ON'"));
  EXPECT_TRUE(st.calls_services());
  Result r = st.Evaluate(R"({"t": 31})", context);
  ASSERT_TRUE(r.selected);
  EXPECT_FALSE(r.failure.has_value());
  EXPECT_EQ(json::parse(r.output), json::parse(R"({"t": 31, "level": 3})"));
  EXPECT_THAT(lookups.calls, ::testing::ElementsAre("lamp-1|"));

  // A named shadow, compared with the payload.
  ASSERT_OK_AND_ASSIGN(st, Statement::Parse("SELECT VALUE t FROM 'sensors/+/data' WHERE t > "
                                            "get_thing_shadow(topic(2), 'config', 'role')"
                                            ".state.desired.threshold"));
  EXPECT_EQ(st.Evaluate(R"({"t": 31})", context).output, "31");
  EXPECT_FALSE(st.Evaluate(R"({"t": 29})", context).selected);

  // No such shadow (or not a thing name): Undefined, not a failure.
  context.topic = "sensors/lamp-2/data";
  r = st.Evaluate(R"({"t": 31})", context);
  EXPECT_FALSE(r.selected);
  EXPECT_FALSE(r.failure.has_value());
  ASSERT_OK_AND_ASSIGN(st, Statement::Parse("SELECT isUndefined(get_thing_shadow(5, 'r')) AS u "
                                            "FROM 'sensors/+/data'"));
  EXPECT_EQ(json::parse(st.Evaluate("{}", context).output), json::parse(R"({"u": true})"));

  // Statements without it say so.
  ASSERT_OK_AND_ASSIGN(st, Statement::Parse("SELECT * FROM 't' WHERE a = 1"));
  EXPECT_FALSE(st.calls_services());
}

TEST(IotSql, AFailedShadowLookupFailsTheEvaluation) {
  FakeLookups lookups;
  lookups.answer = absl::UnavailableError("the shadow service: connection refused");
  MessageContext context = kContext;
  context.lookups = &lookups;
  for (const char* sql :
       {"SELECT * FROM 'sensors/+/data' WHERE get_thing_shadow('lamp-1', 'r').state.x = 1",
        "SELECT get_thing_shadow('lamp-1', 'cfg', 'r') AS s FROM 'sensors/+/data'",
        "SELECT VALUE get_thing_shadow('lamp-1', 'r') FROM 'sensors/+/data'",
        // A WHERE that is false either way still fails: the lookup did not answer.
        "SELECT * FROM 'sensors/+/data' WHERE get_thing_shadow('lamp-1', 'r').x = 1 AND "
        "false"}) {
    SCOPED_TRACE(sql);
    ASSERT_OK_AND_ASSIGN(Statement st, Statement::Parse(sql));
    Result r = st.Evaluate("{}", context);
    EXPECT_FALSE(r.selected);
    EXPECT_EQ(r.output, "");
    ASSERT_TRUE(r.failure.has_value());
    EXPECT_EQ(r.failure->function, "get_thing_shadow");
    EXPECT_THAT(r.failure->resource, ::testing::StartsWith("lamp-1"));
    EXPECT_EQ(r.failure->status.code(), absl::StatusCode::kUnavailable);
  }
  // Without lookups (a context that cannot read shadows) it fails too.
  ASSERT_OK_AND_ASSIGN(Statement st,
                       Statement::Parse("SELECT get_thing_shadow('lamp-1', 'r') AS s FROM 't'"));
  Result r = st.Evaluate("{}", kContext);
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->status.code(), absl::StatusCode::kFailedPrecondition);

  // In a substitution template the failure is the template's error.
  absl::StatusOr<std::string> t = Statement::Substitute(
      "alarms/${get_thing_shadow('lamp-1', 'r').state.reported.room}", "{}", context);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(t.status().message(), HasSubstr("get_thing_shadow(lamp-1): the shadow service"));
  lookups.answer = absl::OkStatus();
  lookups.shadows["lamp-1|"] = {{"state", {{"reported", {{"room", "hall"}}}}}};
  ASSERT_OK_AND_ASSIGN(
      std::string topic,
      Statement::Substitute("alarms/${get_thing_shadow('lamp-1', 'r').state.reported.room}",
                            "{}", context));
  EXPECT_EQ(topic, "alarms/hall");
}

// get_or_default() turns a lookup that got no answer into its default: the rule runs.
TEST(IotSql, GetOrDefaultCatchesAFailedLookup) {
  FakeLookups lookups;
  lookups.answer = absl::UnavailableError("the shadow service: connection refused");
  MessageContext context = kContext;
  context.lookups = &lookups;
  ASSERT_OK_AND_ASSIGN(
      Statement st,
      Statement::Parse("SELECT get_or_default(get_thing_shadow('lamp-1', 'r').state.reported.mode,"
                       " 'auto') AS mode, get_or_default(get_thing_shadow('lamp-2', 'r')) AS s "
                       "FROM 't' WHERE get_or_default(get_thing_shadow('lamp-1', 'r').version, "
                       "0) = 0"));
  EXPECT_TRUE(st.calls_services());
  Result r = st.Evaluate("{}", context);
  EXPECT_FALSE(r.failure.has_value()) << r.failure->NamedStatus();
  ASSERT_TRUE(r.selected);
  EXPECT_EQ(json::parse(r.output), json::parse(R"({"mode": "auto"})"));

  // With an answer, the value; a lookup outside get_or_default still fails the statement.
  lookups.answer = absl::OkStatus();
  lookups.shadows["lamp-1|"] = {{"state", {{"reported", {{"mode", "eco"}}}}}, {"version", 0}};
  r = st.Evaluate("{}", context);
  ASSERT_TRUE(r.selected);
  EXPECT_EQ(json::parse(r.output), json::parse(R"({"mode": "eco"})"));
  lookups.answer = absl::UnavailableError("down");
  ASSERT_OK_AND_ASSIGN(
      st, Statement::Parse("SELECT get_or_default(get_thing_shadow('lamp-1', 'r'), 1) AS a, "
                           "get_thing_shadow('lamp-1', 'r') AS b FROM 't'"));
  r = st.Evaluate("{}", context);
  EXPECT_FALSE(r.selected);
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->function, "get_thing_shadow");
}

// AWS's get_registry_data() example: the threshold comes from the thing's attributes, and
// its groups from ListThingGroupsForThing.
TEST(IotSql, GetRegistryDataReadsTheThingAndItsGroups) {
  FakeLookups lookups;
  lookups.registry["DescribeThing|lamp-1"] = {{"thingName", "lamp-1"},
                                              {"attributes", {{"threshold", "30"}}},
                                              {"version", 2}};
  lookups.registry["ListThingGroupsForThing|lamp-1"] = {
      {"thingGroups", {{{"groupName", "hall"}, {"groupArn", "arn:aws:iot:x:1:thinggroup/hall"}}}}};
  MessageContext context = kContext;
  context.lookups = &lookups;
  ASSERT_OK_AND_ASSIGN(
      Statement st,
      Statement::Parse("SELECT t, get_registry_data('ListThingGroupsForThing', clientid(), "
                       "'role').thingGroups[0].groupName AS grp FROM 'sensors/+/data' WHERE t > "
                       "get_registry_data('DescribeThing', clientid(), 'arn:aws:iam::"
                       "123456789012:role/RegistryRead').attributes.threshold"));
  EXPECT_TRUE(st.calls_services());
  Result r = st.Evaluate(R"({"t": 31})", context);
  ASSERT_TRUE(r.selected);
  EXPECT_EQ(json::parse(r.output), json::parse(R"({"t": 31, "grp": "hall"})"));
  EXPECT_FALSE(st.Evaluate(R"({"t": 29})", context).selected);
  // An unknown thing is Undefined; so is an API chosen at run time that is not one of them.
  context.client_id = "lamp-9";
  r = st.Evaluate(R"({"t": 31})", context);
  EXPECT_FALSE(r.selected);
  EXPECT_FALSE(r.failure.has_value());
  ASSERT_OK_AND_ASSIGN(st, Statement::Parse("SELECT isUndefined(get_registry_data(api, 'lamp-1', "
                                            "'r')) AS u FROM 't'"));
  EXPECT_EQ(json::parse(st.Evaluate(R"({"api": "DeleteThing"})", context).output),
            json::parse(R"({"u": true})"));
  // A registry that does not answer fails the evaluation, naming the thing.
  lookups.answer = absl::DeadlineExceededError("the registry: deadline exceeded");
  ASSERT_OK_AND_ASSIGN(
      st, Statement::Parse("SELECT * FROM 't' WHERE get_registry_data('DescribeThing', "
                           "'lamp-1', 'r').attributes.threshold > 1"));
  r = st.Evaluate("{}", context);
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->function, "get_registry_data");
  EXPECT_EQ(r.failure->resource, "lamp-1");
  EXPECT_EQ(r.failure->status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(IotSql, GetThingShadowIsCheckedAtCreation) {
  EXPECT_THAT(Statement::Parse("SELECT get_registry_data('DeleteThing', 'a', 'r') AS s FROM 't'")
                  .status()
                  .message(),
              HasSubstr("get_registry_data() reads 'DescribeThing' or "
                        "'ListThingGroupsForThing'"));
  EXPECT_THAT(Statement::Parse("SELECT get_registry_data('DescribeThing', 'a') AS s FROM 't'")
                  .status()
                  .message(),
              HasSubstr("get_registry_data() takes 3 arguments, got 2"));
  EXPECT_THAT(Statement::Parse("SELECT get_thing_shadow('a') AS s FROM 't'").status().message(),
              HasSubstr("get_thing_shadow() takes 2 to 3 arguments, got 1"));
  EXPECT_THAT(Statement::Parse("SELECT get_thing_shadow('a', 'r') AS s FROM 't'",
                               SqlVersion::k2015_10_08)
                  .status()
                  .message(),
              HasSubstr("get_thing_shadow() needs SQL version 2016-03-23"));
}

// RFC 1319's test suite (appendix A.5): short, block-sized and multi-block messages.
TEST(Md2, MatchesTheRfc) {
  auto hex = [](absl::string_view m) {
    const std::array<uint8_t, 16> d = Md2(m);
    return absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  };
  EXPECT_EQ(hex(""), "8350e5a3e24c153df2275c9f80692773");
  EXPECT_EQ(hex("a"), "32ec01ec4a6dac72c0ab96fb34c0b5d1");
  EXPECT_EQ(hex("abc"), "da853b0d3f88d99b30283a69e6ded6bb");
  EXPECT_EQ(hex("message digest"), "ab4f496bfb2a530b219ff33031fe06b0");
  EXPECT_EQ(hex("abcdefghijklmnopqrstuvwxyz"), "4e8ddff3650292ab5a4108c3aa47940b");
  EXPECT_EQ(hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "da33def2a42df13975352846c30338cd");
  EXPECT_EQ(hex("1234567890123456789012345678901234567890123456789012345678901234567890123456"
                "7890"),
            "d5976f79d83d3a0dc9806c3c66f3efd8");
}

TEST(JodaTime, FormatsEveryField) {
  const absl::Time t = absl::FromUnixMillis(1520000000123);  // Fri 2018-03-02 14:13:20.123Z
  absl::TimeZone berlin;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  EXPECT_EQ(*FormatJoda("EEE, dd MMM yyyy hh:mm:ss.SSS a Z", t, absl::UTCTimeZone()),
            "Fri, 02 Mar 2018 02:13:20.123 PM +0000");
  EXPECT_EQ(*FormatJoda("EEEE d MMMM yy, D 'day of the year', k:m:s S ZZ ZZZ", t, berlin),
            "Friday 2 March 18, 61 day of the year, 15:13:20 1 +01:00 Europe/Berlin");
  EXPECT_EQ(*FormatJoda("yyyyMMdd'T'HHmmss''", t, absl::UTCTimeZone()), "20180302T141320'");
  EXPECT_FALSE(FormatJoda("yyyy-QQ", t, absl::UTCTimeZone()).ok());
  EXPECT_FALSE(FormatJoda("'open", t, absl::UTCTimeZone()).ok());
}

TEST(JodaTime, ParsesBack) {
  const absl::Time want = absl::FromUnixMillis(1520000000123);
  EXPECT_EQ(*ParseJoda("yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2018-03-02T14:13:20.123+0000",
                       absl::UTCTimeZone()),
            want);
  EXPECT_EQ(*ParseJoda("yyyy-MM-dd'T'HH:mm:ss.SSSZZ", "2018-03-02T15:13:20.123+01:00",
                       absl::UTCTimeZone()),
            want);
  EXPECT_EQ(*ParseJoda("yyyyMMddHHmmssSSS", "20180302141320123", absl::UTCTimeZone()), want);
  EXPECT_EQ(*ParseJoda("EEE, dd MMM yyyy hh:mm:ss.SSS a", "Fri, 02 Mar 2018 02:13:20.123 PM",
                       absl::UTCTimeZone()),
            want);
  EXPECT_EQ(*ParseJoda("yyyy-MM-dd", "1970-01-02", absl::UTCTimeZone()),
            absl::FromUnixSeconds(86400));
  absl::StatusOr<absl::Time> bad = ParseJoda("yyyy-MM-dd", "2018-02-30", absl::UTCTimeZone());
  EXPECT_FALSE(bad.ok());
  bad = ParseJoda("yyyy-MM-dd", "2018-02-03 extra", absl::UTCTimeZone());
  EXPECT_THAT(bad.status().message(), HasSubstr("left over"));
  bad = ParseJoda("yyyy-MM-dd", "March", absl::UTCTimeZone());
  EXPECT_THAT(bad.status().message(), HasSubstr("the year"));
}

}  // namespace
}  // namespace fleetcore::iotsql
