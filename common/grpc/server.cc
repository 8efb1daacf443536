#include "common/grpc/server.h"

#include <signal.h>

#include <array>
#include <atomic>
#include <chrono>
#include "absl/strings/string_view.h"
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/config/flag_set.h"
#include "common/net/listen_address.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace fleetcore::grpc_util {
namespace {

constexpr int kCodes = 17;  // grpc::StatusCode OK (0) .. UNAUTHENTICATED (16)

const char* CodeName(int code) {
  static constexpr const char* kNames[kCodes] = {
      "OK",           "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS",   "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",  "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",      "DATA_LOSS",
      "UNAUTHENTICATED"};
  return code >= 0 && code < kCodes ? kNames[code] : "UNKNOWN";
}

// The metrics of one method, resolved once so a call does no label lookups.
struct MethodMetrics {
  prometheus::Histogram* latency = nullptr;
  std::array<std::atomic<prometheus::Counter*>, kCodes> requests{};
};

// Counts every call by method and final code and records its latency.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(absl::string_view method, MethodMetrics* metrics,
                     prometheus::Family<prometheus::Counter>* family)
      : method_(method), metrics_(metrics), family_(family),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
      metrics_->latency->Observe(elapsed.count());
      int code = static_cast<int>(methods->GetSendStatus().error_code());
      if (code < 0 || code >= kCodes) code = grpc::StatusCode::UNKNOWN;
      prometheus::Counter* counter = metrics_->requests[code].load(std::memory_order_acquire);
      if (counter == nullptr) {
        // Family::Add returns the same counter for the same labels, so a race is harmless.
        counter = &family_->Add({{"grpc_method", std::string(method_)}, {"grpc_code", CodeName(code)}});
        metrics_->requests[code].store(counter, std::memory_order_release);
      }
      counter->Increment();
    }
    methods->Proceed();
  }

 private:
  absl::string_view method_;
  MethodMetrics* metrics_;
  prometheus::Family<prometheus::Counter>* family_;
  std::chrono::steady_clock::time_point start_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(prometheus::Registry& registry)
      : requests_(prometheus::BuildCounter()
                      .Name("fleetcore_grpc_server_requests_total")
                      .Help("gRPC calls handled, by method and status code.")
                      .Register(registry)),
        latency_(prometheus::BuildHistogram()
                     .Name("fleetcore_grpc_server_request_duration_seconds")
                     .Help("Time from the start of a gRPC call to its status, by method.")
                     .Register(registry)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* name = info->method() != nullptr ? info->method() : "unknown";
    std::map<std::string, std::unique_ptr<MethodMetrics>, std::less<>>::iterator it;
    {
      std::lock_guard<std::mutex> lock(mu_);
      it = methods_.find(absl::string_view(name));
      if (it == methods_.end()) {
        auto m = std::make_unique<MethodMetrics>();
        m->latency = &latency_.Add({{"grpc_method", name}},
                                   prometheus::Histogram::BucketBoundaries{
                                       0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25, 0.5, 1, 2.5, 5, 10});
        it = methods_.emplace(name, std::move(m)).first;
      }
    }
    // Map nodes are stable, so the key and the metrics outlive the interceptor.
    return new MetricsInterceptor(it->first, it->second.get(), &requests_);
  }

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<MethodMetrics>, std::less<>> methods_;
};

}  // namespace

void RegisterFlags(config::FlagSet& flags, ServerOptions* o) {
  flags.AddString("listen", &o->listen, "Address (host:port) of the gRPC API.");
  flags.AddString("tls-cert", &o->tls_cert_file,
                  "PEM certificate chain for TLS on the gRPC port (with --tls-key).");
  flags.AddString("tls-key", &o->tls_key_file, "PEM private key for --tls-cert.");
  flags.AddString("tls-client-ca", &o->tls_client_ca_file,
                  "PEM CA bundle; when set, gRPC clients must present a certificate it signed.");
  flags.AddSecret("admin-token", &o->admin_token,
                  "Bearer token every admin gRPC call must carry; empty disables the check.");
  flags.AddDuration("shutdown-grace", &o->shutdown_grace,
                    "On SIGTERM, how long calls in flight may run before they are cancelled.");
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, const std::vector<grpc::Service*>& services,
    prometheus::Registry* metrics) {
  if (absl::Status s = net::ProbeListen("gRPC listener", options.listen); !s.ok()) {
    return s;
  }
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  if (!options.tls_cert_file.empty()) {
    auto cert = config::ReadFile(options.tls_cert_file, "TLS certificate");
    if (!cert.ok()) return cert.status();
    auto key = config::ReadFile(options.tls_key_file, "TLS key");
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    if (!options.tls_client_ca_file.empty()) {
      auto ca = config::ReadFile(options.tls_client_ca_file, "TLS client CA");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
      ssl.client_certificate_request =
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(ssl);
  } else if (!options.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  } else {
    creds = grpc::InsecureServerCredentials();
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::unique_ptr<Server> server(new Server());
  builder.AddListeningPort(options.listen, creds, &server->port_);
  for (grpc::Service* s : services) {
    builder.RegisterService(s);
  }
  if (metrics != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    f.push_back(std::make_unique<MetricsInterceptorFactory>(*metrics));
    builder.experimental().SetInterceptorCreators(std::move(f));
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("gRPC listener: cannot listen on ", options.listen));
  }
  server->grace_ = options.shutdown_grace;
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  return server;
}

void Server::Shutdown() {
  if (shut_down_ || server_ == nullptr) {
    return;
  }
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(grace_)));
  server_->Wait();
}

Server::~Server() { Shutdown(); }

void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

std::string WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

}  // namespace fleetcore::grpc_util
