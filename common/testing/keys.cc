#include "common/testing/keys.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/escaping.h"
#include "openssl/bio.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/rsa.h"

namespace fleetcore::testing {
namespace {

struct Free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  void operator()(BIO* b) const { BIO_free(b); }
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "TestKeyPair: %s failed\n", what);
  std::abort();
}

std::string Drain(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

TestKeyPair FromKey(EVP_PKEY* raw) {
  if (raw == nullptr) Die("key generation");
  std::unique_ptr<EVP_PKEY, Free> key(raw);
  std::unique_ptr<BIO, Free> pub(BIO_new(BIO_s_mem())), priv(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) Die("PEM_write_bio_PUBKEY");
  if (PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    Die("PEM_write_bio_PrivateKey");
  }
  return {Drain(pub.get()), Drain(priv.get())};
}

}  // namespace

TestKeyPair TestKeyPair::Rsa(int bits) { return FromKey(EVP_RSA_gen(static_cast<unsigned>(bits))); }

TestKeyPair TestKeyPair::Ec() { return FromKey(EVP_EC_gen("P-256")); }

std::string TestKeyPair::SignBase64(absl::string_view data) const {
  std::unique_ptr<BIO, Free> bio(
      BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size())));
  std::unique_ptr<EVP_PKEY, Free> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) Die("PEM_read_bio_PrivateKey");
  std::unique_ptr<EVP_MD_CTX, Free> ctx(EVP_MD_CTX_new());
  size_t size = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    Die("EVP_DigestSign");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    Die("EVP_DigestSign");
  }
  signature.resize(size);
  return absl::Base64Escape(signature);
}

}  // namespace fleetcore::testing
