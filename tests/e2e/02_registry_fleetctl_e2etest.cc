// The registry binary driven the way operators drive it: fleetctl (verbs and flags of
// `aws iot`) and a plain gRPC client, through every error path of the issue.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_database.h"
#include "fleetcore/registry/v1/registry.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/e2e_util.h"

namespace fleetcore::e2e {
namespace {

using ::testing::HasSubstr;
namespace pb = ::fleetcore::registry::v1;

constexpr char kToken[] = "e2e-admin-token";

class RegistryFleetctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    ASSERT_OK_AND_ASSIGN(registry_,
                         StartService("services/registry/fleetcore-registry",
                                      {"--db-url=" + db_->url(), "--thing-type-delete-delay=0s"},
                                      {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  }

  testing::RunResult Ctl(std::vector<std::string> args) { return ctl().Run(std::move(args)); }
  nlohmann::json CtlJson(std::vector<std::string> args) { return ctl().Json(std::move(args)); }
  void ExpectFailure(std::vector<std::string> args, const std::string& code,
                     const std::string& message) {
    ctl().ExpectFailure(std::move(args), code, message);
  }
  Fleetctl ctl() const {
    return Fleetctl(kToken, {{"FLEETCORE_REGISTRY_ENDPOINT", registry_.endpoint}});
  }

  std::unique_ptr<testing::TestDatabase> db_;
  RunningService registry_;
};

TEST_F(RegistryFleetctlTest, ThingLifecycleLikeTheAwsCli) {
  auto created = CtlJson({"create-thing", "--thing-name", "lamp-1", "--attribute-payload",
                          R"({"attributes":{"site":"berlin"}})"});
  EXPECT_EQ(created["thingName"], "lamp-1");
  EXPECT_EQ(created["thingArn"], "arn:aws:iot:us-east-1:000000000000:thing/lamp-1");
  auto described = CtlJson({"describe-thing", "--thing-name", "lamp-1"});
  EXPECT_EQ(described["version"], 1);
  EXPECT_EQ(described["attributes"]["site"], "berlin");
  EXPECT_EQ(described["thingId"], created["thingId"]);

  CtlJson({"update-thing", "--thing-name", "lamp-1", "--expected-version", "1",
           "--attribute-payload", R"({"attributes":{"floor":"2"},"merge":true})"});
  described = CtlJson({"describe-thing", "--thing-name", "lamp-1"});
  EXPECT_EQ(described["version"], 2);
  EXPECT_EQ(described["attributes"].size(), 2u);

  CtlJson({"delete-thing", "--thing-name", "lamp-1"});
  ExpectFailure({"describe-thing", "--thing-name", "lamp-1"}, "NOT_FOUND", "does not exist");
}

TEST_F(RegistryFleetctlTest, EveryErrorPathHasItsCode) {
  ExpectFailure({"create-thing", "--thing-name", "bad name"}, "INVALID_ARGUMENT",
                "must be 1-128 characters");
  CtlJson({"create-thing", "--thing-name", "dup", "--attribute-payload",
           R"({"attributes":{"a":"1"}})"});
  ExpectFailure(
      {"create-thing", "--thing-name", "dup", "--attribute-payload", R"({"attributes":{"a":"2"}})"},
      "ALREADY_EXISTS", "already exists");
  ExpectFailure({"update-thing", "--thing-name", "dup", "--expected-version", "9"}, "ABORTED",
                "not the expected 9");

  CtlJson({"create-thing-group", "--thing-group-name", "parent"});
  CtlJson({"create-thing-group", "--thing-group-name", "child", "--parent-group-name", "parent"});
  ExpectFailure({"delete-thing-group", "--thing-group-name", "parent"}, "FAILED_PRECONDITION",
                "child group");

  CtlJson({"create-thing-type", "--thing-type-name", "old"});
  CtlJson({"deprecate-thing-type", "--thing-type-name", "old"});
  ExpectFailure({"create-thing", "--thing-name", "new", "--thing-type-name", "old"},
                "FAILED_PRECONDITION", "deprecated");
  CtlJson({"deprecate-thing-type", "--thing-type-name", "old", "--undo-deprecate"});
  CtlJson({"create-thing", "--thing-name", "new", "--thing-type-name", "old"});

  // Usage errors are exit status 2 and never reach the service.
  testing::RunResult usage = Ctl({"create-thing", "--thing-nam", "x"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("unknown option --thing-nam"));
}

TEST_F(RegistryFleetctlTest, GroupsHierarchyAndPrincipals) {
  CtlJson({"create-thing-group", "--thing-group-name", "site"});
  CtlJson({"create-thing-group", "--thing-group-name", "floor", "--parent-group-name", "site"});
  CtlJson({"create-thing", "--thing-name", "t"});
  CtlJson({"add-thing-to-thing-group", "--thing-group-name", "floor", "--thing-name", "t"});
  ExpectFailure({"add-thing-to-thing-group", "--thing-group-name", "site", "--thing-name", "t"},
                "FAILED_PRECONDITION", "same hierarchy");
  auto things =
      CtlJson({"list-things-in-thing-group", "--thing-group-name", "site", "--recursive"});
  EXPECT_EQ(things["things"], nlohmann::json::array({"t"}));
  auto group = CtlJson({"describe-thing-group", "--thing-group-name", "floor"});
  EXPECT_EQ(group["thingGroupMetadata"]["rootToParentThingGroups"][0]["groupName"], "site");
  // Moved to another floor of the site in one call.
  CtlJson({"create-thing-group", "--thing-group-name", "floor-b", "--parent-group-name", "site"});
  CtlJson({"update-thing-groups-for-thing", "--thing-name", "t", "--thing-groups-to-add",
           R"(["floor-b"])", "--thing-groups-to-remove", R"(["floor"])"});
  auto groups = CtlJson({"list-thing-groups-for-thing", "--thing-name", "t"});
  ASSERT_EQ(groups["thingGroups"].size(), 1u) << groups.dump();
  EXPECT_EQ(groups["thingGroups"][0]["groupName"], "floor-b");

  const std::string cert = "arn:aws:iot:us-east-1:000000000000:cert/" + std::string(64, 'a');
  CtlJson({"attach-thing-principal", "--thing-name", "t", "--principal", cert});
  EXPECT_EQ(CtlJson({"list-principal-things", "--principal", cert})["things"],
            nlohmann::json::array({"t"}));
  ExpectFailure({"delete-thing", "--thing-name", "t"}, "FAILED_PRECONDITION", "detach them");
  CtlJson({"detach-thing-principal", "--thing-name", "t", "--principal", cert});
  CtlJson({"delete-thing", "--thing-name", "t"});
}

// Billing groups as `aws iot create-billing-group` and its neighbours manage them.
TEST_F(RegistryFleetctlTest, BillingGroupsLikeTheAwsCli) {
  auto created =
      CtlJson({"create-billing-group", "--billing-group-name", "lab", "--billing-group-properties",
               R"({"billingGroupDescription":"the lab"})"});
  const std::string arn = "arn:aws:iot:us-east-1:000000000000:billinggroup/lab";
  EXPECT_EQ(created["billingGroupArn"], arn);
  CtlJson({"create-thing", "--thing-name", "scope", "--billing-group-name", "lab"});
  CtlJson({"create-thing", "--thing-name", "probe"});
  CtlJson({"add-thing-to-billing-group", "--billing-group-arn", arn, "--thing-name", "probe"});
  EXPECT_EQ(CtlJson({"describe-thing", "--thing-name", "probe"})["billingGroupName"], "lab");
  EXPECT_EQ(CtlJson({"list-things-in-billing-group", "--billing-group-name", "lab"})["things"],
            nlohmann::json::array({"probe", "scope"}));

  auto described = CtlJson({"describe-billing-group", "--billing-group-name", "lab"});
  EXPECT_EQ(described["billingGroupProperties"]["billingGroupDescription"], "the lab");
  EXPECT_EQ(described["version"], 1);
  EXPECT_EQ(described["billingGroupId"], created["billingGroupId"]);
  auto updated =
      CtlJson({"update-billing-group", "--billing-group-name", "lab", "--billing-group-properties",
               R"({"billingGroupDescription":"moved"})", "--expected-version", "1"});
  EXPECT_EQ(updated["version"], 2);
  ExpectFailure({"delete-billing-group", "--billing-group-name", "lab", "--expected-version", "1"},
                "ABORTED", "is at version 2");
  ExpectFailure(
      {"add-thing-to-billing-group", "--billing-group-name", "nope", "--thing-name", "probe"},
      "NOT_FOUND", "billing group \"nope\" does not exist");
  ExpectFailure({"create-thing", "--thing-name", "x", "--billing-group-name", "nope"}, "NOT_FOUND",
                "create it first");
  auto listed = CtlJson({"list-billing-groups", "--name-prefix-filter", "la"});
  ASSERT_EQ(listed["billingGroups"].size(), 1u) << listed.dump();
  EXPECT_EQ(listed["billingGroups"][0]["groupArn"], arn);

  CtlJson(
      {"remove-thing-from-billing-group", "--billing-group-name", "lab", "--thing-name", "probe"});
  EXPECT_EQ(CtlJson({"describe-thing", "--thing-name", "probe"}).value("billingGroupName", ""), "");
  // Deleting the group leaves its things in none, on this replica's cache too.
  EXPECT_EQ(CtlJson({"describe-thing", "--thing-name", "scope"})["billingGroupName"], "lab");
  CtlJson({"delete-billing-group", "--billing-group-name", "lab"});
  EXPECT_EQ(CtlJson({"describe-thing", "--thing-name", "scope"}).value("billingGroupName", ""), "");
  ExpectFailure({"describe-billing-group", "--billing-group-name", "lab"}, "NOT_FOUND",
                "does not exist");
}

// Fleet indexing as `aws iot search-index` does it, over the registry's Postgres tables.
TEST_F(RegistryFleetctlTest, SearchIndexFindsThingsAndGroups) {
  CtlJson({"create-thing-type", "--thing-type-name", "lamp"});
  CtlJson({"create-thing-group", "--thing-group-name", "site"});
  CtlJson({"create-thing-group", "--thing-group-name", "floor-1", "--parent-group-name", "site"});
  for (int i = 1; i <= 3; ++i) {
    CtlJson({"create-thing", "--thing-name", "lamp-" + std::to_string(i), "--thing-type-name",
             "lamp", "--attribute-payload",
             R"({"attributes":{"floor":")" + std::to_string(i * 5) + R"("}})"});
  }
  CtlJson({"add-thing-to-thing-group", "--thing-group-name", "floor-1", "--thing-name", "lamp-1"});

  auto found = CtlJson({"search-index", "--query-string",
                        "thingTypeName:lamp AND attributes.floor:[5 TO 10} OR lamp-3"});
  ASSERT_EQ(found["things"].size(), 2u) << found.dump();
  EXPECT_EQ(found["things"][0]["thingName"], "lamp-1");
  EXPECT_EQ(found["things"][0]["thingGroupNames"], nlohmann::json::array({"floor-1"}));
  EXPECT_EQ(found["things"][0]["attributes"]["floor"], "5");
  EXPECT_EQ(found["things"][1]["thingName"], "lamp-3");

  // fleetctl follows nextToken: one call, every page.
  auto all = CtlJson({"search-index", "--query-string", "thingName:lamp*", "--max-results", "1"});
  EXPECT_EQ(all["things"].size(), 3u) << all.dump();

  auto groups = CtlJson({"search-index", "--index-name", "AWS_ThingGroups", "--query-string",
                         "parentGroupNames:site"});
  ASSERT_EQ(groups["thingGroups"].size(), 1u) << groups.dump();
  EXPECT_EQ(groups["thingGroups"][0]["thingGroupName"], "floor-1");

  // Floors 5, 10 and 15.
  auto stats = CtlJson({"get-statistics", "--query-string", "thingTypeName:lamp",
                        "--aggregation-field", "attributes.floor"});
  EXPECT_EQ(stats["statistics"]["count"], 3) << stats.dump();
  EXPECT_EQ(stats["statistics"]["average"], 10.0);
  EXPECT_EQ(stats["statistics"]["maximum"], 15.0);
  // Without a field: AWS's registry.version (each thing at version 1).
  auto count = CtlJson({"get-statistics", "--query-string", "thingGroupNames:floor-1"});
  EXPECT_EQ(count["statistics"]["count"], 1) << count.dump();
  EXPECT_EQ(count["statistics"]["maximum"], 1.0) << count.dump();
  auto distinct =
      CtlJson({"get-cardinality", "--query-string", "*", "--aggregation-field", "thingTypeName"});
  EXPECT_EQ(distinct["cardinality"], 1) << distinct.dump();
  auto median = CtlJson({"get-percentiles", "--query-string", "*", "--aggregation-field",
                         "attributes.floor", "--percents", "[50, 100]"});
  EXPECT_EQ(median["percentiles"], nlohmann::json::parse(R"([{"percent": 50.0, "value": 10.0},
                                      {"percent": 100.0, "value": 15.0}])"))
      << median.dump();
  auto buckets = CtlJson({"get-buckets-aggregation", "--query-string", "*", "--aggregation-field",
                          "thingGroupNames", "--buckets-aggregation-type",
                          R"({"termsAggregation": {"maxBuckets": 5}})"});
  EXPECT_EQ(buckets["totalCount"], 3) << buckets.dump();
  EXPECT_EQ(buckets["buckets"], nlohmann::json::parse(R"([{"keyValue": "floor-1", "count": 1}])"))
      << buckets.dump();

  ExpectFailure({"search-index", "--query-string", "attributes.floor:[5 TO"}, "INVALID_ARGUMENT",
                "expected the range's upper bound");
  ExpectFailure({"search-index", "--query-string", "connectivity.connected:true"},
                "INVALID_ARGUMENT", "thingIndexingMode REGISTRY");
  ExpectFailure({"search-index", "--index-name", "AWS_Jobs", "--query-string", "*"}, "NOT_FOUND",
                "no index");

  // The configuration, as `aws iot get-indexing-configuration` and its neighbours.
  auto config = CtlJson({"get-indexing-configuration"});
  EXPECT_EQ(config["thingIndexingConfiguration"]["thingIndexingMode"], "REGISTRY") << config;
  EXPECT_EQ(config["thingGroupIndexingConfiguration"]["thingGroupIndexingMode"], "ON");
  ExpectFailure({"update-indexing-configuration", "--thing-indexing-configuration",
                 R"({"thingIndexingMode": "REGISTRY_AND_SHADOW"})"},
                "INVALID_ARGUMENT", "registry data only");
  CtlJson({"update-indexing-configuration", "--thing-group-indexing-configuration",
           R"({"thingGroupIndexingMode": "OFF"})"});
  EXPECT_EQ(CtlJson({"list-indices"})["indexNames"], nlohmann::json::array({"AWS_Things"}));
  ExpectFailure({"search-index", "--index-name", "AWS_ThingGroups", "--query-string", "*"},
                "NOT_FOUND", "is off");
  EXPECT_EQ(CtlJson({"describe-index", "--index-name", "AWS_Things"})["indexStatus"], "ACTIVE");
}

TEST_F(RegistryFleetctlTest, PaginatesOverAThousandThings) {
  auto channel = grpc::CreateChannel(registry_.endpoint, grpc::InsecureChannelCredentials());
  auto stub = pb::Registry::NewStub(channel);
  for (int i = 0; i < 1000; ++i) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
    pb::CreateThingRequest req;
    req.set_thing_name("thing-" + std::to_string(i));
    pb::CreateThingResponse resp;
    ASSERT_TRUE(stub->CreateThing(&ctx, req, &resp).ok());
  }
  // fleetctl follows nextToken through every page, as the AWS CLI does.
  auto all = CtlJson({"list-things", "--max-results", "250"});
  EXPECT_EQ(all["things"].size(), 1000u);
  EXPECT_FALSE(all.contains("nextToken"));
  // One page on request.
  auto page = CtlJson({"list-things", "--max-results", "250", "--no-paginate"});
  EXPECT_EQ(page["things"].size(), 250u);
  ASSERT_TRUE(page.contains("nextToken"));
  auto next = CtlJson({"list-things", "--max-results", "250", "--no-paginate", "--next-token",
                       page["nextToken"].get<std::string>()});
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) names.push_back("thing-" + std::to_string(i));
  std::sort(names.begin(), names.end());  // the registry orders names as bytes
  EXPECT_EQ(next["things"][0]["thingName"], names[250]);
  EXPECT_EQ(page["things"][249]["thingName"], names[249]);
  ExpectFailure({"list-things", "--max-results", "251"}, "INVALID_ARGUMENT", "maxResults");
  ExpectFailure({"list-things", "--next-token", "garbage"}, "INVALID_ARGUMENT", "nextToken");
}

TEST_F(RegistryFleetctlTest, WithoutTheTokenNothingIsAllowed) {
  auto r = testing::Run({testing::BuildPath("tools/fleetctl/fleetctl"), "--endpoint",
                         registry_.endpoint, "list-things"},
                        {{"FLEETCORE_ADMIN_TOKEN", ""}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->err, HasSubstr("UNAUTHENTICATED"));
}

// AWS's registry events: turned on with update-event-configurations, published through the
// gateway on $aws/events/..., received by an MQTT subscriber (mosquitto_sub).
TEST(RegistryEventsE2eTest, ChangesReachSubscribersOnceTurnedOn) {
  ASSERT_OK_AND_ASSIGN(auto db, testing::TestDatabase::Create());
  const testing::EnvOverrides env = {{"FLEETCORE_ADMIN_TOKEN", kToken}};
  const std::string anonymous =
      WriteAllowAllPolicy(::testing::TempDir() + "registry-events-anonymous-policy.json");
  ASSERT_OK_AND_ASSIGN(
      RunningService gateway,
      StartService("services/gateway/fleetcore-gateway",
                   {"--db-url=" + db->url(), "--mqtt-listen=127.0.0.1:0", "--mqtts-listen=",
                    "--anonymous-policy-file=" + anonymous, "--shadow-endpoint=",
                    "--rules-endpoint="},
                   env));
  ASSERT_OK_AND_ASSIGN(
      RunningService registry,
      StartService("services/registry/fleetcore-registry",
                   {"--db-url=" + db->url(), "--gateway-endpoint=" + gateway.endpoint}, env));
  Fleetctl ctl(kToken, {{"FLEETCORE_REGISTRY_ENDPOINT", registry.endpoint},
                        {"FLEETCORE_GATEWAY_ENDPOINT", gateway.endpoint}});

  nlohmann::json described = ctl.Json({"describe-event-configurations"});
  EXPECT_EQ(described["eventConfigurations"]["THING"]["Enabled"], false) << described.dump();
  EXPECT_FALSE(described.contains("creationDate"));
  ctl.ExpectFailure({"update-event-configurations", "--event-configurations",
                     R"({"JOBS": {"Enabled": true}})"},
                    "INVALID_ARGUMENT", "not a kind of registry event");

  auto watcher = StartSubscriber(
      ctl,
      {"-p", std::to_string(gateway.ports.at("mqtt_port")), "-v", "-t", "$aws/events/thing/#",
       "-t", "$aws/events/thingGroup/#", "-t", "$aws/events/thingGroupMembership/#", "-C", "3"},
      "registry-watcher");
  ASSERT_NE(watcher, nullptr);
  // Off: nothing is published.
  ctl.Json({"create-thing", "--thing-name", "quiet"});
  ctl.Json({"update-event-configurations", "--event-configurations",
            R"({"THING": {"Enabled": true}, "THING_GROUP_MEMBERSHIP": {"Enabled": true}})"});
  described = ctl.Json({"describe-event-configurations"});
  EXPECT_EQ(described["eventConfigurations"]["THING"]["Enabled"], true);
  EXPECT_EQ(described["eventConfigurations"]["THING_GROUP"]["Enabled"], false);
  EXPECT_TRUE(described.contains("lastModifiedDate"));

  ctl.Json({"create-thing-group", "--thing-group-name", "floor-1"});  // THING_GROUP is off
  ctl.Json({"create-thing", "--thing-name", "lamp-1", "--attribute-payload",
            R"({"attributes": {"site": "berlin"}})"});
  ctl.Json({"add-thing-to-thing-group", "--thing-group-name", "floor-1", "--thing-name",
            "lamp-1"});
  ctl.Json({"delete-thing-group", "--thing-group-name", "floor-1"});
  ctl.Json({"update-thing", "--thing-name", "quiet"});

  ASSERT_OK_AND_ASSIGN(int code, watcher->Wait(absl::Seconds(15)));
  ASSERT_EQ(code, 0) << watcher->output();
  std::vector<std::string> lines = absl::StrSplit(watcher->output(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << watcher->output();
  EXPECT_TRUE(absl::StartsWith(lines[0], "$aws/events/thing/lamp-1/created {")) << lines[0];
  EXPECT_TRUE(absl::StartsWith(
      lines[1], "$aws/events/thingGroupMembership/thingGroup/floor-1/thing/lamp-1/added {"))
      << lines[1];
  EXPECT_TRUE(absl::StartsWith(lines[2], "$aws/events/thing/quiet/updated {")) << lines[2];
  nlohmann::json created = nlohmann::json::parse(lines[0].substr(lines[0].find(' ') + 1));
  EXPECT_EQ(created["eventType"], "THING_EVENT");
  EXPECT_EQ(created["operation"], "CREATED");
  EXPECT_EQ(created["accountId"], "000000000000");
  EXPECT_EQ(created["attributes"]["site"], "berlin");
  EXPECT_EQ(created["thingId"], ctl.Json({"describe-thing", "--thing-name", "lamp-1"})["thingId"]);

  // Counted once the gateway answered, which may be just after the subscriber had them.
  const std::string sent = "fleetcore_registry_events_total{result=\"sent\"} 3";
  EXPECT_THAT(MetricsWith(registry.metrics_port, {sent}), HasSubstr(sent));
}

}  // namespace
}  // namespace fleetcore::e2e
