// DER encodings of EC keys made without OpenSSL 3.0's encoder and decoder framework.
//
// Why: on Debian 12's OpenSSL 3.0, PEM_write_bio_PUBKEY, PEM_write_bio_PKCS8PrivateKey and
// X509_set_pubkey go through OSSL_ENCODER/OSSL_DECODER lookups that cost ~50 µs each (lock
// contention on the provider name map), ten times an ECDSA signature; a certificate issued
// with a new key paid ~400 µs of CPU. These are the same encodings written directly:
//   SubjectPublicKeyInfo  SEQ { SEQ { id-ecPublicKey, namedCurve }, BIT STRING point }
//   PKCS#8 PrivateKeyInfo SEQ { 0, SEQ { id-ecPublicKey, namedCurve },
//                               OCTET STRING ECPrivateKey { 1, OCTET STRING d, [1] point } }
// Internal to common/tls; other key types take OpenSSL's general path.
#pragma once

#include <optional>
#include <string>

#include "openssl/types.h"

namespace fleetcore::tls::internal {

struct EcPublic {
  int curve_nid = 0;
  std::string point;  // uncompressed, 0x04 || X || Y
};

// The curve and public point of an EC key (named curve); nullopt for other keys.
std::optional<EcPublic> GetEcPublic(EVP_PKEY* key);

std::string EcSpkiDer(const EcPublic& pub);

// PKCS#8 DER of an EC key's private part; nullopt when the key is not an EC key with a
// private scalar. The caller wipes the result.
std::optional<std::string> EcPkcs8Der(EVP_PKEY* key, const EcPublic& pub);

// Fills `cert`'s subject public key from `pub` without the encoder round trip.
bool SetEcSubjectKey(X509* cert, const EcPublic& pub);

}  // namespace fleetcore::tls::internal
