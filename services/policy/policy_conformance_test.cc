// The rules of PolicyCore and AuthorizerCore's definitions, run against the store this binary
// links (the in-memory fake in policy_core_test, Postgres in policy_store_pgtest), so both
// must behave the same.
#include <set>
#include <thread>

#include "common/testing/fake_clock.h"
#include "common/testing/keys.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/aws/sigv4.h"
#include "services/policy/access_key_core.h"
#include "services/policy/authorizer_core.h"
#include "services/policy/fake_thing_directory.h"
#include "services/policy/policy_core.h"
#include "services/policy/store_under_test.h"

namespace fleetcore::policy_service {
namespace {

using ::fleetcore::testing::IsOk;
using ::fleetcore::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;
using Code = absl::StatusCode;
using ::fleetcore::testing::TestKeyPair;

const std::string kCertId(64, 'a');
const std::string kOtherCertId(64, 'b');

std::string Allow(const std::string& action, const std::string& resource) {
  return R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":")" + action +
         R"(","Resource":")" + resource + R"("}]})";
}
std::string Deny(const std::string& action, const std::string& resource) {
  return R"({"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":")" + action +
         R"(","Resource":")" + resource + R"("}]})";
}

class HttpClientNeverCalled final : public http::HttpClient {
 public:
  absl::StatusOr<http::Response> Send(const http::Request&) override {
    ADD_FAILURE() << "the conformance tests do not invoke authorizers";
    return absl::InternalError("unexpected");
  }
};

class PolicyCoreTest : public ::testing::Test {
 protected:
  PolicyCoreTest()
      : sut_(MakeStoreUnderTest()),
        arns_("us-east-1", "123456789012"),
        core_(sut_->store(), &things_, &arns_, &clock_),
        authorizers_(sut_->store(), &http_, &arns_, &clock_) {}

  std::string Cert(const std::string& id = kCertId) { return arns_.Cert(id); }
  std::string Group(const std::string& name) { return arns_.ThingGroup(name); }
  void CreatePolicy(const std::string& name, const std::string& document) {
    ASSERT_OK(core_.CreatePolicy(name, document));
  }
  void Attach(const std::string& name, const std::string& target) {
    ASSERT_OK(core_.AttachPolicy(name, target));
  }
  std::vector<std::string> Names(const std::vector<AttachedPolicy>& policies) {
    std::vector<std::string> out;
    for (const AttachedPolicy& p : policies) out.push_back(p.policy);
    return out;
  }
  // All pages of a listing, page_size at a time.
  template <typename F>
  std::vector<std::string> Collect(F list, int page_size) {
    std::vector<std::string> out;
    PageRequest req{.page_size = page_size};
    for (int pages = 0; pages < 100; ++pages) {
      absl::StatusOr<Page<std::string>> page = list(req);
      EXPECT_OK(page.status());
      if (!page.ok()) break;
      EXPECT_LE(static_cast<int>(page->items.size()), page_size);
      out.insert(out.end(), page->items.begin(), page->items.end());
      if (page->next_marker.empty()) break;
      req.marker = page->next_marker;
    }
    return out;
  }
  // root <- mid <- leaf, with thing "lamp-1" in leaf and the certificate attached to it
  // exclusively.
  void ThreeLevelGroups() {
    things_.AddGroup("root");
    things_.AddGroup("mid", "root");
    things_.AddGroup("leaf", "mid");
    things_.AddThing({.name = "lamp-1", .type_name = "lamp", .attributes = {{"floor", "3"}}});
    things_.AddMember("leaf", "lamp-1");
    things_.Attach(Cert(), "lamp-1", /*exclusive=*/true);
  }

  std::unique_ptr<StoreUnderTest> sut_;
  aws::Arns arns_;
  testing::FakeClock clock_;
  FakeThingDirectory things_;
  HttpClientNeverCalled http_;
  PolicyCore core_;
  AuthorizerCore authorizers_;
};

// ---- policies and versions

TEST_F(PolicyCoreTest, CreateAndGetPolicy) {
  const std::string doc = Allow("iot:Connect", "*");
  ASSERT_OK_AND_ASSIGN(PolicyVersionRecord v, core_.CreatePolicy("dev", doc));
  EXPECT_EQ(v.version, 1);
  ASSERT_OK_AND_ASSIGN(auto got, core_.GetPolicy("dev"));
  EXPECT_EQ(got.first.name, "dev");
  EXPECT_EQ(got.first.default_version, 1);
  EXPECT_EQ(got.first.created_at, clock_.Now());
  EXPECT_EQ(got.second.document, doc);
  EXPECT_THAT(core_.GetPolicy("ghost"), StatusIs(Code::kNotFound, HasSubstr("\"ghost\"")));
}

TEST_F(PolicyCoreTest, CreatePolicyRejectsBadInput) {
  CreatePolicy("dev", Allow("iot:Connect", "*"));
  EXPECT_THAT(core_.CreatePolicy("dev", Allow("iot:Connect", "*")),
              StatusIs(Code::kAlreadyExists, HasSubstr("CreatePolicyVersion")));
  EXPECT_THAT(core_.CreatePolicy("bad name", Allow("iot:Connect", "*")),
              StatusIs(Code::kInvalidArgument, HasSubstr("policyName")));
  EXPECT_THAT(core_.CreatePolicy("", Allow("iot:Connect", "*")), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.CreatePolicy("p", "{not json"),
              StatusIs(Code::kInvalidArgument, HasSubstr("policyDocument")));
  EXPECT_THAT(core_.CreatePolicy("p", Allow("iot:Conect", "*")),
              StatusIs(Code::kInvalidArgument, HasSubstr("iot:Connect")));
  EXPECT_THAT(core_.GetPolicy("p"), StatusIs(Code::kNotFound));
}

TEST_F(PolicyCoreTest, DocumentSizeLimitIgnoresWhitespace) {
  // One statement with many resources: just over 2048 characters besides whitespace.
  auto doc_with = [](int resources, const std::string& pad) {
    std::string doc = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",)" + pad +
                      R"("Action":"iot:Publish","Resource":[)";
    for (int i = 0; i < resources; ++i) {
      if (i > 0) doc += ",";
      doc += "\"arn:aws:iot:us-east-1:123456789012:topic/t" + std::to_string(1000 + i) + "\"";
    }
    return doc + "]}]}";
  };
  int n = 1;
  while (doc_with(n + 1, "").size() <= 2048) ++n;
  ASSERT_LE(doc_with(n, "").size(), 2048u);
  EXPECT_OK(core_.CreatePolicy("fits", doc_with(n, std::string(5000, ' '))));
  EXPECT_THAT(core_.CreatePolicy("too-big", doc_with(n + 1, "")),
              StatusIs(Code::kInvalidArgument, HasSubstr("2048")));
}

TEST_F(PolicyCoreTest, VersionsUpToFiveWithOneDefault) {
  CreatePolicy("dev", Allow("iot:Connect", "*"));
  for (int i = 2; i <= 5; ++i) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_OK_AND_ASSIGN(auto created,
                         core_.CreatePolicyVersion("dev", Allow("iot:Publish", "*"), false));
    EXPECT_EQ(created.first.version, i);
    EXPECT_FALSE(created.second);
  }
  EXPECT_THAT(core_.CreatePolicyVersion("dev", Allow("iot:Publish", "*"), true),
              StatusIs(Code::kResourceExhausted, HasSubstr("DeletePolicyVersion")));
  ASSERT_OK_AND_ASSIGN(auto listed, core_.ListPolicyVersions("dev"));
  EXPECT_THAT(listed.second, SizeIs(5));
  EXPECT_EQ(listed.first.default_version, 1);

  // The default cannot go; another can, and its id is never reused.
  EXPECT_THAT(core_.DeletePolicyVersion("dev", "1"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("SetDefaultPolicyVersion")));
  ASSERT_OK(core_.DeletePolicyVersion("dev", "3"));
  EXPECT_THAT(core_.GetPolicyVersion("dev", "3"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.DeletePolicyVersion("dev", "3"), StatusIs(Code::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto six, core_.CreatePolicyVersion("dev", Deny("iot:*", "*"), true));
  EXPECT_EQ(six.first.version, 6);
  EXPECT_TRUE(six.second);

  ASSERT_OK_AND_ASSIGN(auto current, core_.GetPolicy("dev"));
  EXPECT_EQ(current.first.default_version, 6);
  EXPECT_EQ(current.second.document, Deny("iot:*", "*"));
  const int64_t generation = current.first.generation;

  ASSERT_OK(core_.SetDefaultPolicyVersion("dev", "2"));
  ASSERT_OK_AND_ASSIGN(auto v2, core_.GetPolicyVersion("dev", "2"));
  EXPECT_EQ(v2.first.default_version, 2);
  EXPECT_EQ(v2.second.document, Allow("iot:Publish", "*"));
  EXPECT_GT(v2.first.generation, generation);
  ASSERT_OK(core_.DeletePolicyVersion("dev", "1"));  // no longer the default

  EXPECT_THAT(core_.SetDefaultPolicyVersion("dev", "9"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.SetDefaultPolicyVersion("dev", "two"), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.GetPolicyVersion("dev", "0"), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.CreatePolicyVersion("ghost", Allow("iot:Connect", "*"), true),
              StatusIs(Code::kNotFound));
}

TEST_F(PolicyCoreTest, DeletePolicyNeedsNoTargetsAndOnlyTheDefaultVersion) {
  CreatePolicy("dev", Allow("iot:Connect", "*"));
  Attach("dev", Cert());
  EXPECT_THAT(core_.DeletePolicy("dev"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("attached to 1 target")));
  ASSERT_OK(core_.DetachPolicy("dev", Cert()));
  ASSERT_OK(core_.CreatePolicyVersion("dev", Allow("iot:Publish", "*"), false).status());
  EXPECT_THAT(core_.DeletePolicy("dev"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("DeletePolicyVersion")));
  ASSERT_OK(core_.DeletePolicyVersion("dev", "2"));
  ASSERT_OK(core_.DeletePolicy("dev"));
  EXPECT_THAT(core_.GetPolicy("dev"), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.DeletePolicy("dev"), StatusIs(Code::kNotFound));
  // The name can be used again, from version 1.
  ASSERT_OK_AND_ASSIGN(PolicyVersionRecord again, core_.CreatePolicy("dev", Allow("iot:*", "*")));
  EXPECT_EQ(again.version, 1);
}

TEST_F(PolicyCoreTest, ListPoliciesPagesInNameOrder) {
  for (const char* name : {"g", "a", "e", "c", "b", "f", "d"}) {
    CreatePolicy(name, Allow("iot:Connect", "*"));
  }
  EXPECT_THAT(Collect([&](const PageRequest& r) { return core_.ListPolicies(r); }, 3),
              ElementsAre("a", "b", "c", "d", "e", "f", "g"));
  EXPECT_THAT(core_.ListPolicies({.marker = "garbage"}), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.ListPolicies({.page_size = 251}), StatusIs(Code::kInvalidArgument));
}

// ---- attachments

TEST_F(PolicyCoreTest, AttachToCertificatesUpToTheLimit) {
  for (int i = 0; i < 11; ++i) CreatePolicy("p" + std::to_string(i), Allow("iot:Connect", "*"));
  for (int i = 0; i < 10; ++i) Attach("p" + std::to_string(i), Cert());
  Attach("p0", Cert());  // again: nothing changes
  EXPECT_THAT(core_.AttachPolicy("p10", Cert()),
              StatusIs(Code::kResourceExhausted, HasSubstr("10 policies")));
  Attach("p10", Cert(kOtherCertId));  // the limit is per certificate
  ASSERT_OK(core_.DetachPolicy("p0", Cert()));
  ASSERT_OK(core_.DetachPolicy("p0", Cert()));  // detaching twice is fine
  Attach("p10", Cert());
  EXPECT_THAT(
      Collect([&](const PageRequest& r) { return core_.ListAttachedPolicies(Cert(), false, r); },
              4),
      ElementsAre("p1", "p10", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"));
  EXPECT_THAT(
      Collect([&](const PageRequest& r) { return core_.ListTargetsForPolicy("p10", r); }, 1),
      UnorderedElementsAre(Cert(), Cert(kOtherCertId)));
}

TEST_F(PolicyCoreTest, AttachChecksPolicyAndTarget) {
  CreatePolicy("dev", Allow("iot:Connect", "*"));
  EXPECT_THAT(core_.AttachPolicy("ghost", Cert()), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.AttachPolicy("dev", "lamp-1"),
              StatusIs(Code::kInvalidArgument, HasSubstr("certificate ARN")));
  EXPECT_THAT(core_.AttachPolicy("dev", arns_.Cert("not-hex")), StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(core_.AttachPolicy("dev", "arn:aws:iot:eu-west-1:123456789012:cert/" + kCertId),
              StatusIs(Code::kInvalidArgument));  // another region
  EXPECT_THAT(core_.AttachPolicy("dev", Group("nowhere")),
              StatusIs(Code::kNotFound, HasSubstr("nowhere")));
  things_.AddDynamicGroup("leased");  // AWS attaches no policies to dynamic groups
  EXPECT_THAT(core_.AttachPolicy("dev", Group("leased")),
              StatusIs(Code::kInvalidArgument, HasSubstr("dynamic")));
  things_.FailWith(absl::UnavailableError("registry down"));
  things_.AddGroup("g");
  EXPECT_THAT(core_.AttachPolicy("dev", Group("g")), StatusIs(Code::kUnavailable));
  EXPECT_THAT(core_.ListTargetsForPolicy("ghost", {}), StatusIs(Code::kNotFound));
}

TEST_F(PolicyCoreTest, ThingGroupsTakeTwoPolicies) {
  things_.AddGroup("g");
  for (const char* p : {"a", "b", "c"}) CreatePolicy(p, Allow("iot:Connect", "*"));
  Attach("a", Group("g"));
  Attach("b", Group("g"));
  EXPECT_THAT(core_.AttachPolicy("c", Group("g")),
              StatusIs(Code::kResourceExhausted, HasSubstr("thing group")));
}

TEST_F(PolicyCoreTest, RecursiveListingFollowsGroupAncestorsAndCertificateThings) {
  ThreeLevelGroups();
  for (const char* p : {"on-root", "on-mid", "on-leaf", "on-cert"}) {
    CreatePolicy(p, Allow("iot:Connect", "*"));
  }
  Attach("on-root", Group("root"));
  Attach("on-mid", Group("mid"));
  Attach("on-leaf", Group("leaf"));
  Attach("on-cert", Cert());
  auto list = [&](const std::string& target, bool recursive) {
    return Collect(
        [&](const PageRequest& r) { return core_.ListAttachedPolicies(target, recursive, r); }, 2);
  };
  EXPECT_THAT(list(Group("leaf"), false), ElementsAre("on-leaf"));
  EXPECT_THAT(list(Group("leaf"), true), ElementsAre("on-leaf", "on-mid", "on-root"));
  EXPECT_THAT(list(Group("mid"), true), ElementsAre("on-mid", "on-root"));
  EXPECT_THAT(list(Cert(), false), ElementsAre("on-cert"));
  EXPECT_THAT(list(Cert(), true), ElementsAre("on-cert", "on-leaf", "on-mid", "on-root"));
}

// ---- effective policies

TEST_F(PolicyCoreTest, EffectivePoliciesInheritThroughThreeGroupLevels) {
  ThreeLevelGroups();
  for (const char* p : {"on-root", "on-mid", "on-leaf", "on-cert", "elsewhere"}) {
    CreatePolicy(p, Allow("iot:Connect", "*"));
  }
  Attach("on-root", Group("root"));
  Attach("on-mid", Group("mid"));
  Attach("on-leaf", Group("leaf"));
  Attach("on-cert", Cert());
  Attach("on-root", Cert());  // attached twice: counted once, as the certificate's
  Attach("elsewhere", Cert(kOtherCertId));
  ASSERT_OK(core_.CreatePolicyVersion("on-mid", Allow("iot:Publish", "*"), true).status());

  ASSERT_OK_AND_ASSIGN(EffectivePolicies e, core_.GetEffectivePolicies(Cert(), "", "anything"));
  EXPECT_THAT(Names(e.policies), UnorderedElementsAre("on-root", "on-mid", "on-leaf", "on-cert"));
  for (const AttachedPolicy& p : e.policies) {
    if (p.policy == "on-mid") {
      EXPECT_EQ(p.version, 2);
      EXPECT_EQ(p.document, Allow("iot:Publish", "*"));
      EXPECT_EQ(p.target, Group("mid"));
    }
    if (p.policy == "on-root") {
      EXPECT_EQ(p.target, Cert());
    }
  }
  ASSERT_TRUE(e.thing.has_value());
  EXPECT_EQ(e.thing->name, "lamp-1");
  EXPECT_EQ(e.thing->type_name, "lamp");
  EXPECT_TRUE(e.thing->attached);
  EXPECT_EQ(e.thing->attributes.at("floor"), "3");
}

TEST_F(PolicyCoreTest, EffectivePoliciesFindTheThingByNameOrClientId) {
  things_.AddGroup("g");
  const std::vector<policy::PropagatingAttribute> enrich = {
      {.user_property_key = "site", .thing_attribute = "site"}};
  things_.AddThing({.name = "lamp-2", .type_name = "lamp", .propagating_attributes = enrich});
  things_.AddMember("g", "lamp-2");
  CreatePolicy("group-policy", Allow("iot:Connect", "*"));
  CreatePolicy("cert-policy", Allow("iot:Connect", "*"));
  Attach("group-policy", Group("g"));
  Attach("cert-policy", Cert());

  // No thing attached to the certificate: the client id names the thing, whose variables
  // resolve (not attached), but whose groups' policies are not the certificate's.
  ASSERT_OK_AND_ASSIGN(EffectivePolicies by_client,
                       core_.GetEffectivePolicies(Cert(), "", "lamp-2"));
  EXPECT_THAT(Names(by_client.policies), ElementsAre("cert-policy"));
  ASSERT_TRUE(by_client.thing.has_value());
  EXPECT_EQ(by_client.thing->name, "lamp-2");
  EXPECT_EQ(by_client.thing->propagating_attributes, enrich);  // the gateway's to apply
  EXPECT_FALSE(by_client.thing->attached);
  EXPECT_THAT(by_client.principal_things, IsEmpty());
  EXPECT_FALSE(by_client.exclusive_thing);

  // Attached: the groups' policies apply, by client id or by name.
  things_.Attach(Cert(), "lamp-2");
  ASSERT_OK_AND_ASSIGN(by_client, core_.GetEffectivePolicies(Cert(), "", "lamp-2"));
  EXPECT_THAT(Names(by_client.policies), UnorderedElementsAre("group-policy", "cert-policy"));
  EXPECT_TRUE(by_client.thing->attached);
  EXPECT_THAT(by_client.principal_things, ElementsAre("lamp-2"));
  ASSERT_OK_AND_ASSIGN(EffectivePolicies by_name, core_.GetEffectivePolicies(Cert(), "lamp-2", ""));
  EXPECT_THAT(Names(by_name.policies), UnorderedElementsAre("group-policy", "cert-policy"));

  // Another client id of the same certificate: its own policies only.
  ASSERT_OK_AND_ASSIGN(EffectivePolicies none, core_.GetEffectivePolicies(Cert(), "", "other"));
  EXPECT_THAT(Names(none.policies), ElementsAre("cert-policy"));
  EXPECT_FALSE(none.thing.has_value());
  EXPECT_THAT(none.principal_things, ElementsAre("lamp-2"));

  EXPECT_THAT(core_.GetEffectivePolicies(Cert(), "ghost", ""), StatusIs(Code::kNotFound));
  EXPECT_THAT(core_.GetEffectivePolicies(Group("g"), "", ""), StatusIs(Code::kInvalidArgument));
  things_.FailWith(absl::UnavailableError("registry down"));
  EXPECT_THAT(core_.GetEffectivePolicies(Cert(), "", "lamp-2"), StatusIs(Code::kUnavailable));
}

// ---- TestAuthorization

TEST_F(PolicyCoreTest, TestAuthorizationUsesInheritedPoliciesAndThingVariables) {
  ThreeLevelGroups();
  CreatePolicy("root-topics", Allow("iot:Publish",
                                    "arn:aws:iot:us-east-1:123456789012:topic/things/"
                                    "${iot:Connection.Thing.ThingName}/*"));
  Attach("root-topics", Group("root"));
  CreatePolicy("no-admin", Deny("iot:Publish", "arn:aws:iot:us-east-1:123456789012:topic/admin/*"));
  Attach("no-admin", Cert());
  const std::string topic = "arn:aws:iot:us-east-1:123456789012:topic/";

  ASSERT_OK_AND_ASSIGN(std::vector<AuthResultOutput> r,
                       core_.TestAuthorization(
                           {.principal = Cert(),
                            .client_id = "client",
                            .auth_infos = {{policy::Action::kPublish, {topic + "things/lamp-1/t"}},
                                           {policy::Action::kPublish, {topic + "things/lamp-2/t"}},
                                           {policy::Action::kPublish,
                                            {topic + "things/lamp-1/t", topic + "admin/x"}}}}));
  ASSERT_THAT(r, SizeIs(3));
  EXPECT_EQ(r[0].decision, policy::Effect::kAllow);
  EXPECT_THAT(r[0].allowed, ElementsAre("root-topics"));
  EXPECT_THAT(r[0].explanations, ElementsAre(HasSubstr("allowed by policy \"root-topics\"")));
  EXPECT_EQ(r[1].decision, policy::Effect::kImplicitDeny);
  EXPECT_THAT(r[1].implicit_deny, UnorderedElementsAre("root-topics", "no-admin"));
  EXPECT_EQ(r[2].decision, policy::Effect::kExplicitDeny);
  EXPECT_THAT(r[2].explicit_deny, ElementsAre("no-admin"));
  EXPECT_THAT(r[2].allowed, ElementsAre("root-topics"));
  EXPECT_THAT(r[2].explanations, SizeIs(2));
}

TEST_F(PolicyCoreTest, TestAuthorizationReportsMissingValuesAndAddsOrSkipsPolicies) {
  CreatePolicy("thing-topics", Allow("iot:Publish",
                                     "arn:aws:iot:us-east-1:123456789012:topic/"
                                     "${iot:Connection.Thing.ThingName}"));
  CreatePolicy("everything", Allow("iot:*", "*"));
  Attach("thing-topics", Cert());
  const std::string resource = "arn:aws:iot:us-east-1:123456789012:topic/lamp-9";

  ASSERT_OK_AND_ASSIGN(
      auto r, core_.TestAuthorization({.principal = Cert(),
                                       .client_id = "lamp-9",
                                       .auth_infos = {{policy::Action::kPublish, {resource}}}}));
  EXPECT_EQ(r[0].decision, policy::Effect::kImplicitDeny);
  EXPECT_THAT(r[0].missing_values, ElementsAre("iot:Connection.Thing.ThingName"));

  ASSERT_OK_AND_ASSIGN(
      r, core_.TestAuthorization({.principal = Cert(),
                                  .auth_infos = {{policy::Action::kPublish, {resource}}},
                                  .policies_to_add = {"everything"}}));
  EXPECT_EQ(r[0].decision, policy::Effect::kAllow);
  EXPECT_THAT(r[0].allowed, ElementsAre("everything"));

  Attach("everything", Cert());
  ASSERT_OK_AND_ASSIGN(
      r, core_.TestAuthorization({.principal = Cert(),
                                  .auth_infos = {{policy::Action::kPublish, {resource}}},
                                  .policies_to_skip = {"everything"}}));
  EXPECT_EQ(r[0].decision, policy::Effect::kImplicitDeny);
  EXPECT_THAT(r[0].implicit_deny, ElementsAre("thing-topics"));

  EXPECT_THAT(core_.TestAuthorization({.principal = Cert(),
                                       .auth_infos = {{policy::Action::kPublish, {resource}}},
                                       .policies_to_add = {"ghost"}}),
              StatusIs(Code::kNotFound, HasSubstr("ghost")));
}

TEST_F(PolicyCoreTest, TestAuthorizationForAThingGroup) {
  things_.AddGroup("parent");
  things_.AddGroup("child", "parent");
  CreatePolicy("connect", Allow("iot:Connect", "*"));
  Attach("connect", Group("parent"));
  ASSERT_OK_AND_ASSIGN(auto r,
                       core_.TestAuthorization(
                           {.principal = Group("child"),
                            .auth_infos = {{policy::Action::kConnect,
                                            {"arn:aws:iot:us-east-1:123456789012:client/c1"}}}}));
  EXPECT_EQ(r[0].decision, policy::Effect::kAllow);
}

TEST_F(PolicyCoreTest, TestAuthorizationRejectsBadRequests) {
  const std::string client = "arn:aws:iot:us-east-1:123456789012:client/c1";
  EXPECT_THAT(core_.TestAuthorization({.principal = Cert()}),
              StatusIs(Code::kInvalidArgument, HasSubstr("authInfos")));
  EXPECT_THAT(core_.TestAuthorization(
                  {.principal = "me", .auth_infos = {{policy::Action::kConnect, {client}}}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("principal")));
  EXPECT_THAT(core_.TestAuthorization(
                  {.principal = Cert(), .auth_infos = {{policy::Action::kConnect, {"c1"}}}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("client/NAME")));
  EXPECT_THAT(core_.TestAuthorization(
                  {.principal = Cert(), .auth_infos = {{policy::Action::kConnect, {}}}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("resource")));
}

// ---- events

TEST_F(PolicyCoreTest, ChangesAnnounceWhatTheyAffect) {
  CreatePolicy("dev", Allow("iot:Connect", "*"));
  Attach("dev", Cert());
  ASSERT_OK(core_.CreatePolicyVersion("dev", Allow("iot:*", "*"), true).status());
  ASSERT_OK(core_.DetachPolicy("dev", Cert()));
  // Failed changes announce nothing.
  EXPECT_THAT(core_.AttachPolicy("ghost", Cert()), StatusIs(Code::kNotFound));
  std::vector<PolicyEvent> events = sut_->WaitForEvents(4);
  ASSERT_THAT(events, SizeIs(4));
  EXPECT_EQ(events[0].type, "policy.created");
  EXPECT_EQ(events[1].type, "policy.attached");
  EXPECT_EQ(events[1].policy, "dev");
  EXPECT_EQ(events[1].target, Cert());
  EXPECT_EQ(events[2].type, "policy.updated");
  EXPECT_EQ(events[3].type, "policy.detached");
}

// ---- concurrency

TEST_F(PolicyCoreTest, ConcurrentAttachmentsRespectTheLimit) {
  for (int i = 0; i < 20; ++i) CreatePolicy("p" + std::to_string(i), Allow("iot:Connect", "*"));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, exhausted{0};
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      absl::Status s = core_.AttachPolicy("p" + std::to_string(i), Cert());
      if (s.ok()) ++ok;
      if (s.code() == Code::kResourceExhausted) ++exhausted;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(exhausted.load(), 10);
  EXPECT_THAT(
      Collect([&](const PageRequest& r) { return core_.ListAttachedPolicies(Cert(), false, r); },
              250),
      SizeIs(10));
}

// ---- authorizer definitions

class AuthorizerDefinitionTest : public PolicyCoreTest {
 protected:
  Authorizer Make(const std::string& name) {
    return {.name = name,
            .function_url = "http://127.0.0.1:9/authorize",
            .token_key_name = "x-token",
            .public_keys = {{"k1", keys_.public_pem}}};
  }
  static const TestKeyPair& Key() {
    static const TestKeyPair key = TestKeyPair::Rsa(2048);
    return key;
  }
  const TestKeyPair& keys_ = Key();
};

TEST_F(AuthorizerDefinitionTest, CreateDescribeUpdateDelete) {
  ASSERT_OK_AND_ASSIGN(Authorizer created, authorizers_.CreateAuthorizer(Make("auth-1")));
  EXPECT_TRUE(created.active);
  ASSERT_OK_AND_ASSIGN(Authorizer got, authorizers_.DescribeAuthorizer("auth-1"));
  EXPECT_EQ(got.function_url, "http://127.0.0.1:9/authorize");
  EXPECT_EQ(got.token_key_name, "x-token");
  EXPECT_EQ(got.public_keys.at("k1"), keys_.public_pem);
  EXPECT_EQ(got.created_at, clock_.Now());
  EXPECT_FALSE(got.is_default);

  clock_.Advance(absl::Minutes(1));
  ASSERT_OK_AND_ASSIGN(
      Authorizer updated,
      authorizers_.UpdateAuthorizer(
          {.name = "auth-1", .function_url = "https://auth.example/x", .active = false}));
  EXPECT_FALSE(updated.active);
  EXPECT_EQ(updated.token_key_name, "x-token");  // unchanged
  ASSERT_OK_AND_ASSIGN(got, authorizers_.DescribeAuthorizer("auth-1"));
  EXPECT_EQ(got.function_url, "https://auth.example/x");
  EXPECT_FALSE(got.active);
  EXPECT_EQ(got.updated_at, clock_.Now());
  EXPECT_EQ(got.created_at, clock_.Now() - absl::Minutes(1));

  ASSERT_OK(authorizers_.DeleteAuthorizer("auth-1"));
  EXPECT_THAT(authorizers_.DescribeAuthorizer("auth-1"), StatusIs(Code::kNotFound));
  EXPECT_THAT(authorizers_.DeleteAuthorizer("auth-1"), StatusIs(Code::kNotFound));
  EXPECT_THAT(authorizers_.UpdateAuthorizer({.name = "auth-1", .active = true}),
              StatusIs(Code::kNotFound));
}

TEST_F(AuthorizerDefinitionTest, CreateValidatesEveryField) {
  ASSERT_OK(authorizers_.CreateAuthorizer(Make("auth-1")).status());
  EXPECT_THAT(authorizers_.CreateAuthorizer(Make("auth-1")), StatusIs(Code::kAlreadyExists));
  EXPECT_THAT(authorizers_.CreateAuthorizer(Make("bad name")), StatusIs(Code::kInvalidArgument));
  Authorizer a = Make("a2");
  a.function_url = "ftp://x";
  EXPECT_THAT(authorizers_.CreateAuthorizer(a),
              StatusIs(Code::kInvalidArgument, HasSubstr("authorizerFunctionArn")));
  a = Make("a2");
  a.public_keys.clear();
  EXPECT_THAT(authorizers_.CreateAuthorizer(a),
              StatusIs(Code::kInvalidArgument, HasSubstr("signingDisabled")));
  a.signing_disabled = true;
  a.token_key_name.clear();
  EXPECT_OK(authorizers_.CreateAuthorizer(a).status());  // no signing: no keys, no token name
  a = Make("a3");
  a.public_keys = {{"k", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}};
  EXPECT_THAT(authorizers_.CreateAuthorizer(a),
              StatusIs(Code::kInvalidArgument, HasSubstr("tokenSigningPublicKeys[\"k\"]")));
  a.public_keys = {{"k", TestKeyPair::Rsa(1024).public_pem}};
  EXPECT_THAT(authorizers_.CreateAuthorizer(a),
              StatusIs(Code::kInvalidArgument, HasSubstr("2048 bits")));
  a.public_keys = {{"k", TestKeyPair::Ec().public_pem}};
  EXPECT_THAT(authorizers_.CreateAuthorizer(a), StatusIs(Code::kInvalidArgument, HasSubstr("RSA")));
  a = Make("a4");
  a.token_key_name = "has space";
  EXPECT_THAT(authorizers_.CreateAuthorizer(a),
              StatusIs(Code::kInvalidArgument, HasSubstr("tokenKeyName")));
  EXPECT_THAT(authorizers_.UpdateAuthorizer(
                  {.name = "auth-1", .public_keys = std::map<std::string, std::string>{}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("emptied")));
}

TEST_F(AuthorizerDefinitionTest, DefaultAuthorizer) {
  EXPECT_THAT(authorizers_.DescribeDefaultAuthorizer(), StatusIs(Code::kNotFound));
  ASSERT_OK(authorizers_.CreateAuthorizer(Make("a1")).status());
  ASSERT_OK(authorizers_.CreateAuthorizer(Make("a2")).status());
  EXPECT_THAT(authorizers_.SetDefaultAuthorizer("ghost"), StatusIs(Code::kNotFound));
  ASSERT_OK(authorizers_.SetDefaultAuthorizer("a1").status());
  ASSERT_OK_AND_ASSIGN(Authorizer d, authorizers_.DescribeDefaultAuthorizer());
  EXPECT_EQ(d.name, "a1");
  EXPECT_TRUE(d.is_default);
  EXPECT_THAT(authorizers_.DeleteAuthorizer("a1"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("default")));
  ASSERT_OK(authorizers_.SetDefaultAuthorizer("a2").status());
  ASSERT_OK_AND_ASSIGN(d, authorizers_.DescribeDefaultAuthorizer());
  EXPECT_EQ(d.name, "a2");
  ASSERT_OK_AND_ASSIGN(Authorizer a1, authorizers_.DescribeAuthorizer("a1"));
  EXPECT_FALSE(a1.is_default);
  ASSERT_OK(authorizers_.DeleteAuthorizer("a1"));
}

TEST_F(AuthorizerDefinitionTest, ListByStatusInPages) {
  for (const char* n : {"c", "a", "d", "b"})
    ASSERT_OK(authorizers_.CreateAuthorizer(Make(n)).status());
  ASSERT_OK(authorizers_.UpdateAuthorizer({.name = "b", .active = false}).status());
  auto names = [&](std::optional<bool> active) {
    std::vector<std::string> out;
    PageRequest req{.page_size = 1};
    for (int i = 0; i < 10; ++i) {
      auto page = authorizers_.ListAuthorizers(active, req);
      EXPECT_OK(page.status());
      if (!page.ok()) break;
      for (const Authorizer& a : page->items) out.push_back(a.name);
      if (page->next_marker.empty()) break;
      req.marker = page->next_marker;
    }
    return out;
  };
  EXPECT_THAT(names(std::nullopt), ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(names(true), ElementsAre("a", "c", "d"));
  EXPECT_THAT(names(false), ElementsAre("b"));
}

TEST_F(AuthorizerDefinitionTest, ActiveAuthorizersAreLimited) {
  AuthorizerCore limited(sut_->store(), &http_, &arns_, &clock_,
                         {.max_authorizers = 3, .max_active = 2});
  ASSERT_OK(limited.CreateAuthorizer(Make("a")).status());
  ASSERT_OK(limited.CreateAuthorizer(Make("b")).status());
  EXPECT_THAT(limited.CreateAuthorizer(Make("c")),
              StatusIs(Code::kResourceExhausted, HasSubstr("INACTIVE")));
  Authorizer inactive = Make("c");
  inactive.active = false;
  ASSERT_OK(limited.CreateAuthorizer(inactive).status());
  EXPECT_THAT(limited.UpdateAuthorizer({.name = "c", .active = true}),
              StatusIs(Code::kResourceExhausted));
  EXPECT_THAT(limited.CreateAuthorizer(Make("d")), StatusIs(Code::kResourceExhausted));
  ASSERT_OK(limited.UpdateAuthorizer({.name = "a", .active = false}).status());
  ASSERT_OK(limited.UpdateAuthorizer({.name = "c", .active = true}).status());
}

TEST_F(AuthorizerDefinitionTest, ChangesAnnounceTheAuthorizer) {
  ASSERT_OK(authorizers_.CreateAuthorizer(Make("a")).status());
  ASSERT_OK(authorizers_.UpdateAuthorizer({.name = "a", .active = false}).status());
  ASSERT_OK(authorizers_.DeleteAuthorizer("a"));
  std::vector<PolicyEvent> events = sut_->WaitForEvents(3);
  ASSERT_THAT(events, SizeIs(3));
  EXPECT_EQ(events[0].type, "authorizer.created");
  EXPECT_EQ(events[1].type, "authorizer.updated");
  EXPECT_EQ(events[2].type, "authorizer.deleted");
  for (const PolicyEvent& e : events) EXPECT_EQ(e.authorizer, "a");
}

// ---- access keys

TEST_F(PolicyCoreTest, AccessKeysAreStoredSealedListedByUserAndAnnounced) {
  const tls::SecretBox box = tls::SecretBox::WithKey(std::string(32, 's'));
  AccessKeyCore keys(sut_->store(), &box, &arns_, &clock_);
  absl::StatusOr<NewAccessKey> a = keys.CreateAccessKey("alice");
  ASSERT_OK(a.status());
  absl::StatusOr<NewAccessKey> a2 = keys.CreateAccessKey("alice");
  ASSERT_OK(a2.status());
  EXPECT_THAT(keys.CreateAccessKey("alice").status(), StatusIs(Code::kResourceExhausted));
  absl::StatusOr<NewAccessKey> b = keys.CreateAccessKey("bob");
  ASSERT_OK(b.status());

  absl::StatusOr<std::optional<AccessKey>> stored = sut_->store()->GetAccessKey(a->key.id);
  ASSERT_OK(stored.status());
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->user_name, "alice");
  EXPECT_THAT((*stored)->sealed_secret, ::testing::Not(HasSubstr(a->secret)));
  EXPECT_THAT(box.Open((*stored)->sealed_secret, a->key.id), IsOk());

  auto ids = [&](absl::string_view user, int page_size) {
    std::vector<std::string> out;
    PageRequest req{.page_size = page_size};
    for (int pages = 0; pages < 10; ++pages) {
      absl::StatusOr<Page<AccessKey>> page = keys.ListAccessKeys(user, req);
      EXPECT_OK(page.status());
      if (!page.ok()) break;
      for (const AccessKey& k : page->items) {
        EXPECT_TRUE(k.sealed_secret.empty());
        out.push_back(k.id);
      }
      if (page->next_marker.empty()) break;
      req.marker = page->next_marker;
    }
    return out;
  };
  EXPECT_THAT(ids("alice", 1), UnorderedElementsAre(a->key.id, a2->key.id));
  EXPECT_THAT(ids("", 2), UnorderedElementsAre(a->key.id, a2->key.id, b->key.id));

  // A signature by the secret verifies until the key is deactivated; deleted, it is gone.
  const std::string signed_text = "AWS4-HMAC-SHA256\n20261127T000000Z\nscope\nhash";
  SignatureCheck check{.access_key_id = a->key.id,
                       .date = "20261127",
                       .region = "us-east-1",
                       .service = "iotdevicegateway",
                       .strings_to_sign = {signed_text},
                       .signature = aws::SigV4Signature(a->secret, "20261127", "us-east-1",
                                                        "iotdevicegateway", signed_text)};
  absl::StatusOr<SignatureVerdict> v = keys.Verify(check);
  ASSERT_OK(v.status());
  EXPECT_TRUE(v->authenticated);
  EXPECT_EQ(v->principal, "arn:aws:iam::123456789012:user/alice");
  ASSERT_OK(keys.UpdateAccessKey(a->key.id, false));
  v = keys.Verify(check);
  ASSERT_OK(v.status());
  EXPECT_FALSE(v->authenticated);
  EXPECT_EQ(v->result, "inactive_key");
  ASSERT_OK(keys.DeleteAccessKey(a->key.id));
  EXPECT_THAT(keys.DeleteAccessKey(a->key.id), StatusIs(Code::kNotFound));
  v = keys.Verify(check);
  ASSERT_OK(v.status());
  EXPECT_EQ(v->result, "unknown_key");

  std::vector<PolicyEvent> events = sut_->WaitForEvents(5);
  ASSERT_THAT(events, SizeIs(5));
  EXPECT_EQ(events[3].type, "access_key.deactivated");
  EXPECT_EQ(events[3].access_key, a->key.id);
  EXPECT_EQ(events[3].target, "arn:aws:iam::123456789012:user/alice");
  EXPECT_EQ(events[4].type, "access_key.deleted");

  // Policies attach to the user's ARN, as to a certificate's.
  CreatePolicy("dash", Allow("iot:Connect", "*"));
  Attach("dash", "arn:aws:iam::123456789012:user/alice");
  absl::StatusOr<EffectivePolicies> effective =
      core_.GetEffectivePolicies("arn:aws:iam::123456789012:user/alice", "", "browser");
  ASSERT_OK(effective.status());
  ASSERT_THAT(effective->policies, SizeIs(1));
  EXPECT_EQ(effective->policies[0].policy, "dash");
  EXPECT_THAT(core_.AttachPolicy("dash", "arn:aws:iam::999999999999:user/alice"),
              StatusIs(Code::kInvalidArgument, HasSubstr("access-key user's ARN")));
}

// Rotating the sealing key: a secret the previous key sealed still verifies, and is sealed
// again with the current key by its holder's signature (not by a wrong one).
TEST_F(PolicyCoreTest, ARotatedSealingKeyResealsSecretsAsTheyAreUsed) {
  const tls::SecretBox old_key = tls::SecretBox::WithKey(std::string(32, 'o'));
  AccessKeyCore before(sut_->store(), &old_key, &arns_, &clock_);
  absl::StatusOr<NewAccessKey> k = before.CreateAccessKey("rotating");
  ASSERT_OK(k.status());
  const tls::SecretBox rotated =
      tls::SecretBox::WithKey(std::string(32, 'n'), {std::string(32, 'o')});
  AccessKeyCore after(sut_->store(), &rotated, &arns_, &clock_);
  const std::string text = "AWS4-HMAC-SHA256\n20261127T000000Z\nscope\nhash";
  SignatureCheck check{.access_key_id = k->key.id,
                       .date = "20261127",
                       .region = "us-east-1",
                       .service = "iotdata",
                       .strings_to_sign = {text},
                       .signature = std::string(64, '0')};
  absl::StatusOr<SignatureVerdict> v = after.Verify(check);
  ASSERT_OK(v.status());
  EXPECT_FALSE(v->authenticated);
  EXPECT_FALSE(v->resealed);
  check.signature = aws::SigV4Signature(k->secret, "20261127", "us-east-1", "iotdata", text);
  v = after.Verify(check);
  ASSERT_OK(v.status());
  EXPECT_TRUE(v->authenticated);
  EXPECT_TRUE(v->resealed);
  // Now the current key alone opens it.
  const tls::SecretBox new_only = tls::SecretBox::WithKey(std::string(32, 'n'));
  AccessKeyCore later(sut_->store(), &new_only, &arns_, &clock_);
  v = later.Verify(check);
  ASSERT_OK(v.status());
  EXPECT_TRUE(v->authenticated);
  EXPECT_FALSE(v->resealed);
}

}  // namespace
}  // namespace fleetcore::policy_service
