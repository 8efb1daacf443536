#include "common/tls/x509.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/tls/ec_der.h"

namespace fleetcore::tls {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Bn = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using Crl = std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>>;
using Revoked = std::unique_ptr<X509_REVOKED, Deleter<X509_REVOKED, X509_REVOKED_free>>;
using Asn1Time = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>>;
using Asn1Int = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER, ASN1_INTEGER_free>>;
using XName = std::unique_ptr<X509_NAME, Deleter<X509_NAME, X509_NAME_free>>;

// The reason of the last OpenSSL failure, and the queue emptied.
std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown OpenSSL error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

absl::Status Failed(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", OpenSslError()));
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Bio MemBio(absl::string_view data) {
  return Bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

absl::Time FromAsn1(const ASN1_TIME* t) {
  struct tm tm;
  std::memset(&tm, 0, sizeof(tm));
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromUnixSeconds(timegm(&tm));
}

Name FromX509Name(const X509_NAME* name) {
  Name out;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    const char* sn = OBJ_nid2sn(nid);
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (len < 0) continue;
    out.entries.emplace_back(sn != nullptr ? sn : "",
                             std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(len)));
    OPENSSL_free(utf8);
  }
  return out;
}

absl::StatusOr<XName> ToX509Name(const Name& name) {
  XName out(X509_NAME_new());
  for (const auto& [key, value] : name.entries) {
    if (X509_NAME_add_entry_by_txt(out.get(), key.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("subject: cannot use ", key, "=", value, ": ", OpenSslError()));
    }
  }
  return out;
}

const EVP_MD* DigestFor(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) >= 384) return EVP_sha384();
  return EVP_sha256();
}

absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (ext == nullptr) return Failed(absl::StrCat("extension ", OBJ_nid2sn(nid)));
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? absl::OkStatus() : Failed("X509_add_ext");
}

// Hands OpenSSL the passphrase in `u` (a std::string); an empty one fails the decryption.
int PassphraseCallback(char* buf, int size, int, void* u) {
  const std::string& pass = *static_cast<const std::string*>(u);
  if (pass.empty() || static_cast<int>(pass.size()) > size) return -1;
  std::memcpy(buf, pass.data(), pass.size());
  return static_cast<int>(pass.size());
}

// Never prompts: for PEM objects that are never encrypted.
int NoPassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<Asn1Int> SerialFromHex(absl::string_view hex) {
  BIGNUM* raw = nullptr;
  std::string s(hex);
  if (hex.empty()) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) return Failed("RAND_bytes");
    bytes[0] &= 0x7f;  // positive
    bytes[0] |= 0x40;  // and always 16 bytes long
    raw = BN_bin2bn(bytes, sizeof(bytes), nullptr);
  } else if (BN_hex2bn(&raw, s.c_str()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("serial ", hex, " is not hex"));
  }
  Bn bn(raw);
  Asn1Int serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (serial == nullptr) return Failed("BN_to_ASN1_INTEGER");
  return serial;
}

std::string HexOf(const ASN1_INTEGER* serial) {
  Bn bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) return "";
  char* hex = BN_bn2hex(bn.get());
  std::string out = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  return out;
}

}  // namespace

absl::StatusOr<KeyType> ParseKeyType(absl::string_view name) {
  if (name == "ec-p256") return KeyType::kEcP256;
  if (name == "ec-p384") return KeyType::kEcP384;
  if (name == "rsa-2048") return KeyType::kRsa2048;
  if (name == "rsa-3072") return KeyType::kRsa3072;
  if (name == "rsa-4096") return KeyType::kRsa4096;
  return absl::InvalidArgumentError(absl::StrCat(
      "key type \"", name, "\" is not one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096"));
}

// ---- keys

absl::StatusOr<PrivateKey> PrivateKey::Generate(KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case KeyType::kEcP256:
      key = EVP_EC_gen("P-256");
      break;
    case KeyType::kEcP384:
      key = EVP_EC_gen("P-384");
      break;
    case KeyType::kRsa2048:
      key = EVP_RSA_gen(2048);
      break;
    case KeyType::kRsa3072:
      key = EVP_RSA_gen(3072);
      break;
    case KeyType::kRsa4096:
      key = EVP_RSA_gen(4096);
      break;
  }
  if (key == nullptr) return Failed("key generation");
  return PrivateKey(key);
}

absl::StatusOr<PrivateKey> PrivateKey::ParsePem(absl::string_view pem,
                                                absl::string_view passphrase) {
  Bio bio = MemBio(pem);
  std::string pass(passphrase);
  // Our callback, never OpenSSL's default: that one would prompt on the terminal.
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, &PassphraseCallback, &pass);
  if (key == nullptr) {
    const std::string why = OpenSslError();
    const bool encrypted = absl::StrContains(pem, "ENCRYPTED");
    if (encrypted && passphrase.empty()) {
      return absl::InvalidArgumentError("the private key is encrypted and no passphrase is set");
    }
    if (encrypted) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot decrypt the private key (wrong passphrase?): ", why));
    }
    return absl::InvalidArgumentError(absl::StrCat("not a PEM private key: ", why));
  }
  return PrivateKey(key);
}

absl::StatusOr<std::string> PrivateKey::ToPem(absl::string_view passphrase) const {
  if (passphrase.empty()) {
    if (std::optional<internal::EcPublic> pub = internal::GetEcPublic(key_.get())) {
      if (std::optional<std::string> der = internal::EcPkcs8Der(key_.get(), *pub)) {
        std::string pem = DerToPem(*der, "PRIVATE KEY");
        OPENSSL_cleanse(der->data(), der->size());
        return pem;
      }
    }
  }
  Bio bio(BIO_new(BIO_s_mem()));
  std::string pass(passphrase);
  const int ok = pass.empty() ? PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), nullptr,
                                                              nullptr, 0, nullptr, nullptr)
                              : PEM_write_bio_PKCS8PrivateKey(
                                    bio.get(), key_.get(), EVP_aes_256_cbc(), pass.data(),
                                    static_cast<int>(pass.size()), nullptr, nullptr);
  if (ok != 1) return Failed("PEM_write_bio_PKCS8PrivateKey");
  return BioString(bio.get());
}

PublicKey PrivateKey::public_key() const {
  EVP_PKEY_up_ref(key_.get());
  return PublicKey(key_.get());
}

absl::StatusOr<std::string> PublicKeyPem(const PublicKey& key) {
  if (std::optional<internal::EcPublic> pub = internal::GetEcPublic(key.get())) {
    return DerToPem(internal::EcSpkiDer(*pub), "PUBLIC KEY");
  }
  Bio bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) return Failed("PEM_write_bio_PUBKEY");
  return BioString(bio.get());
}

absl::Status CheckDeviceKey(const PublicKey& key) {
  const std::string type = key.type();
  const int bits = key.bits();
  if (type == "EC" && (bits == 256 || bits == 384 || bits == 521)) return absl::OkStatus();
  if (type == "RSA" && bits >= 2048 && bits <= 4096) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "a ", type.empty() ? "unknown" : type, " key of ", bits,
      " bits is not allowed; use EC P-256, P-384 or P-521, or RSA of 2048 to 4096 bits"));
}

// ---- names

std::string Name::Get(absl::string_view short_name) const {
  for (const auto& [k, v] : entries) {
    if (k == short_name) return v;
  }
  return "";
}

std::string Name::ToString() const {
  std::string out;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (!out.empty()) out += ",";
    absl::StrAppend(&out, it->first, "=");
    for (char c : it->second) {
      if (absl::StrContains(",+\"\\<>;=", c)) out += '\\';
      out += c;
    }
  }
  return out;
}

// ---- certificates

Certificate::Certificate(X509* cert) : cert_(cert, X509_free) {}

absl::StatusOr<Certificate> Certificate::ParsePem(absl::string_view pem) {
  Bio bio = MemBio(pem);
  X509* cert = PEM_read_bio_X509(bio.get(), nullptr, &NoPassphrase, nullptr);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a PEM certificate (-----BEGIN CERTIFICATE-----): ", OpenSslError()));
  }
  return Certificate(cert);
}

absl::StatusOr<std::vector<Certificate>> Certificate::ParsePemChain(absl::string_view pem) {
  Bio bio = MemBio(pem);
  std::vector<Certificate> out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, &NoPassphrase, nullptr)) {
    out.push_back(Certificate(cert));
  }
  ERR_clear_error();  // the end of the text reads as an error
  if (out.empty()) {
    return absl::InvalidArgumentError("no PEM certificate (-----BEGIN CERTIFICATE-----) found");
  }
  return out;
}

absl::StatusOr<Certificate> Certificate::ParseDer(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert == nullptr || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    X509_free(cert);
    return absl::InvalidArgumentError(absl::StrCat("not a DER certificate: ", OpenSslError()));
  }
  return Certificate(cert);
}

std::string Certificate::Pem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert_.get());
  return BioString(bio.get());
}

std::string Certificate::Der() const {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert_.get(), &der);
  if (len < 0) return "";
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string Certificate::Id() const { return Sha256Hex(Der()); }

Name Certificate::subject() const { return FromX509Name(X509_get_subject_name(cert_.get())); }
Name Certificate::issuer() const { return FromX509Name(X509_get_issuer_name(cert_.get())); }

std::string Certificate::serial_hex() const { return HexOf(X509_get0_serialNumber(cert_.get())); }

absl::Time Certificate::not_before() const { return FromAsn1(X509_get0_notBefore(cert_.get())); }
absl::Time Certificate::not_after() const { return FromAsn1(X509_get0_notAfter(cert_.get())); }

bool Certificate::is_ca() const { return X509_check_ca(cert_.get()) > 0; }

PublicKey Certificate::public_key() const {
  if (EVP_PKEY* key = X509_get_pubkey(cert_.get())) return PublicKey(key);  // a new reference
  // Issued here, its key was set from its encoding without a decoded copy (ec_der.h):
  // decode it now.
  ERR_clear_error();
  unsigned char* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert_.get()), &der);
  const unsigned char* p = der;
  EVP_PKEY* key = len > 0 ? d2i_PUBKEY(nullptr, &p, len) : nullptr;
  OPENSSL_free(der);
  ERR_clear_error();
  return PublicKey(key);
}

bool Certificate::SignedBy(const Certificate& issuer) const {
  if (X509_NAME_cmp(X509_get_issuer_name(cert_.get()), X509_get_subject_name(issuer.cert_.get())) !=
      0) {
    return false;
  }
  EVP_PKEY* cached = X509_get0_pubkey(issuer.cert_.get());
  const PublicKey decoded = cached != nullptr ? PublicKey(nullptr) : issuer.public_key();
  EVP_PKEY* key = cached != nullptr ? cached : decoded.get();
  const bool ok = key != nullptr && X509_verify(cert_.get(), key) == 1;
  ERR_clear_error();
  return ok;
}

// ---- requests

CertificateRequest::CertificateRequest(X509_REQ* req) : req_(req, X509_REQ_free) {}

absl::StatusOr<CertificateRequest> CertificateRequest::ParsePem(absl::string_view pem) {
  Bio bio = MemBio(pem);
  X509_REQ* req = PEM_read_bio_X509_REQ(bio.get(), nullptr, &NoPassphrase, nullptr);
  if (req == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----): ", OpenSslError()));
  }
  CertificateRequest out(req);
  EVP_PKEY* key = X509_REQ_get0_pubkey(req);
  if (key == nullptr || X509_REQ_verify(req, key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "the certificate request's signature does not verify with its own public key");
  }
  return out;
}

Name CertificateRequest::subject() const {
  return FromX509Name(X509_REQ_get_subject_name(req_.get()));
}

PublicKey CertificateRequest::public_key() const {
  return PublicKey(X509_REQ_get_pubkey(req_.get()));
}

absl::StatusOr<std::string> CreateCsrPem(const PrivateKey& key, const Name& subject) {
  std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>> req(X509_REQ_new());
  absl::StatusOr<XName> name = ToX509Name(subject);
  if (!name.ok()) return name.status();
  if (X509_REQ_set_subject_name(req.get(), name->get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_REQ_sign(req.get(), key.get(), DigestFor(key.get())) <= 0) {
    return Failed("X509_REQ_sign");
  }
  Bio bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return Failed("PEM_write_bio_X509_REQ");
  return BioString(bio.get());
}

// ---- issuing

absl::StatusOr<Certificate> Issue(const PublicKey& subject_key, const IssueOptions& options,
                                  const Certificate* issuer, const PrivateKey& issuer_key) {
  if (subject_key.get() == nullptr) return absl::InvalidArgumentError("no subject key");
  if (options.not_after <= options.not_before) {
    return absl::InvalidArgumentError("the validity period ends before it starts");
  }
  std::unique_ptr<X509, Deleter<X509, X509_free>> cert(X509_new());
  X509_set_version(cert.get(), 2);  // v3
  absl::StatusOr<Asn1Int> serial = SerialFromHex(options.serial_hex);
  if (!serial.ok()) return serial.status();
  X509_set_serialNumber(cert.get(), serial->get());
  Asn1Time nb(ASN1_TIME_set(nullptr, absl::ToTimeT(options.not_before)));
  Asn1Time na(ASN1_TIME_set(nullptr, absl::ToTimeT(options.not_after)));
  X509_set1_notBefore(cert.get(), nb.get());
  X509_set1_notAfter(cert.get(), na.get());
  absl::StatusOr<XName> subject = ToX509Name(options.subject);
  if (!subject.ok()) return subject.status();
  X509_set_subject_name(cert.get(), subject->get());
  X509_set_issuer_name(cert.get(),
                       issuer != nullptr ? X509_get_subject_name(issuer->get()) : subject->get());
  std::optional<internal::EcPublic> ec = internal::GetEcPublic(subject_key.get());
  if (!(ec.has_value() && internal::SetEcSubjectKey(cert.get(), *ec)) &&
      X509_set_pubkey(cert.get(), subject_key.get()) != 1) {
    return Failed("X509_set_pubkey");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer->get() : cert.get(), cert.get(), nullptr, nullptr,
                 0);
  const bool rsa = EVP_PKEY_is_a(subject_key.get(), "RSA");
  absl::Status s = AddExtension(cert.get(), &ctx, NID_basic_constraints,
                                options.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (s.ok()) {
    s = AddExtension(cert.get(), &ctx, NID_key_usage,
                     options.is_ca ? "critical,keyCertSign,cRLSign,digitalSignature"
                     : rsa         ? "critical,digitalSignature,keyEncipherment"
                                   : "critical,digitalSignature");
  }
  if (s.ok() && !options.is_ca) {
    s = AddExtension(cert.get(), &ctx, NID_ext_key_usage, "clientAuth");
  }
  if (s.ok()) s = AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  if (s.ok()) s = AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  if (!s.ok()) return s;

  if (X509_sign(cert.get(), issuer_key.get(), DigestFor(issuer_key.get())) <= 0) {
    return Failed("X509_sign");
  }
  return Certificate(cert.release());
}

absl::StatusOr<std::string> MakeCrl(const Certificate& issuer, const PrivateKey& issuer_key,
                                    const std::vector<RevokedEntry>& revoked, int64_t number,
                                    absl::Time this_update, absl::Time next_update) {
  Crl crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);  // v2
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.get()));
  Asn1Time last(ASN1_TIME_set(nullptr, absl::ToTimeT(this_update)));
  Asn1Time next(ASN1_TIME_set(nullptr, absl::ToTimeT(next_update)));
  X509_CRL_set1_lastUpdate(crl.get(), last.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  for (const RevokedEntry& r : revoked) {
    Revoked entry(X509_REVOKED_new());
    absl::StatusOr<Asn1Int> serial = SerialFromHex(r.serial_hex);
    if (!serial.ok()) return serial.status();
    Asn1Time when(ASN1_TIME_set(nullptr, absl::ToTimeT(r.revoked_at)));
    X509_REVOKED_set_serialNumber(entry.get(), serial->get());
    X509_REVOKED_set_revocationDate(entry.get(), when.get());
    if (X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) return Failed("X509_CRL_add0_revoked");
    entry.release();  // owned by the CRL now
  }
  Asn1Int crl_number(ASN1_INTEGER_new());
  ASN1_INTEGER_set_int64(crl_number.get(), number);
  if (X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, 0) != 1) {
    return Failed("CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer.get(), nullptr, nullptr, crl.get(), 0);
  X509_EXTENSION* aki =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always");
  if (aki == nullptr) return Failed("CRL authority key identifier");
  const int added = X509_CRL_add_ext(crl.get(), aki, -1);
  X509_EXTENSION_free(aki);
  if (added != 1) return Failed("X509_CRL_add_ext");
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), issuer_key.get(), DigestFor(issuer_key.get())) <= 0) {
    return Failed("X509_CRL_sign");
  }
  unsigned char* der = nullptr;
  const int len = i2d_X509_CRL(crl.get(), &der);
  if (len < 0) return Failed("i2d_X509_CRL");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string DerToPem(absl::string_view der, absl::string_view label) {
  std::string b64 = absl::Base64Escape(der);
  std::string out = absl::StrCat("-----BEGIN ", label, "-----\n");
  for (size_t i = 0; i < b64.size(); i += 64) {
    absl::StrAppend(&out, b64.substr(i, 64), "\n");
  }
  absl::StrAppend(&out, "-----END ", label, "-----\n");
  return out;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace fleetcore::tls
