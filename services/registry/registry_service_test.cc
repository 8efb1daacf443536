// The gRPC adapter in-process on port 0, called through a real channel: proto <-> domain
// mapping, field presence, ARN forms and status codes as a client sees them.
#include "services/registry/registry_service.h"

#include "common/grpc/client.h"
#include "common/grpc/executor.h"
#include "common/grpc/server.h"
#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/registry/fake_registry_store.h"

namespace fleetcore::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RegistryServiceTest : public ::testing::Test {
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
    stub_ = pb::Registry::NewStub(channel_->channel());
  }

  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (pb::Registry::Stub::*method)(grpc::ClientContext*, const Req&,
                                                               Resp*),
                    const Req& req, Resp* resp) {
    auto ctx = channel_->NewContext();
    return (stub_.get()->*method)(ctx.get(), req, resp);
  }

  FakeRegistryStore store_;
  aws::Arns arns_{"eu-west-1", "123456789012"};
  testing::FakeClock clock_;
  testing::FakeIdGenerator ids_;
  RegistryCore core_{&store_, &arns_, &clock_, &ids_};
  grpc_util::Executor executor_{2, 100};
  grpc_util::AdminAuth auth_{"tok"};
  grpc_util::CallRunner calls_{&executor_, &auth_};
  RegistryService service_{&core_, &calls_};
  std::unique_ptr<grpc_util::Server> server_;
  std::unique_ptr<grpc_util::ServiceChannel> channel_;
  std::unique_ptr<pb::Registry::Stub> stub_;
};

TEST_F(RegistryServiceTest, CreateAndDescribeThingMapEveryField) {
  pb::CreateThingRequest create;
  create.set_thing_name("lamp-1");
  (*create.mutable_attribute_payload()->mutable_attributes())["color"] = "red";
  pb::CreateThingResponse created;
  ASSERT_TRUE(Call(&pb::Registry::Stub::CreateThing, create, &created).ok());
  EXPECT_EQ(created.thing_arn(), "arn:aws:iot:eu-west-1:123456789012:thing/lamp-1");
  EXPECT_EQ(created.thing_id(), "00000000-0000-4000-8000-000000000001");

  pb::DescribeThingRequest describe;
  describe.set_thing_name("lamp-1");
  pb::DescribeThingResponse d;
  ASSERT_TRUE(Call(&pb::Registry::Stub::DescribeThing, describe, &d).ok());
  EXPECT_EQ(d.default_client_id(), "lamp-1");
  EXPECT_EQ(d.thing_arn(), created.thing_arn());
  EXPECT_EQ(d.thing_id(), created.thing_id());
  EXPECT_EQ(d.version(), 1);
  EXPECT_EQ(d.attributes().at("color"), "red");
}

TEST_F(RegistryServiceTest, StatusCodesReachTheClient) {
  pb::DescribeThingRequest describe;
  describe.set_thing_name("ghost");
  pb::DescribeThingResponse d;
  grpc::Status missing = Call(&pb::Registry::Stub::DescribeThing, describe, &d);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(missing.error_message(), HasSubstr("thing \"ghost\" does not exist"));

  describe.set_thing_name("bad name");
  EXPECT_EQ(Call(&pb::Registry::Stub::DescribeThing, describe, &d).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  pb::CreateThingRequest create;
  create.set_thing_name("t");
  pb::CreateThingResponse created;
  ASSERT_TRUE(Call(&pb::Registry::Stub::CreateThing, create, &created).ok());
  pb::UpdateThingRequest update;
  update.set_thing_name("t");
  update.set_expected_version(3);
  pb::UpdateThingResponse updated;
  EXPECT_EQ(Call(&pb::Registry::Stub::UpdateThing, update, &updated).error_code(),
            grpc::StatusCode::ABORTED);
  // expected_version absent (not zero) means no check.
  update.clear_expected_version();
  EXPECT_TRUE(Call(&pb::Registry::Stub::UpdateThing, update, &updated).ok());
}

TEST_F(RegistryServiceTest, UpdateWithoutAttributePayloadKeepsAttributes) {
  pb::CreateThingRequest create;
  create.set_thing_name("t");
  (*create.mutable_attribute_payload()->mutable_attributes())["a"] = "1";
  pb::CreateThingResponse created;
  ASSERT_TRUE(Call(&pb::Registry::Stub::CreateThing, create, &created).ok());
  pb::UpdateThingRequest update;
  update.set_thing_name("t");
  pb::UpdateThingResponse updated;
  ASSERT_TRUE(Call(&pb::Registry::Stub::UpdateThing, update, &updated).ok());
  EXPECT_EQ(core_.DescribeThing("t")->attributes.size(), 1u);
  update.mutable_attribute_payload();  // present and empty, merge false: remove all
  ASSERT_TRUE(Call(&pb::Registry::Stub::UpdateThing, update, &updated).ok());
  EXPECT_TRUE(core_.DescribeThing("t")->attributes.empty());
}

TEST_F(RegistryServiceTest, GroupsByNameOrArnAndTheRootToParentChain) {
  ASSERT_OK(core_.CreateThingGroup({.name = "site"}));
  ASSERT_OK(core_.CreateThingGroup({.name = "floor", .parent = "site"}));
  ASSERT_OK(core_.CreateThing({.name = "t"}));
  pb::AddThingToThingGroupRequest add;
  add.set_thing_group_arn(arns_.ThingGroup("floor"));
  add.set_thing_arn(arns_.Thing("t"));
  pb::AddThingToThingGroupResponse added;
  ASSERT_TRUE(Call(&pb::Registry::Stub::AddThingToThingGroup, add, &added).ok());
  add.set_thing_group_arn("arn:aws:iot:us-east-1:123456789012:thinggroup/floor");
  EXPECT_EQ(Call(&pb::Registry::Stub::AddThingToThingGroup, add, &added).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  pb::DescribeThingGroupRequest describe;
  describe.set_thing_group_name("floor");
  pb::DescribeThingGroupResponse d;
  ASSERT_TRUE(Call(&pb::Registry::Stub::DescribeThingGroup, describe, &d).ok());
  EXPECT_EQ(d.thing_group_metadata().parent_group_name(), "site");
  ASSERT_EQ(d.thing_group_metadata().root_to_parent_thing_groups_size(), 1);
  EXPECT_EQ(d.thing_group_metadata().root_to_parent_thing_groups(0).group_arn(),
            arns_.ThingGroup("site"));

  pb::ListThingGroupsRequest list;
  list.set_recursive(false);  // present and false: root groups only
  pb::ListThingGroupsResponse groups;
  ASSERT_TRUE(Call(&pb::Registry::Stub::ListThingGroups, list, &groups).ok());
  ASSERT_EQ(groups.thing_groups_size(), 1);
  EXPECT_EQ(groups.thing_groups(0).group_name(), "site");
}

TEST_F(RegistryServiceTest, UpdateGroupKeepsAnAbsentDescription) {
  ASSERT_OK(core_.CreateThingGroup({.name = "g", .description = "keep me"}));
  pb::UpdateThingGroupRequest update;
  update.set_thing_group_name("g");
  (*update.mutable_thing_group_properties()->mutable_attribute_payload()->mutable_attributes())
      ["a"] = "1";
  pb::UpdateThingGroupResponse updated;
  ASSERT_TRUE(Call(&pb::Registry::Stub::UpdateThingGroup, update, &updated).ok());
  EXPECT_EQ(updated.version(), 2);
  EXPECT_EQ(core_.DescribeThingGroup("g")->group.description, "keep me");
}

TEST_F(RegistryServiceTest, PrincipalsWithTheirType) {
  ASSERT_OK(core_.CreateThing({.name = "t"}));
  const std::string cert = arns_.Cert(std::string(64, 'c'));
  pb::AttachThingPrincipalRequest attach;
  attach.set_thing_name("t");
  attach.set_principal(cert);
  attach.set_thing_principal_type(pb::EXCLUSIVE_THING);
  pb::AttachThingPrincipalResponse attached;
  ASSERT_TRUE(Call(&pb::Registry::Stub::AttachThingPrincipal, attach, &attached).ok());
  pb::ListThingPrincipalsRequest list;
  list.set_thing_name("t");
  pb::ListThingPrincipalsResponse principals;
  ASSERT_TRUE(Call(&pb::Registry::Stub::ListThingPrincipals, list, &principals).ok());
  EXPECT_THAT(principals.principals(), ElementsAre(cert));
  ASSERT_EQ(principals.thing_principal_objects_size(), 1);
  EXPECT_EQ(principals.thing_principal_objects(0).thing_principal_type(), pb::EXCLUSIVE_THING);
}

TEST_F(RegistryServiceTest, RefusesCallsWithoutTheToken) {
  auto ch = grpc_util::ServiceChannel::Create(
      {.target = "127.0.0.1:" + std::to_string(server_->port())});
  auto stub = pb::Registry::NewStub(ch->channel());
  auto ctx = ch->NewContext();
  pb::ListThingsRequest req;
  pb::ListThingsResponse resp;
  EXPECT_EQ(stub->ListThings(ctx.get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace fleetcore::registry
