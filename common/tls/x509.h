// X.509 with ownership: private keys, certificates, certificate requests, issuing and CRLs,
// the pieces a certificate authority and a TLS server need. Every parse is strict and every
// failure is a Status; nothing throws and nothing reads OpenSSL's error queue later.
//
//   FLEETCORE_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
//   FLEETCORE_ASSIGN_OR_RETURN(Certificate ca, Issue(key.public_key(),
//       {.subject = Name{{{"CN", "fleetcore CA"}}}, .is_ca = true, ...}, nullptr, key));
//   FLEETCORE_ASSIGN_OR_RETURN(Certificate device, Issue(device_key, {...}, &ca, key));
//   device.Id();                         // AWS's certificate id: SHA-256 of the DER, hex
//
// Thread safety: objects are immutable after construction and may be shared across threads.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/tls/keys.h"
#include "openssl/types.h"

typedef struct X509_req_st X509_REQ;  // openssl/x509.h, not included from headers

namespace fleetcore::tls {

enum class KeyType { kEcP256, kEcP384, kRsa2048, kRsa3072, kRsa4096 };

// "ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096".
absl::StatusOr<KeyType> ParseKeyType(absl::string_view name);

class PrivateKey {
 public:
  static absl::StatusOr<PrivateKey> Generate(KeyType type);
  // PKCS#8 or traditional PEM; encrypted PEM needs `passphrase`.
  static absl::StatusOr<PrivateKey> ParsePem(absl::string_view pem,
                                             absl::string_view passphrase = "");
  // PKCS#8 PEM; encrypted with AES-256-CBC when `passphrase` is not empty.
  absl::StatusOr<std::string> ToPem(absl::string_view passphrase = "") const;
  PublicKey public_key() const;
  EVP_PKEY* get() const { return key_.get(); }

 private:
  explicit PrivateKey(EVP_PKEY* key) : key_(key, PKeyDeleter()) {}
  std::shared_ptr<EVP_PKEY> key_;
};

// SubjectPublicKeyInfo PEM.
absl::StatusOr<std::string> PublicKeyPem(const PublicKey& key);

// Whether a key is one a device certificate may have: EC P-256, P-384 or P-521, or RSA of
// 2048 to 4096 bits. INVALID_ARGUMENT naming the key otherwise.
absl::Status CheckDeviceKey(const PublicKey& key);

// A distinguished name as (short name, value) pairs in order: C, ST, L, O, OU, CN,
// serialNumber, dnQualifier, ...
struct Name {
  std::vector<std::pair<std::string, std::string>> entries;
  // The first value of `short_name`, or "".
  std::string Get(absl::string_view short_name) const;
  // "CN=lamp-1,O=Example" (RFC 2253 order and escaping).
  std::string ToString() const;
};

struct IssueOptions;

class Certificate {
 public:
  // The first certificate of a PEM text.
  static absl::StatusOr<Certificate> ParsePem(absl::string_view pem);
  // Every certificate of a PEM text, in order; at least one.
  static absl::StatusOr<std::vector<Certificate>> ParsePemChain(absl::string_view pem);
  static absl::StatusOr<Certificate> ParseDer(absl::string_view der);

  std::string Pem() const;
  std::string Der() const;
  // AWS IoT's certificate id: lowercase hex SHA-256 of the DER encoding (64 characters).
  std::string Id() const;
  Name subject() const;
  Name issuer() const;
  std::string serial_hex() const;  // lowercase hex of whole bytes, as openssl prints it
  absl::Time not_before() const;
  absl::Time not_after() const;
  bool is_ca() const;
  PublicKey public_key() const;
  // Whether `issuer`'s subject is this certificate's issuer and its key signed it.
  bool SignedBy(const Certificate& issuer) const;
  X509* get() const { return cert_.get(); }

 private:
  friend absl::StatusOr<Certificate> Issue(const PublicKey&, const IssueOptions&,
                                           const Certificate*, const PrivateKey&);
  explicit Certificate(X509* cert);
  std::shared_ptr<X509> cert_;
};

class CertificateRequest {
 public:
  // Parses a PEM CSR and verifies its self-signature (INVALID_ARGUMENT otherwise).
  static absl::StatusOr<CertificateRequest> ParsePem(absl::string_view pem);
  Name subject() const;
  PublicKey public_key() const;

 private:
  explicit CertificateRequest(X509_REQ* req);
  std::shared_ptr<X509_REQ> req_;
};

// A PEM certificate request for `key` with `subject`, self-signed with SHA-256 (what a
// device or fleetctl sends to CreateCertificateFromCsr).
absl::StatusOr<std::string> CreateCsrPem(const PrivateKey& key, const Name& subject);

struct IssueOptions {
  Name subject;
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
  // Empty: 16 random bytes (positive).
  std::string serial_hex;
};

// Issues a certificate for `subject_key`, signed by `issuer_key` (with SHA-256, or SHA-384
// for a P-384 issuer). `issuer` null: self-signed. CA certificates get basicConstraints
// CA:TRUE and keyCertSign/cRLSign; others CA:FALSE, digitalSignature and keyEncipherment
// (RSA), and extendedKeyUsage clientAuth. Both get subject and authority key identifiers.
absl::StatusOr<Certificate> Issue(const PublicKey& subject_key, const IssueOptions& options,
                                  const Certificate* issuer, const PrivateKey& issuer_key);

struct RevokedEntry {
  std::string serial_hex;
  absl::Time revoked_at;
};

// A DER X.509 v2 CRL of `issuer`, signed by its key, with a CRL number and the authority key
// identifier extension.
absl::StatusOr<std::string> MakeCrl(const Certificate& issuer, const PrivateKey& issuer_key,
                                    const std::vector<RevokedEntry>& revoked, int64_t number,
                                    absl::Time this_update, absl::Time next_update);

// PEM armour around DER: label "CERTIFICATE", "X509 CRL", ...
std::string DerToPem(absl::string_view der, absl::string_view label);

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

}  // namespace fleetcore::tls
