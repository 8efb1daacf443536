#include "tools/fleetctl/output.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::fleetctl {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

const json kCertificates = json::parse(R"({
  "certificates": [
    {"certificateId": "c1", "status": "ACTIVE"},
    {"certificateId": "c2", "status": "INACTIVE", "extra": {"room": "hall"}}
  ],
  "nested": [[1, 2], [3]],
  "x-y": "dash"
})");

json Query(const json& doc, const char* q) {
  absl::StatusOr<json> r = ApplyQuery(doc, q);
  EXPECT_TRUE(r.ok()) << q << ": " << r.status();
  return r.ok() ? *r : json("error");
}

// The forms `aws iot` scripts use.
TEST(QueryTest, FieldsIndexesAndProjections) {
  EXPECT_EQ(Query(json{{"endpointAddress", "iot.example"}}, "endpointAddress"), "iot.example");
  EXPECT_EQ(Query(kCertificates, "certificates[0].certificateId"), "c1");
  EXPECT_EQ(Query(kCertificates, "certificates[-1].status"), "INACTIVE");
  EXPECT_EQ(Query(kCertificates, "certificates[].certificateId"), json({"c1", "c2"}));
  EXPECT_EQ(Query(kCertificates, "certificates[*].status"), json({"ACTIVE", "INACTIVE"}));
  // What a projection's element lacks is left out; what the document lacks is null.
  EXPECT_EQ(Query(kCertificates, "certificates[].extra.room"), json({"hall"}));
  EXPECT_EQ(Query(kCertificates, "nothere"), json(nullptr));
  EXPECT_EQ(Query(kCertificates, "certificates[5]"), json(nullptr));
  // [] flattens one level, [*] does not.
  EXPECT_EQ(Query(kCertificates, "nested[]"), json({1, 2, 3}));
  EXPECT_EQ(Query(kCertificates, "nested[*]"), json::parse("[[1, 2], [3]]"));
  EXPECT_EQ(Query(kCertificates, "\"x-y\""), "dash");
}

// Multiselect lists and hashes, as in `aws iot list-things --query
// 'things[].[thingName, version]' --output text`.
TEST(QueryTest, MultiselectListsAndHashes) {
  const json things = json::parse(R"({"things": [
      {"thingName": "t1", "version": 1, "attributes": {"room": "hall"}},
      {"thingName": "t2", "version": 3}]})");
  EXPECT_EQ(Query(things, "things[].[thingName, version]"),
            json::parse(R"([["t1", 1], ["t2", 3]])"));
  EXPECT_EQ(Query(things, "things[*].{name: thingName, room: attributes.room}"),
            json::parse(R"([{"name": "t1", "room": "hall"}, {"name": "t2", "room": null}])"));
  EXPECT_EQ(Query(things, "[things[0].thingName, things[-1].version]"),
            json::parse(R"(["t1", 3])"));
  EXPECT_EQ(TextOutput(Query(things, "things[].[thingName, version]")), "t1\t1\nt2\t3\n");
}

TEST(QueryTest, RefusesWhatItDoesNotTake) {
  for (const char* q : {"", "a.", "a | b", "a[?x == `1`]", "a[b, c]", "a[", "\"a", "{a b}",
                        "[a, b", "a.{x: b"}) {
    absl::StatusOr<json> r = ApplyQuery(kCertificates, q);
    ASSERT_FALSE(r.ok()) << q;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("--query"));
  }
}

// The AWS CLI's text layout.
TEST(TextOutputTest, AsTheAwsCliPrintsIt) {
  EXPECT_EQ(TextOutput("iot.example"), "iot.example\n");
  EXPECT_EQ(TextOutput(true), "True\n");
  EXPECT_EQ(TextOutput(nullptr), "None\n");
  EXPECT_EQ(TextOutput(json({"c1", "c2"})), "c1\tc2\n");
  EXPECT_EQ(TextOutput(json::array()), "");
  // An object: its scalars in key order, then each list under its upper-cased name, the
  // objects of a list in the columns of all their scalar keys.
  EXPECT_EQ(TextOutput(json::parse(R"({"b": 1, "a": "x", "things": [
                {"thingName": "t1", "version": 1}, {"thingName": "t2"}]})")),
            "x\t1\nTHINGS\tt1\t1\nTHINGS\tt2\t\n");
  EXPECT_EQ(TextOutput(json::parse(R"({"ids": ["a", "b"]})")), "IDS\ta\nIDS\tb\n");
  EXPECT_EQ(TextOutput(kCertificates),
            "dash\nCERTIFICATES\tc1\tACTIVE\nCERTIFICATES\tc2\tINACTIVE\nEXTRA\thall\n"
            "NESTED\t1\nNESTED\t2\nNESTED\t3\n");
}

}  // namespace
}  // namespace fleetcore::fleetctl
