// The gRPC adapter in-process on port 0, called through a real channel: proto <-> domain
// mapping, ARN forms, status codes and metrics as a client sees them.
#include "services/policy/policy_service.h"

#include "common/aws/sigv4.h"
#include "common/grpc/client.h"
#include "common/grpc/executor.h"
#include "common/grpc/server.h"
#include "common/testing/fake_clock.h"
#include "common/testing/keys.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "services/policy/fake_policy_store.h"
#include "services/policy/fake_thing_directory.h"

namespace fleetcore::policy_service {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

const char kConnectAll[] =
    R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]})";

class Function final : public http::HttpClient {
 public:
  absl::StatusOr<http::Response> Send(const http::Request& request) override {
    last_body = request.body;
    return http::Response{.status = 200,
                          .body = nlohmann::json({{"isAuthenticated", true},
                                                  {"principalId", "p1"},
                                                  {"policyDocuments", {kConnectAll}},
                                                  {"refreshAfterInSeconds", 300}})
                                      .dump()};
  }
  std::string last_body;
};

// The line of fleetcore_policy_access_key_verifications_total{result} with its count.
std::string Verifications(const std::string& result, int count) {
  return "fleetcore_policy_access_key_verifications_total{result=\"" + result + "\"} " +
         std::to_string(count);
}

class PolicyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc_util::ServerOptions opts{.listen = "127.0.0.1:0", .admin_token = "tok"};
    auto server = grpc_util::Server::Start(opts, {&service_}, nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto ch = grpc_util::ServiceChannel::Create(
        {.target = "127.0.0.1:" + std::to_string(server_->port()), .token = "tok"});
    ASSERT_TRUE(ch.ok());
    channel_ = std::make_unique<grpc_util::ServiceChannel>(*ch);
    stub_ = pb::Policy::NewStub(channel_->channel());
  }

  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (pb::Policy::Stub::*method)(grpc::ClientContext*, const Req&,
                                                             Resp*),
                    const Req& req, Resp* resp) {
    auto ctx = channel_->NewContext();
    return (stub_.get()->*method)(ctx.get(), req, resp);
  }

  std::string Metrics() { return prometheus::TextSerializer().Serialize(metrics_->Collect()); }

  const std::string cert_ = "arn:aws:iot:eu-west-1:123456789012:cert/" + std::string(64, 'c');
  FakePolicyStore store_;
  FakeThingDirectory things_;
  Function function_;
  aws::Arns arns_{"eu-west-1", "123456789012"};
  testing::FakeClock clock_;
  PolicyCore policies_{&store_, &things_, &arns_, &clock_};
  AuthorizerCore authorizers_{&store_, &function_, &arns_, &clock_};
  std::shared_ptr<prometheus::Registry> metrics_ = std::make_shared<prometheus::Registry>();
  grpc_util::Executor executor_{2, 100};
  grpc_util::AdminAuth auth_{"tok"};
  grpc_util::CallRunner calls_{&executor_, &auth_};
  tls::SecretBox sealing_key_ = tls::SecretBox::WithKey(std::string(32, 'k'));
  AccessKeyCore access_keys_{&store_, &sealing_key_, &arns_, &clock_};
  PolicyService service_{&policies_, &authorizers_, &access_keys_, &calls_, metrics_.get()};
  std::unique_ptr<grpc_util::Server> server_;
  std::unique_ptr<grpc_util::ServiceChannel> channel_;
  std::unique_ptr<pb::Policy::Stub> stub_;
};

TEST_F(PolicyServiceTest, PolicyLifecycleMapsEveryField) {
  pb::CreatePolicyRequest create;
  create.set_policy_name("dev");
  create.set_policy_document(kConnectAll);
  pb::CreatePolicyResponse created;
  ASSERT_TRUE(Call(&pb::Policy::Stub::CreatePolicy, create, &created).ok());
  EXPECT_EQ(created.policy_arn(), "arn:aws:iot:eu-west-1:123456789012:policy/dev");
  EXPECT_EQ(created.policy_version_id(), "1");
  EXPECT_EQ(created.policy_document(), kConnectAll);

  pb::CreatePolicyVersionRequest version;
  version.set_policy_name("dev");
  version.set_policy_document(kConnectAll);
  version.set_set_as_default(true);
  pb::CreatePolicyVersionResponse v2;
  ASSERT_TRUE(Call(&pb::Policy::Stub::CreatePolicyVersion, version, &v2).ok());
  EXPECT_EQ(v2.policy_version_id(), "2");
  EXPECT_TRUE(v2.is_default_version());

  pb::GetPolicyRequest get;
  get.set_policy_name("dev");
  pb::GetPolicyResponse got;
  ASSERT_TRUE(Call(&pb::Policy::Stub::GetPolicy, get, &got).ok());
  EXPECT_EQ(got.default_version_id(), "2");
  EXPECT_EQ(got.generation_id(), "2");
  EXPECT_EQ(got.creation_date().seconds(), absl::ToUnixSeconds(clock_.Now()));

  pb::ListPolicyVersionsRequest list;
  list.set_policy_name("dev");
  pb::ListPolicyVersionsResponse versions;
  ASSERT_TRUE(Call(&pb::Policy::Stub::ListPolicyVersions, list, &versions).ok());
  ASSERT_THAT(versions.policy_versions(), SizeIs(2));
  EXPECT_FALSE(versions.policy_versions(0).is_default_version());
  EXPECT_TRUE(versions.policy_versions(1).is_default_version());

  pb::AttachPolicyRequest attach;
  attach.set_policy_name("dev");
  attach.set_target(cert_);
  pb::AttachPolicyResponse attached;
  ASSERT_TRUE(Call(&pb::Policy::Stub::AttachPolicy, attach, &attached).ok());
  pb::GetEffectivePoliciesRequest eff;
  eff.set_principal(cert_);
  pb::GetEffectivePoliciesResponse effective;
  ASSERT_TRUE(Call(&pb::Policy::Stub::GetEffectivePolicies, eff, &effective).ok());
  ASSERT_THAT(effective.effective_policies(), SizeIs(1));
  EXPECT_EQ(effective.effective_policies(0).policy_version_id(), "2");
  EXPECT_EQ(effective.effective_policies(0).attached_to(), cert_);
  EXPECT_FALSE(effective.has_thing());
}

TEST_F(PolicyServiceTest, StatusCodesAndMessagesReachTheClient) {
  pb::CreatePolicyRequest create;
  create.set_policy_name("dev");
  create.set_policy_document(R"({"Version":"2012-10-17","Statement":[{"Effect":"Alow"}]})");
  pb::CreatePolicyResponse created;
  grpc::Status s = Call(&pb::Policy::Stub::CreatePolicy, create, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("Statement[0]"));

  pb::GetPolicyRequest get;
  get.set_policy_name("dev");
  pb::GetPolicyResponse got;
  s = Call(&pb::Policy::Stub::GetPolicy, get, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);

  // Without the admin token.
  grpc::ClientContext ctx;
  s = stub_->GetPolicy(&ctx, get, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(PolicyServiceTest, TestAuthorizationAnswersInAwsShape) {
  pb::CreatePolicyRequest create;
  create.set_policy_name("connect");
  create.set_policy_document(kConnectAll);
  pb::CreatePolicyResponse created;
  ASSERT_TRUE(Call(&pb::Policy::Stub::CreatePolicy, create, &created).ok());

  pb::TestAuthorizationRequest req;
  req.set_principal(cert_);
  req.add_policy_names_to_add("connect");
  pb::AuthInfo* connect = req.add_auth_infos();
  connect->set_action_type(pb::CONNECT);
  connect->add_resources("arn:aws:iot:eu-west-1:123456789012:client/c1");
  pb::AuthInfo* publish = req.add_auth_infos();
  publish->set_action_type(pb::PUBLISH);
  publish->add_resources("arn:aws:iot:eu-west-1:123456789012:topic/t");
  pb::TestAuthorizationResponse resp;
  ASSERT_TRUE(Call(&pb::Policy::Stub::TestAuthorization, req, &resp).ok());
  ASSERT_THAT(resp.auth_results(), SizeIs(2));
  EXPECT_EQ(resp.auth_results(0).auth_decision(), pb::ALLOWED);
  EXPECT_EQ(resp.auth_results(0).allowed().policies(0).policy_arn(),
            "arn:aws:iot:eu-west-1:123456789012:policy/connect");
  EXPECT_EQ(resp.auth_results(0).auth_info().action_type(), pb::CONNECT);
  EXPECT_EQ(resp.auth_results(1).auth_decision(), pb::IMPLICIT_DENY);
  EXPECT_EQ(resp.auth_results(1).denied().implicit_deny().policies(0).policy_name(), "connect");
  EXPECT_THAT(resp.auth_results(1).explanations(), ElementsAre(HasSubstr("implicit deny")));
  EXPECT_THAT(
      Metrics(),
      HasSubstr(R"(fleetcore_policy_decisions_total{action="Connect",result="allowed"} 1)"));

  req.mutable_auth_infos(0)->set_action_type(pb::ACTION_TYPE_UNSPECIFIED);
  grpc::Status s = Call(&pb::Policy::Stub::TestAuthorization, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("actionType"));
}

TEST_F(PolicyServiceTest, AuthorizersAndAuthorize) {
  testing::TestKeyPair keys = testing::TestKeyPair::Rsa(2048);
  pb::CreateAuthorizerRequest create;
  create.set_authorizer_name("tokens");
  create.set_authorizer_function_arn("http://127.0.0.1:1/authorize");
  create.set_token_key_name("x-token");
  (*create.mutable_token_signing_public_keys())["k"] = keys.public_pem;
  create.set_status(pb::ACTIVE);
  pb::CreateAuthorizerResponse created;
  ASSERT_TRUE(Call(&pb::Policy::Stub::CreateAuthorizer, create, &created).ok());
  EXPECT_EQ(created.authorizer_arn(), "arn:aws:iot:eu-west-1:123456789012:authorizer/tokens");

  pb::DescribeAuthorizerRequest describe;
  describe.set_authorizer_name("tokens");
  pb::DescribeAuthorizerResponse described;
  ASSERT_TRUE(Call(&pb::Policy::Stub::DescribeAuthorizer, describe, &described).ok());
  EXPECT_EQ(described.authorizer_description().status(), pb::ACTIVE);
  EXPECT_EQ(described.authorizer_description().token_signing_public_keys().at("k"),
            keys.public_pem);

  pb::AuthorizeRequest authorize;
  authorize.set_authorizer_name("tokens");
  authorize.set_token("t1");
  authorize.set_token_signature(keys.SignBase64("t1"));
  authorize.mutable_mqtt_context()->set_client_id("c1");
  authorize.mutable_mqtt_context()->set_username("u");
  authorize.set_connection_id("conn-7");
  pb::AuthorizeResponse answer;
  ASSERT_TRUE(Call(&pb::Policy::Stub::Authorize, authorize, &answer).ok());
  EXPECT_TRUE(answer.is_authenticated());
  EXPECT_EQ(answer.principal_id(), "p1");
  EXPECT_THAT(answer.policy_documents(), ElementsAre(kConnectAll));
  EXPECT_EQ(answer.refresh_after_in_seconds(), 300);
  nlohmann::json event = nlohmann::json::parse(function_.last_body);
  EXPECT_EQ(event["protocols"], nlohmann::json({"mqtt"}));
  EXPECT_EQ(event["connectionMetadata"]["id"], "conn-7");

  ASSERT_TRUE(Call(&pb::Policy::Stub::Authorize, authorize, &answer).ok());  // cached
  authorize.set_authorizer_name("made-up-by-a-client");
  ASSERT_TRUE(Call(&pb::Policy::Stub::Authorize, authorize, &answer).ok());
  EXPECT_FALSE(answer.is_authenticated());
  EXPECT_THAT(answer.deny_reason(), HasSubstr("does not exist"));

  const std::string metrics = Metrics();
  EXPECT_THAT(
      metrics,
      HasSubstr(
          R"(fleetcore_policy_authorizer_calls_total{authorizer="tokens",result="allow"} 2)"));
  EXPECT_THAT(
      metrics,
      HasSubstr(
          R"x(fleetcore_policy_authorizer_calls_total{authorizer="(unknown)",result="not_found"} 1)x"));
  EXPECT_THAT(metrics,
              HasSubstr(R"(fleetcore_policy_authorizer_cache_lookups_total{result="hit"} 1)"));
  EXPECT_THAT(metrics, ::testing::Not(HasSubstr("made-up-by-a-client")));

  pb::UpdateAuthorizerRequest update;
  update.set_authorizer_name("tokens");
  update.set_status(pb::INACTIVE);
  pb::UpdateAuthorizerResponse updated;
  ASSERT_TRUE(Call(&pb::Policy::Stub::UpdateAuthorizer, update, &updated).ok());
  pb::TestInvokeAuthorizerRequest invoke;
  invoke.set_authorizer_name("tokens");
  invoke.set_token("t1");
  invoke.set_token_signature(keys.SignBase64("t1"));
  pb::TestInvokeAuthorizerResponse invoked;
  grpc::Status s = Call(&pb::Policy::Stub::TestInvokeAuthorizer, invoke, &invoked);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("INACTIVE"));
}

// An access key's life as the operator and the gateway see it: the secret once, a signature
// of it accepted, policies attached to the user's ARN in force, a deactivated key refused.
TEST_F(PolicyServiceTest, AccessKeysSignForTheirUserUntilDeactivated) {
  pb::CreateAccessKeyRequest create;
  create.set_user_name("dashboard");
  pb::CreateAccessKeyResponse created;
  ASSERT_TRUE(Call(&pb::Policy::Stub::CreateAccessKey, create, &created).ok());
  const pb::AccessKey& key = created.access_key();
  EXPECT_THAT(key.access_key_id(), ::testing::MatchesRegex("AKIA[A-Z2-7]{16}"));
  EXPECT_EQ(key.status(), pb::AccessKey::ACTIVE);
  EXPECT_EQ(key.user_arn(), "arn:aws:iam::123456789012:user/dashboard");
  EXPECT_EQ(created.secret_access_key().size(), 40u);

  pb::ListAccessKeysRequest list;
  list.set_user_name("dashboard");
  pb::ListAccessKeysResponse listed;
  ASSERT_TRUE(Call(&pb::Policy::Stub::ListAccessKeys, list, &listed).ok());
  ASSERT_THAT(listed.access_keys(), SizeIs(1));
  EXPECT_EQ(listed.access_keys(0).access_key_id(), key.access_key_id());
  // The secret is stored sealed only.
  absl::StatusOr<std::vector<AccessKey>> stored = store_.ListAccessKeys("", "", 10);
  ASSERT_TRUE(stored.ok());
  ASSERT_THAT(*stored, SizeIs(1));
  for (const AccessKey& k : *stored) {
    EXPECT_THAT(k.sealed_secret, ::testing::Not(HasSubstr(created.secret_access_key())));
  }

  pb::VerifyAccessKeySignatureRequest verify;
  verify.set_access_key_id(key.access_key_id());
  verify.set_date("20261127");
  verify.set_region("eu-west-1");
  verify.set_service("iotdevicegateway");
  verify.add_strings_to_sign("another candidate");
  verify.add_strings_to_sign("AWS4-HMAC-SHA256\n20261127T101010Z\nscope\nhash");
  verify.set_signature(aws::SigV4Signature(created.secret_access_key(), "20261127", "eu-west-1",
                                           "iotdevicegateway",
                                           "AWS4-HMAC-SHA256\n20261127T101010Z\nscope\nhash"));
  pb::VerifyAccessKeySignatureResponse verdict;
  ASSERT_TRUE(Call(&pb::Policy::Stub::VerifyAccessKeySignature, verify, &verdict).ok());
  EXPECT_TRUE(verdict.is_authenticated()) << verdict.deny_reason();
  EXPECT_EQ(verdict.principal(), "arn:aws:iam::123456789012:user/dashboard");

  // Policies attach to the user and are its connections' policies.
  pb::CreatePolicyRequest policy;
  policy.set_policy_name("dash");
  policy.set_policy_document(kConnectAll);
  pb::CreatePolicyResponse made;
  ASSERT_TRUE(Call(&pb::Policy::Stub::CreatePolicy, policy, &made).ok());
  pb::AttachPolicyRequest attach;
  attach.set_policy_name("dash");
  attach.set_target(verdict.principal());
  pb::AttachPolicyResponse attached;
  ASSERT_TRUE(Call(&pb::Policy::Stub::AttachPolicy, attach, &attached).ok());
  pb::GetEffectivePoliciesRequest eff;
  eff.set_principal(verdict.principal());
  eff.set_client_id("browser-1");
  pb::GetEffectivePoliciesResponse effective;
  ASSERT_TRUE(Call(&pb::Policy::Stub::GetEffectivePolicies, eff, &effective).ok());
  ASSERT_THAT(effective.effective_policies(), SizeIs(1));
  EXPECT_EQ(effective.effective_policies(0).policy_name(), "dash");

  // Another signature, then the key deactivated: refused, with AWS's words.
  verify.set_signature(std::string(64, '0'));
  ASSERT_TRUE(Call(&pb::Policy::Stub::VerifyAccessKeySignature, verify, &verdict).ok());
  EXPECT_FALSE(verdict.is_authenticated());
  EXPECT_THAT(verdict.deny_reason(), HasSubstr("does not match the signature you provided"));
  pb::UpdateAccessKeyRequest update;
  update.set_access_key_id(key.access_key_id());
  update.set_status(pb::AccessKey::INACTIVE);
  pb::UpdateAccessKeyResponse updated;
  ASSERT_TRUE(Call(&pb::Policy::Stub::UpdateAccessKey, update, &updated).ok());
  verify.set_signature(aws::SigV4Signature(created.secret_access_key(), "20261127", "eu-west-1",
                                           "iotdevicegateway", "another candidate"));
  ASSERT_TRUE(Call(&pb::Policy::Stub::VerifyAccessKeySignature, verify, &verdict).ok());
  EXPECT_FALSE(verdict.is_authenticated());
  EXPECT_THAT(verdict.deny_reason(),
              HasSubstr("security token included in the request is invalid"));
  const std::vector<PolicyEvent> events = store_.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "access_key.deactivated");
  EXPECT_EQ(events.back().access_key, key.access_key_id());
  EXPECT_EQ(events.back().target, "arn:aws:iam::123456789012:user/dashboard");

  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr(Verifications("allow", 1)));
  EXPECT_THAT(metrics, HasSubstr(Verifications("signature_mismatch", 1)));
  EXPECT_THAT(metrics, HasSubstr(Verifications("inactive_key", 1)));
}

TEST_F(PolicyServiceTest, AccessKeyErrorsAreActionable) {
  pb::CreateAccessKeyRequest create;
  create.set_user_name("two keys");
  pb::CreateAccessKeyResponse created;
  grpc::Status s = Call(&pb::Policy::Stub::CreateAccessKey, create, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("userName"));
  create.set_user_name("two-keys");
  ASSERT_TRUE(Call(&pb::Policy::Stub::CreateAccessKey, create, &created).ok());
  ASSERT_TRUE(Call(&pb::Policy::Stub::CreateAccessKey, create, &created).ok());
  s = Call(&pb::Policy::Stub::CreateAccessKey, create, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("AccessKeysPerUser: 2"));

  pb::DeleteAccessKeyRequest del;
  del.set_access_key_id("AKIAAAAAAAAAAAAAAAAA");
  pb::DeleteAccessKeyResponse deleted;
  s = Call(&pb::Policy::Stub::DeleteAccessKey, del, &deleted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("cannot be found"));
  del.set_access_key_id("secret-looking");
  EXPECT_EQ(Call(&pb::Policy::Stub::DeleteAccessKey, del, &deleted).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  del.set_access_key_id(created.access_key().access_key_id());
  ASSERT_TRUE(Call(&pb::Policy::Stub::DeleteAccessKey, del, &deleted).ok());

  // Another sealing key than the one that sealed the secret: an error for the operator, not
  // a refusal of the client.
  const tls::SecretBox other_key = tls::SecretBox::WithKey(std::string(32, 'o'));
  AccessKeyCore wrong(&store_, &other_key, &arns_, &clock_);
  absl::StatusOr<NewAccessKey> made = access_keys_.CreateAccessKey("sealed");
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(wrong.Verify({.access_key_id = made->key.id,
                          .date = "20261127",
                          .region = "eu-west-1",
                          .service = "iotdata",
                          .strings_to_sign = {"x"},
                          .signature = std::string(64, '0')})
                .status()
                .code(),
            absl::StatusCode::kDataLoss);

  // Without a sealing key the service has no access keys, and says how to turn them on.
  AccessKeyCore off(&store_, nullptr, &arns_, &clock_);
  EXPECT_THAT(off.CreateAccessKey("u").status().message(),
              HasSubstr("--access-key-sealing-key-file"));
}

// Temporary credentials: a token bound to its key id and its expiry, the user's policies.
TEST_F(PolicyServiceTest, SessionTokensSignUntilTheyExpire) {
  pb::GetSessionTokenRequest get;
  get.set_user_name("browser");
  get.set_duration_seconds(900);
  pb::GetSessionTokenResponse got;
  ASSERT_TRUE(Call(&pb::Policy::Stub::GetSessionToken, get, &got).ok());
  const pb::SessionCredentials& c = got.credentials();
  EXPECT_THAT(c.access_key_id(), ::testing::MatchesRegex("ASIA[A-Z2-7]{16}"));
  EXPECT_EQ(c.secret_access_key().size(), 40u);
  EXPECT_THAT(c.session_token(), ::testing::MatchesRegex("[A-Za-z0-9_=-]+"));
  EXPECT_EQ(c.expiration().seconds(), absl::ToUnixSeconds(clock_.Now()) + 900);
  EXPECT_EQ(got.user_arn(), "arn:aws:iam::123456789012:user/browser");

  const std::string text = "AWS4-HMAC-SHA256\n20261127T101010Z\nscope\nhash";
  auto verify = [&](const std::string& key_id, const std::string& token,
                    const std::string& secret) {
    pb::VerifyAccessKeySignatureRequest req;
    req.set_access_key_id(key_id);
    req.set_date("20261127");
    req.set_region("eu-west-1");
    req.set_service("iotdevicegateway");
    req.add_strings_to_sign(text);
    req.set_signature(
        aws::SigV4Signature(secret, "20261127", "eu-west-1", "iotdevicegateway", text));
    req.set_session_token(token);
    pb::VerifyAccessKeySignatureResponse resp;
    EXPECT_TRUE(Call(&pb::Policy::Stub::VerifyAccessKeySignature, req, &resp).ok());
    return resp;
  };
  pb::VerifyAccessKeySignatureResponse v =
      verify(c.access_key_id(), c.session_token(), c.secret_access_key());
  EXPECT_TRUE(v.is_authenticated()) << v.deny_reason();
  EXPECT_EQ(v.principal(), "arn:aws:iam::123456789012:user/browser");
  EXPECT_EQ(v.expiration().seconds(), c.expiration().seconds());

  // Another secret; the token of another key id; no token; a token altered.
  EXPECT_FALSE(verify(c.access_key_id(), c.session_token(), "another").is_authenticated());
  pb::GetSessionTokenResponse other;
  ASSERT_TRUE(Call(&pb::Policy::Stub::GetSessionToken, get, &other).ok());
  v = verify(other.credentials().access_key_id(), c.session_token(), c.secret_access_key());
  EXPECT_FALSE(v.is_authenticated());
  EXPECT_THAT(v.deny_reason(), HasSubstr("security token included in the request is invalid"));
  EXPECT_FALSE(verify(c.access_key_id(), "", c.secret_access_key()).is_authenticated());
  std::string altered = c.session_token();
  altered[10] = altered[10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify(c.access_key_id(), altered, c.secret_access_key()).is_authenticated());

  // Expired: refused in AWS's words.
  clock_.Advance(absl::Seconds(900));
  v = verify(c.access_key_id(), c.session_token(), c.secret_access_key());
  EXPECT_FALSE(v.is_authenticated());
  EXPECT_THAT(v.deny_reason(), HasSubstr("security token included in the request is expired"));
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr(Verifications("expired_token", 1)));
  EXPECT_THAT(metrics, HasSubstr(Verifications("invalid_token", 3)));

  // Durations outside 15 minutes to 12 hours are refused.
  get.set_duration_seconds(60);
  grpc::Status s = Call(&pb::Policy::Stub::GetSessionToken, get, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("durationSeconds must be from 900 to 43200"));
}

}  // namespace
}  // namespace fleetcore::policy_service
