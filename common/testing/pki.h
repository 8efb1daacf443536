// Certificates for tests, made with the openssl command in a temp folder (no key material
// lives in the repository): a CA, and leaf certificates it signs with the SANs
// DNS:localhost and IP:127.0.0.1.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace fleetcore::testing {

struct TestPki {
  std::string dir;
  std::string ca_cert() const { return dir + "/ca.pem"; }
  std::string ca_key() const { return dir + "/ca.key"; }
  std::string cert(const std::string& name) const { return dir + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return dir + "/" + name + ".key"; }

  // Makes a CA (ca.pem, ca.key) in a new folder named after `tag`.
  static absl::StatusOr<TestPki> Create(const std::string& tag);
  // A P-256 key and a certificate for CN=`name` signed by the CA.
  absl::Status Issue(const std::string& name) const;
};

}  // namespace fleetcore::testing
