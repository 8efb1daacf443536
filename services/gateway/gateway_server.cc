#include "services/gateway/gateway_server.h"

#include <signal.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "services/gateway/connect_throttle.h"

namespace fleetcore::gateway {
namespace {

// Whether a SIGHUP came (main blocks it, so it waits here as pending).
bool TakeHangup() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  const timespec now{};
  return sigtimedwait(&set, nullptr, &now) == SIGHUP;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GatewayServer>> GatewayServer::Start(
    const GatewayOptions& options, const ConnectionContext& context,
    std::function<size_t()> store_pending) {
  auto server = std::unique_ptr<GatewayServer>(new GatewayServer(context, std::move(store_pending)));
  if (!options.tls.cert_file.empty() || !options.tls.key_file.empty()) {
    absl::StatusOr<std::unique_ptr<TlsContext>> tls = TlsContext::Create(options.tls);
    if (!tls.ok()) return tls.status();
    server->tls_ = *std::move(tls);
    context.metrics->SetEndpointCertificateExpiry(server->tls_->not_after());
  }
  const int n = options.io_threads > 0
                    ? options.io_threads
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  GatewayMetrics* metrics = context.metrics;
  std::vector<IoThread*> threads;
  for (int i = 0; i < n; ++i) {
    // Each thread adds its counts to the metrics once a second.
    server->threads_.push_back(std::make_unique<IoThread>(
        i, [metrics](IoThread& t) { metrics->AddThreadStats(t.stats()); }));
    threads.push_back(server->threads_.back().get());
  }
  for (const std::unique_ptr<IoThread>& t : server->threads_) t->Start();
  const std::pair<Listener::Kind, const std::string*> wanted[] = {
      {Listener::Kind::kMqtt, &options.mqtt_listen},
      {Listener::Kind::kMqtts, &options.mqtts_listen},
      {Listener::Kind::kHttp, &options.http_listen},
      {Listener::Kind::kHttps, &options.https_listen}};
  for (const auto& [kind, address] : wanted) {
    if (address->empty()) continue;
    absl::StatusOr<std::unique_ptr<Listener>> l =
        Listener::Start(kind, *address, threads, context, server->tls_.get());
    if (!l.ok()) {
      server->Drain(absl::Seconds(1));
      return l.status();
    }
    log::Info("listening", {{"listener", ListenerKindName(kind)},
                            {"address", *address},
                            {"port", (*l)->port()}});
    server->listeners_.emplace_back(absl::StrCat(ListenerKindName(kind), "_port"),
                                    *std::move(l));
  }
  server->maintenance_ = std::thread([s = server.get()] { s->Maintain(); });
  return server;
}

GatewayServer::~GatewayServer() { Drain(absl::Seconds(1)); }

std::vector<std::pair<std::string, int>> GatewayServer::ports() const {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& [name, l] : listeners_) out.emplace_back(name, l->port());
  return out;
}

void GatewayServer::Maintain() {
  Broker* broker = context_.broker;
  int tick = 0;
  while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
    if (tls_ != nullptr) ReloadEndpointCertificate(/*force=*/TakeHangup());
    broker->Sweep();
    if (context_.connect_throttle != nullptr) {
      context_.connect_throttle->Forget(absl::ToUnixMillis(absl::Now()));
    }
    context_.metrics->UpdateBroker(broker->counters(), broker->session_count(),
                                   broker->retained().size());
    if (store_pending_) context_.metrics->SetStorePending(store_pending_());
    // Walking every session costs more: every 10 seconds.
    if (++tick % 10 == 0) {
      size_t queued = 0, inflight = 0;
      for (const std::shared_ptr<Session>& s : broker->Sessions()) {
        const Session::Stats st = s->stats();
        queued += st.queued;
        inflight += st.inflight;
      }
      context_.metrics->SetSessionQueues(queued, inflight);
    }
  }
}

void GatewayServer::ReloadEndpointCertificate(bool force) {
  const absl::StatusOr<bool> reloaded = tls_->ReloadIfChanged(force);
  if (reloaded.ok() && !*reloaded) return;
  if (!reloaded.ok()) {
    context_.metrics->EndpointCertificateReload("failed");
    log::Error("the endpoint certificate was not reloaded; the one in use stays",
               {{"error", std::string(reloaded.status().message())}});
    return;
  }
  const absl::Time not_after = tls_->not_after();
  context_.metrics->EndpointCertificateReload("ok");
  context_.metrics->SetEndpointCertificateExpiry(not_after);
  log::Info("endpoint certificate reloaded: new TLS handshakes present it",
            {{"not_after", absl::FormatTime(absl::RFC3339_sec, not_after, absl::UTCTimeZone())}});
}

void GatewayServer::Drain(absl::Duration timeout) {
  if (drained_) return;
  drained_ = true;
  for (auto& [name, l] : listeners_) l->Stop();
  const absl::Time deadline = absl::Now() + timeout;
  const size_t kicked = context_.broker->KickAll(mqtt::reason::kServerShuttingDown);
  size_t left = kicked;
  while (left > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    left = 0;
    for (const std::shared_ptr<Session>& s : context_.broker->Sessions()) left += s->attached();
  }
  if (kicked > 0) {
    log::Info("clients disconnected", {{"clients", static_cast<int64_t>(kicked)},
                                       {"still_attached", static_cast<int64_t>(left)}});
  }
  stop_.Notify();
  if (maintenance_.joinable()) maintenance_.join();
  for (const std::unique_ptr<IoThread>& t : threads_) t->Stop();
  listeners_.clear();
}

}  // namespace fleetcore::gateway
