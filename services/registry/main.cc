// fleetcore-registry: the thing registry service (fleetcore.registry.v1.Registry).
// Reads flags and FLEETCORE_* environment, builds the objects, serves until SIGTERM/SIGINT.
#include <memory>

#include "common/aws/arn.h"
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
  config::FlagSet flags("fleetcore-registry",
                        "The fleetcore thing registry: things, thing types, thing groups and "
                        "thing principals, with AWS IoT Core's semantics, over gRPC.");
  service::RegisterFlags(flags, &common);
  flags.AddDuration("thing-type-delete-delay", &options.thing_type_delete_delay,
                    "How long after its deprecation a thing type can be deleted (AWS: 5m).");
  flags.AddInt("thing-cache-size", &thing_cache_size,
               "Things kept in memory for DescribeThing (kept fresh by NOTIFY); 0 disables.", 0,
               10000000);
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
  std::unique_ptr<db::PgListener> listener;
  if (thing_cache_size > 0) {
    cache =
        std::make_unique<CachingRegistryStore>(&pg_store, thing_cache_size, process.metrics.get());
    // Other replicas' changes arrive as NOTIFYs; after a reconnect some may have been lost.
    auto started = db::PgListener::Start(
        common.db.url, {kRegistryChannel},
        [c = cache.get()](absl::string_view, absl::string_view payload) {
          if (std::optional<RegistryEvent> e = PgRegistryStore::ParseEvent(payload)) {
            if (!e->thing.empty()) c->Invalidate(e->thing);
          }
        },
        [c = cache.get()] { c->InvalidateAll(); });
    if (!started.ok()) {
      log::Error("cannot start", {{"error", started.status()}});
      return 1;
    }
    listener = std::move(*started);
    store = cache.get();
  }
  RegistryCore core(store, &arns, &clock, &ids, options);

  grpc_util::Executor executor(common.workers > 0 ? common.workers : common.db.pool_size,
                               /*max_queued=*/10000);
  grpc_util::AdminAuth auth(common.server.admin_token);
  grpc_util::CallRunner calls(&executor, &auth);
  RegistryService service(&core, &calls);

  return service::Serve(common, {&service}, process);
}

}  // namespace
}  // namespace fleetcore::registry

int main(int argc, char** argv) { return fleetcore::registry::Run(argc, argv); }
