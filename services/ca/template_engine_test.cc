// The provisioning template engine against the templates of AWS's documentation, each
// intrinsic, and the faults a template author makes.
#include "services/ca/template_engine.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::ca {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;
using Code = absl::StatusCode;

constexpr char kCertId[] = "4f0ba725787aa94d67d2fca420eca022242532e8b3c58e7465c7778b443fd65e";

// AWS's fleet provisioning example (developer guide, "Provisioning templates").
constexpr char kFleetExample[] = R"({
  "Parameters": {
    "SerialNumber": {"Type": "String"},
    "AWS::IoT::Certificate::Id": {"Type": "String"}
  },
  "Resources": {
    "thing": {
      "Type": "AWS::IoT::Thing",
      "Properties": {
        "ThingName": {"Fn::Join": ["", ["dev_", {"Ref": "SerialNumber"}]]},
        "AttributePayload": {"version": "v1"},
        "ThingGroups": ["fleet"]
      },
      "OverrideSettings": {"AttributePayload": "MERGE", "ThingGroups": "DO_NOTHING"}
    },
    "certificate": {
      "Type": "AWS::IoT::Certificate",
      "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}
    },
    "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "DevicePolicy"}}
  },
  "DeviceConfiguration": {"Foo": "Bar"}
})";

// AWS's JITP example (developer guide, "Just-in-time provisioning").
constexpr char kJitpExample[] = R"({
  "Parameters": {
    "AWS::IoT::Certificate::CommonName": {"Type": "String"},
    "AWS::IoT::Certificate::SerialNumber": {"Type": "String"},
    "AWS::IoT::Certificate::Country": {"Type": "String"},
    "AWS::IoT::Certificate::Id": {"Type": "String"}
  },
  "Resources": {
    "thing": {
      "Type": "AWS::IoT::Thing",
      "Properties": {
        "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
        "AttributePayload": {"version": "v1",
                             "serialNumber": {"Ref": "AWS::IoT::Certificate::SerialNumber"}},
        "ThingTypeName": "lightBulb-versionA",
        "ThingGroups": ["v1-lightbulbs", {"Ref": "AWS::IoT::Certificate::Country"}]
      },
      "OverrideSettings": {"AttributePayload": "MERGE", "ThingTypeName": "REPLACE",
                           "ThingGroups": "DO_NOTHING"}
    },
    "certificate": {
      "Type": "AWS::IoT::Certificate",
      "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}
    },
    "policy": {
      "Type": "AWS::IoT::Policy",
      "Properties": {
        "PolicyDocument": "{ \"Version\": \"2012-10-17\", \"Statement\": [{ \"Effect\": \"Allow\", \"Action\":[\"iot:Publish\"], \"Resource\": [\"arn:aws:iot:us-east-1:123456789012:topic/foo/bar\"] }] }"
      }
    }
  }
})";

TEST(TemplateEngineTest, FleetProvisioningExample) {
  ASSERT_OK_AND_ASSIGN(
      auto t, ProvisioningTemplate::Parse(kFleetExample, TemplateType::kFleetProvisioning));
  EXPECT_THAT(t.parameter_names(), ElementsAre("AWS::IoT::Certificate::Id", "SerialNumber"));
  ASSERT_OK_AND_ASSIGN(ProvisioningPlan plan, t.Resolve({{"SerialNumber", "123"},
                                                         {"AWS::IoT::Certificate::Id", kCertId}}));
  ASSERT_TRUE(plan.thing.has_value());
  EXPECT_EQ(plan.thing->thing_name, "dev_123");
  EXPECT_THAT(*plan.thing->attributes, ElementsAre(Pair("version", "v1")));
  EXPECT_THAT(*plan.thing->thing_groups, ElementsAre("fleet"));
  EXPECT_EQ(plan.thing->attributes_override, Override::kMerge);
  EXPECT_EQ(plan.thing->thing_groups_override, Override::kDoNothing);
  EXPECT_FALSE(plan.thing->thing_type_name.has_value());
  EXPECT_FALSE(plan.thing->billing_group.has_value());
  ASSERT_TRUE(plan.certificate.has_value());
  EXPECT_EQ(plan.certificate->certificate_id, kCertId);
  EXPECT_TRUE(plan.certificate->active);
  ASSERT_EQ(plan.policies.size(), 1u);
  EXPECT_EQ(plan.policies[0].policy_name, "DevicePolicy");
  EXPECT_TRUE(plan.policies[0].policy_document.empty());
  EXPECT_THAT(plan.device_configuration, ElementsAre(Pair("Foo", "Bar")));
}

TEST(TemplateEngineTest, JitpExample) {
  ASSERT_OK_AND_ASSIGN(auto t, ProvisioningTemplate::Parse(kJitpExample, TemplateType::kJitp));
  ASSERT_OK_AND_ASSIGN(ProvisioningPlan plan,
                       t.Resolve({{"AWS::IoT::Certificate::CommonName", "bulb-7"},
                                  {"AWS::IoT::Certificate::SerialNumber", "SN7"},
                                  {"AWS::IoT::Certificate::Country", "DE"},
                                  {"AWS::IoT::Certificate::Id", kCertId}}));
  EXPECT_EQ(plan.thing->thing_name, "bulb-7");
  EXPECT_THAT(*plan.thing->attributes,
              UnorderedElementsAre(Pair("version", "v1"), Pair("serialNumber", "SN7")));
  EXPECT_THAT(*plan.thing->thing_groups, ElementsAre("v1-lightbulbs", "DE"));
  EXPECT_EQ(*plan.thing->thing_type_name, "lightBulb-versionA");
  EXPECT_EQ(plan.thing->thing_type_override, Override::kReplace);
  ASSERT_EQ(plan.policies.size(), 1u);
  EXPECT_THAT(plan.policies[0].policy_document, HasSubstr("topic/foo/bar"));
  EXPECT_EQ(plan.policies[0].policy_name.size(), 64u);  // named after the document's hash

  // A certificate without a Country: the declared parameter has no value.
  EXPECT_THAT(t.Resolve({{"AWS::IoT::Certificate::CommonName", "bulb-7"},
                         {"AWS::IoT::Certificate::SerialNumber", "SN7"},
                         {"AWS::IoT::Certificate::Id", kCertId}}),
              StatusIs(Code::kInvalidArgument,
                       HasSubstr("Parameters.AWS::IoT::Certificate::Country: has no value")));
}

TEST(TemplateEngineTest, Intrinsics) {
  constexpr char kBody[] = R"({
    "Parameters": {
      "Serial": {"Type": "String"},
      "Region": {"Type": "String", "Default": "eu"},
      "Csv": {"Type": "String", "Default": "a,b,c"},
      "Index": {"Type": "Number", "Default": 1}
    },
    "Mappings": {"Sites": {"eu": {"Group": "eu-fleet", "Url": "https://eu.example"},
                           "us": {"Group": "us-fleet", "Url": "https://us.example"}}},
    "Resources": {
      "thing": {"Type": "AWS::IoT::Thing", "Properties": {
        "ThingName": {"Fn::Sub": "dev-${Serial}-${Region}"},
        "AttributePayload": {
          "second": {"Fn::Select": [{"Ref": "Index"}, {"Fn::Split": [",", {"Ref": "Csv"}]}]},
          "named": {"Fn::Sub": ["x-${Who}", {"Who": {"Ref": "Serial"}}]}
        },
        "ThingGroups": [{"Fn::FindInMap": ["Sites", {"Ref": "Region"}, "Group"]}]
      }},
      "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
        "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "INACTIVE",
        "ThingPrincipalType": "EXCLUSIVE_THING"}}
    },
    "DeviceConfiguration": {"Url": {"Fn::FindInMap": ["Sites", {"Ref": "Region"}, "Url"]},
                            "Serial": {"Ref": "Serial"}}
  })";
  ASSERT_OK_AND_ASSIGN(auto t,
                       ProvisioningTemplate::Parse(kBody, TemplateType::kFleetProvisioning));
  ASSERT_OK_AND_ASSIGN(ProvisioningPlan plan,
                       t.Resolve({{"Serial", "42"}, {"AWS::IoT::Certificate::Id", kCertId}}));
  EXPECT_EQ(plan.thing->thing_name, "dev-42-eu");
  EXPECT_EQ(plan.thing->attributes->at("second"), "b");
  EXPECT_EQ(plan.thing->attributes->at("named"), "x-42");
  EXPECT_THAT(*plan.thing->thing_groups, ElementsAre("eu-fleet"));
  EXPECT_FALSE(plan.certificate->active);
  EXPECT_TRUE(plan.certificate->exclusive);
  EXPECT_THAT(plan.device_configuration,
              ElementsAre(Pair("Serial", "42"), Pair("Url", "https://eu.example")));

  ASSERT_OK_AND_ASSIGN(
      plan,
      t.Resolve({{"Serial", "42"}, {"Region", "us"}, {"AWS::IoT::Certificate::Id", kCertId}}));
  EXPECT_THAT(*plan.thing->thing_groups, ElementsAre("us-fleet"));

  EXPECT_THAT(t.Resolve({{"Serial", "1"}, {"Index", "7"}, {"AWS::IoT::Certificate::Id", kCertId}}),
              StatusIs(Code::kInvalidArgument,
                       HasSubstr("Resources.thing.Properties.AttributePayload.second.Fn::Select: "
                                 "Fn::Select index 7 is outside the list of 3")));
  EXPECT_THAT(
      t.Resolve({{"Serial", "1"}, {"Index", "one"}, {"AWS::IoT::Certificate::Id", kCertId}}),
      StatusIs(Code::kInvalidArgument, HasSubstr("is not a Number")));
  EXPECT_THAT(
      t.Resolve({{"Serial", "1"}, {"Region", "mars"}, {"AWS::IoT::Certificate::Id", kCertId}}),
      StatusIs(Code::kInvalidArgument, HasSubstr("mapping \"Sites\" has no mars.Group")));
  EXPECT_THAT(t.Resolve({{"AWS::IoT::Certificate::Id", kCertId}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("Parameters.Serial: has no value")));
}

TEST(TemplateEngineTest, ThingBillingGroup) {
  ASSERT_OK_AND_ASSIGN(auto t, ProvisioningTemplate::Parse(R"({
    "Parameters": {"Site": {"Type": "String"}},
    "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {
      "ThingName": "lamp", "BillingGroup": {"Fn::Join": ["-", ["site", {"Ref": "Site"}]]}}}}
  })",
                                                           TemplateType::kJitp));
  ASSERT_OK_AND_ASSIGN(ProvisioningPlan plan, t.Resolve({{"Site", "berlin"}}));
  EXPECT_EQ(plan.thing->billing_group, "site-berlin");
  EXPECT_THAT(
      ProvisioningTemplate::Parse(
          R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "a", "BillingGroup": ["x"]}}}})",
          TemplateType::kJitp),
      StatusIs(Code::kInvalidArgument,
               HasSubstr("Resources.t.Properties.BillingGroup: expected a string")));
}

TEST(TemplateEngineTest, FaultsNameTheirPlace) {
  struct Case {
    std::string body;
    std::string message;
  } cases[] = {
      {"[]", "not a JSON object"},
      {"{", "not a JSON object"},
      {R"({"Resources": {}})", "Resources: at least one resource"},
      {R"({"Resources": {"": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "t"}}}})",
       "Resources: a resource needs a name"},
      {R"({"Resource": {}})", "Resource: unknown key"},
      {R"({"Parameters": {"A": {"Type": "Boolean"}}, "Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "x"}}}})",
       "Parameters.A.Type: must be \"String\" or \"Number\""},
      {R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Serial"}}}}})",
       "Resources.t.Properties.ThingName.Ref: Ref names \"Serial\", which is not a parameter"},
      {R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {}}}})",
       "Resources.t.Properties.ThingName: required"},
      {R"({"Resources": {"t": {"Type": "AWS::IoT::Thingy"}}})",
       "Resources.t.Type: \"AWS::IoT::Thingy\" is not"},
      {R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "a", "Color": "red"}}}})",
       "Resources.t.Properties.Color: unknown key"},
      {R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Join": ["-"]}}}}})",
       "Resources.t.Properties.ThingName.Fn::Join: Fn::Join takes"},
      {R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::If": []}}}}})",
       "unknown intrinsic function \"Fn::If\""},
      {R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "a"}, "OverrideSettings": {"ThingTypeName": "MERGE"}}}})",
       "Resources.t.OverrideSettings.ThingTypeName: \"MERGE\" is not DO_NOTHING, REPLACE or FAIL"},
      {R"({"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "abc"}}}})",
       "Resources.c.Properties.CertificateId: must be {\"Ref\": \"AWS::IoT::Certificate::Id\"}"},
      {R"({"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ON"}}}})",
       "Resources.c.Properties.Status: \"ON\" is not ACTIVE or INACTIVE"},
      {R"({"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {}}}})",
       "Resources.p.Properties: a policy needs exactly one of PolicyName and PolicyDocument"},
      {R"({"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Pub\",\"Resource\":\"*\"}]}"}}}})",
       "Resources.p.Properties.PolicyDocument: Statement[0].Action: unknown action \"iot:Pub\""},
      {R"({"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "x"}}}, "DeviceConfiguration": {"a": {"b": "c"}}})",
       "DeviceConfiguration.a: nested objects are not supported"},
      {R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::FindInMap": ["Nope", "a", "b"]}}}}})",
       "Fn::FindInMap: there is no mapping \"Nope\""},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ProvisioningTemplate::Parse(c.body, TemplateType::kFleetProvisioning),
                StatusIs(Code::kInvalidArgument, HasSubstr(c.message)))
        << c.body;
  }
  EXPECT_THAT(
      ProvisioningTemplate::Parse(
          R"({"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "x"}}}, "DeviceConfiguration": {"a": "b"}})",
          TemplateType::kJitp),
      StatusIs(Code::kInvalidArgument, HasSubstr("JITP templates have no DeviceConfiguration")));
  EXPECT_THAT(ProvisioningTemplate::Parse(std::string(10001, ' '), TemplateType::kJitp),
              StatusIs(Code::kInvalidArgument, HasSubstr("at most 10000")));
}

}  // namespace
}  // namespace fleetcore::ca
