// Access keys for AWS Signature Version 4, as IAM users have them: devices and apps that
// connect MQTT over WebSocket or publish over HTTPS with SigV4 (the AWS IoT Device SDKs'
// WebSocket builders with static credentials, `curl --aws-sigv4`, botocore) present an
// access key id and sign with its secret. fleetcore has no IAM: a user is a name that
// access keys and IoT policies belong to; the policies attach to the user's ARN,
// arn:aws:iam::{account}:user/{name}, as to a certificate's.
//
//   FLEETCORE_ASSIGN_OR_RETURN(NewAccessKey k, core.CreateAccessKey("dashboard"));
//   // k.secret is returned this once; only its sealed form is stored
//   FLEETCORE_ASSIGN_OR_RETURN(SignatureVerdict v, core.Verify(check));  // the gateway's
//
// As IAM: at most two keys per user, ids "AKIA" and 16 base32 characters, 40-character
// secrets, status Active or Inactive; a key is deleted or deactivated at once, and the
// change is announced (fleetcore_policy NOTIFY, "accessKey") so the gateway ends the
// connections that signed with it.
//
// GetSessionToken, as AWS STS's: temporary credentials for a user (an "ASIA" key id, a
// secret and a session token, valid 15 minutes to 12 hours), for clients that must not hold
// a long-lived key (a browser dashboard gets them from the operator's back end). They are
// not stored: the token is the user, the secret and the expiry sealed under the service's
// key (bound to the key id), so any replica checks them and nothing needs cleaning up; they
// cannot be revoked before they expire, but the user's policies can be changed.
//
// Rotating the sealing key: with the old key among the box's previous ones, a secret it
// sealed still opens, and a signature verified with it has the secret sealed again with the
// current key, so the old key can go once every key has been used (or been made anew).
//
// Verify checks the signature over each candidate string to sign (the gateway cannot know
// every client's canonical URI and payload conventions, so it offers the plausible ones),
// comparing in constant time; the request's time, region and service are the gateway's to
// check. Errors: FAILED_PRECONDITION when the service has no sealing key (access keys off),
// INVALID_ARGUMENT for bad names or ids, NOT_FOUND, RESOURCE_EXHAUSTED (third key),
// DATA_LOSS for a stored secret that does not open with the key file in use.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/aws/arn.h"
#include "common/time/clock.h"
#include "common/tls/secret_box.h"
#include "services/policy/policy_store.h"

namespace fleetcore::policy_service {

struct NewAccessKey {
  AccessKey key;
  std::string secret;
};

struct SessionCredentials {
  std::string access_key_id;  // ASIA + 16 base32 characters
  std::string secret;
  std::string session_token;  // URL-safe base64
  absl::Time expiration;
  std::string user_name;
};

// What a SigV4 request presented, as the gateway read it.
struct SignatureCheck {
  std::string access_key_id;
  std::string date;  // yyyymmdd of the credential scope
  std::string region;
  std::string service;
  std::vector<std::string> strings_to_sign;  // candidates, at most kMaxCandidates
  std::string signature;                     // lower-case hex
  std::string session_token;                 // temporary credentials only
};

struct SignatureVerdict {
  bool authenticated = false;
  std::string user_name;
  std::string principal;  // the user's ARN
  // "allow", "unknown_key", "inactive_key", "invalid_token", "expired_token",
  // "signature_mismatch" (for metrics).
  std::string result;
  std::string deny_reason;  // AWS's words, for the client and the logs
  // When temporary credentials expire; nullopt for an access key.
  std::optional<absl::Time> expiration;
  // The key's secret had been sealed with a previous sealing key and is now sealed again
  // with the current one.
  bool resealed = false;
};

class AccessKeyCore {
 public:
  static constexpr int kMaxKeysPerUser = 2;  // IAM's AccessKeysPerUser quota
  static constexpr size_t kMaxCandidates = 12;
  // STS's bounds are 15 minutes to 36 hours; a SigV4 connection lasts a day at most here.
  static constexpr absl::Duration kMinSessionDuration = absl::Minutes(15);
  static constexpr absl::Duration kMaxSessionDuration = absl::Hours(12);
  static constexpr absl::Duration kDefaultSessionDuration = absl::Hours(1);

  // `box` null: access keys are off (the service was started without a sealing key).
  AccessKeyCore(PolicyStore* store, const tls::SecretBox* box, const aws::Arns* arns,
                const Clock* clock);

  // arn:aws:iam::{account}:user/{name}.
  std::string UserArn(absl::string_view user_name) const;

  absl::StatusOr<NewAccessKey> CreateAccessKey(absl::string_view user_name);
  // Without the secrets. `user_name` empty: every user's keys.
  absl::StatusOr<Page<AccessKey>> ListAccessKeys(absl::string_view user_name,
                                                 const PageRequest& page);
  absl::Status UpdateAccessKey(absl::string_view id, bool active);
  absl::Status DeleteAccessKey(absl::string_view id);
  // `duration` zero: kDefaultSessionDuration. INVALID_ARGUMENT outside the bounds.
  absl::StatusOr<SessionCredentials> GetSessionToken(absl::string_view user_name,
                                                     absl::Duration duration);

  absl::StatusOr<SignatureVerdict> Verify(const SignatureCheck& check);

 private:
  absl::Status Enabled() const;
  absl::StatusOr<SignatureVerdict> VerifySession(const SignatureCheck& check);
  SignatureVerdict Match(const SignatureCheck& check, std::string secret,
                         absl::string_view user_name);

  PolicyStore* store_;
  const tls::SecretBox* box_;
  const aws::Arns* arns_;
  const Clock* clock_;
};

// IAM's rule for user names: 1 to 64 of A-Z a-z 0-9 and + = , . @ _ -.
absl::Status ValidateUserName(absl::string_view name);

// The user's name when `arn` is arn:aws:iam::{the account}:user/{a valid name}.
std::optional<std::string> UserOfArn(const aws::Arns& arns, absl::string_view arn);

}  // namespace fleetcore::policy_service
