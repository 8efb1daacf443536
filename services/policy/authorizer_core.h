// Custom authorizers: their definitions (AWS's fields; the function is an HTTP(S) endpoint
// of the operator's), and invoking them for a connecting client.
//
// Invoke: an INACTIVE authorizer refuses; unless signing is disabled, the token's
// signature (base64 of RSA-SHA256 over the token) must verify with one of the authorizer's
// public keys before the function is called; the function gets AWS's event (token,
// signatureVerified, protocols, protocolData, connectionMetadata) as a JSON POST within the
// timeout, and its answer is validated strictly: isAuthenticated, principalId (1-128
// alphanumerics), policyDocuments (at most 10 valid policies of at most 2048 characters),
// refreshAfterInSeconds and disconnectAfterInSeconds (300-86400).
//
// Authorize (the gateway's call) turns every failure into a denial with a reason and a
// result label for metrics; it caches authenticated answers for refreshAfterInSeconds,
// per authorizer, token and MQTT credentials. TestInvoke (the operator's) returns failures
// as errors: PERMISSION_DENIED (signature), FAILED_PRECONDITION (inactive, malformed
// answer), UNAVAILABLE (function unreachable or HTTP error), DEADLINE_EXCEEDED.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/aws/arn.h"
#include "common/http/http_client.h"
#include "common/time/clock.h"
#include "services/policy/policy_store.h"

namespace fleetcore::policy_service {

struct AuthorizerLimits {
  int max_authorizers = 100;
  int max_active = 32;
  absl::Duration function_timeout = absl::Seconds(5);
  size_t cache_entries = 100000;
};

struct AuthorizerUpdate {
  std::string name;
  std::optional<std::string> function_url;
  std::optional<std::string> token_key_name;
  std::optional<std::map<std::string, std::string>> public_keys;
  std::optional<bool> active;
  std::optional<bool> caching_for_http;
};

struct AuthorizerRequest {
  std::string authorizer_name;  // empty: the default authorizer
  std::string token;
  std::string token_signature;  // base64
  std::vector<std::string> protocols;
  std::optional<std::map<std::string, std::string>> http_headers;
  std::string http_query_string;
  std::optional<std::string> mqtt_username;
  std::string mqtt_password;  // raw bytes; sent base64-encoded
  std::string mqtt_client_id;
  std::string tls_server_name;
  std::string connection_id;
};

struct AuthorizerAnswer {
  bool authenticated = false;
  std::string principal_id;
  std::vector<std::string> policy_documents;
  int disconnect_after_seconds = 86400;
  int refresh_after_seconds = 300;
};

struct AuthorizeOutcome {
  AuthorizerAnswer answer;
  std::string deny_reason;  // empty when authenticated
  // For metrics: allow, deny, not_found, inactive, signature_invalid, timeout, unreachable,
  // http_error, malformed.
  std::string result;
  bool from_cache = false;
};

class AuthorizerCore {
 public:
  // Nothing is owned.
  AuthorizerCore(PolicyStore* store, http::HttpClient* http, const aws::Arns* arns,
                 const Clock* clock, AuthorizerLimits limits = {});

  absl::StatusOr<Authorizer> CreateAuthorizer(Authorizer in);
  absl::StatusOr<Authorizer> DescribeAuthorizer(absl::string_view name);
  absl::StatusOr<Page<Authorizer>> ListAuthorizers(std::optional<bool> active,
                                                   const PageRequest& page);
  absl::StatusOr<Authorizer> UpdateAuthorizer(const AuthorizerUpdate& update);
  absl::Status DeleteAuthorizer(absl::string_view name);
  absl::StatusOr<Authorizer> SetDefaultAuthorizer(absl::string_view name);
  absl::StatusOr<Authorizer> DescribeDefaultAuthorizer();

  // Errors only for fleetcore's own trouble (Postgres unreachable); the authorizer's
  // failures are denials.
  absl::StatusOr<AuthorizeOutcome> Authorize(const AuthorizerRequest& request);
  absl::StatusOr<AuthorizerAnswer> TestInvoke(const AuthorizerRequest& request);

  // Drops cached answers of one authorizer, or all (after a NOTIFY or a listener reconnect).
  void InvalidateCache(absl::string_view authorizer);
  void InvalidateCache();

 private:
  absl::StatusOr<Authorizer> Resolve(absl::string_view name);
  absl::StatusOr<AuthorizerAnswer> Invoke(const Authorizer& a, const AuthorizerRequest& r);
  absl::Status ValidateKeys(const std::map<std::string, std::string>& keys) const;

  struct CacheEntry {
    AuthorizerAnswer answer;
    absl::Time expires;
    std::string authorizer;
  };
  std::optional<AuthorizerAnswer> Cached(const std::string& key);
  void Remember(const std::string& key, const std::string& authorizer,
                const AuthorizerAnswer& answer);

  PolicyStore* store_;
  http::HttpClient* http_;
  const aws::Arns* arns_;
  const Clock* clock_;
  AuthorizerLimits limits_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, CacheEntry> cache_;
  std::deque<std::string> cache_order_;
};

// Names: 1-128 of [A-Za-z0-9_=,@-].
absl::Status ValidateAuthorizerName(absl::string_view name);

}  // namespace fleetcore::policy_service
