// The policy engine against the examples of AWS IoT Core's documentation (each with the
// decision AWS documents), and the edge cases of wildcards, variables and precedence.
#include "common/policy/policy.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::policy {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;

const aws::Arns kArns("us-east-1", "123456789012");
constexpr auto A = Effect::kAllow;
constexpr auto D = Effect::kImplicitDeny;
constexpr auto X = Effect::kExplicitDeny;

std::unique_ptr<PolicySet> Set(const std::string& json) {
  auto doc = PolicyDocument::Parse(json);
  EXPECT_TRUE(doc.ok()) << doc.status();
  std::vector<PolicySet::Policy> policies;
  if (doc.ok()) policies.push_back({"p", "1", *doc});
  return std::make_unique<PolicySet>(std::move(policies), kArns);
}

struct Case {
  Action action;
  std::string resource;
  Effect want;
};

// Runs every case against `json` with `ctx`.
void Check(const std::string& json, const Context& ctx, const std::vector<Case>& cases) {
  auto set = Set(json);
  for (const Case& c : cases) {
    Decision d = set->Evaluate(c.action, c.resource, ctx);
    EXPECT_EQ(d.effect, c.want) << ActionName(c.action) << " " << c.resource << ": "
                                << set->Explain(d);
  }
}

ThingInfo Thing(std::string name, bool attached = true) {
  ThingInfo t;
  t.name = std::move(name);
  t.attached = attached;
  return t;
}

// docs: direct-messaging-policy-examples.html, "Policy to send a direct message to a
// specific client on specific topics": iot:SendDirectMessage on the client, iot:Topic in a
// condition; iot:* grants it too.
TEST(AwsExamplesTest, DirectMessagesToOneClientOnSomeTopics) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:SendDirectMessage",
     "Resource":"arn:aws:iot:us-east-1:123456789012:client/myDevice",
     "Condition":{"StringEquals":{"iot:Topic":["commands/reboot","commands/update"]}}}]})";
  Check(policy, {.client_id = "device1", .topic = "commands/reboot"},
        {{Action::kSendDirectMessage, "myDevice", A},
         {Action::kSendDirectMessage, "otherDevice", D},
         {Action::kPublish, "commands/reboot", D}});
  Check(policy, {.client_id = "device1", .topic = "commands/erase"},
        {{Action::kSendDirectMessage, "myDevice", D}});
  Check(R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*",
            "Resource":"*"}]})",
        {.topic = "t"}, {{Action::kSendDirectMessage, "anyone", A}});
}

// docs: pub-sub-policy.html, "Registered devices (5)".
TEST(AwsExamplesTest, RegisteredDevicePublishesUnderItsThingName) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iot:Connect"],
     "Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
    {"Effect":"Allow","Action":["iot:Publish"],
     "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*"]}]})";
  ThingInfo thing = Thing("thing1");
  Check(policy, {.client_id = "thing1", .thing = &thing},
        {{Action::kConnect, "thing1", A},
         {Action::kConnect, "thing2", D},
         {Action::kPublish, "thing1/room1/temp", A},
         {Action::kPublish, "thing1", D},
         {Action::kPublish, "thing2/x", D},
         {Action::kSubscribe, "thing1/#", D}});
  // Without a thing the variable has no value: nothing is allowed.
  Check(policy, {.client_id = "thing1"},
        {{Action::kConnect, "thing1", D}, {Action::kPublish, "thing1/x", D}});
}

// docs: pub-sub-policy.html, "Unregistered devices (5)".
TEST(AwsExamplesTest, UnregisteredDevicesByClientId) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iot:Connect"],"Resource":[
      "arn:aws:iot:us-east-1:123456789012:client/client1",
      "arn:aws:iot:us-east-1:123456789012:client/client2",
      "arn:aws:iot:us-east-1:123456789012:client/client3"]},
    {"Effect":"Allow","Action":["iot:Publish"],
     "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*"]}]})";
  Check(policy, {.client_id = "client2"},
        {{Action::kConnect, "client2", A},
         {Action::kConnect, "client4", D},
         {Action::kPublish, "client2/a", A},
         {Action::kPublish, "client1/a", D}});
}

// docs: "Registered devices (6)": subscribe and receive on <thing>/room*.
TEST(AwsExamplesTest, SubscribeAndReceiveWithATrailingWildcard) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iot:Subscribe"],
     "Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/${iot:Connection.Thing.ThingName}/room*"]},
    {"Effect":"Allow","Action":["iot:Receive"],
     "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/room*"]}]})";
  ThingInfo thing = Thing("thing1");
  Check(policy, {.client_id = "thing1", .thing = &thing},
        {{Action::kSubscribe, "thing1/room1", A},
         {Action::kSubscribe, "thing1/room+", A},
         {Action::kSubscribe, "thing1/kitchen", D},
         {Action::kReceive, "thing1/room2", A},
         {Action::kReceive, "thing1/roof", D},
         // Subscribe and Receive are separate actions on separate resource types.
         {Action::kPublish, "thing1/room1", D}});
}

// docs: "Registered devices (4)": + in a topicfilter resource is a literal character.
TEST(AwsExamplesTest, PlusInAPolicyIsLiteral) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iot:Subscribe"],
     "Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/some/+/topic"]}]})";
  Check(policy, {.client_id = "c"},
        {{Action::kSubscribe, "some/+/topic", A},
         {Action::kSubscribe, "some/x/topic", D},
         {Action::kSubscribe, "some/#", D}});
}

// docs: "Registered devices (9)": an explicit Deny wins over a broader Allow. The example
// uses the older spelling ${iot:Thing.ThingName}.
TEST(AwsExamplesTest, ExplicitDenyWinsOverAllow) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iot:Publish"],
     "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Thing.ThingName}/*"]},
    {"Effect":"Deny","Action":["iot:Publish"],
     "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Thing.ThingName}/bar"]}]})";
  ThingInfo thing = Thing("thing1");
  auto set = Set(policy);
  Context ctx{.client_id = "thing1", .thing = &thing};
  Decision deny = set->Evaluate(Action::kPublish, "thing1/bar", ctx);
  EXPECT_EQ(deny.effect, X);
  EXPECT_EQ(deny.statement, 1);
  EXPECT_EQ(set->Explain(deny), "explicitly denied by policy \"p\" version 1, Statement[1]");
  Decision allow = set->Evaluate(Action::kPublish, "thing1/baz", ctx);
  EXPECT_EQ(allow.effect, A);
  EXPECT_EQ(set->Explain(allow), "allowed by policy \"p\" version 1, Statement[0]");
  EXPECT_EQ(set->Explain(set->Evaluate(Action::kConnect, "x", ctx)),
            "no statement allows it (implicit deny)");
}

// docs: thing-policy-examples.html: connect only when the certificate is attached.
TEST(AwsExamplesTest, ConnectOnlyWhenAttachedToTheThing) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iot:Connect"],"Resource":["*"],
     "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":["true"]}}}]})";
  ThingInfo attached = Thing("t", true);
  ThingInfo detached = Thing("t", false);
  Check(policy, {.client_id = "t", .thing = &attached}, {{Action::kConnect, "t", A}});
  Check(policy, {.client_id = "t", .thing = &detached}, {{Action::kConnect, "t", D}});
  Check(policy, {.client_id = "t"}, {{Action::kConnect, "t", D}});
}

// docs: thing-policy-examples.html: thing type and attribute conditions.
TEST(AwsExamplesTest, ThingTypeAndAttributeConditions) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iot:Publish"],
     "Resource":"arn:aws:iot:us-east-1:123456789012:topic/device/stats",
     "Condition":{"StringEquals":{"iot:Connection.Thing.Attributes[attributeName]":"attributeValue",
                                  "iot:Connection.Thing.ThingTypeName":"Thing_Type_Name"},
                  "Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]})";
  ThingInfo good = Thing("t");
  good.type_name = "Thing_Type_Name";
  good.attributes["attributeName"] = "attributeValue";
  ThingInfo wrong_value = good;
  wrong_value.attributes["attributeName"] = "other";
  ThingInfo no_type = good;
  no_type.type_name.clear();
  Check(policy, {.thing = &good}, {{Action::kPublish, "device/stats", A}});
  Check(policy, {.thing = &wrong_value}, {{Action::kPublish, "device/stats", D}});
  Check(policy, {.thing = &no_type}, {{Action::kPublish, "device/stats", D}});
}

// docs: thing-policy-examples.html: a topic that starts with a thing attribute.
TEST(AwsExamplesTest, AttributeInTheTopic) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["iot:Publish"],
     "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.Attributes[location]}/*"}]})";
  ThingInfo t = Thing("t");
  t.attributes["location"] = "berlin";
  ThingInfo none = Thing("t");
  Check(policy, {.thing = &t},
        {{Action::kPublish, "berlin/temp", A}, {Action::kPublish, "paris/temp", D}});
  Check(policy, {.thing = &none}, {{Action::kPublish, "berlin/temp", D}});
}

// reference §4.5 / connect-policy: ConnectAttributes restricted with ForAllValues.
TEST(AwsExamplesTest, ConnectAttributesAsASet) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Connect","Resource":"*",
     "Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}]})";
  std::vector<std::string> persistent = {"PersistentConnect"};
  std::vector<std::string> with_will = {"PersistentConnect", "LastWill"};
  Check(policy, {.connect_attributes = persistent}, {{Action::kConnect, "c", A}});
  Check(policy, {.connect_attributes = with_will}, {{Action::kConnect, "c", D}});
  Check(policy, {}, {{Action::kConnect, "c", A}});  // no attributes: vacuously all
}

TEST(PolicyEvaluationTest, ClientIdWithMqttWildcardIsNotSubstituted) {
  // DG security note: ${iot:ClientId} in a topicfilter would let client "+" widen its
  // access; values with + # * ? $ are not substituted, so nothing matches.
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Subscribe",
     "Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/devices/${iot:ClientId}/cmd"}]})";
  Check(policy, {.client_id = "+"}, {{Action::kSubscribe, "devices/+/cmd", D}});
  Check(policy, {.client_id = "d1"}, {{Action::kSubscribe, "devices/d1/cmd", A}});
}

TEST(PolicyEvaluationTest, WildcardsInEveryPlace) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:*","Resource":"arn:aws:iot:us-east-1:123456789012:topic/sensor?/*"},
    {"Effect":"Allow","Action":"iot:Pub*","Resource":"arn:aws:iot:*:*:topic/any-region"},
    {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:eu-west-1:123456789012:topic/other"}]})";
  Check(policy, {},
        {{Action::kPublish, "sensor1/a/b", A},
         {Action::kReceive, "sensor2/x", A},
         {Action::kPublish, "sensor12/x", D},
         {Action::kPublish, "any-region", A},
         {Action::kReceive, "any-region", D},
         {Action::kReceive, "other", D}});  // another region's ARN never matches here
}

TEST(PolicyEvaluationTest, ActionsAreCaseInsensitiveResourcesAreNot) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"IOT:publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/Data"}]})";
  Check(policy, {}, {{Action::kPublish, "Data", A}, {Action::kPublish, "data", D}});
}

TEST(PolicyEvaluationTest, NotActionAndNotResource) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","NotAction":"iot:Connect","Resource":"*"},
    {"Effect":"Deny","Action":"iot:Receive",
     "NotResource":"arn:aws:iot:us-east-1:123456789012:topic/public/*"}]})";
  Check(policy, {},
        {{Action::kConnect, "c", D},
         {Action::kPublish, "anything", A},
         {Action::kReceive, "public/news", A},
         {Action::kReceive, "private/x", X}});
}

TEST(PolicyEvaluationTest, UnresolvedNotResourceFailsClosed) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Publish",
     "NotResource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/secret"}]})";
  Check(policy, {}, {{Action::kPublish, "x/secret", D}, {Action::kPublish, "other", D}});
  ThingInfo t = Thing("x");
  Check(policy, {.thing = &t}, {{Action::kPublish, "x/secret", D}, {Action::kPublish, "other", A}});
}

TEST(PolicyEvaluationTest, OneUnresolvedEntryLeavesTheOthers) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Connect","Resource":[
      "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}",
      "arn:aws:iot:us-east-1:123456789012:client/admin"]}]})";
  Check(policy, {.client_id = "admin"}, {{Action::kConnect, "admin", A}});
}

TEST(PolicyEvaluationTest, EscapesAreLiteralCharacters) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Publish",
     "Resource":"arn:aws:iot:us-east-1:123456789012:topic/a${*}b${?}c${$}d"}]})";
  Check(policy, {}, {{Action::kPublish, "a*b?c$d", A}, {Action::kPublish, "aXbYc$d", D}});
}

TEST(PolicyEvaluationTest, Version2008TreatsVariablesAsText) {
  const std::string policy = R"({"Version":"2008-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Publish",
     "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}"}]})";
  Check(policy, {.client_id = "c1"},
        {{Action::kPublish, "c1", D}, {Action::kPublish, "${iot:ClientId}", A}});
}

TEST(PolicyEvaluationTest, CertificateVariablesSingleIndexedAndList) {
  CertificateInfo cert;
  cert.subject[static_cast<int>(CertField::kCommonName)] = {"dev-7"};
  cert.subject[static_cast<int>(CertField::kOrganizationalUnit)] = {"ops", "lab"};
  cert.serial_number = "0a1b";
  cert.ComputeAvailableKeys();
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Connect",
     "Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Certificate.Subject.CommonName}"},
    {"Effect":"Allow","Action":"iot:Publish",
     "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.OrganizationalUnit.1}/*"},
    {"Effect":"Allow","Action":"iot:Receive","Resource":"*",
     "Condition":{"ForAnyValue:StringEquals":{"iot:Certificate.Subject.OrganizationalUnit.List":"lab"},
                  "StringEquals":{"iot:Certificate.SerialNumber":"0a1b"}}},
    {"Effect":"Allow","Action":"iot:Subscribe","Resource":"*",
     "Condition":{"ForAnyValue:StringEquals":{"iot:Certificate.AvailableKeys":"iot:Certificate.Subject.CommonName"}}}]})";
  Check(policy, {.certificate = &cert},
        {{Action::kConnect, "dev-7", A},
         {Action::kConnect, "dev-8", D},
         {Action::kPublish, "lab/x", A},
         {Action::kPublish, "ops/x", D},
         {Action::kReceive, "t", A},
         {Action::kSubscribe, "t", A}});
  Check(policy, {}, {{Action::kConnect, "dev-7", D}, {Action::kReceive, "t", D}});
}

TEST(PolicyEvaluationTest, VariablesInConditionValues) {
  const std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Connect","Resource":"*",
     "Condition":{"StringEquals":{"iot:ClientId":"${iot:Connection.Thing.ThingName}"}}}]})";
  ThingInfo t = Thing("lamp");
  Check(policy, {.client_id = "lamp", .thing = &t}, {{Action::kConnect, "lamp", A}});
  Check(policy, {.client_id = "other", .thing = &t}, {{Action::kConnect, "other", D}});
}

TEST(PolicyEvaluationTest, SeveralPoliciesAndWhichOneDecided) {
  auto allow = PolicyDocument::Parse(R"({"Version":"2012-10-17","Statement":[
    {"Sid":"Pub","Effect":"Allow","Action":"iot:Publish","Resource":"*"}]})");
  auto deny = PolicyDocument::Parse(R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Receive","Resource":"*"},
    {"Sid":"NoAlarms","Effect":"Deny","Action":"iot:Publish",
     "Resource":"arn:aws:iot:us-east-1:123456789012:topic/alarms/*"}]})");
  ASSERT_TRUE(allow.ok() && deny.ok());
  PolicySet set({{"allow-all", "3", *allow}, {"no-alarms", "1", *deny}}, kArns);
  Decision d = set.Evaluate(Action::kPublish, "alarms/fire", {});
  EXPECT_EQ(d.effect, X);
  EXPECT_EQ(d.policy, 1);
  EXPECT_EQ(set.Explain(d),
            "explicitly denied by policy \"no-alarms\" version 1, Statement[1] (Sid \"NoAlarms\")");
  d = set.Evaluate(Action::kPublish, "news", {});
  EXPECT_EQ(set.Explain(d), "allowed by policy \"allow-all\" version 3, Statement[0] (Sid \"Pub\")");
}

TEST(PolicyEvaluationTest, EvaluateArnForTestAuthorization) {
  auto set = Set(R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/a/*"},
    {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:*:123456789012:topic/b"}]})");
  EXPECT_EQ(set->EvaluateArn(Action::kPublish, "arn:aws:iot:us-east-1:123456789012:topic/a/x", {}).effect, A);
  EXPECT_EQ(set->EvaluateArn(Action::kPublish, "arn:aws:iot:us-east-1:999999999999:topic/a/x", {}).effect, D);
  EXPECT_EQ(set->EvaluateArn(Action::kReceive, "arn:aws:iot:eu-west-1:123456789012:topic/b", {}).effect, A);
}

TEST(PolicyEvaluationTest, ReportsValuesTheStatementsMiss) {
  auto set = Set(R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Publish",
     "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*",
     "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"},
                  "Null":{"iot:LastWillTopic":"true"}}},
    {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"}]})");
  EXPECT_THAT(set->MissingValues(Action::kPublish, {.client_id = "c"}),
              ::testing::ElementsAre("iot:Connection.Thing.ThingName",
                                     "iot:Connection.Thing.IsAttached"));
  EXPECT_THAT(set->MissingValues(Action::kConnect, {.client_id = "c"}), ::testing::IsEmpty());
}

// The gateway shares one compiled set among a certificate's client ids when no statement
// looks at the connection's thing.
TEST(PolicyEvaluationTest, KnowsWhetherTheThingMatters) {
  EXPECT_FALSE(Set(R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"},
    {"Effect":"Allow","Action":"iot:Publish","Resource":"*",
     "Condition":{"StringLike":{"iot:Certificate.Subject.CommonName":"lamp-*"}}}]})")
                   ->uses_thing());
  // As a resource variable, a condition key and a condition value; and `${...}` in a
  // 2008-10-17 document is text, not a variable.
  EXPECT_TRUE(Set(R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Publish",
     "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.Attributes[room]}/*"}]})")
                  ->uses_thing());
  EXPECT_TRUE(Set(R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Connect","Resource":"*",
     "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]})")
                  ->uses_thing());
  EXPECT_TRUE(Set(R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Connect","Resource":"*",
     "Condition":{"StringEquals":{"iot:ClientId":"${iot:Connection.Thing.ThingName}"}}}]})")
                  ->uses_thing());
  EXPECT_FALSE(Set(R"({"Version":"2008-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Publish",
     "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}"}]})")
                   ->uses_thing());
}

TEST(PolicyEvaluationTest, StatementOrderDoesNotMatter) {
  const std::string deny_first = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Deny","Action":"iot:Publish","Resource":"*"},
    {"Effect":"Allow","Action":"iot:Publish","Resource":"*"}]})";
  const std::string allow_first = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"iot:Publish","Resource":"*"},
    {"Effect":"Deny","Action":"iot:Publish","Resource":"*"}]})";
  Check(deny_first, {}, {{Action::kPublish, "t", X}});
  Check(allow_first, {}, {{Action::kPublish, "t", X}});
}

// ---- validation

struct BadDocument {
  std::string json;
  std::string message;
};

TEST(PolicyValidationTest, ErrorsNameThePlaceAndTheProblem) {
  const std::vector<BadDocument> cases = {
      {"{", "not valid JSON"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*",
          "Condition":{"NumericLessThan":{"aws:EpochTime":1e999}}}]})", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {R"({"Version":"2012-10-17"})", "Statement is required"},
      {R"({"Version":"2012-10-18","Statement":[]})", "Version: must be \"2012-10-17\""},
      {R"({"Version":"2012-10-17","Statement":[]})", "Statement: must be a statement object"},
      {R"({"Version":"2012-10-17","Statements":[]})", "unknown element \"Statements\""},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
          {"Effect":"Allow","Action":["iot:Publish","iot:Publsh"],"Resource":"*"}]})",
       "Statement[1].Action[1]: unknown action \"iot:Publsh\"; did you mean \"iot:Publish\"?"},
      {R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}})",
       "Statement.Action: \"s3:GetObject\" is not an AWS IoT action"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Foo*","Resource":"*"}]})",
       "Statement[0].Action: \"iot:Foo*\" matches no AWS IoT action"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"allow","Action":"iot:*","Resource":"*"}]})",
       "Statement[0].Effect: must be \"Allow\" or \"Deny\""},
      {R"({"Version":"2012-10-17","Statement":[{"Action":"iot:*","Resource":"*"}]})",
       "Statement[0]: needs an Effect"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]})",
       "Statement[0]: needs an Action or a NotAction"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*"}]})",
       "Statement[0]: needs a Resource or a NotResource"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resources":["*"]}]})",
       "Statement[0]: unknown element \"Resources\""},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":["*","topic/x"]}]})",
       "Statement[0].Resource[1]: \"topic/x\" is neither \"*\" nor an ARN"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"arn:aws:iot:r:a:topic/${iot:ClientId"}]})",
       "Statement[0].Resource: \"arn:aws:iot:r:a:topic/${iot:ClientId\" has a ${ without its closing }"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*","Principal":"*"}]})",
       "Statement[0].Principal: AWS IoT policies have no Principal"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*",
          "Condition":{"StringEqual":{"iot:ClientId":"a"}}}]})",
       "Statement[0].Condition.StringEqual.iot:ClientId: unknown condition operator \"StringEqual\""},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*",
          "Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/33"]}}}]})",
       "Statement[0].Condition.IpAddress.aws:SourceIp: value \"10.0.0.0/33\" of IpAddress is not an IP address or CIDR block"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*",
          "Condition":{"NumericLessThan":{"aws:EpochTime":"soon"}}}]})",
       "is not a number"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*",
          "Condition":{"StringEquals":{"iot:ClientId":[]}}}]})",
       "condition key \"iot:ClientId\" has no values"},
  };
  for (const BadDocument& c : cases) {
    EXPECT_THAT(PolicyDocument::Parse(c.json),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.json;
  }
}

TEST(PolicyValidationTest, AcceptsTheShapesAwsAccepts) {
  for (const std::string& json : {
           std::string(R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*"}})"),
           std::string(R"({"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"a","Effect":"Deny","NotAction":["iot:Connect"],"NotResource":["*"]}]})"),
           std::string(R"({"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]})"),
           std::string(R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*",
             "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":true},"NumericLessThan":{"aws:EpochTime":1800000000}}}]})"),
       }) {
    EXPECT_TRUE(PolicyDocument::Parse(json).ok()) << json;
  }
}

}  // namespace
}  // namespace fleetcore::policy
