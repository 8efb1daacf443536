#include "common/grpc/server.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "common/grpc/call_runner.h"
#include "common/grpc/client.h"
#include "common/grpc/executor.h"
#include "common/testing/pki.h"
#include "fleetcore/testing/v1/echo.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace fleetcore::grpc_util {
namespace {

using ::fleetcore::testing::v1::Echo;
using ::fleetcore::testing::v1::EchoRequest;
using ::fleetcore::testing::v1::EchoResponse;
using ::testing::HasSubstr;

class EchoService final : public Echo::CallbackService {
 public:
  explicit EchoService(CallRunner* calls) : calls_(calls) {}

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx, const EchoRequest* req,
                                 EchoResponse* resp) override {
    return calls_->Run(ctx, [this, req, resp](const CallContext& call) -> absl::Status {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++started_;
      }
      cv_.notify_all();
      if (req->sleep_ms() > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(req->sleep_ms()));
      }
      if (req->message() == "throw") throw std::runtime_error("boom: secret detail");
      if (req->code() != 0) {
        return absl::Status(static_cast<absl::StatusCode>(req->code()), req->message());
      }
      resp->set_message(req->message());
      resp->set_request_id(call.request_id);
      return absl::OkStatus();
    });
  }

 // Waits (bounded) until `n` handler bodies have started.
  bool WaitStarted(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return started_ >= n; });
  }

 private:
  CallRunner* calls_;
  std::mutex mu_;
  std::condition_variable cv_;
  int started_ = 0;
};

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(std::string token) {
    auth_ = std::make_unique<AdminAuth>(token);
    calls_ = std::make_unique<CallRunner>(&executor_, auth_.get());
    service_ = std::make_unique<EchoService>(calls_.get());
    ServerOptions opts;
    opts.listen = "127.0.0.1:0";
    opts.admin_token = token;
    opts.shutdown_grace = absl::Seconds(5);
    auto server = Server::Start(opts, {service_.get()}, metrics_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    target_ = "127.0.0.1:" + std::to_string(server_->port());
  }

  ServiceChannel Channel(std::string token) {
    auto ch = ServiceChannel::Create({.target = target_, .token = std::move(token)});
    EXPECT_TRUE(ch.ok());
    return *ch;
  }

  grpc::Status Call(const ServiceChannel& ch, EchoRequest req, EchoResponse* resp,
                    grpc::ClientContext* ctx = nullptr) {
    auto stub = Echo::NewStub(ch.channel());
    auto own = ch.NewContext();
    return stub->Echo(ctx != nullptr ? ctx : own.get(), req, resp);
  }

  std::string MetricsText() {
    return prometheus::TextSerializer().Serialize(metrics_->Collect());
  }

  Executor executor_{4, 100};
  std::shared_ptr<prometheus::Registry> metrics_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<AdminAuth> auth_;
  std::unique_ptr<CallRunner> calls_;
  std::unique_ptr<EchoService> service_;
  std::unique_ptr<Server> server_;
  std::string target_;
};

TEST_F(ServerTest, AnswersWithTheCorrectToken) {
  StartServer("t0ken");
  EchoRequest req;
  req.set_message("hi");
  EchoResponse resp;
  grpc::Status s = Call(Channel("t0ken"), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.message(), "hi");
  EXPECT_FALSE(resp.request_id().empty());
}

TEST_F(ServerTest, RefusesAMissingOrWrongToken) {
  StartServer("t0ken");
  EchoResponse resp;
  grpc::Status missing = Call(Channel(""), EchoRequest(), &resp);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("authorization: Bearer"));
  grpc::Status wrong = Call(Channel("t0ken-but-longer"), EchoRequest(), &resp);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status prefix = Call(Channel("t0ke"), EchoRequest(), &resp);
  EXPECT_EQ(prefix.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ServerTest, HealthServiceIsServingAndNeedsNoToken) {
  StartServer("t0ken");
  grpc::ClientContext ctx;
  grpc::ByteBuffer response;
  // grpc.health.v1.HealthCheckRequest{service: ""} is the empty message.
  grpc::GenericStub stub(Channel("").channel());
  grpc::ByteBuffer request;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = s;
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; }));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse{status: SERVING (1)} is field 1, varint 1.
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST_F(ServerTest, InternalErrorsAreMaskedOtherCodesPassThrough) {
  StartServer("");
  EchoResponse resp;
  EchoRequest req;
  req.set_code(static_cast<int>(absl::StatusCode::kInternal));
  req.set_message("secret detail: SELECT * FROM things");
  grpc::Status internal = Call(Channel(""), req, &resp);
  EXPECT_EQ(internal.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(internal.error_message(), ::testing::Not(HasSubstr("secret detail")));
  EXPECT_THAT(internal.error_message(), HasSubstr("request id"));

  req.set_code(static_cast<int>(absl::StatusCode::kAborted));
  req.set_message("version conflict");
  grpc::Status aborted = Call(Channel(""), req, &resp);
  EXPECT_EQ(aborted.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(aborted.error_message(), "version conflict");
}

TEST_F(ServerTest, AThrowingHandlerFailsItsCallNotTheServer) {
  StartServer("");
  EchoResponse resp;
  EchoRequest req;
  req.set_message("throw");
  grpc::Status s = Call(Channel(""), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(s.error_message(), HasSubstr("request id"));
  EXPECT_THAT(s.error_message(), ::testing::Not(HasSubstr("secret detail")));
  req.set_message("still here");
  ASSERT_TRUE(Call(Channel(""), req, &resp).ok());
  EXPECT_EQ(resp.message(), "still here");
}

TEST_F(ServerTest, EchoesTheClientsRequestId) {
  StartServer("");
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-request-id", "abc-123");
  EchoResponse resp;
  ASSERT_TRUE(Call(Channel(""), EchoRequest(), &resp, &ctx).ok());
  EXPECT_EQ(resp.request_id(), "abc-123");
  auto it = ctx.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(it, ctx.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "abc-123");
}

TEST_F(ServerTest, CountsCallsByMethodAndCode) {
  StartServer("");
  EchoResponse resp;
  EchoRequest bad;
  bad.set_code(static_cast<int>(absl::StatusCode::kNotFound));
  ASSERT_TRUE(Call(Channel(""), EchoRequest(), &resp).ok());
  ASSERT_FALSE(Call(Channel(""), bad, &resp).ok());
  const std::string text = MetricsText();
  EXPECT_THAT(text, HasSubstr("fleetcore_grpc_server_requests_total{grpc_code=\"OK\","
                              "grpc_method=\"/fleetcore.testing.v1.Echo/Echo\"} 1"));
  EXPECT_THAT(text, HasSubstr("grpc_code=\"NOT_FOUND\""));
  EXPECT_THAT(text, HasSubstr("fleetcore_grpc_server_request_duration_seconds_count{"
                              "grpc_method=\"/fleetcore.testing.v1.Echo/Echo\"} 2"));
}

TEST_F(ServerTest, ShutdownLetsCallsInFlightFinish) {
  StartServer("");
  std::atomic<bool> ok{false};
  std::thread caller([&] {
    EchoRequest req;
    req.set_sleep_ms(300);
    req.set_message("slow");
    EchoResponse resp;
    ok = Call(Channel(""), req, &resp).ok() && resp.message() == "slow";
  });
  ASSERT_TRUE(service_->WaitStarted(1));
  server_->Shutdown();
  caller.join();
  EXPECT_TRUE(ok);
}

TEST_F(ServerTest, TakenPortIsAClearError) {
  StartServer("");
  ServerOptions opts;
  opts.listen = target_;
  auto second = Server::Start(opts, {}, nullptr);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("already in use"));
}

using ::fleetcore::testing::TestPki;

TestPki MakePki(const std::string& tag) {
  auto pki = TestPki::Create(tag);
  EXPECT_TRUE(pki.ok()) << pki.status();
  EXPECT_TRUE(pki->Issue("server").ok());
  EXPECT_TRUE(pki->Issue("client").ok());
  return *pki;
}

class TlsServerTest : public ServerTest {
 protected:
  void StartTls(const TestPki& pki, bool require_client_cert) {
    auth_ = std::make_unique<AdminAuth>("");
    calls_ = std::make_unique<CallRunner>(&executor_, auth_.get());
    service_ = std::make_unique<EchoService>(calls_.get());
    ServerOptions opts{.listen = "127.0.0.1:0",
                       .tls_cert_file = pki.cert("server"),
                       .tls_key_file = pki.key("server")};
    if (require_client_cert) opts.tls_client_ca_file = pki.ca_cert();
    auto server = Server::Start(opts, {service_.get()}, nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    target_ = "localhost:" + std::to_string(server_->port());
  }

  grpc::Status Echo(ClientOptions o) {
    o.target = target_;
    o.timeout = absl::Seconds(5);
    auto ch = ServiceChannel::Create(o);
    EXPECT_TRUE(ch.ok()) << ch.status();
    EchoRequest req;
    req.set_message("over tls");
    EchoResponse resp;
    return Call(*ch, req, &resp);
  }
};

TEST_F(TlsServerTest, ServesTlsToClientsThatTrustItsCa) {
  TestPki pki = MakePki("tls");
  StartTls(pki, /*require_client_cert=*/false);
  EXPECT_TRUE(Echo({.tls_ca_file = pki.ca_cert()}).ok());
  // A plaintext client cannot talk to a TLS port.
  EXPECT_EQ(Echo({}).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsServerTest, MutualTlsRequiresAClientCertificate) {
  TestPki pki = MakePki("mtls");
  StartTls(pki, /*require_client_cert=*/true);
  EXPECT_TRUE(Echo({.tls_ca_file = pki.ca_cert(),
                    .tls_cert_file = pki.cert("client"),
                    .tls_key_file = pki.key("client")})
                  .ok());
  EXPECT_EQ(Echo({.tls_ca_file = pki.ca_cert()}).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(ServerStartTest, TlsOptionsAreCheckedAtStart) {
  ServerOptions half{.listen = "127.0.0.1:0", .tls_cert_file = "/nonexistent.pem"};
  EXPECT_EQ(Server::Start(half, {}, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  ServerOptions missing{.listen = "127.0.0.1:0",
                        .tls_cert_file = "/nonexistent.pem",
                        .tls_key_file = "/nonexistent.key"};
  auto s = Server::Start(missing, {}, nullptr);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("/nonexistent.pem"));
}

TEST(ExecutorTest, RefusesWorkBeyondTheQueueBound) {
  std::mutex mu;
  mu.lock();
  Executor ex(1, 1);
  ASSERT_TRUE(ex.TrySubmit([&] { std::lock_guard<std::mutex> l(mu); }));
  // The worker may or may not have taken the first task yet; fill the queue.
  while (ex.TrySubmit([] {})) {
  }
  EXPECT_FALSE(ex.TrySubmit([] {}));
  mu.unlock();
}

}  // namespace
}  // namespace fleetcore::grpc_util
