// libFuzzer target: what a device presents as a certificate (its TLS chain, DER, which
// JITR and JITP read) or as a CSR (fleet provisioning's create-from-csr, PEM). Parsing and
// every accessor the CA uses must not crash, and
//   - a certificate that parses has a 64-hex-digit id, and its encoding parses again to the
//     same id;
//   - an EC key's SubjectPublicKeyInfo, as ec_der writes it without OpenSSL's encoder, is
//     the same key, and byte for byte the one OpenSSL writes for an uncompressed point.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "common/tls/ec_der.h"
#include "common/tls/keys.h"
#include "common/tls/x509.h"

namespace {

using namespace fleetcore::tls;

void CheckKey(const PublicKey& key) {
  (void)key.type();
  (void)key.bits();
  (void)CheckDeviceKey(key);
  if (key.get() == nullptr) return;
  std::optional<internal::EcPublic> ec = internal::GetEcPublic(key.get());
  if (!ec.has_value()) return;
  // ec_der writes the point uncompressed; a key that came compressed or hybrid (0x02, 0x03,
  // 0x06, 0x07) is the same key in another encoding.
  const std::string spki = internal::EcSpkiDer(*ec);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(spki.data());
  EVP_PKEY* back = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));
  const bool same_key = back != nullptr && EVP_PKEY_eq(back, key.get()) == 1;
  EVP_PKEY_free(back);
  if (!same_key) std::abort();
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(key.get(), &der);
  if (n <= 0) return;  // OpenSSL cannot write it either
  const std::string openssl(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  const bool uncompressed = openssl.size() >= ec->point.size() &&
                            openssl[openssl.size() - ec->point.size()] == '\x04';
  if (uncompressed && spki != openssl) std::abort();
}

void CheckCertificate(const Certificate& c) {
  const std::string id = c.Id();
  if (id.size() != 64 ||
      !std::all_of(id.begin(), id.end(), [](char ch) { return absl::ascii_isxdigit(ch); })) {
    std::abort();
  }
  absl::StatusOr<Certificate> again = Certificate::ParseDer(c.Der());
  if (!again.ok() || again->Id() != id) std::abort();
  (void)c.subject().ToString();
  (void)c.issuer().ToString();
  (void)c.subject().Get("CN");
  (void)c.serial_hex();
  (void)c.not_before();
  (void)c.not_after();
  (void)c.is_ca();
  (void)c.Pem();
  (void)c.SignedBy(c);
  CheckKey(c.public_key());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<Certificate> c = Certificate::ParseDer(input); c.ok()) {
    CheckCertificate(*c);
  }
  if (absl::StatusOr<std::vector<Certificate>> chain = Certificate::ParsePemChain(input);
      chain.ok()) {
    for (const Certificate& c : *chain) CheckCertificate(c);
  }
  if (absl::StatusOr<CertificateRequest> csr = CertificateRequest::ParsePem(input); csr.ok()) {
    (void)csr->subject().ToString();
    CheckKey(csr->public_key());
  }
  return 0;
}
