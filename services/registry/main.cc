// fleetcore-registry: the thing registry service (fleetcore.registry.v1.Registry).
// Reads flags and FLEETCORE_* environment, builds the objects, serves until SIGTERM/SIGINT.
#include <memory>

#include "common/aws/arn.h"
#include "common/broker/broker_publisher.h"
#include "common/db/pg_listener.h"
#include "common/db/pg_pool.h"
#include "common/grpc/call_runner.h"
#include "common/grpc/executor.h"
#include "common/grpc/runtime.h"
#include "common/ids/id_generator.h"
#include "common/log/log.h"
#include "common/service/endpoints.h"
#include "common/service/process.h"
#include "common/service/service_options.h"
#include "common/time/clock.h"
#include "services/registry/caching_registry_store.h"
#include "services/registry/pg_registry_store.h"
#include "services/registry/registry_core.h"
#include "services/registry/registry_service.h"

namespace fleetcore::registry {
namespace {

int Run(int argc, char** argv) {
  grpc_util::BlockShutdownSignals();
  grpc_util::ConfigureRuntime();

  service::CommonOptions common{.service = "registry"};
  common.server.listen = service::kRegistryEndpoint;
  common.metrics_listen = "127.0.0.1:9101";
  common.db.application_name = "fleetcore-registry";
  RegistryOptions options;
  int thing_cache_size = 100000;
  std::string gateway_endpoint;
  std::string peers_ca_file;
  int max_queued = 10000;
  config::FlagSet flags("fleetcore-registry",
                        "The fleetcore thing registry: things, thing types, thing groups and "
                        "thing principals, with AWS IoT Core's semantics, over gRPC.");
  service::RegisterFlags(flags, &common);
  flags.AddDuration("thing-type-delete-delay", &options.thing_type_delete_delay,
                    "How long after its deprecation a thing type can be deleted (AWS: 5m).");
  flags.AddInt("thing-cache-size", &thing_cache_size,
               "Things kept in memory for DescribeThing (kept fresh by NOTIFY); 0 disables.", 0,
               10000000);
  flags.AddString("gateway-endpoint", &gateway_endpoint,
                  "host:port of the gateway's gRPC API, through which registry events "
                  "($aws/events/thing/..., UpdateEventConfigurations) reach subscribers; "
                  "empty: no registry events.");
  flags.AddString("peers-tls-ca-file", &peers_ca_file,
                  "CA bundle to verify the gateway's gRPC TLS; empty: plaintext.");
  flags.AddInt("publish-queue", &max_queued,
               "Registry events waiting for the gateway while it is slow or down; beyond, "
               "they are dropped (and counted).",
               100, 10000000);
  if (std::optional<int> code =
          service::ParseFlags(flags, argc, argv, [&] { return service::Validate(common); })) {
    return *code;
  }
  service::Process process;
  if (std::optional<int> code =
          service::Start(common, &PgRegistryStore::PrepareConnection, &process)) {
    return *code;
  }

  aws::Arns arns(common.region, common.account_id);
  SystemClock clock;
  RandomIdGenerator ids;
  PgRegistryStore pg_store(process.pool.get());
  RegistryStore* store = &pg_store;
  std::unique_ptr<CachingRegistryStore> cache;
  if (thing_cache_size > 0) {
    cache =
        std::make_unique<CachingRegistryStore>(&pg_store, thing_cache_size, process.metrics.get());
    store = cache.get();
  }
  std::optional<grpc_util::ServiceChannel> gateway;
  std::unique_ptr<broker::BrokerPublisher> publisher;
  if (!gateway_endpoint.empty()) {
    gateway = service::ConnectPeer("gateway", gateway_endpoint, peers_ca_file, common);
    if (!gateway.has_value()) return 1;
    publisher = std::make_unique<broker::BrokerPublisher>(
        gateway->channel(), common.server.admin_token, process.metrics.get(),
        broker::BrokerPublisher::Options{
            .metric_name = "fleetcore_registry_events_total",
            .metric_help = "Registry events ($aws/events/...) sent through the gateway, by "
                           "result.",
            .what = "registry events",
            .max_queued = static_cast<size_t>(max_queued)});
    options.event_publisher = publisher.get();
  }
  RegistryCore core(store, &arns, &clock, &ids, options);

  // Other replicas' changes arrive as NOTIFYs (things the cache holds, event
  // configurations); after a reconnect some may have been lost.
  std::unique_ptr<db::PgListener> listener;
  if (cache != nullptr || publisher != nullptr) {
    auto started = db::PgListener::Start(
        common.db.url, {kRegistryChannel},
        [c = cache.get(), &core](absl::string_view, absl::string_view payload) {
          if (std::optional<RegistryEvent> e = PgRegistryStore::ParseEvent(payload)) {
            if (c != nullptr) c->Forget(*e);
            if (e->type == kEventConfigurationsUpdated) core.InvalidateEventConfigurations();
          }
        },
        [c = cache.get(), &core] {
          if (c != nullptr) c->InvalidateAll();
          core.InvalidateEventConfigurations();
        });
    if (!started.ok()) {
      log::Error("cannot start", {{"error", started.status()}});
      return 1;
    }
    listener = std::move(*started);
  }

  grpc_util::Executor executor(common.workers > 0 ? common.workers : common.db.pool_size,
                               /*max_queued=*/10000);
  grpc_util::AdminAuth auth(common.server.admin_token);
  grpc_util::CallRunner calls(&executor, &auth);
  RegistryService service(&core, &calls);

  return service::Serve(common, {&service}, process, {.drain = [&] {
                          if (publisher != nullptr) publisher->Drain(absl::Seconds(5));
                        }});
}

}  // namespace
}  // namespace fleetcore::registry

int main(int argc, char** argv) { return fleetcore::registry::Run(argc, argv); }
