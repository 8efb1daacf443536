// OpenSSL keys with ownership, and the signature checks services need (custom authorizer
// token signatures; later the CA's own keys).
//
//   FLEETCORE_ASSIGN_OR_RETURN(PublicKey key, ParsePublicKeyPem(pem));
//   if (key.type() != "RSA" || key.bits() < 2048) ...
//   bool ok = VerifySha256(key, token, signature_bytes);
//
// Thread safety: a key may be used from several threads for verification.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "openssl/types.h"

namespace fleetcore::tls {

struct PKeyDeleter {
  void operator()(EVP_PKEY* key) const;
};

class PublicKey {
 public:
  explicit PublicKey(EVP_PKEY* key) : key_(key, PKeyDeleter()) {}
  EVP_PKEY* get() const { return key_.get(); }
  // "RSA", "EC", "ED25519", ...
  std::string type() const;
  int bits() const;

 private:
  std::shared_ptr<EVP_PKEY> key_ = std::shared_ptr<EVP_PKEY>(nullptr, PKeyDeleter());
};

// A PEM "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY". INVALID_ARGUMENT otherwise.
absl::StatusOr<PublicKey> ParsePublicKeyPem(absl::string_view pem);

// Whether `signature` is a SHA-256 signature of `data` by the key's owner (RSA PKCS#1 v1.5
// or ECDSA). Never throws; false for any malformed input.
bool VerifySha256(const PublicKey& key, absl::string_view data, absl::string_view signature);

}  // namespace fleetcore::tls
