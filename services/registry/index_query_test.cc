#include "services/registry/index_query.h"

#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::registry {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

const IndexDocument kLamp = {
    {"thingName", {"Lamp-12"}},    {"thingId", {"0f3c"}},
    {"thingTypeName", {"lamp"}},   {"thingGroupNames", {"berlin", "floor-2"}},
    {"attributes.floor", {"2"}},   {"attributes.serial", {"abce"}},
    {"attributes.model", {"x-10"}}};

bool Matches(const std::string& query, const IndexDocument& doc = kLamp) {
  absl::StatusOr<IndexQuery> q = ParseIndexQuery(query, ThingIndexSchema());
  EXPECT_TRUE(q.ok()) << query << ": " << q.status();
  return q.ok() && MatchesIndexQuery(*q, doc);
}

TEST(IndexQueryTest, TermsMatchIgnoringCase) {
  EXPECT_TRUE(Matches("thingName:lamp-12"));
  EXPECT_TRUE(Matches("thingName:LAMP-12"));
  EXPECT_FALSE(Matches("thingName:lamp-1"));
  EXPECT_TRUE(Matches("thingTypeName:lamp"));
  EXPECT_TRUE(Matches("thingGroupNames:floor-2"));
  EXPECT_TRUE(Matches("attributes.serial:abce"));
  EXPECT_FALSE(Matches("attributes.serial:abc"));
  EXPECT_FALSE(Matches("attributes.missing:abce"));
  EXPECT_TRUE(Matches("\"x-10\""));  // a phrase, in any field
  EXPECT_TRUE(Matches("berlin"));    // no field: any field
  EXPECT_FALSE(Matches("paris"));
}

TEST(IndexQueryTest, Wildcards) {
  EXPECT_TRUE(Matches("thingName:lamp*"));
  EXPECT_TRUE(Matches("thingName:lamp-1?"));
  EXPECT_FALSE(Matches("thingName:lamp-1??"));
  EXPECT_TRUE(Matches("attributes.model:x*0"));
  EXPECT_TRUE(Matches("thingName:*12"));  // one leading wildcard is allowed
  EXPECT_TRUE(Matches("*"));
  EXPECT_TRUE(Matches("attributes.floor:*"));  // the attribute exists
  EXPECT_FALSE(Matches("attributes.missing:*"));
  // An escaped wildcard is a literal character; LIKE's own characters are literals too.
  EXPECT_FALSE(Matches("thingName:lamp\\*"));
  EXPECT_FALSE(Matches("thingName:lamp%"));
  EXPECT_TRUE(Matches("thingName:a_b", {{"thingName", {"a_b"}}}));
  EXPECT_FALSE(Matches("thingName:a_b", {{"thingName", {"axb"}}}));
}

TEST(IndexQueryTest, RangesAndComparisons) {
  EXPECT_TRUE(Matches("attributes.floor:[2 TO 5]"));
  EXPECT_FALSE(Matches("attributes.floor:{2 TO 5]"));
  EXPECT_TRUE(Matches("attributes.floor:[1 TO 2]"));
  EXPECT_FALSE(Matches("attributes.floor:[1 TO 2}"));
  EXPECT_TRUE(Matches("attributes.floor:[* TO 10]"));
  EXPECT_TRUE(Matches("attributes.floor<10"));  // numerically, not as text ("10" < "2")
  EXPECT_FALSE(Matches("attributes.floor<2"));
  EXPECT_TRUE(Matches("attributes.floor<=2"));
  EXPECT_TRUE(Matches("attributes.floor>-1.5"));
  EXPECT_FALSE(Matches("attributes.model>1"));  // not a number: no numeric match
  EXPECT_TRUE(Matches("attributes.serial:[\"abcd\" TO \"abcf\"]"));
  EXPECT_TRUE(Matches("attributes.serial:[abcd TO abcf]"));
  EXPECT_FALSE(Matches("attributes.serial:[abcf TO abcz]"));
}

TEST(IndexQueryTest, BooleanOperatorsAndGrouping) {
  EXPECT_TRUE(Matches("thingTypeName:lamp attributes.floor:2"));  // AND by default
  EXPECT_FALSE(Matches("thingTypeName:lamp attributes.floor:3"));
  EXPECT_TRUE(Matches("thingTypeName:fan OR attributes.floor:2"));
  EXPECT_FALSE(Matches("NOT thingTypeName:lamp"));
  EXPECT_TRUE(Matches("NOT attributes.missing:x"));  // no such attribute: not excluded
  EXPECT_TRUE(Matches("thingName:(lamp* AND -lamp-1)"));
  EXPECT_FALSE(Matches("thingName:(lamp* AND -lamp-12)"));
  EXPECT_TRUE(Matches("thingName:(fan OR lamp-12)"));
  EXPECT_TRUE(Matches("(thingTypeName:fan OR thingTypeName:lamp) AND NOT thingName:x"));
  // AWS's example: AND, then a NOT that binds to the next term.
  EXPECT_TRUE(Matches("attributes.serial:abce AND attributes.floor<5 NOT attributes.floor>10"));
  EXPECT_FALSE(Matches("attributes.serial:abce AND attributes.floor<5 NOT attributes.floor>1"));
  // A minus inside a value is part of it; a lowercase "and" is a term.
  EXPECT_TRUE(Matches("attributes.model:x-10"));
  EXPECT_FALSE(Matches("thingName:lamp-12 and"));
}

TEST(IndexQueryTest, RefusesMalformedQueriesSayingWhere) {
  const IndexSchema& s = ThingIndexSchema();
  EXPECT_THAT(ParseIndexQuery("", s), StatusIs(kInvalid, HasSubstr("empty")));
  EXPECT_THAT(ParseIndexQuery("thingName:(a OR b", s),
              StatusIs(kInvalid, HasSubstr("expected ) to close the ( at character 11")));
  EXPECT_THAT(ParseIndexQuery("attributes.a:[1 TO 5", s),
              StatusIs(kInvalid, HasSubstr("expected ] or } to close the range")));
  EXPECT_THAT(ParseIndexQuery("attributes.a:[1 5]", s),
              StatusIs(kInvalid, HasSubstr("expected TO in the range")));
  EXPECT_THAT(ParseIndexQuery("thingName:\"abc", s),
              StatusIs(kInvalid, HasSubstr("the phrase is not closed")));
  EXPECT_THAT(ParseIndexQuery("thingName:", s),
              StatusIs(kInvalid, HasSubstr("expected a term, found end of the query")));
  EXPECT_THAT(ParseIndexQuery("a AND", s), StatusIs(kInvalid));
  EXPECT_THAT(ParseIndexQuery("a )", s), StatusIs(kInvalid, HasSubstr("unexpected \")\"")));
  EXPECT_THAT(ParseIndexQuery("colour:red", s),
              StatusIs(kInvalid, HasSubstr("index AWS_Things has no field colour")));
  EXPECT_THAT(ParseIndexQuery("shadow.reported.temp>20", s),
              StatusIs(kInvalid, HasSubstr("fleetcore indexes the registry's data")));
  EXPECT_THAT(ParseIndexQuery("connectivity.connected:true", s), StatusIs(kInvalid));
  EXPECT_THAT(ParseIndexQuery("[1 TO 2]", s), StatusIs(kInvalid, HasSubstr("needs a field")));
  EXPECT_THAT(ParseIndexQuery("attributes.a:[1* TO 2]", s),
              StatusIs(kInvalid, HasSubstr("cannot have wildcards")));
  EXPECT_THAT(ParseIndexQuery("thingName:(attributes.a:b)", s),
              StatusIs(kInvalid, HasSubstr("inside the grouping of field thingName")));
}

TEST(IndexQueryTest, AwsLimits) {
  const IndexSchema& s = ThingIndexSchema();
  std::string twelve = "a";
  for (int i = 1; i < 12; ++i) twelve += " OR a";
  EXPECT_TRUE(ParseIndexQuery(twelve, s).ok());
  EXPECT_THAT(ParseIndexQuery(twelve + " OR a", s),
              StatusIs(kInvalid, HasSubstr("13 terms; at most 12")));
  EXPECT_THAT(ParseIndexQuery("thingName:*my AND thingGroupNames:*echo", s),
              StatusIs(kInvalid, HasSubstr("only one term")));
  EXPECT_THAT(ParseIndexQuery("thingName:*my AND attributes.a:" + std::string(90, 'x'), s),
              StatusIs(kInvalid, HasSubstr("at most 100 characters")));
}

TEST(IndexQueryTest, NestingIsCapped) {
  const IndexSchema& s = ThingIndexSchema();
  auto nested = [](int depth) { return std::string(depth, '(') + "a" + std::string(depth, ')'); };
  EXPECT_TRUE(ParseIndexQuery(nested(kMaxQueryNesting), s).ok());
  EXPECT_THAT(ParseIndexQuery(nested(kMaxQueryNesting + 1), s),
              StatusIs(kInvalid, HasSubstr("nested more than 16 deep")));
  std::string nots;
  for (int i = 0; i <= kMaxQueryNesting; ++i) nots += "NOT ";
  EXPECT_THAT(ParseIndexQuery(nots + "a", s), StatusIs(kInvalid, HasSubstr("nested")));
  // Far deeper than any stack would take, refused at once.
  EXPECT_THAT(ParseIndexQuery(std::string(1000000, '('), s), StatusIs(kInvalid));
}

TEST(IndexQueryTest, ThingGroupIndexHasItsOwnFields) {
  const IndexDocument group = {{"thingGroupName", {"floor-2"}},
                               {"thingGroupDescription", {"Second", "floor"}},
                               {"parentGroupNames", {"europe", "berlin"}}};
  auto matches = [&](const std::string& q) {
    absl::StatusOr<IndexQuery> parsed = ParseIndexQuery(q, ThingGroupIndexSchema());
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() && MatchesIndexQuery(*parsed, group);
  };
  EXPECT_TRUE(matches("parentGroupNames:europe"));
  EXPECT_TRUE(matches("thingGroupDescription:second"));
  EXPECT_FALSE(matches("thingGroupName:floor-3"));
  EXPECT_THAT(ParseIndexQuery("thingName:x", ThingGroupIndexSchema()),
              StatusIs(kInvalid, HasSubstr("AWS_ThingGroups has no field thingName")));
}

TEST(IndexQueryTest, SqlUsesParametersForEveryValue) {
  absl::StatusOr<IndexQuery> q =
      ParseIndexQuery("thingName:lamp* AND NOT attributes.floor:[1 TO 3} 'x'", ThingIndexSchema());
  ASSERT_TRUE(q.ok()) << q.status();
  SqlParams params(3);
  const std::string sql = IndexQueryToSql(
      *q,
      [](absl::string_view field, SqlParams& p) -> std::vector<SqlFieldSource> {
        if (field.empty()) return {{.value = "v"}};
        return {{.value = absl::StrCat("f(", p.Add(std::string(field)), ")")}};
      },
      params);
  EXPECT_THAT(sql, ::testing::Not(HasSubstr("lamp")));
  EXPECT_THAT(sql, ::testing::Not(HasSubstr("'x'")));
  EXPECT_THAT(sql, HasSubstr("(NOT "));
  EXPECT_THAT(sql, HasSubstr("END) >= $6::numeric"));
  EXPECT_THAT(params.values(),
              ::testing::ElementsAre("thingName", "lamp%", "attributes.floor", "1", "3", "'x'"));
}

}  // namespace
}  // namespace fleetcore::registry
