#include "services/ca/ca_metrics.h"

#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace fleetcore::ca {

struct CaMetrics::Families {
  explicit Families(prometheus::Registry& r)
      : issued(
            prometheus::BuildCounter()
                .Name("fleetcore_ca_certificates_issued_total")
                .Help("Certificates signed by fleetcore's issuing CA, by how they were asked for.")
                .Register(r)),
        registered(prometheus::BuildCounter()
                       .Name("fleetcore_ca_certificates_registered_total")
                       .Help("Certificates of other CAs registered, by how (JITR and JITP "
                             "included).")
                       .Register(r)),
        revoked(prometheus::BuildCounter()
                    .Name("fleetcore_ca_certificates_revoked_total")
                    .Help("Certificates revoked.")
                    .Register(r)
                    .Add({})),
        provisioning(prometheus::BuildCounter()
                         .Name("fleetcore_ca_provisioning_total")
                         .Help("Provisioning runs (fleet provisioning, JITP, ProvisionDevice) by "
                               "template and result.")
                         .Register(r)),
        resolve(prometheus::BuildCounter()
                    .Name("fleetcore_ca_resolve_peer_total")
                    .Help("ResolvePeer answers by result, and whether the cache answered.")
                    .Register(r)),
        signing(prometheus::BuildHistogram()
                    .Name("fleetcore_ca_signing_duration_seconds")
                    .Help("Time to sign one certificate.")
                    .Register(r)
                    .Add({}, prometheus::Histogram::BucketBoundaries{0.00005, 0.0001, 0.00025,
                                                                     0.0005, 0.001, 0.0025, 0.005,
                                                                     0.01, 0.025, 0.1})) {}

  prometheus::Family<prometheus::Counter>& issued;
  prometheus::Family<prometheus::Counter>& registered;
  prometheus::Counter& revoked;
  prometheus::Family<prometheus::Counter>& provisioning;
  prometheus::Family<prometheus::Counter>& resolve;
  prometheus::Histogram& signing;
};

CaMetrics::CaMetrics(prometheus::Registry& registry) : f_(std::make_unique<Families>(registry)) {}
CaMetrics::~CaMetrics() = default;

void CaMetrics::CertificateIssued(absl::string_view how) {
  f_->issued.Add({{"how", std::string(how)}}).Increment();
}
void CaMetrics::CertificateRegistered(absl::string_view how) {
  f_->registered.Add({{"how", std::string(how)}}).Increment();
}
void CaMetrics::CertificateRevoked() { f_->revoked.Increment(); }
void CaMetrics::Provisioned(absl::string_view template_name, absl::string_view result) {
  f_->provisioning.Add({{"template", std::string(template_name)}, {"result", std::string(result)}})
      .Increment();
}
void CaMetrics::Signed(absl::Duration took) { f_->signing.Observe(absl::ToDoubleSeconds(took)); }
void CaMetrics::PeerResolved(absl::string_view result, bool cached) {
  f_->resolve.Add({{"result", std::string(result)}, {"cached", cached ? "true" : "false"}})
      .Increment();
}

}  // namespace fleetcore::ca
