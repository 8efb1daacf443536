#include "services/ca/certificate_core.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log/log.h"
#include "common/pagination/page_token.h"
#include "common/status/quoted.h"
#include "common/status/status_macros.h"
#include "services/ca/template_engine.h"

namespace fleetcore::ca {
namespace {

absl::Status CertNotFound(absl::string_view id) {
  return absl::NotFoundError(absl::StrCat("certificate ", id, " does not exist"));
}
absl::Status CaNotFound(absl::string_view id) {
  return absl::NotFoundError(absl::StrCat("CA certificate ", id, " does not exist"));
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

// Page markers: "<created micros>|<id>" bound to the query.
std::string PositionText(const ListPosition& p) {
  return absl::StrCat(absl::ToUnixMicros(p.created_at), "|", p.id);
}
absl::StatusOr<std::optional<ListPosition>> ParsePosition(const std::string& marker,
                                                          const std::string& query) {
  FLEETCORE_ASSIGN_OR_RETURN(std::string text, pagination::DecodePageToken(marker, query));
  if (text.empty()) return std::optional<ListPosition>();
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('|', 1));
  int64_t micros = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &micros)) {
    return absl::InvalidArgumentError("marker is not one this service handed out");
  }
  return std::optional<ListPosition>(ListPosition{absl::FromUnixMicros(micros), parts[1]});
}

template <typename T>
Page<T> PageOf(std::vector<T> items, int limit, const std::string& query) {
  Page<T> page;
  if (static_cast<int>(items.size()) > limit) {
    items.resize(static_cast<size_t>(limit));
    page.next_marker = pagination::EncodePageToken(
        PositionText({items.back().created_at, items.back().id}), query);
  }
  page.items = std::move(items);
  return page;
}

absl::Status CheckValidNow(const tls::Certificate& cert, absl::Time now, absl::string_view what) {
  if (now > cert.not_after()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " expired at ",
                     absl::FormatTime(absl::RFC3339_sec, cert.not_after(), absl::UTCTimeZone())));
  }
  if (now < cert.not_before()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not valid before ",
                     absl::FormatTime(absl::RFC3339_sec, cert.not_before(), absl::UTCTimeZone())));
  }
  return absl::OkStatus();
}

// A device certificate someone brings, checked before it is registered.
absl::StatusOr<tls::Certificate> ParseForRegistration(absl::string_view pem, CertStatus status,
                                                      absl::Time now) {
  if (status != CertStatus::kActive && status != CertStatus::kInactive &&
      status != CertStatus::kRevoked) {
    return absl::InvalidArgumentError("status must be ACTIVE, INACTIVE or REVOKED");
  }
  absl::StatusOr<tls::Certificate> cert = tls::Certificate::ParsePem(pem);
  if (!cert.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("certificatePem: ", cert.status().message()));
  }
  FLEETCORE_RETURN_IF_ERROR(CheckValidNow(*cert, now, "the certificate"));
  FLEETCORE_RETURN_IF_ERROR(tls::CheckDeviceKey(cert->public_key()));
  return cert;
}

}  // namespace

absl::StatusOr<std::string> NormalizeCertificateId(absl::string_view id) {
  if (id.size() != 64 ||
      !std::all_of(id.begin(), id.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificateId ", Quoted(id),
                     " must be 64 hexadecimal characters (the SHA-256 of the "
                     "certificate)"));
  }
  return absl::AsciiStrToLower(id);
}

CertificateCore::CertificateCore(CaStore* store, const IssuingCa* issuing, Peers* peers,
                                 const aws::Arns* arns, const Clock* clock, CaObserver* observer,
                                 CaOptions options)
    : store_(store),
      issuing_(issuing),
      peers_(peers),
      arns_(arns),
      clock_(clock),
      observer_(observer != nullptr ? observer : &null_observer_),
      options_(options) {}

CertificateRecord CertificateCore::RecordOf(const tls::Certificate& cert, CertStatus status,
                                            std::string ca_id, bool issued_here,
                                            CertMode mode) const {
  const absl::Time now = clock_->Now();
  return CertificateRecord{.id = cert.Id(),
                           .pem = cert.Pem(),
                           .status = status,
                           .ca_certificate_id = std::move(ca_id),
                           .issued_here = issued_here,
                           .serial = cert.serial_hex(),
                           .subject = cert.subject().ToString(),
                           .mode = mode,
                           .not_before = cert.not_before(),
                           .not_after = cert.not_after(),
                           .created_at = now,
                           .updated_at = now};
}

// ---- device certificates

absl::StatusOr<IssuedCertificate> CertificateCore::Mint(absl::string_view csr_pem,
                                                        CertStatus status) {
  IssuedCertificate out;
  std::optional<tls::PublicKey> key;
  tls::Name subject{{{"CN", "fleetcore IoT Certificate"}}};
  if (csr_pem.empty()) {
    FLEETCORE_ASSIGN_OR_RETURN(tls::PrivateKey pair,
                               tls::PrivateKey::Generate(options_.device_key_type));
    FLEETCORE_ASSIGN_OR_RETURN(out.private_key_pem, pair.ToPem());
    key = pair.public_key();
  } else {
    absl::StatusOr<tls::CertificateRequest> csr = tls::CertificateRequest::ParsePem(csr_pem);
    if (!csr.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificateSigningRequest: ", csr.status().message()));
    }
    key = csr->public_key();
    if (absl::Status s = tls::CheckDeviceKey(*key); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("certificateSigningRequest: ", s.message()));
    }
    if (!csr->subject().entries.empty()) subject = csr->subject();
  }
  FLEETCORE_ASSIGN_OR_RETURN(out.public_key_pem, tls::PublicKeyPem(*key));
  const auto start = std::chrono::steady_clock::now();
  FLEETCORE_ASSIGN_OR_RETURN(tls::Certificate cert, issuing_->Sign(*key, subject, clock_->Now(),
                                                                   options_.certificate_validity));
  observer_->Signed(absl::FromChrono(std::chrono::steady_clock::now() - start));
  out.record = RecordOf(cert, status, issuing_->id(), /*issued_here=*/true, CertMode::kDefault);
  return out;
}

namespace {

absl::Status Inserted(absl::Status s, const CertificateRecord& cert) {
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(absl::StrCat("certificate ", cert.id, " is registered already"));
  }
  return s;
}

}  // namespace

// No event in either: nothing caches what does not exist yet, and a NOTIFY per certificate
// would serialize every issuance on Postgres's notify lock at commit.
absl::Status CertificateCore::Store(const CertificateRecord& cert,
                                    absl::FunctionRef<absl::Status(CaTx&)> also) {
  return store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_RETURN_IF_ERROR(Inserted(tx.InsertCertificate(cert), cert));
    return also(tx);
  });
}

absl::Status CertificateCore::Store(const CertificateRecord& cert) {
  return Inserted(store_->InsertCertificate(cert), cert);
}

absl::StatusOr<IssuedCertificate> CertificateCore::CreateKeysAndCertificate(bool set_as_active) {
  FLEETCORE_ASSIGN_OR_RETURN(IssuedCertificate issued,
                             Mint("", set_as_active ? CertStatus::kActive : CertStatus::kInactive));
  FLEETCORE_RETURN_IF_ERROR(Store(issued.record));
  observer_->CertificateIssued("keys");
  return issued;
}

absl::StatusOr<IssuedCertificate> CertificateCore::CreateCertificateFromCsr(
    absl::string_view csr_pem, bool set_as_active) {
  if (csr_pem.empty()) {
    return absl::InvalidArgumentError("certificateSigningRequest is required");
  }
  FLEETCORE_ASSIGN_OR_RETURN(
      IssuedCertificate issued,
      Mint(csr_pem, set_as_active ? CertStatus::kActive : CertStatus::kInactive));
  FLEETCORE_RETURN_IF_ERROR(Store(issued.record));
  observer_->CertificateIssued("csr");
  return issued;
}

absl::StatusOr<CertificateRecord> CertificateCore::RegisterCertificate(absl::string_view pem,
                                                                       absl::string_view ca_pem,
                                                                       CertStatus status) {
  FLEETCORE_ASSIGN_OR_RETURN(tls::Certificate parsed,
                             ParseForRegistration(pem, status, clock_->Now()));
  const tls::Certificate* cert = &parsed;

  // Its CA: the one given, or a registered CA whose subject is its issuer and whose key
  // signed it (or fleetcore's own issuing CA).
  std::string ca_id;
  bool here = false;
  if (!ca_pem.empty()) {
    absl::StatusOr<tls::Certificate> ca = tls::Certificate::ParsePem(ca_pem);
    if (!ca.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("caCertificatePem: ", ca.status().message()));
    }
    if (ca->Id() == issuing_->id()) {
      here = true;
    } else {
      FLEETCORE_ASSIGN_OR_RETURN(std::optional<CaCertificateRecord> registered,
                                 store_->GetCaCertificate(ca->Id()));
      if (!registered.has_value()) {
        return absl::NotFoundError(absl::StrCat("the CA certificate ", ca->Id(),
                                                " is not registered (RegisterCACertificate)"));
      }
      if (!registered->active) {
        return absl::FailedPreconditionError(
            absl::StrCat("the CA certificate ", ca->Id(), " is INACTIVE"));
      }
    }
    if (!cert->SignedBy(*ca)) {
      return absl::InvalidArgumentError("the certificate is not signed by caCertificatePem");
    }
    ca_id = ca->Id();
  } else if (cert->SignedBy(issuing_->certificate())) {
    ca_id = issuing_->id();
    here = true;
  } else {
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<CaCertificateRecord> candidates,
                               store_->CaCertificatesWithSubject(cert->issuer().ToString()));
    for (const CaCertificateRecord& c : candidates) {
      absl::StatusOr<tls::Certificate> ca = tls::Certificate::ParsePem(c.pem);
      if (ca.ok() && cert->SignedBy(*ca)) {
        if (!c.active) {
          return absl::FailedPreconditionError(
              absl::StrCat("the CA certificate ", c.id, " that signed it is INACTIVE"));
        }
        ca_id = c.id;
        break;
      }
    }
    if (ca_id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no registered CA signed this certificate (issuer ", cert->issuer().ToString(),
          "); register its CA first, or use RegisterCertificateWithoutCA"));
    }
  }
  CertificateRecord record = RecordOf(*cert, status, ca_id, here, CertMode::kDefault);
  if (status == CertStatus::kRevoked) record.revoked_at = record.created_at;
  FLEETCORE_RETURN_IF_ERROR(Store(record));
  observer_->CertificateRegistered("with_ca");
  return record;
}

absl::StatusOr<CertificateRecord> CertificateCore::RegisterCertificateWithoutCa(
    absl::string_view pem, CertStatus status) {
  FLEETCORE_ASSIGN_OR_RETURN(tls::Certificate parsed,
                             ParseForRegistration(pem, status, clock_->Now()));
  const tls::Certificate* cert = &parsed;
  CertificateRecord record = RecordOf(*cert, status, "", false, CertMode::kSniOnly);
  if (status == CertStatus::kRevoked) record.revoked_at = record.created_at;
  FLEETCORE_RETURN_IF_ERROR(Store(record));
  observer_->CertificateRegistered("without_ca");
  return record;
}

absl::Status CertificateCore::UpdateCertificate(absl::string_view raw_id, CertStatus new_status) {
  FLEETCORE_ASSIGN_OR_RETURN(std::string id, NormalizeCertificateId(raw_id));
  if (new_status == CertStatus::kPendingActivation || new_status == CertStatus::kPendingTransfer) {
    return absl::InvalidArgumentError(
        "newStatus cannot be PENDING_ACTIVATION or PENDING_TRANSFER; use ACTIVE, INACTIVE, "
        "REVOKED or REGISTER_INACTIVE");
  }
  bool revoked = false;
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
    revoked = false;
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> c,
                               tx.GetCertificate(id, Lock::kUpdate));
    if (!c.has_value()) return CertNotFound(id);
    if (c->status == new_status) return absl::OkStatus();
    if (c->status == CertStatus::kRevoked) {
      return absl::FailedPreconditionError(absl::StrCat(
          "certificate ", id, " is REVOKED; a revoked certificate cannot change status"));
    }
    if (c->status == CertStatus::kPendingTransfer) {
      return absl::FailedPreconditionError(
          absl::StrCat("certificate ", id, " is PENDING_TRANSFER"));
    }
    const absl::Time now = clock_->Now();
    c->status = new_status;
    c->updated_at = now;
    c->customer_version += 1;
    c->generation += 1;
    c->deactivate_at.reset();     // an explicit change ends a rotation's schedule
    c->claim_expires_at.reset();  // and a fleet-provisioning claim
    if (new_status == CertStatus::kRevoked) {
      c->revoked_at = now;
      revoked = true;
      if (c->issued_here) {
        FLEETCORE_RETURN_IF_ERROR(tx.InsertRevocation({.issuer_id = c->ca_certificate_id,
                                                       .serial = c->serial,
                                                       .certificate_id = c->id,
                                                       .revoked_at = now,
                                                       .not_after = c->not_after}));
      }
    }
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateCertificate(*c));
    if (revoked && c->issued_here && c->ca_certificate_id == issuing_->id()) {
      FLEETCORE_RETURN_IF_ERROR(RenewCrl(tx, now));
    }
    tx.Publish({.type = "certificate.status_changed",
                .certificate = id,
                .status = std::string(StatusName(new_status))});
    return absl::OkStatus();
  }));
  if (revoked) observer_->CertificateRevoked();
  return absl::OkStatus();
}

absl::StatusOr<CertificateRecord> CertificateCore::DescribeCertificate(absl::string_view raw_id) {
  FLEETCORE_ASSIGN_OR_RETURN(std::string id, NormalizeCertificateId(raw_id));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> c, store_->GetCertificate(id));
  if (!c.has_value()) return CertNotFound(id);
  return *std::move(c);
}

absl::StatusOr<Page<CertificateRecord>> CertificateCore::ListCertificates(
    std::optional<std::string> ca_id, bool ascending, const PageRequest& page) {
  if (ca_id.has_value()) {
    FLEETCORE_ASSIGN_OR_RETURN(*ca_id, NormalizeCertificateId(*ca_id));
  }
  const std::string query =
      absl::StrCat("certificates|", ca_id.value_or("*"), "|", ascending ? "asc" : "desc");
  FLEETCORE_ASSIGN_OR_RETURN(int limit, pagination::ResolveMaxResults(page.page_size));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<ListPosition> after, ParsePosition(page.marker, query));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<CertificateRecord> items,
                             store_->ListCertificates(ca_id, after, ascending, limit + 1));
  return PageOf(std::move(items), limit, query);
}

absl::Status CertificateCore::DeleteCertificate(absl::string_view raw_id, bool force) {
  FLEETCORE_ASSIGN_OR_RETURN(std::string id, NormalizeCertificateId(raw_id));
  FLEETCORE_ASSIGN_OR_RETURN(CertificateRecord c, DescribeCertificate(id));
  if (c.status == CertStatus::kActive) {
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", id,
                     " is ACTIVE; deactivate it first (UpdateCertificate INACTIVE or "
                     "REVOKED)"));
  }
  const std::string arn = arns_->Cert(id);
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<PrincipalThingRecord> things,
                             peers_->ThingsOfPrincipal(arn));
  if (!things.empty()) {
    std::vector<std::string> names;
    for (const auto& t : things) names.push_back(t.thing_name);
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", id, " is attached to thing(s) ", absl::StrJoin(names, ", "),
                     "; detach it first (DetachThingPrincipal)"));
  }
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> policies, peers_->PoliciesOf(arn));
  if (!policies.empty() && !force) {
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", id, " has policies attached (", absl::StrJoin(policies, ", "),
                     "); detach them (DetachPolicy) or delete with forceDelete"));
  }
  for (const std::string& p : policies) {
    FLEETCORE_RETURN_IF_ERROR(peers_->DetachPolicy(p, arn));
  }
  return store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> now,
                               tx.GetCertificate(id, Lock::kUpdate));
    if (!now.has_value()) return CertNotFound(id);
    if (now->status == CertStatus::kActive) {
      return absl::FailedPreconditionError(
          absl::StrCat("certificate ", id, " became ACTIVE meanwhile"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteCertificate(id));
    tx.Publish({.type = "certificate.deleted", .certificate = id});
    return absl::OkStatus();
  });
}

absl::StatusOr<RotationResult> CertificateCore::RotateCertificate(absl::string_view raw_id,
                                                                  absl::string_view csr_pem,
                                                                  absl::Duration grace) {
  FLEETCORE_ASSIGN_OR_RETURN(std::string id, NormalizeCertificateId(raw_id));
  if (grace < absl::ZeroDuration() || grace > absl::Hours(24 * 30)) {
    return absl::InvalidArgumentError("gracePeriodSeconds must be from 0 to 30 days");
  }
  FLEETCORE_ASSIGN_OR_RETURN(CertificateRecord old, DescribeCertificate(id));
  if (old.status != CertStatus::kActive) {
    return absl::FailedPreconditionError(absl::StrCat(
        "certificate ", id, " is ", StatusName(old.status), "; only an ACTIVE one is rotated"));
  }
  RotationResult result;
  // A new key keeps the old certificate's subject.
  if (csr_pem.empty()) {
    absl::StatusOr<tls::Certificate> parsed = tls::Certificate::ParsePem(old.pem);
    FLEETCORE_ASSIGN_OR_RETURN(tls::PrivateKey pair,
                               tls::PrivateKey::Generate(options_.device_key_type));
    FLEETCORE_ASSIGN_OR_RETURN(result.issued.private_key_pem, pair.ToPem());
    FLEETCORE_ASSIGN_OR_RETURN(result.issued.public_key_pem, tls::PublicKeyPem(pair.public_key()));
    tls::Name subject = parsed.ok() ? parsed->subject() : tls::Name{};
    if (subject.entries.empty()) subject = tls::Name{{{"CN", "fleetcore IoT Certificate"}}};
    const auto start = std::chrono::steady_clock::now();
    FLEETCORE_ASSIGN_OR_RETURN(
        tls::Certificate cert,
        issuing_->Sign(pair.public_key(), subject, clock_->Now(), options_.certificate_validity));
    observer_->Signed(absl::FromChrono(std::chrono::steady_clock::now() - start));
    result.issued.record =
        RecordOf(cert, CertStatus::kActive, issuing_->id(), true, CertMode::kDefault);
  } else {
    FLEETCORE_ASSIGN_OR_RETURN(result.issued, Mint(csr_pem, CertStatus::kActive));
  }

  // The new certificate gets the old one's things and policies; any failure undoes them.
  const std::string old_arn = arns_->Cert(id);
  const std::string new_arn = arns_->Cert(result.issued.record.id);
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<PrincipalThingRecord> things,
                             peers_->ThingsOfPrincipal(old_arn));
  FLEETCORE_ASSIGN_OR_RETURN(result.policies, peers_->PoliciesOf(old_arn));
  std::vector<std::string> attached_things, attached_policies;
  auto undo = [&] {
    for (const std::string& p : attached_policies) (void)peers_->DetachPolicy(p, new_arn);
    for (const std::string& t : attached_things) (void)peers_->DetachThingPrincipal(t, new_arn);
  };
  absl::Status s;
  for (const PrincipalThingRecord& t : things) {
    s = peers_->AttachThingPrincipal(t.thing_name, new_arn, t.exclusive);
    if (!s.ok()) break;
    attached_things.push_back(t.thing_name);
  }
  for (size_t i = 0; s.ok() && i < result.policies.size(); ++i) {
    s = peers_->AttachPolicy(result.policies[i], new_arn);
    if (s.ok()) attached_policies.push_back(result.policies[i]);
  }
  if (s.ok()) {
    const absl::Time now = clock_->Now();
    result.old_deactivation = now + grace;
    s = store_->Transact([&](CaTx& tx) -> absl::Status {
      FLEETCORE_RETURN_IF_ERROR(tx.InsertCertificate(result.issued.record));
      FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> o,
                                 tx.GetCertificate(id, Lock::kUpdate));
      if (!o.has_value() || o->status != CertStatus::kActive) {
        return absl::FailedPreconditionError(
            absl::StrCat("certificate ", id, " changed status meanwhile"));
      }
      o->updated_at = now;
      o->generation += 1;
      if (grace == absl::ZeroDuration()) {
        o->status = CertStatus::kInactive;
        o->customer_version += 1;
        tx.Publish({.type = "certificate.status_changed", .certificate = id, .status = "INACTIVE"});
      } else {
        o->deactivate_at = result.old_deactivation;
      }
      return tx.UpdateCertificate(*o);
    });
  }
  if (!s.ok()) {
    undo();
    return s;
  }
  for (const auto& t : things) result.things.push_back(t.thing_name);
  observer_->CertificateIssued("rotation");
  return result;
}

// ---- CRL

absl::Status CertificateCore::RenewCrl(CaTx& tx, absl::Time now) {
  FLEETCORE_RETURN_IF_ERROR(tx.LockCrl());
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<CrlRecord> latest, tx.LatestCrl());
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<Revocation> revoked, tx.Revocations(issuing_->id(), now));
  std::vector<tls::RevokedEntry> entries;
  for (const Revocation& r : revoked) entries.push_back({r.serial, r.revoked_at});
  CrlRecord crl{.number = latest.has_value() ? latest->number + 1 : 1,
                .issuer_id = issuing_->id(),
                .this_update = now,
                .next_update = now + options_.crl_validity};
  FLEETCORE_ASSIGN_OR_RETURN(
      crl.der, issuing_->SignCrl(entries, crl.number, crl.this_update, crl.next_update));
  return tx.InsertCrl(crl);
}

absl::StatusOr<CrlRecord> CertificateCore::Crl() {
  const absl::Time now = clock_->Now();
  auto fresh = [&](const std::optional<CrlRecord>& c) {
    return c.has_value() && c->issuer_id == issuing_->id() &&
           c->next_update - now > absl::Hours(24);
  };
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<CrlRecord> latest, store_->LatestCrl());
  if (fresh(latest)) return *std::move(latest);
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_RETURN_IF_ERROR(tx.LockCrl());
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<CrlRecord> again, tx.LatestCrl());
    if (fresh(again)) return absl::OkStatus();  // another replica renewed it
    return RenewCrl(tx, now);
  }));
  FLEETCORE_ASSIGN_OR_RETURN(latest, store_->LatestCrl());
  if (!latest.has_value()) return absl::InternalError("the CRL vanished after it was made");
  return *std::move(latest);
}

// ---- registered CA certificates

absl::StatusOr<std::string> CertificateCore::GetRegistrationCode() {
  std::string code;
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<std::string> existing, tx.GetRegistrationCode());
    if (existing.has_value()) {
      code = *existing;
      return absl::OkStatus();
    }
    code = RandomHex(32);
    return tx.SetRegistrationCode(code);
  }));
  return code;
}

absl::Status CertificateCore::DeleteRegistrationCode() {
  return store_->Transact([&](CaTx& tx) { return tx.DeleteRegistrationCode(); });
}

absl::Status CertificateCore::CheckRegistrationConfig(const RegistrationConfig& config) {
  if (!config.template_body.empty() && !config.template_name.empty()) {
    return absl::InvalidArgumentError(
        "registrationConfig takes templateBody or templateName, not both");
  }
  if (!config.template_body.empty()) {
    absl::StatusOr<ProvisioningTemplate> t =
        ProvisioningTemplate::Parse(config.template_body, TemplateType::kJitp);
    if (!t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("registrationConfig.templateBody: ", t.status().message()));
    }
  }
  if (!config.template_name.empty()) {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t,
                               store_->GetTemplate(config.template_name));
    if (!t.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("provisioning template ", Quoted(config.template_name), " does not exist"));
    }
    if (t->type != TemplateType::kJitp) {
      return absl::InvalidArgumentError(absl::StrCat(
          "provisioning template ", Quoted(config.template_name), " is not of type JITP"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CaCertificateRecord> CertificateCore::RegisterCaCertificate(
    absl::string_view ca_pem, absl::string_view verification_pem, bool active,
    bool auto_registration, std::optional<RegistrationConfig> config, CertMode mode) {
  absl::StatusOr<tls::Certificate> ca = tls::Certificate::ParsePem(ca_pem);
  if (!ca.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("caCertificate: ", ca.status().message()));
  }
  if (!ca->is_ca()) {
    return absl::InvalidArgumentError(
        "caCertificate is not a CA certificate (it needs basicConstraints CA:TRUE)");
  }
  const absl::Time now = clock_->Now();
  FLEETCORE_RETURN_IF_ERROR(CheckValidNow(*ca, now, "the CA certificate"));
  if (mode == CertMode::kDefault) {
    if (verification_pem.empty()) {
      return absl::InvalidArgumentError(
          "verificationCertificate is required in DEFAULT mode: a certificate whose CN is the "
          "registration code (GetRegistrationCode), signed by this CA's key");
    }
    absl::StatusOr<tls::Certificate> verification = tls::Certificate::ParsePem(verification_pem);
    if (!verification.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("verificationCertificate: ", verification.status().message()));
    }
    std::optional<std::string> code;
    FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
      FLEETCORE_ASSIGN_OR_RETURN(code, tx.GetRegistrationCode());
      return absl::OkStatus();
    }));
    if (!code.has_value()) {
      return absl::FailedPreconditionError(
          "there is no registration code yet; call GetRegistrationCode first");
    }
    if (verification->subject().Get("CN") != *code) {
      return absl::InvalidArgumentError(absl::StrCat("the verification certificate's CN is ",
                                                     Quoted(verification->subject().Get("CN")),
                                                     ", not the registration code"));
    }
    if (!verification->SignedBy(*ca)) {
      return absl::InvalidArgumentError(
          "the verification certificate is not signed by the CA's key (proof of possession "
          "failed)");
    }
  }
  if (config.has_value()) FLEETCORE_RETURN_IF_ERROR(CheckRegistrationConfig(*config));
  CaCertificateRecord record{.id = ca->Id(),
                             .pem = ca->Pem(),
                             .subject = ca->subject().ToString(),
                             .active = active,
                             .auto_registration = auto_registration,
                             .registration_config = std::move(config),
                             .mode = mode,
                             .not_before = ca->not_before(),
                             .not_after = ca->not_after(),
                             .created_at = now,
                             .updated_at = now};
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(int64_t same, tx.CountCaCertificatesWithSubject(record.subject));
    if (same >= options_.max_ca_certificates_per_subject) {
      return absl::ResourceExhaustedError(
          absl::StrCat("there are already ", same, " CA certificates with the subject ",
                       record.subject, ", the most AWS IoT allows"));
    }
    if (absl::Status s = tx.InsertCaCertificate(record); !s.ok()) {
      if (absl::IsAlreadyExists(s)) {
        return absl::AlreadyExistsError(
            absl::StrCat("CA certificate ", record.id, " is registered already"));
      }
      return s;
    }
    tx.Publish({.type = "ca_certificate.registered", .ca_certificate = record.id});
    return absl::OkStatus();
  }));
  return record;
}

absl::Status CertificateCore::UpdateCaCertificate(const CaUpdate& u) {
  FLEETCORE_ASSIGN_OR_RETURN(std::string id, NormalizeCertificateId(u.id));
  if (u.registration_config.has_value()) {
    FLEETCORE_RETURN_IF_ERROR(CheckRegistrationConfig(*u.registration_config));
  }
  return store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<CaCertificateRecord> ca,
                               tx.GetCaCertificate(id, Lock::kUpdate));
    if (!ca.has_value()) return CaNotFound(id);
    if (u.active.has_value()) ca->active = *u.active;
    if (u.auto_registration.has_value()) ca->auto_registration = *u.auto_registration;
    if (u.registration_config.has_value()) ca->registration_config = u.registration_config;
    if (u.remove_auto_registration) ca->registration_config.reset();
    ca->updated_at = clock_->Now();
    ca->customer_version += 1;
    ca->generation += 1;
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateCaCertificate(*ca));
    tx.Publish({.type = "ca_certificate.updated", .ca_certificate = id});
    return absl::OkStatus();
  });
}

absl::StatusOr<CaCertificateRecord> CertificateCore::DescribeCaCertificate(
    absl::string_view raw_id) {
  FLEETCORE_ASSIGN_OR_RETURN(std::string id, NormalizeCertificateId(raw_id));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<CaCertificateRecord> ca, store_->GetCaCertificate(id));
  if (!ca.has_value()) return CaNotFound(id);
  return *std::move(ca);
}

absl::StatusOr<Page<CaCertificateRecord>> CertificateCore::ListCaCertificates(
    bool ascending, const PageRequest& page) {
  const std::string query = absl::StrCat("cacertificates|", ascending ? "asc" : "desc");
  FLEETCORE_ASSIGN_OR_RETURN(int limit, pagination::ResolveMaxResults(page.page_size));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<ListPosition> after, ParsePosition(page.marker, query));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<CaCertificateRecord> items,
                             store_->ListCaCertificates(after, ascending, limit + 1));
  return PageOf(std::move(items), limit, query);
}

absl::Status CertificateCore::DeleteCaCertificate(absl::string_view raw_id) {
  FLEETCORE_ASSIGN_OR_RETURN(std::string id, NormalizeCertificateId(raw_id));
  return store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<CaCertificateRecord> ca,
                               tx.GetCaCertificate(id, Lock::kUpdate));
    if (!ca.has_value()) return CaNotFound(id);
    if (ca->active) {
      return absl::FailedPreconditionError(absl::StrCat(
          "CA certificate ", id, " is ACTIVE; deactivate it first (UpdateCACertificate)"));
    }
    FLEETCORE_ASSIGN_OR_RETURN(int64_t n, tx.CountCertificatesOfCa(id));
    if (n > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("CA certificate ", id, " has ", n,
                       " device certificate(s) registered with it; delete them first "
                       "(ListCertificatesByCA)"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteCaCertificate(id));
    tx.Publish({.type = "ca_certificate.deleted", .ca_certificate = id});
    return absl::OkStatus();
  });
}

// ---- background work

absl::StatusOr<SweepCounts> CertificateCore::Sweep() {
  SweepCounts counts;
  const absl::Time now = clock_->Now();
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
    counts.deactivated = 0;
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<CertificateRecord> due, tx.DueForDeactivation(now, 100));
    for (CertificateRecord& c : due) {
      c.deactivate_at.reset();
      if (c.status == CertStatus::kActive) {
        c.status = CertStatus::kInactive;
        c.customer_version += 1;
        c.generation += 1;
        c.updated_at = now;
        tx.Publish(
            {.type = "certificate.status_changed", .certificate = c.id, .status = "INACTIVE"});
        ++counts.deactivated;
      }
      FLEETCORE_RETURN_IF_ERROR(tx.UpdateCertificate(c));
    }
    FLEETCORE_ASSIGN_OR_RETURN(counts.tokens_deleted, tx.DeleteExpiredTokens(now));
    return absl::OkStatus();
  }));

  // Claims: the attachments are the registry's and the policy service's, asked outside any
  // transaction; the deletion re-checks the row.
  std::vector<CertificateRecord> expired;
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(expired, tx.ExpiredClaims(now, 100));
    return absl::OkStatus();
  }));
  for (const CertificateRecord& c : expired) {
    const std::string arn = arns_->Cert(c.id);
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<PrincipalThingRecord> things,
                               peers_->ThingsOfPrincipal(arn));
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> policies, peers_->PoliciesOf(arn));
    const bool used =
        !things.empty() || !policies.empty() || c.status != CertStatus::kPendingActivation;
    FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
      FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> row,
                                 tx.GetCertificate(c.id, Lock::kUpdate));
      if (!row.has_value() || !row->claim_expires_at.has_value()) return absl::OkStatus();
      if (used || row->status != CertStatus::kPendingActivation) {
        row->claim_expires_at.reset();
        return tx.UpdateCertificate(*row);
      }
      FLEETCORE_RETURN_IF_ERROR(tx.DeleteCertificate(c.id));
      tx.Publish({.type = "certificate.deleted", .certificate = c.id});
      ++counts.claims_deleted;
      return absl::OkStatus();
    }));
  }

  FLEETCORE_ASSIGN_OR_RETURN(std::optional<CrlRecord> crl, store_->LatestCrl());
  if (!crl.has_value() || crl->issuer_id != issuing_->id() ||
      crl->next_update - now <= absl::Hours(24)) {
    FLEETCORE_RETURN_IF_ERROR(Crl().status());
    counts.crl_renewed = true;
  }
  return counts;
}

}  // namespace fleetcore::ca
