// fleetcore's own issuing CA: the key pair and self-signed certificate that sign device
// certificates and CRLs.
//
// Where it comes from, in order:
//   - --ca-cert-file and --ca-key-file (e.g. a Kubernetes secret): both must exist;
//   - otherwise --ca-dir: ca.pem and ca.key there are loaded, or made on first start (the
//     folder 0700, the key 0600, written with O_EXCL so concurrent first starts agree).
// The key file must not be readable by group or others; the service refuses to start
// otherwise, saying how to fix it. With a passphrase (--ca-key-passphrase(-file)) the key
// is kept encrypted (PKCS#8, AES-256). The key never leaves this object: not to Postgres,
// not to a log, not over the API.
//
// Thread safety: immutable after LoadOrCreate; Sign and SignCrl may run concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls/x509.h"

namespace fleetcore::ca {

struct IssuingCaOptions {
  std::string dir;        // used when cert_file/key_file are empty
  std::string cert_file;  // with key_file: load these, never create
  std::string key_file;
  std::string passphrase;
  tls::KeyType key_type = tls::KeyType::kEcP256;  // for a new CA
  std::string common_name = "fleetcore issuing CA";
  absl::Duration validity = absl::Hours(24 * 365 * 20);
};

class IssuingCa {
 public:
  static absl::StatusOr<std::unique_ptr<IssuingCa>> LoadOrCreate(const IssuingCaOptions& options,
                                                                 absl::Time now);
  // For tests: a CA from an existing key and certificate.
  IssuingCa(tls::PrivateKey key, tls::Certificate cert);

  const tls::Certificate& certificate() const { return cert_; }
  const std::string& id() const { return id_; }
  const std::string& pem() const { return pem_; }
  // Whether LoadOrCreate made it (a first start).
  bool created() const { return created_; }

  // A device certificate for `subject_key`, valid from `now` (minus a minute of clock skew)
  // for `validity`.
  absl::StatusOr<tls::Certificate> Sign(const tls::PublicKey& subject_key, const tls::Name& subject,
                                        absl::Time now, absl::Duration validity) const;

  absl::StatusOr<std::string> SignCrl(const std::vector<tls::RevokedEntry>& revoked, int64_t number,
                                      absl::Time this_update, absl::Time next_update) const;

 private:
  tls::PrivateKey key_;
  tls::Certificate cert_;
  std::string id_;
  std::string pem_;
  bool created_ = false;
};

}  // namespace fleetcore::ca
