#include "services/ca/resolver.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/tls/x509.h"
#include "nlohmann/json.hpp"

namespace fleetcore::ca {
namespace {

PeerAnswer Refused(PeerResult result, std::string reason, std::string id = "") {
  PeerAnswer a;
  a.result = result;
  a.reason = std::move(reason);
  a.certificate_id = std::move(id);
  return a;
}

}  // namespace

absl::string_view PeerResultLabel(PeerResult result) {
  switch (result) {
    case PeerResult::kAllowed:
      return "allowed";
    case PeerResult::kUnknownCertificate:
      return "unknown_certificate";
    case PeerResult::kCaInactive:
      return "ca_inactive";
    case PeerResult::kAutoRegistrationDisabled:
      return "auto_registration_disabled";
    case PeerResult::kCertificateInactive:
      return "certificate_inactive";
    case PeerResult::kCertificateRevoked:
      return "certificate_revoked";
    case PeerResult::kCertificatePendingActivation:
      return "certificate_pending_activation";
    case PeerResult::kCertificateExpired:
      return "certificate_expired";
    case PeerResult::kCertificateNotYetValid:
      return "certificate_not_yet_valid";
    case PeerResult::kBadChain:
      return "bad_chain";
    case PeerResult::kJitrRegistered:
      return "jitr_registered";
    case PeerResult::kProvisioningFailed:
      return "provisioning_failed";
    case PeerResult::kBadCertificate:
      return "bad_certificate";
  }
  return "unknown";
}

PeerResolver::PeerResolver(CaStore* store, CertificateCore* certificates,
                           ProvisioningCore* provisioning, Peers* peers, const Clock* clock,
                           size_t cache_entries, absl::Duration cache_ttl)
    : store_(store),
      certificates_(certificates),
      provisioning_(provisioning),
      peers_(peers),
      clock_(clock),
      cache_entries_(cache_entries),
      cache_ttl_(cache_ttl) {}

PeerEventOut PeerResolver::RegisteredEvent(const CertificateRecord& c) const {
  const int64_t now = absl::ToUnixSeconds(clock_->Now());
  const nlohmann::json payload = {
      {"certificateId", c.id},
      {"caCertificateId", c.ca_certificate_id},
      {"timestamp", now},
      {"certificateStatus", "PENDING_ACTIVATION"},
      {"awsAccountId", certificates_->arns().account_id()},
      {"certificateRegistrationTimestamp", absl::StrCat(absl::ToUnixSeconds(c.created_at))}};
  return {absl::StrCat("$aws/events/certificates/registered/", c.ca_certificate_id),
          payload.dump()};
}

absl::StatusOr<PeerAnswer> PeerResolver::Resolve(const std::vector<std::string>& chain_der) {
  if (chain_der.empty()) return Refused(PeerResult::kBadCertificate, "no client certificate");
  // The id is the hash of the encoding: the cache answers before any parsing (which costs
  // ~90 µs of OpenSSL 3.0's decoders).
  const std::string id = tls::Sha256Hex(chain_der[0]);
  const absl::Time now = clock_->Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(id);
    if (it != cache_.end()) {
      if (now < it->second.expires && now <= it->second.not_after) {
        PeerAnswer a = it->second.answer;
        a.from_cache = true;
        return a;
      }
      cache_.erase(it);
    }
  }
  absl::StatusOr<tls::Certificate> leaf = tls::Certificate::ParseDer(chain_der[0]);
  if (!leaf.ok()) {
    return Refused(
        PeerResult::kBadCertificate,
        absl::StrCat("the client certificate does not parse: ", leaf.status().message()));
  }
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> known, store_->GetCertificate(id));
  if (known.has_value()) return Known(*known, *leaf);
  return Unknown(*leaf);
}

absl::StatusOr<PeerAnswer> PeerResolver::Known(const CertificateRecord& c,
                                               const tls::Certificate& leaf) {
  const absl::Time now = clock_->Now();
  switch (c.status) {
    case CertStatus::kActive:
      break;
    case CertStatus::kRevoked:
      return Refused(PeerResult::kCertificateRevoked, "the certificate is REVOKED", c.id);
    case CertStatus::kPendingActivation: {
      PeerAnswer a = Refused(PeerResult::kCertificatePendingActivation,
                             "the certificate is PENDING_ACTIVATION", c.id);
      // AWS publishes the registered event again whenever a pending certificate of a JITR
      // CA connects.
      if (!c.ca_certificate_id.empty() && !c.issued_here) {
        FLEETCORE_ASSIGN_OR_RETURN(std::optional<CaCertificateRecord> ca,
                                   store_->GetCaCertificate(c.ca_certificate_id));
        if (ca.has_value() && ca->auto_registration &&
            !(ca->registration_config.has_value() && ca->registration_config->has_template())) {
          a.events.push_back(RegisteredEvent(c));
        }
      }
      return a;
    }
    default:
      return Refused(PeerResult::kCertificateInactive,
                     absl::StrCat("the certificate is ", StatusName(c.status)), c.id);
  }
  if (now > c.not_after) {
    return Refused(PeerResult::kCertificateExpired, "the certificate has expired", c.id);
  }
  if (now < c.not_before) {
    return Refused(PeerResult::kCertificateNotYetValid, "the certificate is not valid yet", c.id);
  }
  if (!c.ca_certificate_id.empty()) {
    if (c.ca_certificate_id == certificates_->issuing().id()) {
      if (!leaf.SignedBy(certificates_->issuing().certificate())) {
        return Refused(PeerResult::kBadChain, "not signed by fleetcore's issuing CA", c.id);
      }
    } else {
      FLEETCORE_ASSIGN_OR_RETURN(std::optional<CaCertificateRecord> ca,
                                 store_->GetCaCertificate(c.ca_certificate_id));
      absl::StatusOr<tls::Certificate> ca_cert =
          ca.has_value() ? tls::Certificate::ParsePem(ca->pem)
                         : absl::StatusOr<tls::Certificate>(absl::NotFoundError("gone"));
      if (!ca_cert.ok() || !leaf.SignedBy(*ca_cert)) {
        return Refused(PeerResult::kBadChain, "not signed by its registered CA", c.id);
      }
    }
  }
  PeerAnswer a;
  a.result = PeerResult::kAllowed;
  a.certificate_id = c.id;
  FLEETCORE_ASSIGN_OR_RETURN(a.things, peers_->ThingsOfPrincipal(certificates_->arns().Cert(c.id)));
  if (cache_entries_ > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.insert_or_assign(c.id, Entry{a, now + cache_ttl_, c.not_after}).second) {
      order_.push_back(c.id);
    }
    while (cache_.size() > cache_entries_ && !order_.empty()) {
      cache_.erase(order_.front());
      order_.pop_front();
    }
    if (order_.size() > 2 * cache_entries_) {
      order_.clear();
      for (const auto& [k, unused] : cache_) order_.push_back(k);
    }
  }
  return a;
}

absl::StatusOr<PeerAnswer> PeerResolver::Unknown(const tls::Certificate& leaf) {
  const std::string id = leaf.Id();
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<CaCertificateRecord> candidates,
                             store_->CaCertificatesWithSubject(leaf.issuer().ToString()));
  bool subject_matched = false;
  for (const CaCertificateRecord& ca : candidates) {
    absl::StatusOr<tls::Certificate> ca_cert = tls::Certificate::ParsePem(ca.pem);
    if (!ca_cert.ok()) continue;
    subject_matched = true;
    if (!leaf.SignedBy(*ca_cert)) continue;
    if (!ca.active) {
      return Refused(PeerResult::kCaInactive,
                     absl::StrCat("its CA certificate ", ca.id, " is INACTIVE"), id);
    }
    if (!ca.auto_registration) {
      return Refused(PeerResult::kAutoRegistrationDisabled,
                     absl::StrCat("the certificate is not registered and its CA ", ca.id,
                                  " does not allow auto-registration"),
                     id);
    }
    const absl::Time now = clock_->Now();
    if (now > leaf.not_after()) {
      return Refused(PeerResult::kCertificateExpired, "the certificate has expired", id);
    }
    if (now < leaf.not_before()) {
      return Refused(PeerResult::kCertificateNotYetValid, "the certificate is not valid yet", id);
    }
    if (ca.registration_config.has_value() && ca.registration_config->has_template()) {
      absl::StatusOr<CertificateRecord> provisioned = provisioning_->Jitp(leaf, ca);
      if (!provisioned.ok()) {
        if (absl::IsUnavailable(provisioned.status())) return provisioned.status();
        return Refused(PeerResult::kProvisioningFailed,
                       absl::StrCat("JITP failed: ", provisioned.status().message()), id);
      }
      FLEETCORE_ASSIGN_OR_RETURN(PeerAnswer a, Known(*provisioned, leaf));
      a.provisioned = true;
      return a;
    }
    // JITR: registered PENDING_ACTIVATION; the operator's rule or service activates it.
    CertificateRecord record{.id = id,
                             .pem = leaf.Pem(),
                             .status = CertStatus::kPendingActivation,
                             .ca_certificate_id = ca.id,
                             .serial = leaf.serial_hex(),
                             .subject = leaf.subject().ToString(),
                             .mode = CertMode::kDefault,
                             .not_before = leaf.not_before(),
                             .not_after = leaf.not_after(),
                             .created_at = now,
                             .updated_at = now};
    absl::Status stored = certificates_->Store(record);
    if (absl::IsAlreadyExists(stored)) {
      FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> again,
                                 store_->GetCertificate(id));
      if (again.has_value()) return Known(*again, leaf);
    }
    FLEETCORE_RETURN_IF_ERROR(stored);
    certificates_->observer().CertificateRegistered("jitr");
    PeerAnswer a = Refused(PeerResult::kJitrRegistered,
                           "registered just now as PENDING_ACTIVATION (JITR); activate it to "
                           "connect",
                           id);
    a.events.push_back(RegisteredEvent(record));
    return a;
  }
  if (subject_matched) {
    return Refused(PeerResult::kBadChain,
                   "a registered CA has the certificate's issuer name but did not sign it", id);
  }
  return Refused(PeerResult::kUnknownCertificate,
                 "the certificate is not registered and no registered CA signed it", id);
}

void PeerResolver::Invalidate(absl::string_view certificate_id) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(std::string(certificate_id));
}

void PeerResolver::InvalidateAll() {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.clear();
  order_.clear();
}

}  // namespace fleetcore::ca
