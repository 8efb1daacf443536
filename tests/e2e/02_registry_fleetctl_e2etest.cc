// The registry binary driven the way operators drive it: fleetctl (verbs and flags of
// `aws iot`) and a plain gRPC client, through every error path of the issue.
#include <algorithm>

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

  const std::string cert = "arn:aws:iot:us-east-1:000000000000:cert/" + std::string(64, 'a');
  CtlJson({"attach-thing-principal", "--thing-name", "t", "--principal", cert});
  EXPECT_EQ(CtlJson({"list-principal-things", "--principal", cert})["things"],
            nlohmann::json::array({"t"}));
  ExpectFailure({"delete-thing", "--thing-name", "t"}, "FAILED_PRECONDITION", "detach them");
  CtlJson({"detach-thing-principal", "--thing-name", "t", "--principal", cert});
  CtlJson({"delete-thing", "--thing-name", "t"});
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

}  // namespace
}  // namespace fleetcore::e2e
