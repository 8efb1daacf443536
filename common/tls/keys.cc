#include "common/tls/keys.h"

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "absl/strings/str_cat.h"

namespace fleetcore::tls {

void PKeyDeleter::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }

std::string PublicKey::type() const {
  if (key_ == nullptr) return "";
  const char* name = EVP_PKEY_get0_type_name(key_.get());
  return name != nullptr ? name : "";
}

int PublicKey::bits() const { return key_ == nullptr ? 0 : EVP_PKEY_get_bits(key_.get()); }

absl::StatusOr<PublicKey> ParsePublicKeyPem(absl::string_view pem) {
  // OpenSSL 3's decoder reads both SubjectPublicKeyInfo and PKCS#1 "RSA PUBLIC KEY".
  EVP_PKEY* key = nullptr;
  std::unique_ptr<OSSL_DECODER_CTX, decltype(&OSSL_DECODER_CTX_free)> decoder(
      OSSL_DECODER_CTX_new_for_pkey(&key, "PEM", nullptr, nullptr, EVP_PKEY_PUBLIC_KEY, nullptr,
                                    nullptr),
      &OSSL_DECODER_CTX_free);
  if (decoder == nullptr) return absl::ResourceExhaustedError("out of memory");
  const unsigned char* data = reinterpret_cast<const unsigned char*>(pem.data());
  size_t len = pem.size();
  if (OSSL_DECODER_from_data(decoder.get(), &data, &len) != 1) {
    EVP_PKEY_free(key);
    key = nullptr;
  }
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        "not a PEM public key (expected -----BEGIN PUBLIC KEY----- or -----BEGIN RSA PUBLIC "
        "KEY-----)");
  }
  return PublicKey(key);
}

bool VerifySha256(const PublicKey& key, absl::string_view data, absl::string_view signature) {
  if (key.get() == nullptr) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1;
}

}  // namespace fleetcore::tls
