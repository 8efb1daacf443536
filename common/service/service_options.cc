#include "common/service/service_options.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/aws/arn.h"
#include "common/metrics/metrics_server.h"
#include "common/net/listen_address.h"

namespace fleetcore::service {

void RegisterFlags(config::FlagSet& flags, CommonOptions* o) {
  grpc_util::RegisterFlags(flags, &o->server);
  metrics::RegisterFlags(flags, &o->metrics_listen);
  db::RegisterFlags(flags, &o->db);
  log::RegisterFlags(flags, &o->log);
  flags.AddString("region", &o->region, "Region written into ARNs (arn:aws:iot:REGION:...).");
  flags.AddString("account-id", &o->account_id,
                  "12-digit account id written into ARNs (arn:aws:iot:REGION:ACCOUNT:...).");
  flags.AddInt("workers", &o->workers,
               "Threads running API calls; 0 means one per database connection.", 0, 1024);
}

absl::Status Validate(CommonOptions& o) {
  db::FinishFlags(&o.db);
  if (absl::Status s = aws::Arns::Validate(o.region, o.account_id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--region/--account-id: ", s.message()));
  }
  if (auto hp = net::ParseHostPort(o.server.listen); !hp.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--listen: ", hp.status().message()));
  }
  if (!o.metrics_listen.empty()) {
    if (auto hp = net::ParseHostPort(o.metrics_listen); !hp.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--metrics-listen: ", hp.status().message()));
    }
  }
  if (o.db.url.empty()) {
    return absl::InvalidArgumentError(
        "no database: set --db-url or FLEETCORE_DB_URL (or --db-url-file), e.g. "
        "postgresql://fleetcore:PASSWORD@127.0.0.1:5432/fleetcore");
  }
  if (o.server.tls_cert_file.empty() != o.server.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  return absl::OkStatus();
}

std::optional<int> ParseFlags(config::FlagSet& flags, int argc, char** argv,
                              const std::function<absl::Status()>& validate) {
  absl::Status s = flags.Parse(argc, argv, config::ProcessEnvironment());
  if (s.ok() && flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (s.ok()) {
    s = validate();
  }
  if (!s.ok()) {
    std::cerr << argv[0] << ": invalid configuration: " << s.message() << "\n";
    return 2;
  }
  if (flags.check_config_requested()) {
    std::cout << "configuration is valid:\n" << flags.Describe();
    return 0;
  }
  return std::nullopt;
}

}  // namespace fleetcore::service
