// fleetcore-ca: device certificates, registered CAs, provisioning templates, fleet
// provisioning, JITR/JITP and the gateway's ResolvePeer (fleetcore.ca.v1.Ca), plus the CRL
// over HTTP. Reads flags and FLEETCORE_* environment, serves until SIGTERM/SIGINT.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/aws/arn.h"
#include "common/db/pg_listener.h"
#include "common/grpc/call_runner.h"
#include "common/grpc/client.h"
#include "common/grpc/executor.h"
#include "common/grpc/runtime.h"
#include "common/http/http_client.h"
#include "common/http/http_server.h"
#include "common/log/log.h"
#include "common/service/endpoints.h"
#include "common/service/process.h"
#include "common/service/service_options.h"
#include "common/status/status_macros.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"
#include "services/ca/ca_metrics.h"
#include "services/ca/ca_service.h"
#include "services/ca/certificate_core.h"
#include "services/ca/grpc_peers.h"
#include "services/ca/issuing_ca.h"
#include "services/ca/pg_ca_store.h"
#include "services/ca/provisioning_core.h"
#include "services/ca/resolver.h"

namespace fleetcore::ca {
namespace {

// Runs CertificateCore::Sweep every `interval` until destroyed.
class Sweeper {
 public:
  Sweeper(CertificateCore* core, absl::Duration interval)
      : core_(core), interval_(interval), thread_([this] { Run(); }) {}
  ~Sweeper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, absl::ToChronoNanoseconds(interval_), [&] { return stop_; })) {
      lock.unlock();
      absl::StatusOr<SweepCounts> c = core_->Sweep();
      if (!c.ok()) {
        log::Warn("certificate sweep failed; retrying", {{"error", c.status()}});
      } else if (c->deactivated > 0 || c->claims_deleted > 0 || c->crl_renewed) {
        log::Info("certificate sweep", {{"deactivated", c->deactivated},
                                        {"claims_deleted", c->claims_deleted},
                                        {"tokens_deleted", c->tokens_deleted},
                                        {"crl_renewed", c->crl_renewed}});
      }
      lock.lock();
    }
  }

  CertificateCore* core_;
  absl::Duration interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is set
};

int Run(int argc, char** argv) {
  grpc_util::BlockShutdownSignals();
  grpc_util::ConfigureRuntime();

  service::CommonOptions common{.service = "ca"};
  common.server.listen = service::kCaEndpoint;
  common.metrics_listen = "127.0.0.1:9103";
  common.db.application_name = "fleetcore-ca";
  IssuingCaOptions issuing_options{.dir = "/var/lib/fleetcore/ca"};
  std::string issuing_key_type = "ec-p256";
  std::string device_key_type = "ec-p256";
  CaOptions ca_options;
  std::string registry_endpoint = service::kRegistryEndpoint;
  std::string policy_endpoint = service::kPolicyEndpoint;
  std::string peers_ca_file;
  std::string hook_ca_file;
  std::string crl_listen = "127.0.0.1:9180";
  int resolve_cache_size = 100000;
  absl::Duration sweep_interval = absl::Seconds(5);

  config::FlagSet flags("fleetcore-ca",
                        "The fleetcore certificate authority: device certificates and their "
                        "status, registered CAs, provisioning templates, fleet provisioning, "
                        "JITR and JITP, the gateway's ResolvePeer, and a CRL.");
  service::RegisterFlags(flags, &common);
  flags.AddString("ca-dir", &issuing_options.dir,
                  "Folder of the issuing CA (ca.pem, ca.key 0600); made on first start. "
                  "Replicas must share it, or use --ca-cert-file/--ca-key-file.");
  flags.AddString("ca-cert-file", &issuing_options.cert_file,
                  "The issuing CA's certificate (PEM), e.g. from a Kubernetes secret; with "
                  "--ca-key-file, instead of --ca-dir.");
  flags.AddString("ca-key-file", &issuing_options.key_file,
                  "The issuing CA's private key (PEM, mode 0600 or 0400).");
  flags.AddSecret("ca-key-passphrase", &issuing_options.passphrase,
                  "Passphrase of the issuing CA's key (PKCS#8, AES-256); a new key is written "
                  "encrypted with it.");
  flags.AddChoice("ca-key-type", &issuing_key_type, "Key type of a new issuing CA.",
                  {"ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"});
  flags.AddChoice("device-key-type", &device_key_type,
                  "Key type of the key pairs CreateKeysAndCertificate makes.",
                  {"ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"});
  flags.AddDuration("certificate-validity", &ca_options.certificate_validity,
                    "How long device certificates fleetcore issues are valid (capped at the "
                    "issuing CA's own expiry).");
  flags.AddDuration("crl-validity", &ca_options.crl_validity,
                    "How long a CRL is valid (nextUpdate); renewed a day before.");
  flags.AddString("registry-endpoint", &registry_endpoint,
                  "host:port of the registry service (things of a certificate, provisioning).");
  flags.AddString("policy-endpoint", &policy_endpoint,
                  "host:port of the policy service (policies of a certificate, provisioning).");
  flags.AddString("peers-tls-ca-file", &peers_ca_file,
                  "CA bundle to verify the registry's and policy service's TLS; empty: "
                  "plaintext.");
  flags.AddString("hook-ca-file", &hook_ca_file,
                  "CA bundle trusted for https:// pre-provisioning hooks; empty: the system's.");
  flags.AddString("crl-listen", &crl_listen,
                  "Address (host:port) of the HTTP endpoint serving GET /crl (DER) and "
                  "/crl.pem and /ca.pem; empty disables it.");
  flags.AddInt("resolve-cache-size", &resolve_cache_size,
               "ResolvePeer answers of ACTIVE certificates kept in memory (kept fresh by "
               "NOTIFY); 0 disables.",
               0, 10000000);
  flags.AddDuration("sweep-interval", &sweep_interval,
                    "How often rotation grace periods, expired claims and the CRL are looked at.");
  if (std::optional<int> code = service::ParseFlags(flags, argc, argv, [&]() -> absl::Status {
        FLEETCORE_RETURN_IF_ERROR(service::Validate(common));
        FLEETCORE_ASSIGN_OR_RETURN(issuing_options.key_type, tls::ParseKeyType(issuing_key_type));
        FLEETCORE_ASSIGN_OR_RETURN(ca_options.device_key_type, tls::ParseKeyType(device_key_type));
        if (ca_options.certificate_validity < absl::Hours(1)) {
          return absl::InvalidArgumentError("--certificate-validity must be at least 1h");
        }
        if (ca_options.crl_validity < absl::Hours(25)) {
          return absl::InvalidArgumentError("--crl-validity must be more than a day (25h+)");
        }
        if (sweep_interval < absl::Milliseconds(100)) {
          return absl::InvalidArgumentError("--sweep-interval must be at least 100ms");
        }
        if (registry_endpoint.empty() || policy_endpoint.empty()) {
          return absl::InvalidArgumentError(
              "--registry-endpoint and --policy-endpoint must not be empty");
        }
        return absl::OkStatus();
      })) {
    return *code;
  }
  service::Process process;
  if (std::optional<int> code = service::Start(common, &PgCaStore::Prepare, &process)) {
    return *code;
  }

  SystemClock clock;
  absl::StatusOr<std::unique_ptr<IssuingCa>> issuing =
      IssuingCa::LoadOrCreate(issuing_options, clock.Now());
  if (!issuing.ok()) {
    log::Error("cannot start: the issuing CA", {{"error", issuing.status()}});
    return 1;
  }
  log::Info(
      (*issuing)->created() ? "created the issuing CA" : "loaded the issuing CA",
      {{"ca_certificate_id", (*issuing)->id()},
       {"subject", (*issuing)->certificate().subject().ToString()},
       {"not_after", absl::FormatTime(absl::RFC3339_sec, (*issuing)->certificate().not_after(),
                                      absl::UTCTimeZone())}});

  std::optional<grpc_util::ServiceChannel> registry =
      service::ConnectPeer("registry", registry_endpoint, peers_ca_file, common);
  if (!registry.has_value()) return 1;
  std::optional<grpc_util::ServiceChannel> policy =
      service::ConnectPeer("policy", policy_endpoint, peers_ca_file, common);
  if (!policy.has_value()) return 1;

  aws::Arns arns(common.region, common.account_id);
  CaMetrics metrics(*process.metrics);
  PgCaStore store(process.pool.get(), process.metrics.get());
  GrpcPeers peers(*std::move(registry), *std::move(policy));
  http::BeastHttpClient hooks({.ca_file = hook_ca_file});
  CertificateCore certificates(&store, issuing->get(), &peers, &arns, &clock, &metrics, ca_options);
  ProvisioningCore provisioning(&store, &certificates, &peers, &hooks, &arns, &clock);
  PeerResolver resolver(&store, &certificates, &provisioning, &peers, &clock,
                        static_cast<size_t>(resolve_cache_size));

  // Cached ResolvePeer answers die with a certificate's change (here or on another replica),
  // with a change of its things (the registry's events), or with a CA's change.
  auto listener = db::PgListener::Start(
      common.db.url, {kCaChannel, "fleetcore_registry"},
      [&resolver, &arns](absl::string_view channel, absl::string_view payload) {
        if (channel == kCaChannel) {
          std::optional<CaEvent> e = PgCaStore::ParseEvent(payload);
          if (!e.has_value() || !e->ca_certificate.empty()) {
            resolver.InvalidateAll();
          } else if (!e->certificate.empty()) {
            resolver.Invalidate(e->certificate);
          }
          return;
        }
        // Registry: {"type":"thing.principal_attached","principal":"arn:...:cert/<id>"}.
        nlohmann::json j = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
        if (j.is_object() && j.contains("principal") && j["principal"].is_string()) {
          if (auto id = arns.ParseResource(j["principal"].get<std::string>(), "cert")) {
            resolver.Invalidate(*id);
          }
        }
      },
      [&resolver] { resolver.InvalidateAll(); });
  if (!listener.ok()) {
    log::Error("cannot start", {{"error", listener.status()}});
    return 1;
  }

  std::unique_ptr<http::HttpServer> crl_server;
  if (!crl_listen.empty()) {
    auto started = http::HttpServer::Start(crl_listen, [&](const http::ServerRequest& r) {
      if (r.method != "GET") return http::ServerResponse{405, "text/plain", "GET only\n"};
      if (r.target == "/ca.pem") {
        return http::ServerResponse{200, "application/x-pem-file", certificates.issuing().pem()};
      }
      if (r.target != "/crl" && r.target != "/crl.pem") {
        return http::ServerResponse{404, "text/plain", "try /crl, /crl.pem or /ca.pem\n"};
      }
      absl::StatusOr<CrlRecord> crl = certificates.Crl();
      if (!crl.ok()) {
        log::Warn("cannot serve the CRL", {{"error", crl.status()}});
        return http::ServerResponse{503, "text/plain", "the CRL is not available right now\n"};
      }
      if (r.target == "/crl.pem") {
        return http::ServerResponse{200, "application/x-pem-file",
                                    tls::DerToPem(crl->der, "X509 CRL")};
      }
      return http::ServerResponse{200, "application/pkix-crl", crl->der};
    });
    if (!started.ok()) {
      log::Error("cannot start the CRL endpoint", {{"error", started.status()}});
      return 1;
    }
    crl_server = std::move(*started);
    log::Info("serving the CRL", {{"crl_port", crl_server->port()}});
  }

  Sweeper sweeper(&certificates, sweep_interval);
  // Signing is CPU work and provisioning waits on peers: workers beyond the pool's size.
  grpc_util::Executor executor(common.workers > 0 ? common.workers : 2 * common.db.pool_size,
                               /*max_queued=*/10000);
  grpc_util::AdminAuth auth(common.server.admin_token);
  grpc_util::CallRunner calls(&executor, &auth);
  CaService service(&certificates, &provisioning, &resolver, &calls, &metrics);
  return service::Serve(common, {&service}, process);
}

}  // namespace
}  // namespace fleetcore::ca

int main(int argc, char** argv) { return fleetcore::ca::Run(argc, argv); }
