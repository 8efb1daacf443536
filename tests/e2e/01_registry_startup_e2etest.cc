// The registry binary's start-up and shutdown as an operator meets them: bad flags,
// --check-config, an unreachable Postgres, a taken port, health, metrics, SIGTERM.
#include <signal.h>

#include <future>

#include "common/testing/http.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_database.h"
#include "fleetcore/registry/v1/registry.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"

namespace fleetcore::e2e {
namespace {

using ::testing::HasSubstr;
constexpr char kRegistry[] = "services/registry/fleetcore-registry";

TEST(RegistryStartupTest, RefusesAnUnknownFlagWithExitCode2) {
  ASSERT_OK_AND_ASSIGN(auto r, testing::Run({testing::BuildPath(kRegistry), "--db-pool=3"}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown option --db-pool"));
}

TEST(RegistryStartupTest, CheckConfigValidatesAndHidesSecrets) {
  ASSERT_OK_AND_ASSIGN(auto ok, testing::Run({testing::BuildPath(kRegistry), "--check-config"},
                                             {{"FLEETCORE_DB_URL", "postgresql://u:pw@db/x"},
                                              {"FLEETCORE_ADMIN_TOKEN", "t0p-secret"}}));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("admin-token=(set)"));
  EXPECT_THAT(ok.out, ::testing::Not(HasSubstr("t0p-secret")));
  EXPECT_THAT(ok.out, ::testing::Not(HasSubstr("pw@")));

  ASSERT_OK_AND_ASSIGN(
      auto bad, testing::Run({testing::BuildPath(kRegistry), "--check-config", "--account-id=42"},
                             {{"FLEETCORE_DB_URL", "postgresql://db/x"}}));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("12 digits"));

  ASSERT_OK_AND_ASSIGN(auto no_db, testing::Run({testing::BuildPath(kRegistry), "--check-config"},
                                                {{"FLEETCORE_DB_URL", ""}}));
  EXPECT_EQ(no_db.exit_code, 2);
  EXPECT_THAT(no_db.err, HasSubstr("--db-url"));
}

TEST(RegistryStartupTest, UnreachablePostgresIsAClearErrorNotAHang) {
  ASSERT_OK_AND_ASSIGN(
      auto r, testing::Run({testing::BuildPath(kRegistry), "--listen=127.0.0.1:0",
                            "--metrics-listen=", "--db-connect-timeout=1s",
                            "--db-url=postgresql://fleetcore:secret@127.0.0.1:1/fleetcore"},
                           {}, absl::Seconds(30)));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot connect to Postgres"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("secret")));
}

class RunningRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    ASSERT_OK_AND_ASSIGN(registry_, StartService(kRegistry, {"--db-url=" + db_->url()}));
  }
  std::unique_ptr<testing::TestDatabase> db_;
  RunningService registry_;
};

TEST_F(RunningRegistryTest, ATakenPortIsAClearError) {
  ASSERT_OK_AND_ASSIGN(
      auto r, testing::Run({testing::BuildPath(kRegistry), "--listen=" + registry_.endpoint,
                            "--metrics-listen=", "--db-url=" + db_->url()}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("already in use"));
}

TEST_F(RunningRegistryTest, HealthIsServingAndMetricsCountCalls) {
  auto channel = grpc::CreateChannel(registry_.endpoint, grpc::InsecureChannelCredentials());
  auto stub = registry::v1::Registry::NewStub(channel);
  grpc::ClientContext ctx;
  registry::v1::DescribeThingRequest req;
  req.set_thing_name("missing");
  registry::v1::DescribeThingResponse resp;
  EXPECT_EQ(stub->DescribeThing(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);

  const std::string metrics = testing::HttpGet(registry_.metrics_port, "/metrics");
  EXPECT_THAT(metrics,
              HasSubstr("fleetcore_grpc_server_requests_total{grpc_code=\"NOT_FOUND\","
                        "grpc_method=\"/fleetcore.registry.v1.Registry/DescribeThing\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("fleetcore_db_pool_connections{state=\"idle\"}"));
  EXPECT_THAT(metrics, HasSubstr("process_resident_memory_bytes"));

  // grpc.health.v1.Health/Check with an empty request answers SERVING (field 1 = 1).
  grpc::GenericStub health(channel);
  grpc::ClientContext hctx;
  grpc::Slice empty("");
  grpc::ByteBuffer hreq(&empty, 1), hresp;
  std::promise<grpc::Status> done;
  health.UnaryCall(&hctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &hreq, &hresp,
                   [&](grpc::Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(hresp.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

// Server reflection (grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo) speaks a
// bidi stream; a ServerReflectionRequest{list_services: ""} is field 7 with no bytes, and the
// answer lists the services by full name.
TEST_F(RunningRegistryTest, ServerReflectionListsTheApi) {
  auto channel = grpc::CreateChannel(registry_.endpoint, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto next = [&](intptr_t expected) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), expected);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(next(1));
  grpc::Slice request(std::string("\x3a\x00", 2));
  call->Write(grpc::ByteBuffer(&request, 1), reinterpret_cast<void*>(2));
  ASSERT_TRUE(next(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(next(3));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  ASSERT_TRUE(next(4));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_THAT(bytes, HasSubstr("fleetcore.registry.v1.Registry"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  next(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(RunningRegistryTest, FleetctlHealthCheckNeedsNoToken) {
  ASSERT_OK_AND_ASSIGN(auto r, testing::Run({testing::BuildPath("tools/fleetctl/fleetctl"),
                                             "--endpoint", registry_.endpoint, "health-check"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  registry_.process->Signal(SIGTERM);
  ASSERT_OK(registry_.process->Wait());
  ASSERT_OK_AND_ASSIGN(auto down,
                       testing::Run({testing::BuildPath("tools/fleetctl/fleetctl"), "--endpoint",
                                     registry_.endpoint, "--timeout=2s", "health-check"}));
  EXPECT_EQ(down.exit_code, 1);
}

TEST_F(RunningRegistryTest, SigtermStopsGracefully) {
  registry_.process->Signal(SIGTERM);
  ASSERT_OK_AND_ASSIGN(int code, registry_.process->Wait(absl::Seconds(30)));
  EXPECT_EQ(code, 0);
  EXPECT_THAT(registry_.process->output(), HasSubstr("\"msg\":\"stopped\""));
}

}  // namespace
}  // namespace fleetcore::e2e
