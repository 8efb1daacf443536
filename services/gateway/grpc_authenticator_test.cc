// What the gateway asks the CA and policy services at CONNECT, against in-process fakes of
// both: a reconnecting device asks nothing, and a certificate's new client ids share its
// own policies unless the answer could depend on the client id (an attached thing, thing
// variables in the policies, an exclusive thing).
#include "services/gateway/grpc_authenticator.h"

#include <array>
#include <atomic>
#include <future>
#include <set>

#include "absl/synchronization/mutex.h"
#include "common/aws/sigv4.h"
#include "common/tls/x509.h"
#include "fleetcore/ca/v1/ca.grpc.pb.h"
#include "fleetcore/policy/v1/policy.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "services/gateway/gateway_metrics.h"

namespace fleetcore::gateway {
namespace {

namespace capb = ::fleetcore::ca::v1;
namespace ppb = ::fleetcore::policy::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kPrincipal[] =
    "arn:aws:iot:us-east-1:000000000000:cert/"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kOwnPolicy[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
  {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:000000000000:topic/${iot:ClientId}/*"}]})";
constexpr char kThingPolicy[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"*",
   "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]})";
constexpr char kGroupPolicy[] = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:000000000000:topic/group/*"}]})";

class FakeCa final : public capb::Ca::Service {
 public:
  grpc::Status ResolvePeer(grpc::ServerContext*, const capb::ResolvePeerRequest*,
                           capb::ResolvePeerResponse* resp) override {
    ++calls;
    resp->set_result(capb::ALLOWED);
    resp->set_certificate_arn(kPrincipal);
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

// The policy service's answers for kPrincipal: `document` is the certificate's own; a
// client id that names an attached thing also gets kGroupPolicy, as GetEffectivePolicies
// gives a thing's group policies.
class FakePolicy final : public ppb::Policy::Service {
 public:
  grpc::Status GetEffectivePolicies(grpc::ServerContext*,
                                    const ppb::GetEffectivePoliciesRequest* req,
                                    ppb::GetEffectivePoliciesResponse* resp) override {
    ++calls;
    absl::MutexLock l(&mu);
    ppb::EffectivePolicy* own = resp->add_effective_policies();
    own->set_policy_name("own");
    own->set_policy_document(document);
    own->set_policy_version_id("1");
    std::string thing = exclusive.empty() ? req->client_id() : exclusive;
    const bool attached = thing == exclusive || attached_things.contains(thing);
    if (attached || existing_things.contains(thing)) {
      ppb::ThingContext* t = resp->mutable_thing();
      t->set_thing_name(thing);
      t->set_is_attached(attached);
      (*t->mutable_attributes())["site"] = "berlin";
      // Its type's propagating attributes; the thing has no "floor".
      for (const auto& [key, attribute, connection] :
           std::vector<std::array<std::string, 3>>{{"site", "site", ""},
                                                   {"floor", "floor", ""},
                                                   {"client", "", "iot:ClientId"},
                                                   {"thing", "", "iot:Thing.ThingName"}}) {
        auto* a = t->add_propagating_attributes();
        a->set_user_property_key(key);
        a->set_thing_attribute(attribute);
        a->set_connection_attribute(connection);
      }
    }
    if (attached) {
      ppb::EffectivePolicy* group = resp->add_effective_policies();
      group->set_policy_name("group");
      group->set_policy_document(kGroupPolicy);
      group->set_policy_version_id("1");
    }
    for (const auto& name : attached_things) resp->add_principal_things(name);
    if (!exclusive.empty()) {
      resp->add_principal_things(exclusive);
      resp->set_exclusive_thing(true);
    }
    return grpc::Status::OK;
  }

  // SigV4: every signature is the user u's; temporary credentials expire at 2000000000.
  grpc::Status VerifyAccessKeySignature(grpc::ServerContext*,
                                        const ppb::VerifyAccessKeySignatureRequest* req,
                                        ppb::VerifyAccessKeySignatureResponse* resp) override {
    ++verifications;
    absl::MutexLock l(&mu);
    last_verify = *req;
    resp->set_is_authenticated(true);
    resp->set_principal("arn:aws:iam::000000000000:user/u");
    if (!req->session_token().empty()) resp->mutable_expiration()->set_seconds(2000000000);
    return grpc::Status::OK;
  }

  std::atomic<int> calls{0};
  std::atomic<int> verifications{0};
  absl::Mutex mu;
  ppb::VerifyAccessKeySignatureRequest last_verify;
  std::string document = kOwnPolicy;
  std::set<std::string> attached_things;  // attached, not exclusively
  std::set<std::string> existing_things;  // in the registry, not attached
  std::string exclusive;
};

class GrpcAuthenticatorTest : public ::testing::Test {
 protected:
  // One server and channel for every test, kept to the end: gRPC 1.51 may crash when a
  // process takes its callback machinery down and up again (the last channel going).
  static void SetUpTestSuite() {
    ca_ = new FakeCa;
    policy_ = new FakePolicy;
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(ca_);
    b.RegisterService(policy_);
    server_ = b.BuildAndStart().release();
    channel_ = new std::shared_ptr<grpc::Channel>(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ca_->calls = 0;
    policy_->calls = 0;
    policy_->verifications = 0;
    {
      absl::MutexLock l(&policy_->mu);
      policy_->document = kOwnPolicy;
      policy_->attached_things.clear();
      policy_->existing_things.clear();
      policy_->exclusive.clear();
    }
    registry_ = std::make_shared<prometheus::Registry>();
    metrics_ = std::make_unique<GatewayMetrics>(*registry_);
    auth_ = std::make_unique<GrpcAuthenticator>(*channel_, *channel_, "",
                                                aws::Arns("us-east-1", "000000000000"), nullptr,
                                                nullptr, absl::ZeroDuration(), metrics_.get());
    auto key = tls::PrivateKey::Generate(tls::KeyType::kEcP256);
    ASSERT_TRUE(key.ok());
    tls::IssueOptions o{.subject = {{{"CN", "device"}}},
                        .not_before = absl::Now() - absl::Hours(1),
                        .not_after = absl::Now() + absl::Hours(1)};
    auto cert = tls::Issue(key->public_key(), o, nullptr, *key);
    ASSERT_TRUE(cert.ok());
    der_ = cert->Der();
  }
  void TearDown() override { auth_.reset(); }

  IdentityPtr Connect(const std::string& client_id) {
    // The answer may come on a gRPC thread, which may still be returning when this one goes on.
    auto answer = std::make_shared<std::promise<absl::StatusOr<IdentityPtr>>>();
    std::future<absl::StatusOr<IdentityPtr>> future = answer->get_future();
    auth_->Authenticate(
        {.chain_der = {der_}, .certificate_id = tls::Sha256Hex(der_), .client_id = client_id},
        [answer](absl::StatusOr<IdentityPtr> r) { answer->set_value(std::move(r)); });
    absl::StatusOr<IdentityPtr> out = future.get();
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : nullptr;
  }
  bool MayPublish(const IdentityPtr& id, const std::string& topic) {
    return id != nullptr && id->Allows(policy::Action::kPublish, topic);
  }

  static inline FakeCa* ca_ = nullptr;
  static inline FakePolicy* policy_ = nullptr;
  static inline grpc::Server* server_ = nullptr;
  static inline std::shared_ptr<grpc::Channel>* channel_ = nullptr;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<GatewayMetrics> metrics_;
  std::unique_ptr<GrpcAuthenticator> auth_;
  std::string der_;

  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_->Collect()); }
};

TEST_F(GrpcAuthenticatorTest, NewClientIdsOfACertificateShareItsOwnPolicies) {
  IdentityPtr a = Connect("dev-1");
  EXPECT_EQ(ca_->calls, 1);
  EXPECT_EQ(policy_->calls, 1);
  IdentityPtr b = Connect("dev-2");
  EXPECT_EQ(ca_->calls, 1);
  EXPECT_EQ(policy_->calls, 1);
  // Shared, yet each decides with its own client id.
  EXPECT_TRUE(MayPublish(b, "dev-2/temp"));
  EXPECT_FALSE(MayPublish(b, "dev-1/temp"));
  EXPECT_FALSE(b->thing().has_value());
  EXPECT_EQ(b->principal(), kPrincipal);
  EXPECT_TRUE(b->from_certificate());
  Connect("dev-1");
  EXPECT_EQ(policy_->calls, 1);
  const std::string m = Metrics();
  EXPECT_THAT(m, ::testing::HasSubstr(
      R"(fleetcore_gateway_identity_cache_lookups_total{cache="certificate",result="miss"} 1)"));
  EXPECT_THAT(m, ::testing::HasSubstr(
      R"(fleetcore_gateway_identity_cache_lookups_total{cache="certificate",result="hit"} 2)"));
  EXPECT_THAT(m, ::testing::HasSubstr(
      R"(fleetcore_gateway_identity_cache_lookups_total{cache="policies",result="miss"} 1)"));
  EXPECT_THAT(m, ::testing::HasSubstr(
      R"(fleetcore_gateway_identity_cache_lookups_total{cache="policies",result="shared"} 1)"));
  EXPECT_THAT(m, ::testing::HasSubstr(
      R"(fleetcore_gateway_identity_cache_lookups_total{cache="policies",result="hit"} 1)"));
}

TEST_F(GrpcAuthenticatorTest, AClientIdNamingAnAttachedThingIsAskedFor) {
  policy_->attached_things = {"lamp-1"};
  Connect("dev-1");
  IdentityPtr lamp = Connect("lamp-1");
  EXPECT_EQ(policy_->calls, 2);
  ASSERT_TRUE(lamp->thing().has_value());
  EXPECT_TRUE(lamp->thing()->attached);
  EXPECT_TRUE(MayPublish(lamp, "group/x"));
  // Its answer is its own: other client ids still get the certificate's policies.
  IdentityPtr other = Connect("dev-3");
  EXPECT_EQ(policy_->calls, 2);
  EXPECT_FALSE(MayPublish(other, "group/x"));
  Connect("lamp-1");
  EXPECT_EQ(policy_->calls, 2);
}

TEST_F(GrpcAuthenticatorTest, PoliciesReadingTheThingAreAskedForPerClientId) {
  // Some client ids may name a thing (attached or not) whose variables resolve.
  policy_->document = kThingPolicy;
  policy_->existing_things = {"someone-elses"};
  Connect("dev-1");
  IdentityPtr other = Connect("someone-elses");
  EXPECT_EQ(policy_->calls, 2);
  ASSERT_TRUE(other->thing().has_value());
  EXPECT_FALSE(other->thing()->attached);
  EXPECT_FALSE(other->Allows(policy::Action::kConnect, "someone-elses"));
  Connect("dev-2");
  EXPECT_EQ(policy_->calls, 3);
}

TEST_F(GrpcAuthenticatorTest, AnExclusiveThingIsEveryClientIdsThing) {
  policy_->document = kThingPolicy;
  policy_->exclusive = "lamp-9";
  IdentityPtr a = Connect("anything");
  IdentityPtr b = Connect("something-else");
  EXPECT_EQ(policy_->calls, 1);
  ASSERT_TRUE(b->thing().has_value());
  EXPECT_EQ(b->thing()->name, "lamp-9");
  EXPECT_TRUE(b->Allows(policy::Action::kConnect, "something-else"));
  EXPECT_TRUE(MayPublish(b, "group/x"));
}

TEST_F(GrpcAuthenticatorTest, AnAttachedThingsTypeEnrichesItsMessages) {
  using P = mqtt::UserProperty;
  policy_->attached_things = {"lamp-1"};
  policy_->existing_things = {"someone-elses"};
  IdentityPtr lamp = Connect("lamp-1");
  ASSERT_NE(lamp, nullptr);
  EXPECT_THAT(lamp->message_enrichment(),
              ElementsAre(P{"site", "berlin"}, P{"client", "lamp-1"}, P{"thing", "lamp-1"}));
  // A client id naming a thing the certificate is not attached to gets nothing of it.
  IdentityPtr other = Connect("someone-elses");
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->thing().has_value());
  EXPECT_THAT(other->message_enrichment(), IsEmpty());
}

TEST_F(GrpcAuthenticatorTest, AnExclusiveThingEnrichesEachClientIdWithItsOwn) {
  using P = mqtt::UserProperty;
  policy_->exclusive = "lamp-9";
  IdentityPtr a = Connect("anything");
  IdentityPtr b = Connect("something-else");
  EXPECT_EQ(policy_->calls, 1);  // one answer shared, valued for each connection
  ASSERT_NE(b, nullptr);
  EXPECT_THAT(a->message_enrichment(),
              ElementsAre(P{"site", "berlin"}, P{"client", "anything"}, P{"thing", "lamp-9"}));
  EXPECT_THAT(
      b->message_enrichment(),
      ElementsAre(P{"site", "berlin"}, P{"client", "something-else"}, P{"thing", "lamp-9"}));
}

TEST_F(GrpcAuthenticatorTest, InvalidateAsksAgain) {
  Connect("dev-1");
  auth_->Invalidate("");
  {
    absl::MutexLock l(&policy_->mu);
    policy_->attached_things = {"dev-2"};
  }
  IdentityPtr b = Connect("dev-2");
  EXPECT_EQ(policy_->calls, 2);
  EXPECT_TRUE(MayPublish(b, "group/x"));
  // A certificate's change also forgets its ResolvePeer answer.
  auth_->Invalidate(tls::Sha256Hex(der_));
  Connect("dev-2");
  EXPECT_EQ(ca_->calls, 2);
  EXPECT_EQ(policy_->calls, 3);
}

// The SDKs send a base64 signature in the user name percent-encoded or as it is (their
// WebSocket builders never encode it): both are the same signature, '+' included.
// A token that is not UTF-8 once decoded cannot travel to the authorizer: refused here,
// without asking the policy service (it used to fail there as an internal error).
TEST_F(GrpcAuthenticatorTest, CustomAuthorizerParametersThatAreNotUtf8AreRefused) {
  for (const std::string& query :
       {std::string("x-amz-customauthorizer-name=a&token=%FF"),
        std::string("x-amz-customauthorizer-name=%C3%28")}) {
    SCOPED_TRACE(query);
    std::promise<absl::StatusOr<IdentityPtr>> answer;
    auth_->Authenticate({.client_id = "c", .http_headers = std::map<std::string, std::string>{},
                         .http_query = query},
                        [&](absl::StatusOr<IdentityPtr> r) { answer.set_value(std::move(r)); });
    absl::StatusOr<IdentityPtr> r = answer.get_future().get();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("not UTF-8"));
  }
  EXPECT_EQ(policy_->calls, 0);
}

// A WebSocket upgrade presigned with temporary credentials: the request's form and time
// are checked here, the signature and token by the policy service, and the identity ends
// when the credentials expire; a refresh verifies again without the time check.
TEST_F(GrpcAuthenticatorTest, SigV4WithASessionToken) {
  auto credentials = [](absl::Time at) {
    const std::string date = absl::FormatTime("%Y%m%dT%H%M%SZ", at, absl::UTCTimeZone());
    return Credentials{
        .client_id = "browser-1",
        .http_headers = std::map<std::string, std::string>{{"host", "iot.example.com"}},
        .http_query = absl::StrCat(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F",
            date.substr(0, 8), "%2Fus-east-1%2Fiotdevicegateway%2Faws4_request&X-Amz-Date=",
            date, "&X-Amz-SignedHeaders=host&X-Amz-Signature=", std::string(64, '0'),
            "&X-Amz-Security-Token=tok"),
        .sigv4 = true,
        .http_method = "GET",
        .http_path = "/mqtt",
        .http_body_sha256 = aws::Sha256Hex("")};
  };
  auto authenticate = [&](Credentials c) {
    std::promise<absl::StatusOr<IdentityPtr>> answer;
    auth_->Authenticate(std::move(c),
                        [&](absl::StatusOr<IdentityPtr> r) { answer.set_value(std::move(r)); });
    return answer.get_future().get();
  };
  absl::StatusOr<IdentityPtr> id = authenticate(credentials(absl::Now()));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ((*id)->principal(), "arn:aws:iam::000000000000:user/u");
  EXPECT_TRUE((*id)->from_access_key());
  EXPECT_EQ((*id)->expires_at_ms(), int64_t{2000000000} * 1000);
  EXPECT_EQ((*id)->disconnect_after_s(), 24 * 60 * 60);
  EXPECT_EQ(policy_->verifications, 1);
  {
    absl::MutexLock l(&policy_->mu);
    EXPECT_EQ(policy_->last_verify.session_token(), "tok");
    EXPECT_EQ(policy_->last_verify.access_key_id(), "ASIAEXAMPLE");
    // The token signed and not: two candidates (the empty body's hash and UNSIGNED-PAYLOAD
    // each).
    EXPECT_EQ(policy_->last_verify.strings_to_sign_size(), 4);
  }
  // Signed twenty minutes ago: refused before the policy service is asked.
  absl::StatusOr<IdentityPtr> stale = authenticate(credentials(absl::Now() - absl::Minutes(20)));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(stale.status().message()), ::testing::HasSubstr("Signature expired"));
  EXPECT_EQ(policy_->verifications, 1);
  // A refresh (its key or policies changed) verifies again, whatever the time.
  std::promise<absl::StatusOr<IdentityPtr>> refreshed;
  auth_->Refresh(*id, [&](absl::StatusOr<IdentityPtr> r) { refreshed.set_value(std::move(r)); });
  absl::StatusOr<IdentityPtr> again = refreshed.get_future().get();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(policy_->verifications, 2);
  EXPECT_EQ((*again)->expires_at_ms(), int64_t{2000000000} * 1000);
}

TEST(AuthorizerParamsTest, ASignatureReadsTheSameEncodedOrNot) {
  const std::string signature = "ab+c/d==";
  for (const std::string& sent : {std::string("ab%2Bc%2Fd%3D%3D"), signature}) {
    Credentials c;
    c.username = "device?SDK=NodeJSv2&x-amz-customauthorizer-name=tutorial&tokenKeyName=t%201"
                 "&x-amz-customauthorizer-signature=" + sent;
    std::map<std::string, std::string> p = AuthorizerParams(c);
    EXPECT_EQ(p["x-amz-customauthorizer-signature"], signature) << sent;
    EXPECT_EQ(p["x-amz-customauthorizer-name"], "tutorial");
    EXPECT_EQ(p["tokenKeyName"], "t 1");
  }
}

// The user name's values come first, then the HTTP query's, then the headers'.
TEST(AuthorizerParamsTest, UserNameThenQueryThenHeaders) {
  Credentials c;
  c.username = "u?x-amz-customauthorizer-name=from-username";
  c.http_query = "x-amz-customauthorizer-name=from-query&token=q+1";
  c.http_headers = std::map<std::string, std::string>{
      {"x-amz-customauthorizer-name", "from-header"}, {"token", "h"}, {"other", "o"}};
  std::map<std::string, std::string> p = AuthorizerParams(c);
  EXPECT_EQ(p["x-amz-customauthorizer-name"], "from-username");
  EXPECT_EQ(p["token"], "q+1");
  EXPECT_EQ(p["other"], "o");
}

}  // namespace
}  // namespace fleetcore::gateway
