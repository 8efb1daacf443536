#include "services/ca/issuing_ca.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/tls/secret_file.h"

namespace fleetcore::ca {
namespace {

absl::StatusOr<std::unique_ptr<IssuingCa>> Load(const std::string& cert_file,
                                                const std::string& key_file,
                                                const std::string& passphrase) {
  FLEETCORE_RETURN_IF_ERROR(tls::CheckPrivateFile(key_file, "the CA key"));
  FLEETCORE_ASSIGN_OR_RETURN(std::string key_pem, tls::ReadFile(key_file));
  FLEETCORE_ASSIGN_OR_RETURN(std::string cert_pem, tls::ReadFile(cert_file));
  absl::StatusOr<tls::PrivateKey> key = tls::PrivateKey::ParsePem(key_pem, passphrase);
  if (!key.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the CA key ", key_file, ": ", key.status().message()));
  }
  absl::StatusOr<tls::Certificate> cert = tls::Certificate::ParsePem(cert_pem);
  if (!cert.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the CA certificate ", cert_file, ": ", cert.status().message()));
  }
  FLEETCORE_ASSIGN_OR_RETURN(std::string a, tls::PublicKeyPem(cert->public_key()));
  FLEETCORE_ASSIGN_OR_RETURN(std::string b, tls::PublicKeyPem(key->public_key()));
  if (a != b) {
    return absl::FailedPreconditionError(
        absl::StrCat("the CA certificate ", cert_file, " does not belong to the key ", key_file));
  }
  if (!cert->is_ca()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the CA certificate ", cert_file, " is not a CA certificate (basicConstraints CA:TRUE)"));
  }
  return std::make_unique<IssuingCa>(*std::move(key), *std::move(cert));
}

}  // namespace

IssuingCa::IssuingCa(tls::PrivateKey key, tls::Certificate cert)
    : key_(std::move(key)), cert_(std::move(cert)), id_(cert_.Id()), pem_(cert_.Pem()) {
  // Parsed once from its encoding, so its public key is decoded once (a certificate fresh
  // from tls::Issue decodes it on every verification).
  if (absl::StatusOr<tls::Certificate> parsed = tls::Certificate::ParseDer(cert_.Der());
      parsed.ok()) {
    cert_ = *std::move(parsed);
  }
}

absl::StatusOr<std::unique_ptr<IssuingCa>> IssuingCa::LoadOrCreate(const IssuingCaOptions& o,
                                                                   absl::Time now) {
  if (!o.cert_file.empty() || !o.key_file.empty()) {
    if (o.cert_file.empty() || o.key_file.empty()) {
      return absl::InvalidArgumentError("--ca-cert-file and --ca-key-file go together");
    }
    return Load(o.cert_file, o.key_file, o.passphrase);
  }
  if (o.dir.empty()) return absl::InvalidArgumentError("no --ca-dir for the issuing CA");
  if (mkdir(o.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the CA folder ", o.dir, ": ", std::strerror(errno)));
  }
  const std::string cert_file = o.dir + "/ca.pem";
  const std::string key_file = o.dir + "/ca.key";
  if (access(key_file.c_str(), F_OK) == 0) {
    // Another process may be writing its certificate right now.
    for (int i = 0; i < 50 && access(cert_file.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Load(cert_file, key_file, o.passphrase);
  }

  FLEETCORE_ASSIGN_OR_RETURN(tls::PrivateKey key, tls::PrivateKey::Generate(o.key_type));
  FLEETCORE_ASSIGN_OR_RETURN(tls::Certificate cert,
                             tls::Issue(key.public_key(),
                                        {.subject = {{{"O", "fleetcore"}, {"CN", o.common_name}}},
                                         .not_before = now - absl::Minutes(5),
                                         .not_after = now + o.validity,
                                         .is_ca = true},
                                        nullptr, key));
  FLEETCORE_ASSIGN_OR_RETURN(std::string key_pem, key.ToPem(o.passphrase));
  absl::Status written = tls::WriteNewFile(key_file, key_pem, 0600);
  if (absl::IsAlreadyExists(written)) {
    // Lost the race to another replica's first start: use its CA.
    for (int i = 0; i < 50 && access(cert_file.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Load(cert_file, key_file, o.passphrase);
  }
  FLEETCORE_RETURN_IF_ERROR(written);
  FLEETCORE_RETURN_IF_ERROR(tls::WriteNewFile(cert_file, cert.Pem(), 0644));
  auto ca = std::make_unique<IssuingCa>(std::move(key), std::move(cert));
  ca->created_ = true;
  return ca;
}

absl::StatusOr<tls::Certificate> IssuingCa::Sign(const tls::PublicKey& subject_key,
                                                 const tls::Name& subject, absl::Time now,
                                                 absl::Duration validity) const {
  absl::Time not_after = now + validity;
  // A certificate cannot outlive the CA that signed it.
  if (not_after > cert_.not_after()) not_after = cert_.not_after();
  return tls::Issue(
      subject_key,
      {.subject = subject, .not_before = now - absl::Minutes(1), .not_after = not_after}, &cert_,
      key_);
}

absl::StatusOr<std::string> IssuingCa::SignCrl(const std::vector<tls::RevokedEntry>& revoked,
                                               int64_t number, absl::Time this_update,
                                               absl::Time next_update) const {
  return tls::MakeCrl(cert_, key_, revoked, number, this_update, next_update);
}

}  // namespace fleetcore::ca
