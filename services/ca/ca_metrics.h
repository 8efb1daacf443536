// The CA service's Prometheus metrics, fed by the cores (CaObserver) and the adapter:
//   fleetcore_ca_certificates_issued_total{how}        keys, csr, fleet_keys, fleet_csr,
//                                                      rotation, provision
//   fleetcore_ca_certificates_registered_total{how}    with_ca, without_ca, jitr, jitp
//   fleetcore_ca_certificates_revoked_total
//   fleetcore_ca_provisioning_total{template,result}   success, rejected, failed
//   fleetcore_ca_resolve_peer_total{result,cached}     allowed, certificate_revoked, ...
//   fleetcore_ca_signing_duration_seconds              one certificate signature
#pragma once

#include <memory>

#include "services/ca/ca_types.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace fleetcore::ca {

class CaMetrics final : public CaObserver {
 public:
  explicit CaMetrics(prometheus::Registry& registry);
  ~CaMetrics() override;

  void CertificateIssued(absl::string_view how) override;
  void CertificateRegistered(absl::string_view how) override;
  void CertificateRevoked() override;
  void Provisioned(absl::string_view template_name, absl::string_view result) override;
  void Signed(absl::Duration took) override;
  void PeerResolved(absl::string_view result, bool cached);

 private:
  struct Families;
  std::unique_ptr<Families> f_;
};

}  // namespace fleetcore::ca
