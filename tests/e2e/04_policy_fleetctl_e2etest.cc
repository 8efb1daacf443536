// The policy service beside the registry, driven with fleetctl as an operator would: policy
// documents from files, versions, attachments to certificates and to a three-level group
// hierarchy, TestAuthorization, GetEffectivePolicies, metrics, and a registry that is down.
#include <sys/stat.h>

#include <fstream>

#include "common/testing/http.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/e2e_util.h"

namespace fleetcore::e2e {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kToken[] = "e2e-admin-token";
const std::string kCert = "arn:aws:iot:us-east-1:000000000000:cert/" + std::string(64, 'd');
const std::string kArn = "arn:aws:iot:us-east-1:000000000000:";

class PolicyFleetctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    ASSERT_OK_AND_ASSIGN(
        registry_, StartService("services/registry/fleetcore-registry", {"--db-url=" + db_->url()},
                                {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
    ASSERT_OK_AND_ASSIGN(policy_, StartService("services/policy/fleetcore-policy",
                                               {"--db-url=" + db_->url(),
                                                "--registry-endpoint=" + registry_.endpoint},
                                               {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
    dir_ = ::testing::TempDir() + "/policy-e2e-" + std::to_string(getpid());
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
  }

  testing::RunResult Ctl(std::vector<std::string> args) { return ctl().Run(std::move(args)); }
  json CtlJson(std::vector<std::string> args) { return ctl().Json(std::move(args)); }
  void ExpectFailure(std::vector<std::string> args, const std::string& code,
                     const std::string& message) {
    ctl().ExpectFailure(std::move(args), code, message);
  }
  // Each service's endpoint comes from its own variable, as in a deployment.
  Fleetctl ctl() const {
    return Fleetctl(kToken, {{"FLEETCORE_REGISTRY_ENDPOINT", registry_.endpoint},
                             {"FLEETCORE_POLICY_ENDPOINT", policy_.endpoint}});
  }
  // file://PATH of a file holding `content`.
  std::string File(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return "file://" + path;
  }
  // The decision of one TestAuthorization for the certificate.
  std::string Decide(const std::string& action, const std::string& resource,
                     const std::string& client_id = "lamp-1") {
    json r = CtlJson({"test-authorization", "--principal", kCert, "--client-id", client_id,
                      "--auth-infos",
                      json::array({{{"actionType", action}, {"resources", {resource}}}}).dump()});
    return r.is_null() ? "" : r["authResults"][0]["authDecision"].get<std::string>();
  }

  std::unique_ptr<testing::TestDatabase> db_;
  RunningService registry_;
  RunningService policy_;
  std::string dir_;
};

TEST_F(PolicyFleetctlTest, GroupPoliciesReachAThingThroughThreeLevels) {
  CtlJson({"create-thing-group", "--thing-group-name", "fleet"});
  CtlJson({"create-thing-group", "--thing-group-name", "site", "--parent-group-name", "fleet"});
  CtlJson({"create-thing-group", "--thing-group-name", "line", "--parent-group-name", "site"});
  CtlJson({"create-thing", "--thing-name", "lamp-1"});
  CtlJson({"add-thing-to-thing-group", "--thing-group-name", "line", "--thing-name", "lamp-1"});
  CtlJson({"attach-thing-principal", "--thing-name", "lamp-1", "--principal", kCert,
           "--thing-principal-type", "EXCLUSIVE_THING"});

  // A policy on the root group, naming the thing of the connection.
  const std::string doc = R"({
    "Version": "2012-10-17",
    "Statement": [{
      "Effect": "Allow",
      "Action": ["iot:Publish", "iot:Receive"],
      "Resource": "arn:aws:iot:us-east-1:000000000000:topic/things/${iot:Connection.Thing.ThingName}/*"
    }]
  })";
  json created = CtlJson({"create-policy", "--policy-name", "thing-topics", "--policy-document",
                          File("thing-topics.json", doc)});
  EXPECT_EQ(created["policyArn"], kArn + "policy/thing-topics");
  EXPECT_EQ(created["policyVersionId"], "1");
  CtlJson(
      {"attach-policy", "--policy-name", "thing-topics", "--target", kArn + "thinggroup/fleet"});

  EXPECT_EQ(Decide("PUBLISH", kArn + "topic/things/lamp-1/temp"), "ALLOWED");
  EXPECT_EQ(Decide("PUBLISH", kArn + "topic/things/lamp-2/temp"), "IMPLICIT_DENY");
  EXPECT_EQ(Decide("SUBSCRIBE", kArn + "topicfilter/things/lamp-1/#"), "IMPLICIT_DENY");

  json effective = CtlJson({"get-effective-policies", "--principal", kCert});
  ASSERT_EQ(effective["effectivePolicies"].size(), 1u);
  EXPECT_EQ(effective["effectivePolicies"][0]["attachedTo"], kArn + "thinggroup/fleet");
  EXPECT_EQ(effective["thing"]["thingName"], "lamp-1");
  EXPECT_EQ(effective["thing"]["isAttached"], true);

  json recursive =
      CtlJson({"list-attached-policies", "--target", kArn + "thinggroup/line", "--recursive"});
  ASSERT_EQ(recursive["policies"].size(), 1u);
  EXPECT_EQ(recursive["policies"][0]["policyName"], "thing-topics");

  // Moving the thing out of the hierarchy takes the policy away at once.
  CtlJson(
      {"remove-thing-from-thing-group", "--thing-group-name", "line", "--thing-name", "lamp-1"});
  EXPECT_EQ(Decide("PUBLISH", kArn + "topic/things/lamp-1/temp"), "IMPLICIT_DENY");
}

// A dynamic thing group (a fleet-indexing query) beside a static one: its members follow the
// registry at once, the thing's groups list it, and no policy can be attached to it.
TEST_F(PolicyFleetctlTest, DynamicGroupsFollowTheirQueryAndTakeNoPolicies) {
  CtlJson({"create-thing-group", "--thing-group-name", "fleet"});
  CtlJson({"create-thing", "--thing-name", "lamp-1", "--attribute-payload",
           R"({"attributes":{"firmware":"1"}})"});
  CtlJson({"create-thing", "--thing-name", "lamp-2", "--attribute-payload",
           R"({"attributes":{"firmware":"3"}})"});
  CtlJson({"add-thing-to-thing-group", "--thing-group-name", "fleet", "--thing-name", "lamp-1"});
  json created = CtlJson({"create-dynamic-thing-group", "--thing-group-name", "outdated",
                          "--query-string", "attributes.firmware<2"});
  EXPECT_EQ(created["thingGroupArn"], kArn + "thinggroup/outdated");
  EXPECT_EQ(created["indexName"], "AWS_Things");
  EXPECT_EQ(created["queryVersion"], "2017-09-30");

  json members = CtlJson({"list-things-in-thing-group", "--thing-group-name", "outdated"});
  EXPECT_EQ(members["things"], json::array({"lamp-1"}));
  json groups = CtlJson({"list-thing-groups-for-thing", "--thing-name", "lamp-1"});
  ASSERT_EQ(groups["thingGroups"].size(), 2u) << groups.dump();
  EXPECT_EQ(groups["thingGroups"][0]["groupName"], "fleet");
  EXPECT_EQ(groups["thingGroups"][1]["groupName"], "outdated");
  json described = CtlJson({"describe-thing-group", "--thing-group-name", "outdated"});
  EXPECT_EQ(described["queryString"], "attributes.firmware<2");
  EXPECT_EQ(described["status"], "ACTIVE");

  // An update of the thing takes it out at once.
  CtlJson({"update-thing", "--thing-name", "lamp-1", "--attribute-payload",
           R"({"attributes":{"firmware":"2"},"merge":true})"});
  members = CtlJson({"list-things-in-thing-group", "--thing-group-name", "outdated"});
  EXPECT_EQ(members["things"], json::array()) << members.dump();

  const std::string doc = File("connect.json", R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]})");
  CtlJson({"create-policy", "--policy-name", "connect", "--policy-document", doc});
  ExpectFailure(
      {"attach-policy", "--policy-name", "connect", "--target", kArn + "thinggroup/outdated"},
      "INVALID_ARGUMENT", "dynamic");
  ExpectFailure(
      {"add-thing-to-thing-group", "--thing-group-name", "outdated", "--thing-name", "lamp-2"},
      "INVALID_ARGUMENT", "by hand");
  ExpectFailure({"delete-thing-group", "--thing-group-name", "outdated"}, "INVALID_ARGUMENT",
                "DeleteDynamicThingGroup");
  CtlJson({"update-dynamic-thing-group", "--thing-group-name", "outdated", "--query-string",
           "attributes.firmware<4"});
  members = CtlJson({"list-things-in-thing-group", "--thing-group-name", "outdated"});
  EXPECT_EQ(members["things"], json::array({"lamp-1", "lamp-2"}));
  CtlJson({"delete-dynamic-thing-group", "--thing-group-name", "outdated"});
  ExpectFailure({"describe-thing-group", "--thing-group-name", "outdated"}, "NOT_FOUND",
                "does not exist");
}

TEST_F(PolicyFleetctlTest, VersionsAttachmentsAndTheirErrors) {
  const std::string v1 = File("v1.json", R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]})");
  const std::string v2 = File("v2.json", R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
      {"Effect":"Deny","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:000000000000:client/banned-*"}]})");
  CtlJson({"create-policy", "--policy-name", "connect", "--policy-document", v1});
  CtlJson({"attach-policy", "--policy-name", "connect", "--target", kCert});
  EXPECT_EQ(Decide("CONNECT", kArn + "client/banned-1"), "ALLOWED");

  json v = CtlJson({"create-policy-version", "--policy-name", "connect", "--policy-document", v2,
                    "--set-as-default"});
  EXPECT_EQ(v["policyVersionId"], "2");
  EXPECT_EQ(Decide("CONNECT", kArn + "client/banned-1"), "EXPLICIT_DENY");
  EXPECT_EQ(Decide("CONNECT", kArn + "client/lamp-1"), "ALLOWED");
  CtlJson({"set-default-policy-version", "--policy-name", "connect", "--policy-version-id", "1"});
  EXPECT_EQ(Decide("CONNECT", kArn + "client/banned-1"), "ALLOWED");
  json versions = CtlJson({"list-policy-versions", "--policy-name", "connect"});
  ASSERT_EQ(versions["policyVersions"].size(), 2u);
  EXPECT_EQ(versions["policyVersions"][0]["isDefaultVersion"], true);

  ExpectFailure(
      {"create-policy", "--policy-name", "broken", "--policy-document",
       R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Conect","Resource":"*"}]})"},
      "INVALID_ARGUMENT", "Statement[0].Action");
  ExpectFailure({"delete-policy", "--policy-name", "connect"}, "FAILED_PRECONDITION",
                "detach it first");
  ExpectFailure({"delete-policy-version", "--policy-name", "connect", "--policy-version-id", "1"},
                "FAILED_PRECONDITION", "default");
  ExpectFailure(
      {"attach-policy", "--policy-name", "connect", "--target", kArn + "thinggroup/nowhere"},
      "NOT_FOUND", "nowhere");
  ExpectFailure({"attach-policy", "--policy-name", "connect", "--target", "lamp-1"},
                "INVALID_ARGUMENT", "certificate ARN");

  CtlJson({"detach-policy", "--policy-name", "connect", "--target", kCert});
  CtlJson({"delete-policy-version", "--policy-name", "connect", "--policy-version-id", "2"});
  CtlJson({"delete-policy", "--policy-name", "connect"});
  ExpectFailure({"get-policy", "--policy-name", "connect"}, "NOT_FOUND", "does not exist");
}

TEST_F(PolicyFleetctlTest, ListingsFollowMarkersAndMetricsCountDecisions) {
  const std::string doc = File("p.json", R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]})");
  for (const char* name : {"p3", "p1", "p2"}) {
    CtlJson({"create-policy", "--policy-name", name, "--policy-document", doc});
  }
  // fleetctl follows nextMarker until the end.
  json all = CtlJson({"list-policies", "--page-size", "1"});
  ASSERT_EQ(all["policies"].size(), 3u);
  EXPECT_EQ(all["policies"][0]["policyName"], "p1");
  EXPECT_EQ(all["policies"][2]["policyName"], "p3");
  json one = CtlJson({"list-policies", "--page-size", "1", "--no-paginate"});
  EXPECT_EQ(one["policies"].size(), 1u);
  EXPECT_FALSE(one["nextMarker"].get<std::string>().empty());

  CtlJson({"attach-policy", "--policy-name", "p1", "--target", kCert});
  EXPECT_EQ(Decide("CONNECT", kArn + "client/x"), "ALLOWED");
  const std::string metrics = testing::HttpGet(policy_.metrics_port, "/metrics");
  EXPECT_THAT(
      metrics,
      HasSubstr(R"(fleetcore_policy_decisions_total{action="Connect",result="allowed"} 1)"));
  EXPECT_THAT(metrics, HasSubstr("fleetcore_grpc_server_requests_total"));
}

TEST_F(PolicyFleetctlTest, ARegistryThatIsDownIsNamedInTheError) {
  const std::string doc = File("p.json", R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]})");
  CtlJson({"create-policy", "--policy-name", "p", "--policy-document", doc});
  CtlJson({"attach-policy", "--policy-name", "p", "--target", kCert});
  registry_.process->Signal(SIGTERM);
  ASSERT_OK(registry_.process->Wait().status());
  ExpectFailure({"get-effective-policies", "--principal", kCert}, "UNAVAILABLE", "registry");
  // Calls that need only the policy service's own data still work.
  json got = CtlJson({"get-policy", "--policy-name", "p"});
  EXPECT_EQ(got["defaultVersionId"], "1");
}

TEST(PolicyStartupTest, BadOptionsAreRefusedBeforeAnythingStarts) {
  const std::string binary = testing::BuildPath("services/policy/fleetcore-policy");
  ASSERT_OK_AND_ASSIGN(auto r, testing::Run({binary, "--check-config", "--authorizer-timeout=60s",
                                             "--db-url=postgresql://u:p@127.0.0.1:1/x"}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--authorizer-timeout must be in (0s, 30s]"));
  ASSERT_OK_AND_ASSIGN(r, testing::Run({binary, "--check-config", "--registry-endpoint=",
                                        "--db-url=postgresql://u:p@127.0.0.1:1/x"}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--registry-endpoint"));
  ASSERT_OK_AND_ASSIGN(r, testing::Run({binary, "--check-config"},
                                       {{"FLEETCORE_DB_URL", "postgresql://u:secret@db:5432/x"},
                                        {"FLEETCORE_AUTHORIZER_TIMEOUT", "2s"}}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out + r.err, HasSubstr("2s"));
  EXPECT_THAT(r.out + r.err, ::testing::Not(HasSubstr("secret")));
}

// The access keys' sealing key is the service's own: made private when missing, refused when
// others can read it, with the command that fixes it, before the service serves.
TEST(PolicyStartupTest, TheSealingKeyMustBePrivate) {
  const std::string dir = ::testing::TempDir() + "/policy-startup-" + std::to_string(getpid());
  ASSERT_EQ(system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  ASSERT_OK_AND_ASSIGN(auto db, testing::TestDatabase::Create());
  std::ofstream(dir + "/open.key") << std::string(64, 'a') << "\n";
  ASSERT_EQ(chmod((dir + "/open.key").c_str(), 0644), 0);
  const std::string binary = testing::BuildPath("services/policy/fleetcore-policy");
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult r,
      testing::Run({binary, "--db-url=" + db->url(), "--listen=127.0.0.1:0", "--metrics-listen=",
                    "--access-key-sealing-key-file=" + dir + "/open.key"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("chmod 600 " + dir + "/open.key"));

  // Missing: made with mode 0600, and the service serves.
  ASSERT_OK_AND_ASSIGN(RunningService policy,
                       StartService("services/policy/fleetcore-policy",
                                    {"--db-url=" + db->url(), "--registry-endpoint=127.0.0.1:1",
                                     "--access-key-sealing-key-file=" + dir + "/new.key"}));
  struct stat st;
  ASSERT_EQ(stat((dir + "/new.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  // Rotation: a previous key file must exist (it is never made), and needs a current one.
  ASSERT_OK_AND_ASSIGN(
      r, testing::Run({binary, "--db-url=" + db->url(), "--listen=127.0.0.1:0",
                       "--metrics-listen=", "--access-key-sealing-key-file=" + dir + "/new.key",
                       "--access-key-previous-sealing-key-files=" + dir + "/gone.key"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(dir + "/gone.key"));
  ASSERT_OK_AND_ASSIGN(
      r, testing::Run({binary, "--check-config", "--db-url=postgresql://u:p@127.0.0.1:1/x",
                       "--access-key-previous-sealing-key-files=" + dir + "/new.key"}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("needs --access-key-sealing-key-file"));
  ASSERT_OK_AND_ASSIGN(RunningService rotated,
                       StartService("services/policy/fleetcore-policy",
                                    {"--db-url=" + db->url(), "--registry-endpoint=127.0.0.1:1",
                                     "--access-key-sealing-key-file=" + dir + "/newer.key",
                                     "--access-key-previous-sealing-key-files=" + dir +
                                         "/new.key"}));
}

}  // namespace
}  // namespace fleetcore::e2e
