// fleetcore-policy: AWS IoT policies and custom authorizers (fleetcore.policy.v1.Policy).
// Reads flags and FLEETCORE_* environment, builds the objects, serves until SIGTERM/SIGINT.
#include <memory>

#include "absl/strings/str_split.h"
#include "common/aws/arn.h"
#include "common/db/pg_listener.h"
#include "common/db/pg_pool.h"
#include "common/grpc/call_runner.h"
#include "common/grpc/client.h"
#include "common/grpc/executor.h"
#include "common/grpc/runtime.h"
#include "common/http/http_client.h"
#include "common/log/log.h"
#include "common/service/endpoints.h"
#include "common/service/process.h"
#include "common/service/service_options.h"
#include "common/status/status_macros.h"
#include "common/time/clock.h"
#include "common/tls/secret_box.h"
#include "services/policy/access_key_core.h"
#include "services/policy/authorizer_core.h"
#include "services/policy/grpc_thing_directory.h"
#include "services/policy/pg_policy_store.h"
#include "services/policy/policy_core.h"
#include "services/policy/policy_service.h"

namespace fleetcore::policy_service {
namespace {

int Run(int argc, char** argv) {
  grpc_util::BlockShutdownSignals();
  grpc_util::ConfigureRuntime();

  service::CommonOptions common{.service = "policy"};
  common.server.listen = service::kPolicyEndpoint;
  common.metrics_listen = "127.0.0.1:9102";
  common.db.application_name = "fleetcore-policy";
  PolicyLimits limits;
  AuthorizerLimits authorizer_limits;
  int authorizer_cache_size = static_cast<int>(authorizer_limits.cache_entries);
  std::string registry_endpoint = service::kRegistryEndpoint;
  std::string registry_ca_file;
  std::string authorizer_ca_file;
  std::string sealing_key_file;
  std::string previous_sealing_key_files;
  config::FlagSet flags("fleetcore-policy",
                        "The fleetcore policy service: AWS IoT policies and their versions and "
                        "attachments, authorization decisions, and custom authorizers, over "
                        "gRPC.");
  service::RegisterFlags(flags, &common);
  flags.AddString("registry-endpoint", &registry_endpoint,
                  "host:port of the registry service (thing groups of a connection's thing).");
  flags.AddString("registry-tls-ca-file", &registry_ca_file,
                  "CA bundle to verify the registry's TLS certificate; empty: plaintext.");
  flags.AddInt("max-policies-per-certificate", &limits.max_per_certificate,
               "Policies attachable to one certificate or access-key user (AWS: 10).", 1, 1000);
  flags.AddInt("max-policies-per-thing-group", &limits.max_per_thing_group,
               "Policies attachable to one thing group (AWS: 2).", 1, 1000);
  flags.AddDuration("authorizer-timeout", &authorizer_limits.function_timeout,
                    "How long a custom authorizer's function may take to answer (AWS: 5s).");
  flags.AddInt("authorizer-cache-size", &authorizer_cache_size,
               "Authorizer answers kept for their refreshAfterInSeconds; 0 disables caching.", 0,
               10000000);
  flags.AddString("authorizer-ca-file", &authorizer_ca_file,
                  "CA bundle trusted for https:// authorizer functions; empty: the system's.");
  flags.AddString("access-key-sealing-key-file", &sealing_key_file,
                  "File of the 32-byte key (64 hex digits, mode 0600; made when missing) that "
                  "seals access keys' secrets in Postgres; empty: access keys (SigV4) are off.");
  flags.AddString("access-key-previous-sealing-key-files", &previous_sealing_key_files,
                  "Comma-separated files of earlier sealing keys (rotation): what they sealed "
                  "still opens, and is sealed again with the current key when its key signs.");
  if (std::optional<int> code = service::ParseFlags(flags, argc, argv, [&]() -> absl::Status {
        FLEETCORE_RETURN_IF_ERROR(service::Validate(common));
        if (authorizer_limits.function_timeout <= absl::ZeroDuration() ||
            authorizer_limits.function_timeout > absl::Seconds(30)) {
          return absl::InvalidArgumentError("--authorizer-timeout must be in (0s, 30s]");
        }
        if (!previous_sealing_key_files.empty() && sealing_key_file.empty()) {
          return absl::InvalidArgumentError(
              "--access-key-previous-sealing-key-files needs --access-key-sealing-key-file");
        }
        if (registry_endpoint.empty()) {
          return absl::InvalidArgumentError("--registry-endpoint must not be empty");
        }
        return absl::OkStatus();
      })) {
    return *code;
  }
  authorizer_limits.cache_entries = static_cast<size_t>(authorizer_cache_size);
  service::Process process;
  if (std::optional<int> code = service::Start(common, nullptr, &process)) return *code;

  // The registry is asked lazily (per call), so the services may start in any order.
  std::optional<grpc_util::ServiceChannel> registry =
      service::ConnectPeer("registry", registry_endpoint, registry_ca_file, common);
  if (!registry.has_value()) return 1;

  std::optional<tls::SecretBox> sealing_key;
  if (!sealing_key_file.empty()) {
    const std::vector<std::string> previous =
        absl::StrSplit(previous_sealing_key_files, ',', absl::SkipEmpty());
    absl::StatusOr<tls::SecretBox> box =
        tls::SecretBox::Load(sealing_key_file, /*create=*/true, previous);
    if (!box.ok()) {
      log::Error("cannot start: --access-key-sealing-key-file", {{"error", box.status()}});
      return 1;
    }
    sealing_key.emplace(*std::move(box));
  } else {
    log::Info("access keys (SigV4) are off: no --access-key-sealing-key-file");
  }

  aws::Arns arns(common.region, common.account_id);
  SystemClock clock;
  PgPolicyStore store(process.pool.get());
  GrpcThingDirectory things(*std::move(registry));
  http::BeastHttpClient http({.ca_file = authorizer_ca_file});
  PolicyCore policies(&store, &things, &arns, &clock, limits);
  AuthorizerCore authorizers(&store, &http, &arns, &clock, authorizer_limits);
  AccessKeyCore access_keys(&store, sealing_key.has_value() ? &*sealing_key : nullptr, &arns,
                            &clock);

  // Cached authorizer answers die with their authorizer's change, here or on another replica;
  // after a reconnect some NOTIFYs may have been lost, so everything goes.
  auto listener = db::PgListener::Start(
      common.db.url, {kPolicyChannel},
      [&authorizers](absl::string_view, absl::string_view payload) {
        if (std::optional<PolicyEvent> e = PgPolicyStore::ParseEvent(payload)) {
          if (!e->authorizer.empty()) authorizers.InvalidateCache(e->authorizer);
        }
      },
      [&authorizers] { authorizers.InvalidateCache(); });
  if (!listener.ok()) {
    log::Error("cannot start", {{"error", listener.status()}});
    return 1;
  }

  // Authorizer calls block a worker for up to --authorizer-timeout, so there are more
  // workers than connections.
  grpc_util::Executor executor(common.workers > 0 ? common.workers : 2 * common.db.pool_size,
                               /*max_queued=*/10000);
  grpc_util::AdminAuth auth(common.server.admin_token);
  grpc_util::CallRunner calls(&executor, &auth);
  PolicyService service(&policies, &authorizers, &access_keys, &calls, process.metrics.get());

  return service::Serve(common, {&service}, process);
}

}  // namespace
}  // namespace fleetcore::policy_service

int main(int argc, char** argv) { return fleetcore::policy_service::Run(argc, argv); }
