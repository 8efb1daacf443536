#include "services/ca/ca_test_util.h"

#include <cstdlib>
#include <iostream>

namespace fleetcore::ca::testing {
namespace {

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::cerr << what << ": " << v.status() << "\n";
    std::abort();
  }
  return *std::move(v);
}

}  // namespace

TestAuthority TestAuthority::Make(const std::string& common_name, absl::Time now) {
  tls::PrivateKey key = Must(tls::PrivateKey::Generate(tls::KeyType::kEcP256), "CA key");
  tls::Certificate cert =
      Must(tls::Issue(key.public_key(),
                      {.subject = {{{"O", "Example Corp"}, {"CN", common_name}}},
                       .not_before = now - absl::Hours(24),
                       .not_after = now + absl::Hours(24 * 3650),
                       .is_ca = true},
                      nullptr, key),
           "CA certificate");
  return {std::move(key), std::move(cert)};
}

std::pair<tls::PrivateKey, tls::Certificate> TestAuthority::Device(const tls::Name& subject,
                                                                   absl::Time not_before,
                                                                   absl::Duration validity) const {
  tls::PrivateKey device = Must(tls::PrivateKey::Generate(tls::KeyType::kEcP256), "device key");
  tls::Certificate c = Must(
      tls::Issue(device.public_key(),
                 {.subject = subject, .not_before = not_before, .not_after = not_before + validity},
                 &cert, key),
      "device certificate");
  return {std::move(device), std::move(c)};
}

tls::Certificate TestAuthority::Verification(const std::string& registration_code,
                                             absl::Time now) const {
  return Device({{{"CN", registration_code}}}, now - absl::Hours(1)).second;
}

std::unique_ptr<IssuingCa> MakeIssuingCa(absl::Time now) {
  TestAuthority a = TestAuthority::Make("fleetcore test issuing CA", now);
  return std::make_unique<IssuingCa>(std::move(a.key), std::move(a.cert));
}

std::string MakeCsr(const tls::PrivateKey& key, const tls::Name& subject) {
  return Must(tls::CreateCsrPem(key, subject), "CSR");
}

}  // namespace fleetcore::ca::testing
