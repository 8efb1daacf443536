// Custom authorizers end to end: the policy service calls the example authorizer function
// (tools/examples/custom_authorizer.py) over real HTTP, with signed tokens, the way AWS's
// custom-authorizer tutorial does; plus a function that is slow, down, or answers garbage.
#include <csignal>

#include "absl/strings/match.h"
#include "common/testing/http.h"
#include "common/testing/keys.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_database.h"
#include "fleetcore/policy/v1/policy.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/e2e_util.h"

namespace fleetcore::e2e {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;
namespace pb = ::fleetcore::policy::v1;

constexpr char kToken[] = "e2e-admin-token";
constexpr char kDeviceToken[] = "device-secret-token";

class CustomAuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    // No registry: authorizers do not need one.
    ASSERT_OK_AND_ASSIGN(policy_,
                         StartService("services/policy/fleetcore-policy",
                                      {"--db-url=" + db_->url(), "--registry-endpoint=127.0.0.1:1",
                                       "--authorizer-timeout=1s"},
                                      {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
    const char* src = std::getenv("FLEETCORE_SOURCE_DIR");
    ASSERT_OK_AND_ASSIGN(function_,
                         testing::Subprocess::Start({"/usr/bin/python3",
                                                     std::string(src != nullptr ? src : ".") +
                                                         "/tools/examples/custom_authorizer.py",
                                                     "--token", kDeviceToken}));
    ASSERT_OK_AND_ASSIGN(std::string line, function_->WaitForLine([](absl::string_view l) {
      return absl::StartsWith(l, "listening on ");
    }));
    function_url_ = "http://127.0.0.1:" + line.substr(strlen("listening on ")) + "/authorize";
    auto channel = grpc::CreateChannel(policy_.endpoint, grpc::InsecureChannelCredentials());
    stub_ = pb::Policy::NewStub(channel);
  }

  testing::RunResult Ctl(std::vector<std::string> args) { return ctl().Run(std::move(args)); }
  json CtlJson(std::vector<std::string> args) { return ctl().Json(std::move(args)); }
  Fleetctl ctl() const {
    return Fleetctl(kToken, {{"FLEETCORE_POLICY_ENDPOINT", policy_.endpoint}});
  }
  void CreateAuthorizer(const std::string& name, const std::string& url) {
    CtlJson({"create-authorizer", "--authorizer-name", name, "--authorizer-function-arn", url,
             "--token-key-name", "x-token", "--token-signing-public-keys",
             json({{"key1", keys().public_pem}}).dump(), "--status", "ACTIVE"});
  }
  // The gateway's call, over gRPC with the admin token.
  pb::AuthorizeResponse Authorize(const std::string& authorizer, const std::string& token,
                                  const std::string& client_id) {
    pb::AuthorizeRequest req;
    req.set_authorizer_name(authorizer);
    req.set_token(token);
    req.set_token_signature(keys().SignBase64(token));
    req.mutable_mqtt_context()->set_client_id(client_id);
    req.mutable_mqtt_context()->set_username("device?x-amz-customauthorizer-name=" + authorizer);
    req.set_connection_id("c-1");
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    pb::AuthorizeResponse resp;
    grpc::Status s = stub_->Authorize(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  static const testing::TestKeyPair& keys() {
    static const testing::TestKeyPair k = testing::TestKeyPair::Rsa(2048);
    return k;
  }

  std::unique_ptr<testing::TestDatabase> db_;
  RunningService policy_;
  std::unique_ptr<testing::Subprocess> function_;
  std::string function_url_;
  std::unique_ptr<pb::Policy::Stub> stub_;
};

TEST_F(CustomAuthorizerTest, TheTutorialFlow) {
  CreateAuthorizer("tokens", function_url_);
  json described = CtlJson({"describe-authorizer", "--authorizer-name", "tokens"});
  EXPECT_EQ(described["authorizerDescription"]["status"], "ACTIVE");
  EXPECT_EQ(described["authorizerDescription"]["authorizerArn"],
            "arn:aws:iot:us-east-1:000000000000:authorizer/tokens");
  CtlJson({"set-default-authorizer", "--authorizer-name", "tokens"});

  // test-invoke-authorizer, as in the AWS CLI.
  json invoked = CtlJson({"test-invoke-authorizer", "--authorizer-name", "tokens", "--token",
                          kDeviceToken, "--token-signature", keys().SignBase64(kDeviceToken),
                          "--mqtt-context", R"({"clientId":"sensor-7","username":"u"})"});
  EXPECT_EQ(invoked["isAuthenticated"], true);
  EXPECT_EQ(invoked["principalId"], "sensor7");
  ASSERT_EQ(invoked["policyDocuments"].size(), 1u);
  json policy = json::parse(invoked["policyDocuments"][0].get<std::string>());
  EXPECT_EQ(policy["Statement"][0]["Resource"],
            "arn:aws:iot:us-east-1:000000000000:client/sensor-7");
  EXPECT_EQ(invoked["refreshAfterInSeconds"], 300);
  EXPECT_EQ(invoked["disconnectAfterInSeconds"], 3600);

  // The gateway's path: through the default authorizer.
  pb::AuthorizeResponse ok = Authorize("", kDeviceToken, "sensor-7");
  EXPECT_TRUE(ok.is_authenticated());
  EXPECT_EQ(ok.principal_id(), "sensor7");
  pb::AuthorizeResponse wrong = Authorize("tokens", "not-the-token", "sensor-7");
  EXPECT_FALSE(wrong.is_authenticated());
  EXPECT_THAT(wrong.deny_reason(), HasSubstr("did not authenticate"));

  // A token signed by someone else never reaches the function.
  pb::AuthorizeRequest forged;
  forged.set_authorizer_name("tokens");
  forged.set_token(kDeviceToken);
  forged.set_token_signature(testing::TestKeyPair::Rsa(2048).SignBase64(kDeviceToken));
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
  pb::AuthorizeResponse denied;
  ASSERT_TRUE(stub_->Authorize(&ctx, forged, &denied).ok());
  EXPECT_FALSE(denied.is_authenticated());
  EXPECT_THAT(denied.deny_reason(), HasSubstr("signature"));

  // Repeated connects within refreshAfterInSeconds are answered from the cache.
  EXPECT_TRUE(Authorize("", kDeviceToken, "sensor-7").is_authenticated());
  const std::string metrics = testing::HttpGet(policy_.metrics_port, "/metrics");
  EXPECT_THAT(
      metrics,
      HasSubstr(
          R"(fleetcore_policy_authorizer_calls_total{authorizer="tokens",result="signature_invalid"} 1)"));
  EXPECT_THAT(
      metrics,
      HasSubstr(R"(fleetcore_policy_authorizer_calls_total{authorizer="tokens",result="deny"} 1)"));
  EXPECT_THAT(metrics,
              HasSubstr(R"(fleetcore_policy_authorizer_cache_lookups_total{result="hit"} 1)"));
  EXPECT_THAT(metrics, HasSubstr("fleetcore_policy_authorizer_call_duration_seconds_count"));

  // Deactivating takes effect on the next connect, cached answers or not.
  CtlJson({"update-authorizer", "--authorizer-name", "tokens", "--status", "INACTIVE"});
  pb::AuthorizeResponse inactive = Authorize("tokens", kDeviceToken, "sensor-7");
  EXPECT_FALSE(inactive.is_authenticated());
  EXPECT_THAT(inactive.deny_reason(), HasSubstr("INACTIVE"));
}

TEST_F(CustomAuthorizerTest, SlowDownOrBrokenFunctionsDenyWithAReason) {
  ASSERT_OK_AND_ASSIGN(testing::HttpTestServer peer, testing::HttpTestServer::Start());
  CreateAuthorizer("slow", peer.base_url + "/auth?delay=3");
  CreateAuthorizer("broken", peer.base_url + "/auth?status=500");
  CreateAuthorizer("garbage", peer.base_url + "/auth?body_b64=bm90IGpzb24=");  // "not json"
  CreateAuthorizer("down", "http://127.0.0.1:1/auth");

  EXPECT_THAT(Authorize("slow", kDeviceToken, "d").deny_reason(), HasSubstr("timed out"));
  EXPECT_THAT(Authorize("broken", kDeviceToken, "d").deny_reason(), HasSubstr("HTTP 500"));
  EXPECT_THAT(Authorize("garbage", kDeviceToken, "d").deny_reason(), HasSubstr("malformed"));
  EXPECT_FALSE(Authorize("down", kDeviceToken, "d").is_authenticated());

  testing::RunResult r = Ctl({"test-invoke-authorizer", "--authorizer-name", "slow", "--token",
                              kDeviceToken, "--token-signature", keys().SignBase64(kDeviceToken)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("DEADLINE_EXCEEDED"));
  r = Ctl({"test-invoke-authorizer", "--authorizer-name", "down", "--token", kDeviceToken,
           "--token-signature", keys().SignBase64(kDeviceToken)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));

  // The operator sees why in the log; the device's secret is not there.
  const std::string log = policy_.process->output();
  EXPECT_THAT(log, HasSubstr(R"("result":"timeout")"));
  EXPECT_THAT(log, HasSubstr(R"("result":"malformed")"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(kDeviceToken)));

  const std::string metrics = testing::HttpGet(policy_.metrics_port, "/metrics");
  for (const char* expected : {R"({authorizer="slow",result="timeout"} 1)",
                               R"({authorizer="broken",result="http_error"} 1)",
                               R"({authorizer="garbage",result="malformed"} 1)",
                               R"({authorizer="down",result="unreachable"} 1)"}) {
    EXPECT_THAT(metrics, HasSubstr(expected));
  }
}

}  // namespace
}  // namespace fleetcore::e2e
