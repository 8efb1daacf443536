// ResolvePeer: what the gateway asks once per new TLS client chain.
//
//   - a known certificate: ALLOWED when ACTIVE, within its validity and (when it has a CA)
//     still signed by it, with the things attached to it; otherwise why not;
//   - an unknown certificate signed by a registered, ACTIVE CA with auto-registration:
//     JITR (stored PENDING_ACTIVATION, the registered event returned for the gateway to
//     publish on $aws/events/certificates/registered/<caCertificateId>, refused) or, when
//     the CA has a template, JITP (provisioned, then ALLOWED);
//   - anything else is refused with a reason.
//
// ALLOWED answers for known certificates are cached (bounded, for `cache_ttl`) and dropped
// when a fleetcore_ca event names the certificate or a registry event names its ARN.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/aws/arn.h"
#include "common/time/clock.h"
#include "services/ca/ca_store.h"
#include "services/ca/certificate_core.h"
#include "services/ca/peers.h"
#include "services/ca/provisioning_core.h"

namespace fleetcore::ca {

enum class PeerResult {
  kAllowed,
  kUnknownCertificate,
  kCaInactive,
  kAutoRegistrationDisabled,
  kCertificateInactive,
  kCertificateRevoked,
  kCertificatePendingActivation,
  kCertificateExpired,
  kCertificateNotYetValid,
  kBadChain,
  kJitrRegistered,
  kProvisioningFailed,
  kBadCertificate,
};
// "allowed", "unknown_certificate", ... (metric labels).
absl::string_view PeerResultLabel(PeerResult result);

struct PeerEventOut {
  std::string topic;
  std::string payload;
};

struct PeerAnswer {
  PeerResult result = PeerResult::kUnknownCertificate;
  std::string reason;
  std::string certificate_id;
  std::vector<PrincipalThingRecord> things;
  std::vector<PeerEventOut> events;
  bool provisioned = false;  // JITP ran for this answer
  bool from_cache = false;
};

class PeerResolver {
 public:
  // Nothing is owned.
  PeerResolver(CaStore* store, CertificateCore* certificates, ProvisioningCore* provisioning,
               Peers* peers, const Clock* clock, size_t cache_entries = 100000,
               absl::Duration cache_ttl = absl::Minutes(5));

  // `chain_der`: leaf first. Errors only for fleetcore's own trouble (Postgres or a peer
  // service unreachable); every verdict about the certificate is an answer.
  absl::StatusOr<PeerAnswer> Resolve(const std::vector<std::string>& chain_der);

  void Invalidate(absl::string_view certificate_id);
  void InvalidateAll();

 private:
  absl::StatusOr<PeerAnswer> Known(const CertificateRecord& c, const tls::Certificate& leaf);
  absl::StatusOr<PeerAnswer> Unknown(const tls::Certificate& leaf);
  PeerEventOut RegisteredEvent(const CertificateRecord& c) const;

  CaStore* store_;
  CertificateCore* certificates_;
  ProvisioningCore* provisioning_;
  Peers* peers_;
  const Clock* clock_;
  size_t cache_entries_;
  absl::Duration cache_ttl_;

  struct Entry {
    PeerAnswer answer;
    absl::Time expires;    // the cache's own limit
    absl::Time not_after;  // the certificate's
  };
  std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> cache_;
  std::deque<std::string> order_;
};

}  // namespace fleetcore::ca
