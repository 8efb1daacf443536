// fleetcore-rules: the rules service (fleetcore.rules.v1.Rules). Reads flags and
// FLEETCORE_* environment, builds the objects, serves until SIGTERM/SIGINT.
#include <atomic>
#include <optional>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/aws/arn.h"
#include "common/db/pg_listener.h"
#include "common/grpc/call_runner.h"
#include "common/grpc/client.h"
#include "common/grpc/executor.h"
#include "common/grpc/runtime.h"
#include "common/http/http_client.h"
#include "common/http/http_server.h"
#include "common/ids/id_generator.h"
#include "common/log/log.h"
#include "common/service/endpoints.h"
#include "common/service/process.h"
#include "common/service/service_options.h"
#include "common/status/status_macros.h"
#include "common/time/clock.h"
#include "services/rules/destinations.h"
#include "services/rules/pg_rules_store.h"
#include "services/rules/rules_core.h"
#include "services/rules/rules_engine.h"
#include "services/rules/rules_service.h"
#include "services/rules/peer_lookups.h"

namespace fleetcore::rules {
namespace {

int Run(int argc, char** argv) {
  grpc_util::BlockShutdownSignals();
  grpc_util::ConfigureRuntime();

  service::CommonOptions common{.service = "rules"};
  common.server.listen = service::kRulesEndpoint;
  common.metrics_listen = "127.0.0.1:9106";
  common.db.application_name = "fleetcore-rules";
  std::string gateway_endpoint = service::kGatewayEndpoint;
  std::string shadow_endpoint = service::kShadowEndpoint;
  std::string registry_endpoint = service::kRegistryEndpoint;
  std::string peers_ca_file;
  std::string http_ca_file;
  std::string confirm_listen = "127.0.0.1:9186";
  std::string confirm_url;
  RulesEngine::Options engine_options;
  int max_messages = 10000;
  int max_actions = 10000;
  config::FlagSet flags("fleetcore-rules",
                        "The fleetcore rules engine: topic rules in AWS IoT SQL, validated at "
                        "creation, over gRPC, with EvaluateRule for dry runs. It runs the "
                        "enabled rules on the messages the gateway sends (Ingest) and their "
                        "actions: republish, postgres, http, s3; get_thing_shadow() and "
                        "get_registry_data() read the shadow service and the registry.");
  service::RegisterFlags(flags, &common);
  flags.AddString("gateway-endpoint", &gateway_endpoint,
                  "host:port of the gateway's gRPC API, through which republish actions "
                  "publish.");
  flags.AddString("shadow-endpoint", &shadow_endpoint,
                  "host:port of the shadow service, which get_thing_shadow() in a rule's SQL "
                  "reads; empty: rules calling it fail (and run their errorAction).");
  flags.AddString("registry-endpoint", &registry_endpoint,
                  "host:port of the registry, which get_registry_data() in a rule's SQL "
                  "reads; empty: rules calling it fail (and run their errorAction).");
  flags.AddString("peers-tls-ca-file", &peers_ca_file,
                  "CA bundle to verify the gRPC TLS of the gateway, the shadow service and "
                  "the registry; empty: plaintext.");
  flags.AddString("http-ca-file", &http_ca_file,
                  "CA bundle trusted for https:// http actions; empty: the system's.");
  flags.AddString("confirm-listen", &confirm_listen,
                  "Address (host:port) of the HTTP endpoint where a topic rule destination's "
                  "confirmation is completed by a GET of the enableUrl its confirmation "
                  "request carries (/confirmdestination/{token}); empty disables it.");
  flags.AddString("confirm-url", &confirm_url,
                  "Public base URL of --confirm-listen, as the destinations' endpoints reach "
                  "it (the enableUrl's start); empty: http://{--confirm-listen}.");
  flags.AddString("s3-access-key-id", &engine_options.s3_credentials.access_key_id,
                  "Access key id s3 actions, and http actions with auth.sigv4, sign with "
                  "(AWS Signature V4).");
  flags.AddSecret("s3-secret-access-key", &engine_options.s3_credentials.secret_access_key,
                  "Secret access key of --s3-access-key-id.");
  flags.AddSecret("s3-session-token", &engine_options.s3_credentials.session_token,
                  "Session token, with temporary credentials.");
  flags.AddInt("queue", &max_messages,
               "Messages waiting for evaluation; beyond, the gateway's messages are dropped "
               "(and counted).",
               100, 10000000);
  flags.AddInt("action-queue", &max_actions,
               "Actions waiting for an action thread; beyond, a rule's actions are dropped "
               "(and counted).",
               100, 10000000);
  flags.AddInt("action-workers", &engine_options.action_workers,
               "Threads that run actions (each blocks while its target answers).", 1, 256);
  flags.AddInt("http-attempts", &engine_options.http_attempts,
               "Attempts of an http or s3 action (after a transport error, a 429 or a 5xx) "
               "before it fails and the errorAction runs.",
               1, 10);
  if (std::optional<int> code = service::ParseFlags(flags, argc, argv, [&]() -> absl::Status {
        FLEETCORE_RETURN_IF_ERROR(service::Validate(common));
        if (gateway_endpoint.empty()) {
          return absl::InvalidArgumentError("--gateway-endpoint must not be empty");
        }
        if (!confirm_url.empty() && !absl::StartsWith(confirm_url, "http://") &&
            !absl::StartsWith(confirm_url, "https://")) {
          return absl::InvalidArgumentError("--confirm-url must be an http:// or https:// URL");
        }
        if (engine_options.s3_credentials.access_key_id.empty() !=
            engine_options.s3_credentials.secret_access_key.empty()) {
          return absl::InvalidArgumentError(
              "--s3-access-key-id and --s3-secret-access-key go together");
        }
        return absl::OkStatus();
      })) {
    return *code;
  }
  service::Process process;
  if (std::optional<int> code = service::Start(common, nullptr, &process)) return *code;
  std::optional<grpc_util::ServiceChannel> gateway =
      service::ConnectPeer("gateway", gateway_endpoint, peers_ca_file, common);
  if (!gateway.has_value()) return 1;
  // The services the SQL's lookups read (none when their endpoint is empty).
  std::optional<grpc_util::ServiceChannel> shadow;
  std::optional<grpc_util::ServiceChannel> registry;
  for (auto [name, endpoint, channel] :
       {std::tuple("shadow", &shadow_endpoint, &shadow),
        std::tuple("registry", &registry_endpoint, &registry)}) {
    if (endpoint->empty()) continue;
    *channel = service::ConnectPeer(name, *endpoint, peers_ca_file, common);
    if (!channel->has_value()) return 1;
  }
  PeerLookups lookups({.shadow = shadow.has_value() ? shadow->channel() : nullptr,
                       .registry = registry.has_value() ? registry->channel() : nullptr,
                       .token = common.server.admin_token},
                      process.metrics.get());

  aws::Arns arns(common.region, common.account_id);
  SystemClock clock;
  RandomIdGenerator ids;
  PgRulesStore store(process.pool.get());
  http::BeastHttpClient http({.ca_file = http_ca_file});
  // The enableUrl of a destination's confirmation request: a GET with the token confirms.
  // Started before the destinations, whose enableUrl names its bound port; it answers 503
  // until they exist.
  std::atomic<DestinationsCore*> confirmer{nullptr};
  std::unique_ptr<DestinationsCore> destinations;  // declared first: outlives the server
  std::unique_ptr<http::HttpServer> confirm_server;
  if (!confirm_listen.empty()) {
    // Static: the handler runs long after this block, and must not refer to its stack.
    static constexpr absl::string_view kPath = "/confirmdestination/";
    auto started = http::HttpServer::Start(confirm_listen, [&](const http::ServerRequest& r) {
      if (r.method != "GET") return http::ServerResponse{405, "text/plain", "GET only\n"};
      if (!absl::StartsWith(r.target, kPath)) {
        return http::ServerResponse{404, "text/plain", "try /confirmdestination/{token}\n"};
      }
      absl::string_view token = absl::string_view(r.target).substr(kPath.size());
      DestinationsCore* core = confirmer.load();
      if (core == nullptr) return http::ServerResponse{503, "text/plain", "starting; try again\n"};
      absl::StatusOr<std::string> arn =
          core->Confirm(std::string(token.substr(0, token.find('?'))));
      if (arn.ok()) {
        return http::ServerResponse{200, "text/plain",
                                    absl::StrCat("topic rule destination ", *arn,
                                                 " confirmed: ENABLED\n")};
      }
      if (absl::IsInvalidArgument(arn.status())) {
        return http::ServerResponse{404, "text/plain",
                                    absl::StrCat(arn.status().message(), "\n")};
      }
      log::Warn("destination confirmation failed", {{"error", arn.status()}});
      return http::ServerResponse{503, "text/plain", "try again later\n"};
    });
    if (!started.ok()) {
      log::Error("cannot start the destination confirmation endpoint",
                 {{"error", started.status()}});
      return 1;
    }
    confirm_server = std::move(*started);
  }
  std::string enable_url_base = confirm_url;
  if (enable_url_base.empty() && confirm_server != nullptr) {
    const absl::string_view host =
        absl::string_view(confirm_listen).substr(0, confirm_listen.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "[::]") {
      log::Warn("confirmation requests carry no enableUrl: --confirm-listen names no host "
                "their receivers can reach; set --confirm-url",
                {{"confirm_listen", confirm_listen}});
    } else {
      enable_url_base = absl::StrCat("http://", host, ":", confirm_server->port());
    }
  }
  while (absl::EndsWith(enable_url_base, "/")) enable_url_base.pop_back();
  destinations = std::make_unique<DestinationsCore>(
      &store, &arns, &clock, &ids, &http,
      DestinationsCore::Options{.enable_url_base = enable_url_base,
                                .sweep_every = absl::Minutes(1)},
      process.metrics.get());
  confirmer = destinations.get();
  RulesCore core(&store, &arns, &clock, &lookups, destinations.get());
  engine_options.pool = process.pool.get();
  engine_options.gateway = gateway->channel();
  engine_options.gateway_token = common.server.admin_token;
  engine_options.http = &http;
  engine_options.lookups = &lookups;
  engine_options.metrics = process.metrics.get();
  engine_options.max_queued_messages = static_cast<size_t>(max_messages);
  engine_options.max_queued_actions = static_cast<size_t>(max_actions);
  engine_options.region = common.region;
  RulesEngine engine(&store, engine_options);
  if (absl::Status s = engine.Reload(); !s.ok()) {
    log::Error("cannot start: the topic rules cannot be loaded", {{"error", s}});
    return 1;
  }
  // Confirmation requests the last stop left unsent go now (the destinations say so until),
  // and those a crashed replica left (then every minute, by the core's sweeper).
  if (absl::StatusOr<int> resent = destinations->ResendUnsent(); !resent.ok()) {
    log::Warn(
        "unsent confirmation requests are not sent again yet (the sweeper tries "
        "again each minute)",
        {{"error", resent.status()}});
  }
  // Rule changes (here or on another replica) reload the rules; after a reconnect some
  // NOTIFYs may have been lost, so they reload too.
  auto reload = [&engine] {
    if (absl::Status s = engine.Reload(); !s.ok()) {
      log::Error("topic rules not reloaded", {{"error", s}});
    }
  };
  auto listener = db::PgListener::Start(
      common.db.url, {kRulesChannel, kDestinationsChannel},
      [&](absl::string_view, absl::string_view) { reload(); }, reload);
  if (!listener.ok()) {
    log::Error("cannot start", {{"error", listener.status()}});
    return 1;
  }


  grpc_util::Executor executor(common.workers > 0 ? common.workers : common.db.pool_size,
                               /*max_queued=*/10000);
  grpc_util::AdminAuth auth(common.server.admin_token);
  grpc_util::CallRunner calls(&executor, &auth);
  RulesService service(&core, destinations.get(), &engine, &calls);
  service::ServeExtras extras{.drain = [&] { engine.Drain(absl::Seconds(5)); }};
  if (confirm_server != nullptr) extras.ports.emplace_back("confirm_port", confirm_server->port());
  return service::Serve(common, {&service}, process, extras);
}

}  // namespace
}  // namespace fleetcore::rules

int main(int argc, char** argv) { return fleetcore::rules::Run(argc, argv); }
