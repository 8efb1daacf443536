// fleetcore-shadow: the device shadow service (fleetcore.shadow.v1.Shadow). Reads flags and
// FLEETCORE_* environment, builds the objects, serves until SIGTERM/SIGINT.
#include <memory>

#include "common/db/pg_pool.h"
#include "common/grpc/call_runner.h"
#include "common/grpc/client.h"
#include "common/grpc/executor.h"
#include "common/grpc/runtime.h"
#include "common/log/log.h"
#include "common/service/endpoints.h"
#include "common/service/process.h"
#include "common/service/service_options.h"
#include "common/status/status_macros.h"
#include "common/time/clock.h"
#include "common/broker/broker_publisher.h"
#include "services/shadow/pg_shadow_store.h"
#include "services/shadow/shadow_core.h"
#include "services/shadow/shadow_service.h"

namespace fleetcore::shadow {
namespace {

int Run(int argc, char** argv) {
  grpc_util::BlockShutdownSignals();
  grpc_util::ConfigureRuntime();

  service::CommonOptions common{.service = "shadow"};
  common.server.listen = service::kShadowEndpoint;
  common.metrics_listen = "127.0.0.1:9105";
  common.db.application_name = "fleetcore-shadow";
  std::string gateway_endpoint = service::kGatewayEndpoint;
  std::string peers_ca_file;
  int max_queued = 10000;
  int cache_size = 100000;
  config::FlagSet flags("fleetcore-shadow",
                        "The fleetcore device shadow service: classic and named shadows with AWS "
                        "IoT Core's documents, deltas and versions, over gRPC; every change is "
                        "published to devices through the gateway.");
  service::RegisterFlags(flags, &common);
  flags.AddString("gateway-endpoint", &gateway_endpoint,
                  "host:port of the gateway's gRPC API, through which shadow changes reach "
                  "devices (update/accepted, update/delta, update/documents, delete/accepted).");
  flags.AddString("peers-tls-ca-file", &peers_ca_file,
                  "CA bundle to verify the gateway's gRPC TLS; empty: plaintext.");
  flags.AddInt("publish-queue", &max_queued,
               "Messages waiting for the gateway while it is slow or down; beyond, they are "
               "dropped (and counted).",
               100, 10000000);
  flags.AddInt("shadow-cache-size", &cache_size,
               "Shadows kept in memory after an update, so that the next update of one "
               "writes without reading it first (checked against Postgres by its version); "
               "0: off.",
               0, 100000000);
  if (std::optional<int> code = service::ParseFlags(flags, argc, argv, [&]() -> absl::Status {
        FLEETCORE_RETURN_IF_ERROR(service::Validate(common));
        if (gateway_endpoint.empty()) {
          return absl::InvalidArgumentError("--gateway-endpoint must not be empty");
        }
        return absl::OkStatus();
      })) {
    return *code;
  }
  service::Process process;
  if (std::optional<int> code = service::Start(common, &PgShadowStore::Prepare, &process)) {
    return *code;
  }
  std::optional<grpc_util::ServiceChannel> gateway =
      service::ConnectPeer("gateway", gateway_endpoint, peers_ca_file, common);
  if (!gateway.has_value()) return 1;

  SystemClock clock;
  PgShadowStore store(process.pool.get(), static_cast<size_t>(cache_size), process.metrics.get());
  broker::BrokerPublisher publisher(
      gateway->channel(), common.server.admin_token, process.metrics.get(),
      {.metric_name = "fleetcore_shadow_messages_total",
       .metric_help = "MQTT messages (accepted, delta, documents) sent through the gateway, by "
                      "result.",
       .what = "shadow messages",
       .max_queued = static_cast<size_t>(max_queued)});
  ShadowCore core(&store, &publisher, &clock);

  grpc_util::Executor executor(common.workers > 0 ? common.workers : common.db.pool_size,
                               /*max_queued=*/10000);
  grpc_util::AdminAuth auth(common.server.admin_token);
  grpc_util::CallRunner calls(&executor, &auth);
  ShadowService service(&core, &calls, process.metrics.get());

  return service::Serve(common, {&service}, process,
                        {.drain = [&] { publisher.Drain(absl::Seconds(5)); }});
}

}  // namespace
}  // namespace fleetcore::shadow

int main(int argc, char** argv) { return fleetcore::shadow::Run(argc, argv); }
