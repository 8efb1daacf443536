// Sealing small secrets at rest with AES-256-GCM under a 32-byte key kept in a file of its
// own (the policy service's access-key secrets in Postgres: a dump of the database alone
// does not give them away).
//
//   FLEETCORE_ASSIGN_OR_RETURN(tls::SecretBox box, tls::SecretBox::LoadOrCreate(path));
//   std::string sealed = box.Seal(secret, /*context=*/key_id);  // base64
//   absl::StatusOr<std::string> secret = box.Open(sealed, key_id);
//
// The key file holds the key as 64 hex digits (a Kubernetes Secret can carry it as text);
// it must be private to its owner. A sealed value is base64 of a random 12-byte nonce, the
// ciphertext and the 16-byte tag; `context` is authenticated with it, so a value moved to
// another context does not open.
//
// Rotation: a box may also hold previous keys, which open what they sealed but seal
// nothing; Open says when a previous key was needed, so the caller can seal it again with
// the current one.
//
// Thread safety: a SecretBox is immutable; Seal and Open may run on any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetcore::tls {

class SecretBox {
 public:
  // Reads the key from `path`; when there is no such file and `create` is set, writes a new
  // random key there with mode 0600 first. FAILED_PRECONDITION for a file that others may
  // read, cannot be read or written, or does not hold 64 hex digits.
  // `previous`: files of earlier keys (never created), for what they sealed.
  static absl::StatusOr<SecretBox> Load(const std::string& path, bool create,
                                        const std::vector<std::string>& previous = {});
  // For tests: a box with this 32-byte key (and these previous ones).
  static SecretBox WithKey(std::string key, std::vector<std::string> previous = {});

  std::string Seal(absl::string_view plaintext, absl::string_view context) const;
  // DATA_LOSS when `sealed` is not what Seal made with one of the keys and this context.
  // `*stale` (may be null) tells whether it took a previous key.
  absl::StatusOr<std::string> Open(absl::string_view sealed, absl::string_view context,
                                   bool* stale = nullptr) const;

 private:
  explicit SecretBox(std::vector<std::string> keys) : keys_(std::move(keys)) {}
  std::vector<std::string> keys_;  // the current key first
};

}  // namespace fleetcore::tls
