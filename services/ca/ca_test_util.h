// Certificates for the CA service's tests, made in-process: an issuing CA for fleetcore, and
// "customer" CAs with device and verification certificates, as an operator's own PKI would
// make them. Nothing is stored; every run makes its own keys.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "common/tls/x509.h"
#include "services/ca/issuing_ca.h"

namespace fleetcore::ca::testing {

struct TestAuthority {
  tls::PrivateKey key;
  tls::Certificate cert;

  // A self-signed CA certificate with subject CN=`common_name`, O=Example Corp.
  static TestAuthority Make(const std::string& common_name, absl::Time now);
  // A device certificate with `subject` signed by this authority.
  std::pair<tls::PrivateKey, tls::Certificate> Device(
      const tls::Name& subject, absl::Time not_before,
      absl::Duration validity = absl::Hours(24)) const;
  // The proof of possession for RegisterCACertificate: CN = the registration code.
  tls::Certificate Verification(const std::string& registration_code, absl::Time now) const;
};

// fleetcore's issuing CA, in memory.
std::unique_ptr<IssuingCa> MakeIssuingCa(absl::Time now);

// A PEM CSR for `key` with `subject`, signed with SHA-256.
std::string MakeCsr(const tls::PrivateKey& key, const tls::Name& subject);

}  // namespace fleetcore::ca::testing
