// The shadow document rules, case by case from AWS's documentation (reference §1): request
// validation and its exact messages, merge, delete by null, arrays, delta, metadata,
// versions, the 48-hour continuity and the limits.
#include "services/shadow/shadow_document.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::shadow {
namespace {

using json = nlohmann::json;
constexpr int64_t kNow = 1700000000;

struct BadRequestCase {
  std::string name;
  std::string payload;
  absl::StatusCode code;
  std::string message;
};

class BadRequestTest : public ::testing::TestWithParam<BadRequestCase> {};

TEST_P(BadRequestTest, RefusedWithAwsMessage) {
  absl::StatusOr<UpdateRequest> r = ParseUpdateRequest(GetParam().payload);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), GetParam().code);
  EXPECT_EQ(r.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Aws, BadRequestTest,
    ::testing::Values(
        BadRequestCase{"not_json", "{state", absl::StatusCode::kInvalidArgument, "Invalid JSON"},
        BadRequestCase{"not_an_object", "[1]", absl::StatusCode::kInvalidArgument, "Invalid JSON"},
        BadRequestCase{"no_state", R"({"desired":{}})", absl::StatusCode::kInvalidArgument,
                       "Missing required node: state"},
        BadRequestCase{"state_string", R"({"state":"on"})", absl::StatusCode::kInvalidArgument,
                       "State node must be an object"},
        BadRequestCase{"desired_array", R"({"state":{"desired":[1]}})",
                       absl::StatusCode::kInvalidArgument, "Desired node must be an object"},
        BadRequestCase{"reported_number", R"({"state":{"reported":5}})",
                       absl::StatusCode::kInvalidArgument, "Reported node must be an object"},
        BadRequestCase{"other_node", R"({"state":{"delta":{"a":1}}})",
                       absl::StatusCode::kInvalidArgument, "State contains an invalid node"},
        BadRequestCase{"version_string", R"({"state":{},"version":"3"})",
                       absl::StatusCode::kInvalidArgument, "Invalid version"},
        BadRequestCase{"version_fraction", R"({"state":{},"version":1.5})",
                       absl::StatusCode::kInvalidArgument, "Invalid version"},
        BadRequestCase{"token_number", R"({"state":{},"clientToken":7})",
                       absl::StatusCode::kInvalidArgument, "Invalid clientToken"},
        BadRequestCase{"token_too_long",
                       R"({"state":{},"clientToken":")" + std::string(65, 't') + R"("})",
                       absl::StatusCode::kInvalidArgument, "Invalid clientToken"},
        BadRequestCase{"too_deep",
                       R"({"state":{"desired":{"1":{"2":{"3":{"4":{"5":{"6":{"7":{"8":{"9":1}}}}}}}}}}})",
                       absl::StatusCode::kInvalidArgument,
                       "JSON contains too many levels of nesting; maximum is 6"},
        // 60,000 levels: refused before anything recurses through them.
        BadRequestCase{"deep_array",
                       R"({"state":{"desired":{"a":)" + std::string(60000, '[') +
                           std::string(60000, ']') + "}}}",
                       absl::StatusCode::kInvalidArgument,
                       "JSON contains too many levels of nesting; maximum is 6"},
        BadRequestCase{"null_in_array", R"({"state":{"desired":{"c":[null,"RED"]}}})",
                       absl::StatusCode::kInvalidArgument, "Invalid JSON"},
        BadRequestCase{"not_utf8", "{\"state\":{\"desired\":{\"c\":\"\xff\"}}}",
                       absl::StatusCode::kFailedPrecondition,
                       "Unsupported documented encoding; supported encoding is UTF-8"},
        BadRequestCase{"too_large", std::string(128 * 1024 + 1, ' '),
                       absl::StatusCode::kResourceExhausted,
                       "The payload exceeds the maximum size allowed"}),
    [](const ::testing::TestParamInfo<BadRequestCase>& info) { return info.param.name; });

TEST(ShadowDocument, EightLevelsAreAccepted) {
  // AWS's error text says 6, its quota page 8; fleetcore accepts up to 8 (desired itself
  // is level 1) as advised, and refuses deeper with the error text.
  EXPECT_TRUE(ParseUpdateRequest(
                  R"({"state":{"desired":{"1":{"2":{"3":{"4":{"5":{"6":{"7":{"8":1}}}}}}}}}})")
                  .ok());
}

// Applies updates in turn and returns the last result.
UpdateResult Apply(StoredShadow& s, const std::string& payload, int64_t now = kNow) {
  absl::StatusOr<UpdateRequest> req = ParseUpdateRequest(payload);
  EXPECT_TRUE(req.ok()) << req.status();
  absl::StatusOr<UpdateResult> r = ApplyUpdate(s, *req, now);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : UpdateResult{};
}

TEST(ShadowDocument, FirstUpdateCreatesVersionOne) {
  StoredShadow s;
  UpdateResult r =
      Apply(s, R"({"state":{"desired":{"color":"red"}},"clientToken":"abc-123"})");
  EXPECT_TRUE(s.exists);
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(r.accepted, json::parse(R"({
      "state": {"desired": {"color": "red"}},
      "metadata": {"desired": {"color": {"timestamp": 1700000000}}},
      "timestamp": 1700000000, "clientToken": "abc-123", "version": 1})"));
  // Nothing reported yet: the whole desired state is the delta.
  ASSERT_TRUE(r.delta.has_value());
  EXPECT_EQ(*r.delta, json::parse(R"({
      "state": {"color": "red"}, "metadata": {"color": {"timestamp": 1700000000}},
      "timestamp": 1700000000, "clientToken": "abc-123", "version": 1})"));
  EXPECT_FALSE(r.documents.contains("previous"));
  EXPECT_EQ(r.documents["current"]["version"], 1);
}

TEST(ShadowDocument, PartialUpdatesDeepMergeAndKeepTheRest) {
  StoredShadow s;
  Apply(s, R"({"state":{"reported":{"lights":{"color":{"r":255,"g":0,"b":0}},"power":"on"}}})");
  Apply(s, R"({"state":{"reported":{"lights":{"color":{"g":255}}}}})", kNow + 10);
  EXPECT_EQ(s.state, json::parse(R"({"reported":{"lights":{"color":{"r":255,"g":255,"b":0}},
                                                  "power":"on"}})"));
  // Metadata mirrors the tree; only the touched leaf has the new time.
  EXPECT_EQ(s.metadata["reported"]["lights"]["color"]["g"]["timestamp"], kNow + 10);
  EXPECT_EQ(s.metadata["reported"]["lights"]["color"]["r"]["timestamp"], kNow);
  EXPECT_EQ(s.metadata["reported"]["power"]["timestamp"], kNow);
  EXPECT_EQ(s.version, 2);
}

TEST(ShadowDocument, NullDeletesKeysAndSections) {
  StoredShadow s;
  Apply(s, R"({"state":{"desired":{"a":1,"b":{"c":2,"d":3}},"reported":{"a":1}}})");
  Apply(s, R"({"state":{"desired":{"b":{"c":null}}}})");
  EXPECT_EQ(s.state["desired"], json::parse(R"({"a":1,"b":{"d":3}})"));
  EXPECT_FALSE(s.metadata["desired"]["b"].contains("c"));
  // An object emptied by deletions goes, and so does a section.
  Apply(s, R"({"state":{"desired":{"b":{"d":null}}}})");
  EXPECT_EQ(s.state["desired"], json::parse(R"({"a":1})"));
  UpdateResult r = Apply(s, R"({"state":{"desired":null}})");
  EXPECT_EQ(s.state, json::parse(R"({"reported":{"a":1}})"));
  EXPECT_EQ(r.accepted["state"], json::parse(R"({"desired":null})"));
  EXPECT_FALSE(r.delta.has_value());
  // An empty document is still a shadow, and versions keep counting.
  Apply(s, R"({"state":{"reported":null}})");
  EXPECT_TRUE(s.exists);
  EXPECT_EQ(s.state, json::object());
  EXPECT_EQ(s.version, 5);
  // A null state clears both sections too.
  Apply(s, R"({"state":{"desired":{"x":1}}})");
  Apply(s, R"({"state":null})");
  EXPECT_EQ(s.state, json::object());
}

TEST(ShadowDocument, ArraysAreReplacedWhole) {
  StoredShadow s;
  Apply(s, R"({"state":{"desired":{"colors":["RED","GREEN","BLUE"]}}})");
  Apply(s, R"({"state":{"desired":{"colors":["RED"]}}})");
  EXPECT_EQ(s.state["desired"]["colors"], json::parse(R"(["RED"])"));
  // An array is a leaf: one timestamp, not one per element.
  EXPECT_EQ(s.metadata["desired"]["colors"], json::parse(R"({"timestamp":1700000000})"));
}

TEST(ShadowDocument, DeltaHasEveryDifferingDesiredKeyWithItsPath) {
  EXPECT_EQ(Delta(json::parse(R"({"lights":{"color":{"r":255,"g":255}},"power":"on","x":[1,2]})"),
                  json::parse(R"({"lights":{"color":{"r":255,"g":0}},"power":"on","x":[1],
                                  "only_reported":1})")),
            json::parse(R"({"lights":{"color":{"g":255}},"x":[1,2]})"));
  // Numbers compare by value; equal states have no delta.
  EXPECT_TRUE(Delta(json::parse(R"({"t":1,"u":{"v":2.0}})"),
                    json::parse(R"({"t":1.0,"u":{"v":2}})"))
                  .is_null());
  EXPECT_EQ(Delta(json::parse(R"({"a":{"b":1}})"), json::parse(R"({"a":5})")),
            json::parse(R"({"a":{"b":1}})"));
  EXPECT_EQ(Delta(json::parse(R"({"a":1})"), json()), json::parse(R"({"a":1})"));
}

TEST(ShadowDocument, ReportingTheDesiredStateEndsTheDelta) {
  StoredShadow s;
  Apply(s, R"({"state":{"desired":{"color":"red","power":"on"}}})");
  UpdateResult r = Apply(s, R"({"state":{"reported":{"color":"red"}}})", kNow + 5);
  ASSERT_TRUE(r.delta.has_value());
  // The delta lists all differing keys, not only the request's, with desired's metadata.
  EXPECT_EQ(r.delta->at("state"), json::parse(R"({"power":"on"})"));
  EXPECT_EQ(r.delta->at("metadata"), json::parse(R"({"power":{"timestamp":1700000000}})"));
  r = Apply(s, R"({"state":{"reported":{"power":"on"}}})", kNow + 6);
  EXPECT_FALSE(r.delta.has_value());
  // A key deleted from reported but still desired comes back in the delta.
  r = Apply(s, R"({"state":{"reported":{"power":null}}})", kNow + 7);
  ASSERT_TRUE(r.delta.has_value());
  EXPECT_EQ(r.delta->at("state"), json::parse(R"({"power":"on"})"));
}

TEST(ShadowDocument, GetShowsStateDeltaAndMetadata) {
  StoredShadow s;
  Apply(s, R"({"state":{"desired":{"color":"red"},"reported":{"color":"green"}}})");
  json doc = GetDocument(s, kNow + 60, std::string("tok"));
  EXPECT_EQ(doc, json::parse(R"({
      "state": {"desired": {"color": "red"}, "reported": {"color": "green"},
                "delta": {"color": "red"}},
      "metadata": {"desired": {"color": {"timestamp": 1700000000}},
                   "reported": {"color": {"timestamp": 1700000000}},
                   "delta": {"color": {"timestamp": 1700000000}}},
      "version": 1, "timestamp": 1700000060, "clientToken": "tok"})"));
}

TEST(ShadowDocument, DocumentsCarryPreviousAndCurrent) {
  StoredShadow s;
  Apply(s, R"({"state":{"reported":{"t":20}}})");
  UpdateResult r = Apply(s, R"({"state":{"reported":{"t":21}},"clientToken":"c"})", kNow + 1);
  EXPECT_EQ(r.documents["previous"]["state"], json::parse(R"({"reported":{"t":20}})"));
  EXPECT_EQ(r.documents["previous"]["version"], 1);
  EXPECT_EQ(r.documents["current"]["state"], json::parse(R"({"reported":{"t":21}})"));
  EXPECT_EQ(r.documents["current"]["version"], 2);
  EXPECT_EQ(r.documents["timestamp"], kNow + 1);
  EXPECT_EQ(r.documents["clientToken"], "c");
}

TEST(ShadowDocument, VersionMustMatchWhenGiven) {
  StoredShadow s;
  Apply(s, R"({"state":{"reported":{"t":20}}})");
  Apply(s, R"({"state":{"reported":{"t":21}},"version":1})");
  EXPECT_EQ(s.version, 2);
  absl::StatusOr<UpdateRequest> stale = ParseUpdateRequest(R"({"state":{},"version":1})");
  ASSERT_TRUE(stale.ok());
  StoredShadow before = s;
  absl::StatusOr<UpdateResult> r = ApplyUpdate(s, *stale, kNow);
  EXPECT_EQ(r.status(), absl::AbortedError("Version conflict"));
  EXPECT_EQ(HttpStatus(r.status()), 409);
  EXPECT_EQ(s.version, before.version);
  EXPECT_EQ(s.state, before.state);
}

TEST(ShadowDocument, StateOverEightKilobytesIsRefusedAndNothingChanges) {
  StoredShadow s;
  Apply(s, R"({"state":{"reported":{"a":"x"}}})");
  const std::string big =
      R"({"state":{"desired":{"blob":")" + std::string(8 * 1024, 'x') + R"("}}})";
  absl::StatusOr<UpdateRequest> req = ParseUpdateRequest(big);
  ASSERT_TRUE(req.ok());
  absl::StatusOr<UpdateResult> r = ApplyUpdate(s, *req, kNow);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(HttpStatus(r.status()), 413);
  EXPECT_EQ(s.version, 1);
  EXPECT_FALSE(s.state.contains("desired"));
}

TEST(ShadowDocument, DeleteKeepsTheVersionFor48Hours) {
  StoredShadow s;
  Apply(s, R"({"state":{"reported":{"t":1}}})");
  Apply(s, R"({"state":{"reported":{"t":2}}})");
  json answer = ApplyDelete(s, kNow + 10, std::nullopt);
  EXPECT_EQ(answer, json::parse(R"({"version":2,"timestamp":1700000010})"));
  EXPECT_FALSE(s.exists);
  // Re-created within 48 hours: the numbering continues.
  StoredShadow again = s;
  Apply(again, R"({"state":{"reported":{"t":3}}})", kNow + 3600);
  EXPECT_EQ(again.version, 3);
  EXPECT_EQ(again.state, json::parse(R"({"reported":{"t":3}})"));
  // Later than that: it starts again.
  StoredShadow later = s;
  Apply(later, R"({"state":{"reported":{"t":3}}})", kNow + 10 + 48 * 3600 + 1);
  EXPECT_EQ(later.version, 1);
}

TEST(ShadowDocument, ErrorDocumentsAndNames) {
  EXPECT_EQ(ErrorDocument(absl::AbortedError("Version conflict"), kNow, std::string("abc")),
            json::parse(R"({"code":409,"message":"Version conflict","timestamp":1700000000,
                            "clientToken":"abc"})"));
  EXPECT_EQ(ErrorDocument(absl::InternalError("db exploded"), kNow, std::nullopt)["message"],
            "Internal service failure");
  EXPECT_EQ(ErrorDocument(absl::UnavailableError("database unavailable: connection to server "
                                                 "at \"10.0.0.7\", port 5432 failed"),
                          kNow, std::nullopt),
            json::parse(R"({"code":503,"message":"Service Unavailable","timestamp":1700000000})"));
  EXPECT_EQ(ErrorDocument(absl::DeadlineExceededError("Deadline Exceeded"), kNow, std::nullopt),
            json::parse(R"({"code":503,"message":"Service Unavailable","timestamp":1700000000})"));
  EXPECT_EQ(NoShadow("lamp-1", "").message(), "No shadow exists with name: 'lamp-1'");
  EXPECT_EQ(NoShadow("lamp-1", "simShadow1").message(),
            "No shadow exists with name: 'simShadow1'");
  EXPECT_TRUE(ValidateNames("lamp-1", "").ok());
  EXPECT_TRUE(ValidateNames("lamp:1_a-b", "$package").ok());
  EXPECT_FALSE(ValidateNames("lamp/1", "").ok());
  EXPECT_FALSE(ValidateNames("", "").ok());
  EXPECT_FALSE(ValidateNames(std::string(129, 'a'), "").ok());
  EXPECT_FALSE(ValidateNames("lamp", std::string(65, 'a')).ok());
  EXPECT_EQ(TopicPrefix("lamp-1", ""), "$aws/things/lamp-1/shadow");
  EXPECT_EQ(TopicPrefix("lamp-1", "cfg"), "$aws/things/lamp-1/shadow/name/cfg");
}

TEST(ShadowDocument, ClientTokenOfGetAndDeletePayloads) {
  EXPECT_EQ(*ParseClientToken(""), std::nullopt);
  EXPECT_EQ(*ParseClientToken("not json"), std::nullopt);
  EXPECT_EQ(*ParseClientToken(R"({"clientToken":"t1"})"), std::optional<std::string>("t1"));
  EXPECT_FALSE(ParseClientToken(R"({"clientToken":7})").ok());
}

}  // namespace
}  // namespace fleetcore::shadow
