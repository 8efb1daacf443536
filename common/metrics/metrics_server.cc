#include "common/metrics/metrics_server.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/net/listen_address.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace fleetcore::metrics {
namespace {

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric m;
  m.gauge.value = value;
  family.metric.push_back(std::move(m));
  return family;
}

prometheus::MetricFamily Counter(std::string name, std::string help, double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Counter;
  prometheus::ClientMetric m;
  m.counter.value = value;
  family.metric.push_back(std::move(m));
  return family;
}

// The process_* metrics every Prometheus client library exports, read from /proc on scrape.
class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), {});
    // Fields after the parenthesised command name, which may itself contain spaces.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) {
      return out;
    }
    std::vector<absl::string_view> f =
        absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ', absl::SkipEmpty());
    // f[0] is field 3 (state) of proc(5); field N is f[N - 3].
    auto field = [&](int n) -> double {
      double v = 0;
      if (static_cast<size_t>(n - 3) < f.size()) {
        (void)absl::SimpleAtod(f[n - 3], &v);
      }
      return v;
    };
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    out.push_back(Counter("process_cpu_seconds_total", "User and system CPU time spent.",
                          (field(14) + field(15)) / ticks));
    out.push_back(Gauge("process_resident_memory_bytes", "Resident memory size.",
                        field(24) * page));
    out.push_back(Gauge("process_virtual_memory_bytes", "Virtual memory size.", field(23)));
    out.push_back(Gauge("process_threads", "Number of OS threads.", field(20)));
    out.push_back(Gauge("process_start_time_seconds", "Start time since the Unix epoch.",
                        BootTime() + field(22) / ticks));
    out.push_back(Gauge("process_open_fds", "Open file descriptors.", OpenFds()));
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      out.push_back(Gauge("process_max_fds", "Limit of open file descriptors.",
                          static_cast<double>(lim.rlim_cur)));
    }
    return out;
  }

 private:
  static double BootTime() {
    std::ifstream in("/proc/stat");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("btime ", 0) == 0) {
        double v = 0;
        (void)absl::SimpleAtod(line.substr(6), &v);
        return v;
      }
    }
    return 0;
  }

  static double OpenFds() {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) {
      return 0;
    }
    double n = 0;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') {
        ++n;
      }
    }
    closedir(dir);
    return n - 1;  // the descriptor opendir itself holds
  }
};

}  // namespace

void RegisterFlags(config::FlagSet& flags, std::string* listen_address) {
  flags.AddString("metrics-listen", listen_address,
                  "Address (host:port) of the Prometheus /metrics endpoint; empty disables it.");
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    absl::string_view address, std::shared_ptr<prometheus::Registry> registry) {
  if (absl::Status s = net::ProbeListen("metrics listener", address); !s.ok()) {
    return s;
  }
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(std::string(address), 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics listener: cannot listen on ", address, ": ", e.what()));
  }
  server->registry_ = std::move(registry);
  server->process_ = std::make_shared<ProcessCollector>();
  server->exposer_->RegisterCollectable(server->registry_);
  server->exposer_->RegisterCollectable(server->process_);
  const std::vector<int> ports = server->exposer_->GetListeningPorts();
  server->port_ = ports.empty() ? 0 : ports.front();
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace fleetcore::metrics
