// fleetcore-rules: the rules service (fleetcore.rules.v1.Rules). Reads flags and
// FLEETCORE_* environment, builds the objects, serves until SIGTERM/SIGINT.
#include "common/aws/arn.h"
#include "common/grpc/call_runner.h"
#include "common/grpc/executor.h"
#include "common/grpc/runtime.h"
#include "common/service/process.h"
#include "common/service/service_options.h"
#include "common/time/clock.h"
#include "services/rules/pg_rules_store.h"
#include "services/rules/rules_core.h"
#include "services/rules/rules_service.h"

namespace fleetcore::rules {
namespace {

int Run(int argc, char** argv) {
  grpc_util::BlockShutdownSignals();
  grpc_util::ConfigureRuntime();

  service::CommonOptions common{.service = "rules"};
  common.server.listen = "127.0.0.1:50056";
  common.metrics_listen = "127.0.0.1:9106";
  common.db.application_name = "fleetcore-rules";
  config::FlagSet flags("fleetcore-rules",
                        "The fleetcore rules engine: topic rules in AWS IoT SQL, validated at "
                        "creation, over gRPC, with EvaluateRule for dry runs.");
  service::RegisterFlags(flags, &common);
  if (std::optional<int> code =
          service::ParseFlags(flags, argc, argv, [&] { return service::Validate(common); })) {
    return *code;
  }
  service::Process process;
  if (std::optional<int> code = service::Start(common, nullptr, &process)) return *code;

  aws::Arns arns(common.region, common.account_id);
  SystemClock clock;
  PgRulesStore store(process.pool.get());
  RulesCore core(&store, &arns, &clock);
  grpc_util::Executor executor(common.workers > 0 ? common.workers : common.db.pool_size,
                               /*max_queued=*/10000);
  grpc_util::AdminAuth auth(common.server.admin_token);
  grpc_util::CallRunner calls(&executor, &auth);
  RulesService service(&core, &calls);
  return service::Serve(common, {&service}, process);
}

}  // namespace
}  // namespace fleetcore::rules

int main(int argc, char** argv) { return fleetcore::rules::Run(argc, argv); }
