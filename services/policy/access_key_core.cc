#include "services/policy/access_key_core.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/aws/sigv4.h"
#include "common/pagination/page_token.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace fleetcore::policy_service {
namespace {

// `n` characters drawn uniformly from `alphabet` (whose size divides 256).
std::string RandomString(size_t n, absl::string_view alphabet) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
    std::abort();  // no randomness: nothing safe to hand out
  }
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[i] = alphabet[static_cast<unsigned char>(bytes[i]) % alphabet.size()];
  }
  return out;
}

constexpr absl::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
// 64 characters, as in IAM's secrets (letters, digits, '/' and '+').
constexpr absl::string_view kSecretAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

absl::Status ValidateKeyId(absl::string_view id) {
  bool ok = id.size() == 20 && absl::StartsWith(id, "AKIA");
  for (char c : id) ok = ok && (absl::ascii_isupper(c) || (c >= '2' && c <= '7'));
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("accessKeyId \"", absl::CHexEscape(id.substr(0, 64)),
                     "\" must be AKIA and 16 characters of A-Z and 2-7"));
  }
  return absl::OkStatus();
}

// AWS answers an unknown and an inactive key alike (UnrecognizedClientException).
constexpr char kUnrecognized[] = "The security token included in the request is invalid.";
// The associated data of a session token: never a key id alone (an access key's).
constexpr char kSessionContext[] = "session-token:";

absl::Status KeyNotFound(absl::string_view id) {
  return absl::NotFoundError(absl::StrCat("The Access Key with id ", id, " cannot be found."));
}

}  // namespace

absl::Status ValidateUserName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    ok = ok && (absl::ascii_isalnum(c) || absl::string_view("+=,.@_-").find(c) !=
                                              absl::string_view::npos);
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("userName \"", absl::CHexEscape(name.substr(0, 80)),
                     "\" must be 1 to 64 characters of A-Z, a-z, 0-9 and +=,.@_-"));
  }
  return absl::OkStatus();
}

AccessKeyCore::AccessKeyCore(PolicyStore* store, const tls::SecretBox* box,
                             const aws::Arns* arns, const Clock* clock)
    : store_(store), box_(box), arns_(arns), clock_(clock) {}

std::string AccessKeyCore::UserArn(absl::string_view user_name) const {
  return absl::StrCat("arn:aws:iam::", arns_->account_id(), ":user/", user_name);
}

std::optional<std::string> UserOfArn(const aws::Arns& arns, absl::string_view arn) {
  const std::string prefix = absl::StrCat("arn:aws:iam::", arns.account_id(), ":user/");
  if (!absl::ConsumePrefix(&arn, prefix) || !ValidateUserName(arn).ok()) return std::nullopt;
  return std::string(arn);
}

absl::Status AccessKeyCore::Enabled() const {
  if (box_ != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "access keys are off: start fleetcore-policy with --access-key-sealing-key-file (a file "
      "of its own that seals the secrets in Postgres)");
}

absl::StatusOr<NewAccessKey> AccessKeyCore::CreateAccessKey(absl::string_view user_name) {
  FLEETCORE_RETURN_IF_ERROR(Enabled());
  FLEETCORE_RETURN_IF_ERROR(ValidateUserName(user_name));
  NewAccessKey out;
  out.secret = RandomString(40, kSecretAlphabet);
  out.key = AccessKey{.id = absl::StrCat("AKIA", RandomString(16, kBase32)),
                      .user_name = std::string(user_name),
                      .active = true,
                      .created_at = clock_->Now()};
  out.key.sealed_secret = box_->Seal(out.secret, out.key.id);
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](PolicyTx& tx) -> absl::Status {
    // Keys of one user are counted and added one at a time.
    FLEETCORE_RETURN_IF_ERROR(tx.LockTarget(UserArn(user_name)));
    FLEETCORE_ASSIGN_OR_RETURN(int64_t n, tx.CountAccessKeysOfUser(user_name));
    if (n >= kMaxKeysPerUser) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "Cannot exceed quota for AccessKeysPerUser: ", kMaxKeysPerUser, " (user ", user_name,
          " has ", n, "; delete one with DeleteAccessKey first)"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.InsertAccessKey(out.key));
    tx.Publish({.type = "access_key.created", .target = UserArn(user_name),
                .access_key = out.key.id});
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<Page<AccessKey>> AccessKeyCore::ListAccessKeys(absl::string_view user_name,
                                                             const PageRequest& page) {
  if (!user_name.empty()) FLEETCORE_RETURN_IF_ERROR(ValidateUserName(user_name));
  const std::string query = absl::StrCat("access-keys|", user_name);
  FLEETCORE_ASSIGN_OR_RETURN(int limit, pagination::ResolveMaxResults(page.page_size));
  FLEETCORE_ASSIGN_OR_RETURN(std::string after, pagination::DecodePageToken(page.marker, query));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<AccessKey> items,
                             store_->ListAccessKeys(user_name, after, limit + 1));
  for (AccessKey& k : items) k.sealed_secret.clear();
  return PageOf(std::move(items), limit, query, [](const AccessKey& k) { return k.id; });
}

absl::Status AccessKeyCore::UpdateAccessKey(absl::string_view id, bool active) {
  FLEETCORE_RETURN_IF_ERROR(ValidateKeyId(id));
  return store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<AccessKey> k, tx.GetAccessKey(id, Lock::kUpdate));
    if (!k.has_value()) return KeyNotFound(id);
    if (k->active == active) return absl::OkStatus();
    FLEETCORE_RETURN_IF_ERROR(tx.SetAccessKeyActive(id, active));
    tx.Publish({.type = active ? "access_key.activated" : "access_key.deactivated",
                .target = UserArn(k->user_name),
                .access_key = std::string(id)});
    return absl::OkStatus();
  });
}

absl::Status AccessKeyCore::DeleteAccessKey(absl::string_view id) {
  FLEETCORE_RETURN_IF_ERROR(ValidateKeyId(id));
  return store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<AccessKey> k, tx.GetAccessKey(id, Lock::kUpdate));
    if (!k.has_value()) return KeyNotFound(id);
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteAccessKey(id));
    tx.Publish({.type = "access_key.deleted", .target = UserArn(k->user_name),
                .access_key = std::string(id)});
    return absl::OkStatus();
  });
}

absl::StatusOr<SessionCredentials> AccessKeyCore::GetSessionToken(absl::string_view user_name,
                                                                  absl::Duration duration) {
  FLEETCORE_RETURN_IF_ERROR(Enabled());
  FLEETCORE_RETURN_IF_ERROR(ValidateUserName(user_name));
  if (duration == absl::ZeroDuration()) duration = kDefaultSessionDuration;
  if (duration < kMinSessionDuration || duration > kMaxSessionDuration) {
    return absl::InvalidArgumentError(absl::StrCat(
        "durationSeconds must be from ", absl::ToInt64Seconds(kMinSessionDuration), " to ",
        absl::ToInt64Seconds(kMaxSessionDuration), ", not ", absl::ToInt64Seconds(duration)));
  }
  SessionCredentials out{.access_key_id = absl::StrCat("ASIA", RandomString(16, kBase32)),
                         .secret = RandomString(40, kSecretAlphabet),
                         .expiration = absl::FromUnixSeconds(absl::ToUnixSeconds(
                             clock_->Now() + duration)),
                         .user_name = std::string(user_name)};
  const std::string sealed =
      box_->Seal(nlohmann::json{{"u", out.user_name},
                                {"s", out.secret},
                                {"e", absl::ToUnixSeconds(out.expiration)}}
                     .dump(),
                 absl::StrCat(kSessionContext, out.access_key_id));
  std::string raw;
  absl::Base64Unescape(sealed, &raw);
  out.session_token = absl::WebSafeBase64Escape(raw);
  return out;
}

absl::StatusOr<SignatureVerdict> AccessKeyCore::Verify(const SignatureCheck& check) {
  FLEETCORE_RETURN_IF_ERROR(Enabled());
  if (check.strings_to_sign.empty() || check.strings_to_sign.size() > kMaxCandidates) {
    return absl::InvalidArgumentError(
        absl::StrCat("stringsToSign must have 1 to ", kMaxCandidates, " entries"));
  }
  const bool temporary = absl::StartsWith(check.access_key_id, "ASIA");
  if (temporary || !check.session_token.empty()) return VerifySession(check);
  SignatureVerdict v;
  if (!ValidateKeyId(check.access_key_id).ok()) {
    v.result = "unknown_key";
    v.deny_reason = kUnrecognized;
    return v;
  }
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<AccessKey> k,
                             store_->GetAccessKey(check.access_key_id));
  if (!k.has_value() || !k->active) {
    v.result = k.has_value() ? "inactive_key" : "unknown_key";
    v.deny_reason = kUnrecognized;
    return v;
  }
  bool stale = false;
  FLEETCORE_ASSIGN_OR_RETURN(std::string secret, box_->Open(k->sealed_secret, k->id, &stale));
  // Sealed again for the key's real holder only: a wrong signature changes nothing.
  const std::string resealed = stale ? box_->Seal(secret, k->id) : "";
  SignatureVerdict verdict = Match(check, std::move(secret), k->user_name);
  if (stale && verdict.authenticated) {
    verdict.resealed = store_->Transact([&](PolicyTx& tx) {
                               return tx.SetAccessKeySecret(k->id, resealed);
                             }).ok();  // else: again at the next signature
  }
  return verdict;
}

absl::StatusOr<SignatureVerdict> AccessKeyCore::VerifySession(const SignatureCheck& check) {
  SignatureVerdict v;
  v.result = "invalid_token";
  v.deny_reason = kUnrecognized;
  // The token opens only with this service's key and for the key id it was made for.
  std::string raw;
  if (!absl::StartsWith(check.access_key_id, "ASIA") || check.session_token.empty() ||
      !absl::WebSafeBase64Unescape(check.session_token, &raw)) {
    return v;
  }
  absl::StatusOr<std::string> opened =
      box_->Open(absl::Base64Escape(raw), absl::StrCat(kSessionContext, check.access_key_id));
  if (!opened.ok()) return v;
  const nlohmann::json j = nlohmann::json::parse(*opened, nullptr, false);
  if (!j.is_object() || !j.contains("u") || !j["u"].is_string() || !j.contains("s") ||
      !j["s"].is_string() || !j.contains("e") || !j["e"].is_number_integer()) {
    return v;  // sealed by this key, so never: a key file shared with something else
  }
  const absl::Time expiration = absl::FromUnixSeconds(j["e"].get<int64_t>());
  if (clock_->Now() >= expiration) {
    v.result = "expired_token";
    v.deny_reason = "The security token included in the request is expired";
    return v;
  }
  v = Match(check, j["s"].get<std::string>(), j["u"].get<std::string>());
  if (v.authenticated) v.expiration = expiration;
  return v;
}

SignatureVerdict AccessKeyCore::Match(const SignatureCheck& check, std::string secret,
                                      absl::string_view user_name) {
  SignatureVerdict v;
  const std::string presented = absl::AsciiStrToLower(check.signature);
  bool match = false;
  for (const std::string& s : check.strings_to_sign) {
    const std::string expected =
        aws::SigV4Signature(secret, check.date, check.region, check.service, s);
    // Every candidate is computed and compared in full, so the time taken says nothing.
    match |= expected.size() == presented.size() &&
             CRYPTO_memcmp(expected.data(), presented.data(), expected.size()) == 0;
  }
  OPENSSL_cleanse(secret.data(), secret.size());
  if (!match) {
    v.result = "signature_mismatch";
    v.deny_reason =
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method.";
    return v;
  }
  v.authenticated = true;
  v.result = "allow";
  v.user_name = std::string(user_name);
  v.principal = UserArn(user_name);
  return v;
}

}  // namespace fleetcore::policy_service
