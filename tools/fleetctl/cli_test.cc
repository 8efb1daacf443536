#include "tools/fleetctl/cli.h"

#include <fstream>

#include "fleetcore/registry/v1/registry.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fleetcore::fleetctl {
namespace {

using ::testing::HasSubstr;
namespace pb = ::fleetcore::registry::v1;

nlohmann::json Parse(const google::protobuf::Descriptor& d, std::vector<std::string> args) {
  bool no_paginate = false;
  auto json = RequestJson(d, args, &no_paginate);
  EXPECT_TRUE(json.ok()) << json.status();
  return json.ok() ? nlohmann::json::parse(*json) : nlohmann::json();
}

TEST(KebabTest, MirrorsAwsCliNames) {
  EXPECT_EQ(KebabFromCamel("CreateThing"), "create-thing");
  EXPECT_EQ(KebabFromCamel("ListThingsInThingGroup"), "list-things-in-thing-group");
  EXPECT_EQ(KebabFromCamel("RegisterCACertificate"), "register-ca-certificate");
  EXPECT_EQ(KebabFromCamel("ListCertificatesByCA"), "list-certificates-by-ca");
  EXPECT_EQ(KebabFromCamel("RegisterCertificateWithoutCA"), "register-certificate-without-ca");
  EXPECT_EQ(KebabFromCamel("GetCrl"), "get-crl");
  EXPECT_EQ(KebabFromSnake("attribute_payload"), "attribute-payload");
}

TEST(RequestJsonTest, ScalarsMessagesAndBooleans) {
  auto j = Parse(*pb::UpdateThingRequest::descriptor(),
                 {"--thing-name", "lamp-1", "--expected-version=3", "--remove-thing-type",
                  "--attribute-payload", R"({"attributes":{"a":"b"},"merge":true})"});
  EXPECT_EQ(j["thingName"], "lamp-1");
  EXPECT_EQ(j["expectedVersion"], 3);
  EXPECT_EQ(j["removeThingType"], true);
  EXPECT_EQ(j["attributePayload"]["attributes"]["a"], "b");
  auto n = Parse(*pb::ListThingGroupsRequest::descriptor(), {"--no-recursive"});
  EXPECT_EQ(n["recursive"], false);
}

TEST(RequestJsonTest, FileValuesAndCliInputJson) {
  const std::string path = ::testing::TempDir() + "/payload.json";
  std::ofstream(path) << R"({"attributes":{"site":"berlin"}})";
  auto j = Parse(*pb::CreateThingRequest::descriptor(),
                 {"--cli-input-json", R"({"thingName":"from-json","thingTypeName":"t"})",
                  "--thing-name", "from-flag", "--attribute-payload", "file://" + path});
  EXPECT_EQ(j["thingName"], "from-flag");
  EXPECT_EQ(j["thingTypeName"], "t");
  EXPECT_EQ(j["attributePayload"]["attributes"]["site"], "berlin");
}

TEST(RequestJsonTest, ClearErrors) {
  bool np;
  EXPECT_THAT(
      std::string(
          RequestJson(*pb::CreateThingRequest::descriptor(), {"--thing"}, &np).status().message()),
      HasSubstr("unknown option --thing"));
  EXPECT_THAT(std::string(RequestJson(*pb::UpdateThingRequest::descriptor(),
                                      {"--expected-version", "x"}, &np)
                              .status()
                              .message()),
              HasSubstr("expected an integer"));
  EXPECT_THAT(std::string(RequestJson(*pb::CreateThingRequest::descriptor(),
                                      {"--attribute-payload", "{nope"}, &np)
                              .status()
                              .message()),
              HasSubstr("expected JSON"));
  EXPECT_THAT(std::string(RequestJson(*pb::CreateThingRequest::descriptor(), {"--thing-name"}, &np)
                              .status()
                              .message()),
              HasSubstr("needs a value"));
}

// --generate-cli-skeleton: every field, placeholders as the AWS CLI's, ready for
// --cli-input-json; a message that contains itself is cut.
TEST(SkeletonTest, EveryFieldWithAPlaceholder) {
  EXPECT_EQ(Skeleton(*pb::CreateThingRequest::descriptor()), nlohmann::json::parse(R"({
      "thingName": "", "thingTypeName": "",
      "attributePayload": {"attributes": {"KeyName": ""}, "merge": true},
      "billingGroupName": ""})"));
  const nlohmann::json s = Skeleton(*google::protobuf::Struct::descriptor());
  ASSERT_TRUE(s.contains("fields")) << s.dump();
  EXPECT_TRUE(s["fields"]["KeyName"].contains("structValue")) << s.dump();
  EXPECT_EQ(s["fields"]["KeyName"]["structValue"], nlohmann::json::object()) << s.dump();
  // Every skeleton of the registry's requests is a request the proto JSON parser takes.
  const google::protobuf::ServiceDescriptor* registry =
      pb::CreateThingRequest::descriptor()->file()->service(0);
  for (int i = 0; i < registry->method_count(); ++i) {
    const google::protobuf::Descriptor* in = registry->method(i)->input_type();
    std::unique_ptr<google::protobuf::Message> m(
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(in)->New());
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(Skeleton(*in).dump(), m.get()).ok())
        << in->full_name();
  }
}

}  // namespace
}  // namespace fleetcore::fleetctl
