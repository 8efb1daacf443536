// Key pairs made in-process for tests that need signatures (custom authorizer tokens):
// nothing is stored, every test run makes its own.
//
//   TestKeyPair keys = TestKeyPair::Rsa(2048);
//   authorizer.public_keys = {{"k1", keys.public_pem}};
//   std::string signature_b64 = keys.SignBase64(token);
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace fleetcore::testing {

struct TestKeyPair {
  std::string public_pem;   // SubjectPublicKeyInfo
  std::string private_pem;  // PKCS#8

  // Aborts the test binary if OpenSSL cannot make the key (nothing to test then).
  static TestKeyPair Rsa(int bits);
  static TestKeyPair Ec();  // P-256

  // Base64 of the SHA-256 signature (PKCS#1 v1.5 for RSA) of `data`.
  std::string SignBase64(absl::string_view data) const;
};

}  // namespace fleetcore::testing
