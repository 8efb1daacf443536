#include "common/service/process.h"

#include <csignal>

#include "absl/strings/str_cat.h"
#include "common/grpc/server.h"
#include "common/log/log.h"
#include "common/metrics/metrics_server.h"
#include "prometheus/registry.h"

namespace fleetcore::service {

Process::Process() = default;
Process::~Process() = default;

std::optional<int> Start(CommonOptions& options, db::PgPool::Prepare prepare, Process* out) {
  // A peer that goes away while we write must be an EPIPE for that connection, not a
  // SIGPIPE that ends the process: OpenSSL writes TLS records with write(2), which has no
  // MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  options.log.service = options.service;
  if (absl::Status s = log::Init(options.log); !s.ok()) {
    log::Error("cannot start logging", {{"error", s}});
    return 2;
  }
  if (options.server.admin_token.empty()) {
    log::Warn(absl::StrCat("no admin token configured: the ", options.service,
                           " API accepts every caller; set --admin-token or "
                           "FLEETCORE_ADMIN_TOKEN(_FILE) outside development"));
  }
  out->metrics = std::make_shared<prometheus::Registry>();
  if (!options.metrics_listen.empty()) {
    auto started = metrics::MetricsServer::Start(options.metrics_listen, out->metrics);
    if (!started.ok()) {
      log::Error("cannot start", {{"error", started.status()}});
      return 1;
    }
    out->metrics_server = std::move(*started);
  }
  log::Info("connecting to Postgres", {{"database", db::RedactUrl(options.db.url)}});
  auto pool = db::PgPool::Create(options.db, out->metrics.get(), std::move(prepare));
  if (!pool.ok()) {
    log::Error("cannot start", {{"error", pool.status()}});
    return 1;
  }
  out->pool = std::move(*pool);
  return std::nullopt;
}

int Serve(const CommonOptions& options, const std::vector<grpc::Service*>& services,
          const Process& process, const ServeExtras& extras) {
  auto server = grpc_util::Server::Start(options.server, services, process.metrics.get());
  if (!server.ok()) {
    log::Error("cannot start", {{"error", server.status()}});
    return 1;
  }
  const std::string grpc_address = absl::StrCat("127.0.0.1:", (*server)->port());
  std::vector<log::Field> fields;
  fields.reserve(5 + extras.ports.size());  // Fields keep views: no reallocation
  fields.emplace_back("grpc_address", grpc_address);
  fields.emplace_back("grpc_listen", options.server.listen);
  fields.emplace_back("grpc_port", (*server)->port());
  fields.emplace_back("metrics_port", process.metrics_server ? process.metrics_server->port() : 0);
  fields.emplace_back("tls", !options.server.tls_cert_file.empty());
  for (const auto& [name, port] : extras.ports) fields.emplace_back(name, port);
  log::Write(log::Level::kInfo, "serving", fields);
  const std::string signal = grpc_util::WaitForShutdownSignal();
  log::Info("shutting down",
            {{"signal", signal}, {"grace", absl::FormatDuration(options.server.shutdown_grace)}});
  if (extras.drain) extras.drain();
  (*server)->Shutdown();
  log::Info("stopped");
  return 0;
}

std::optional<grpc_util::ServiceChannel> ConnectPeer(absl::string_view name,
                                                     const std::string& endpoint,
                                                     const std::string& tls_ca_file,
                                                     const CommonOptions& options) {
  absl::StatusOr<grpc_util::ServiceChannel> channel =
      grpc_util::ServiceChannel::Create({.target = endpoint,
                                         .tls_ca_file = tls_ca_file,
                                         .token = options.server.admin_token,
                                         .timeout = absl::Seconds(5)});
  if (!channel.ok()) {
    log::Error("cannot start", {{"error", channel.status()}});
    return std::nullopt;
  }
  log::Info("peers", {{std::string(name), endpoint}, {"tls", !tls_ca_file.empty()}});
  return *std::move(channel);
}

}  // namespace fleetcore::service
