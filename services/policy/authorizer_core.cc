#include "services/policy/authorizer_core.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json/json_text.h"
#include "common/nesting/nesting.h"
#include "common/pagination/page_token.h"
#include "common/policy/policy.h"
#include "common/status/quoted.h"
#include "common/status/status_macros.h"
#include "common/tls/keys.h"
#include "nlohmann/json.hpp"
#include "services/policy/policy_core.h"

namespace fleetcore::policy_service {
namespace {

using json = nlohmann::json;

absl::Status NotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("authorizer ", Quoted(name), " does not exist"));
}

absl::Status ValidateTokenKeyName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError("tokenKeyName must be 1-128 characters long");
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat("tokenKeyName ", Quoted(name),
                                                     " may contain only letters, digits, _ and -"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFunctionUrl(absl::string_view url) {
  absl::StatusOr<http::Url> parsed = http::ParseUrl(url);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("authorizerFunctionArn must be the http(s) URL of the authorizer function: ",
                     parsed.status().message()));
  }
  return absl::OkStatus();
}

// The integer `key` of the answer within AWS's range, or its default when absent.
absl::StatusOr<int> Seconds(const json& answer, const char* key, std::optional<int> fallback) {
  if (!answer.contains(key)) {
    if (fallback.has_value()) return *fallback;
    return absl::FailedPreconditionError(absl::StrCat("malformed answer: ", key, " is missing"));
  }
  const json& v = answer[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 300 || v.get<int64_t>() > 86400) {
    return absl::FailedPreconditionError(
        absl::StrCat("malformed answer: ", key, " must be an integer from 300 to 86400"));
  }
  return static_cast<int>(v.get<int64_t>());
}

absl::StatusOr<AuthorizerAnswer> ParseAnswer(absl::string_view body) {
  if (!nesting::JsonNestingWithin(body, 64)) {
    return absl::FailedPreconditionError("malformed answer: nested more than 64 levels");
  }
  json answer = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded() || !answer.is_object()) {
    return absl::FailedPreconditionError("malformed answer: not a JSON object");
  }
  AuthorizerAnswer out;
  if (!answer.contains("isAuthenticated") || !answer["isAuthenticated"].is_boolean()) {
    return absl::FailedPreconditionError("malformed answer: isAuthenticated must be true or false");
  }
  out.authenticated = answer["isAuthenticated"].get<bool>();
  if (!out.authenticated) return out;
  if (!answer.contains("principalId") || !answer["principalId"].is_string()) {
    return absl::FailedPreconditionError("malformed answer: principalId is missing");
  }
  out.principal_id = answer["principalId"].get<std::string>();
  if (out.principal_id.empty() || out.principal_id.size() > 128 ||
      !std::all_of(out.principal_id.begin(), out.principal_id.end(),
                   [](char c) { return absl::ascii_isalnum(c); })) {
    return absl::FailedPreconditionError(
        "malformed answer: principalId must be 1-128 letters and digits");
  }
  if (!answer.contains("policyDocuments") || !answer["policyDocuments"].is_array()) {
    return absl::FailedPreconditionError("malformed answer: policyDocuments must be a list");
  }
  const json& docs = answer["policyDocuments"];
  if (docs.size() > 10) {
    return absl::FailedPreconditionError("malformed answer: more than 10 policyDocuments");
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string text;
    if (docs[i].is_string()) {
      text = docs[i].get<std::string>();
    } else if (docs[i].is_object()) {
      text = docs[i].dump();
    } else {
      return absl::FailedPreconditionError(absl::StrCat(
          "malformed answer: policyDocuments[", i, "] must be a policy object or its JSON text"));
    }
    if (absl::Status s = ValidatePolicyDocument(text); !s.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("malformed answer: policyDocuments[", i, "]: ", s.message()));
    }
    out.policy_documents.push_back(std::move(text));
  }
  FLEETCORE_ASSIGN_OR_RETURN(out.refresh_after_seconds,
                             Seconds(answer, "refreshAfterInSeconds", std::nullopt));
  FLEETCORE_ASSIGN_OR_RETURN(out.disconnect_after_seconds,
                             Seconds(answer, "disconnectAfterInSeconds", 86400));
  return out;
}

std::string ResultLabel(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kPermissionDenied:
      return "signature_invalid";
    case absl::StatusCode::kDeadlineExceeded:
      return "timeout";
    case absl::StatusCode::kUnavailable:
      return absl::StrContains(s.message(), "answered HTTP") ? "http_error" : "unreachable";
    case absl::StatusCode::kFailedPrecondition:
      return absl::StrContains(s.message(), "INACTIVE") ? "inactive" : "malformed";
    default:
      return "error";
  }
}

}  // namespace

absl::Status ValidateAuthorizerName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError("authorizerName must be 1-128 characters long");
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("_=,@-", c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "authorizerName ", Quoted(name), " may contain only letters, digits and _ = , @ -"));
    }
  }
  return absl::OkStatus();
}

AuthorizerCore::AuthorizerCore(PolicyStore* store, http::HttpClient* http, const aws::Arns* arns,
                               const Clock* clock, AuthorizerLimits limits)
    : store_(store), http_(http), arns_(arns), clock_(clock), limits_(limits) {}

absl::Status AuthorizerCore::ValidateKeys(const std::map<std::string, std::string>& keys) const {
  for (const auto& [name, pem] : keys) {
    if (name.empty() || name.size() > 128) {
      return absl::InvalidArgumentError("tokenSigningPublicKeys: key names must be 1-128 long");
    }
    absl::StatusOr<tls::PublicKey> key = tls::ParsePublicKeyPem(pem);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenSigningPublicKeys[", Quoted(name), "]: ", key.status().message()));
    }
    if (key->type() != "RSA" || key->bits() < 2048) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenSigningPublicKeys[", Quoted(name),
                       "]: must be an RSA key of at least 2048 bits, is ", key->type(), " of ",
                       key->bits(), " bits"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Authorizer> AuthorizerCore::CreateAuthorizer(Authorizer in) {
  FLEETCORE_RETURN_IF_ERROR(ValidateAuthorizerName(in.name));
  FLEETCORE_RETURN_IF_ERROR(ValidateFunctionUrl(in.function_url));
  if (!in.token_key_name.empty() || !in.signing_disabled) {
    FLEETCORE_RETURN_IF_ERROR(ValidateTokenKeyName(in.token_key_name));
  }
  if (!in.signing_disabled && in.public_keys.empty()) {
    return absl::InvalidArgumentError(
        "tokenSigningPublicKeys are required unless signingDisabled is true");
  }
  FLEETCORE_RETURN_IF_ERROR(ValidateKeys(in.public_keys));
  const absl::Time now = clock_->Now();
  in.created_at = now;
  in.updated_at = now;
  in.is_default = false;
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Authorizer> existing,
                               tx.GetAuthorizer(in.name, Lock::kNone));
    if (existing.has_value()) {
      return absl::AlreadyExistsError(
          absl::StrCat("authorizer ", Quoted(in.name), " already exists"));
    }
    FLEETCORE_ASSIGN_OR_RETURN(int64_t all, tx.CountAuthorizers(false));
    if (all >= limits_.max_authorizers) {
      return absl::ResourceExhaustedError(
          absl::StrCat("there are already ", all, " authorizers, the most allowed"));
    }
    if (in.active) {
      FLEETCORE_ASSIGN_OR_RETURN(int64_t active, tx.CountAuthorizers(true));
      if (active >= limits_.max_active) {
        return absl::ResourceExhaustedError(
            absl::StrCat("there are already ", active,
                         " ACTIVE authorizers, the most allowed; create it "
                         "INACTIVE or deactivate another"));
      }
    }
    FLEETCORE_RETURN_IF_ERROR(tx.InsertAuthorizer(in));
    tx.Publish({.type = "authorizer.created", .authorizer = in.name});
    return absl::OkStatus();
  }));
  return in;
}

absl::StatusOr<Authorizer> AuthorizerCore::DescribeAuthorizer(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateAuthorizerName(name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<Authorizer> a, store_->GetAuthorizer(name));
  if (!a.has_value()) return NotFound(name);
  return *std::move(a);
}

absl::StatusOr<Page<Authorizer>> AuthorizerCore::ListAuthorizers(std::optional<bool> active,
                                                                 const PageRequest& page) {
  const std::string query =
      absl::StrCat("authorizers|", active.has_value() ? (*active ? "active" : "inactive") : "");
  FLEETCORE_ASSIGN_OR_RETURN(int limit, pagination::ResolveMaxResults(page.page_size));
  FLEETCORE_ASSIGN_OR_RETURN(std::string after, pagination::DecodePageToken(page.marker, query));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<Authorizer> items,
                             store_->ListAuthorizers(active, after, limit + 1));
  return PageOf(std::move(items), limit, query, [](const Authorizer& a) { return a.name; });
}

absl::StatusOr<Authorizer> AuthorizerCore::UpdateAuthorizer(const AuthorizerUpdate& u) {
  FLEETCORE_RETURN_IF_ERROR(ValidateAuthorizerName(u.name));
  if (u.function_url.has_value()) FLEETCORE_RETURN_IF_ERROR(ValidateFunctionUrl(*u.function_url));
  if (u.token_key_name.has_value())
    FLEETCORE_RETURN_IF_ERROR(ValidateTokenKeyName(*u.token_key_name));
  if (u.public_keys.has_value()) FLEETCORE_RETURN_IF_ERROR(ValidateKeys(*u.public_keys));
  Authorizer result;
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Authorizer> a,
                               tx.GetAuthorizer(u.name, Lock::kUpdate));
    if (!a.has_value()) return NotFound(u.name);
    if (u.active.value_or(false) && !a->active) {
      FLEETCORE_ASSIGN_OR_RETURN(int64_t active, tx.CountAuthorizers(true));
      if (active >= limits_.max_active) {
        return absl::ResourceExhaustedError(
            absl::StrCat("there are already ", active, " ACTIVE authorizers, the most allowed"));
      }
    }
    if (u.function_url.has_value()) a->function_url = *u.function_url;
    if (u.token_key_name.has_value()) a->token_key_name = *u.token_key_name;
    if (u.public_keys.has_value()) a->public_keys = *u.public_keys;
    if (u.active.has_value()) a->active = *u.active;
    if (u.caching_for_http.has_value()) a->caching_for_http = *u.caching_for_http;
    if (!a->signing_disabled && a->public_keys.empty()) {
      return absl::InvalidArgumentError(
          "tokenSigningPublicKeys cannot be emptied while signing is enabled");
    }
    a->updated_at = clock_->Now();
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateAuthorizer(*a));
    tx.Publish({.type = "authorizer.updated", .authorizer = u.name});
    result = *std::move(a);
    return absl::OkStatus();
  }));
  InvalidateCache(u.name);
  return result;
}

absl::Status AuthorizerCore::DeleteAuthorizer(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateAuthorizerName(name));
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](PolicyTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Authorizer> a, tx.GetAuthorizer(name, Lock::kUpdate));
    if (!a.has_value()) return NotFound(name);
    if (a->is_default) {
      return absl::FailedPreconditionError(
          absl::StrCat("authorizer ", Quoted(name),
                       " is the default authorizer; make another the default first"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteAuthorizer(name));
    tx.Publish({.type = "authorizer.deleted", .authorizer = std::string(name)});
    return absl::OkStatus();
  }));
  InvalidateCache(name);
  return absl::OkStatus();
}

absl::StatusOr<Authorizer> AuthorizerCore::SetDefaultAuthorizer(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateAuthorizerName(name));
  Authorizer result;
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](PolicyTx& tx) -> absl::Status {
    // No row lock: the store serializes default changes itself (and says NOT_FOUND when the
    // authorizer went away meanwhile).
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<Authorizer> a, tx.GetAuthorizer(name, Lock::kNone));
    if (!a.has_value()) return NotFound(name);
    FLEETCORE_RETURN_IF_ERROR(tx.SetDefaultAuthorizer(name));
    tx.Publish({.type = "authorizer.default_changed", .authorizer = std::string(name)});
    result = *std::move(a);
    result.is_default = true;
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<Authorizer> AuthorizerCore::DescribeDefaultAuthorizer() {
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<Authorizer> a, store_->DefaultAuthorizer());
  if (!a.has_value()) {
    return absl::NotFoundError("there is no default authorizer (SetDefaultAuthorizer)");
  }
  return *std::move(a);
}

absl::StatusOr<Authorizer> AuthorizerCore::Resolve(absl::string_view name) {
  if (name.empty()) return DescribeDefaultAuthorizer();
  return DescribeAuthorizer(name);
}

absl::StatusOr<AuthorizerAnswer> AuthorizerCore::Invoke(const Authorizer& a,
                                                        const AuthorizerRequest& r) {
  if (!a.active) {
    return absl::FailedPreconditionError(
        absl::StrCat("authorizer ", Quoted(a.name), " is INACTIVE"));
  }
  bool verified = false;
  if (!a.signing_disabled) {
    std::string signature;
    if (r.token.empty() || !absl::Base64Unescape(r.token_signature, &signature)) {
      return absl::PermissionDeniedError(
          "a token and its base64 signature are required by this authorizer");
    }
    for (const auto& [name, pem] : a.public_keys) {
      absl::StatusOr<tls::PublicKey> key = tls::ParsePublicKeyPem(pem);
      if (key.ok() && tls::VerifySha256(*key, r.token, signature)) verified = true;
    }
    if (!verified) {
      return absl::PermissionDeniedError(
          "token signature does not verify with any of the authorizer's keys");
    }
  }
  json event = {{"token", r.token},
                {"signatureVerified", verified},
                {"protocols", r.protocols},
                {"protocolData", json::object()},
                {"connectionMetadata", {{"id", r.connection_id}}}};
  if (!r.tls_server_name.empty()) {
    event["protocolData"]["tls"] = {{"serverName", r.tls_server_name}};
  }
  if (r.http_headers.has_value()) {
    event["protocolData"]["http"] = {{"headers", *r.http_headers},
                                     {"queryString", r.http_query_string}};
  }
  if (r.mqtt_username.has_value()) {
    json mqtt = {{"username", *r.mqtt_username}};
    if (!r.mqtt_password.empty()) mqtt["password"] = absl::Base64Escape(r.mqtt_password);
    if (!r.mqtt_client_id.empty()) mqtt["clientId"] = r.mqtt_client_id;
    event["protocolData"]["mqtt"] = mqtt;
  }
  // Invalid UTF-8 from a client must not throw out of here.
  const std::string body = json_text::JsonText(event);
  FLEETCORE_ASSIGN_OR_RETURN(http::Response response,
                             http_->Send({.method = "POST",
                                          .url = a.function_url,
                                          .headers = {{"content-type", "application/json"}},
                                          .body = body,
                                          .timeout = limits_.function_timeout}));
  if (response.status < 200 || response.status > 299) {
    return absl::UnavailableError(
        absl::StrCat("the authorizer function answered HTTP ", response.status));
  }
  return ParseAnswer(response.body);
}

absl::StatusOr<AuthorizerAnswer> AuthorizerCore::TestInvoke(const AuthorizerRequest& r) {
  FLEETCORE_ASSIGN_OR_RETURN(Authorizer a, Resolve(r.authorizer_name));
  return Invoke(a, r);
}

absl::StatusOr<AuthorizeOutcome> AuthorizerCore::Authorize(const AuthorizerRequest& r) {
  AuthorizeOutcome out;
  absl::StatusOr<Authorizer> a = Resolve(r.authorizer_name);
  if (!a.ok()) {
    if (a.status().code() != absl::StatusCode::kNotFound &&
        a.status().code() != absl::StatusCode::kInvalidArgument) {
      return a.status();  // fleetcore's own trouble, e.g. Postgres unreachable
    }
    out.deny_reason = std::string(a.status().message());
    out.result = "not_found";
    return out;
  }
  // Keyed by everything the function sees that identifies the client.
  const std::string key =
      absl::StrCat(a->name, std::string(1, '\0'), r.token, std::string(1, '\0'), r.token_signature,
                   std::string(1, '\0'), r.mqtt_username.value_or(""), std::string(1, '\0'),
                   r.mqtt_password, std::string(1, '\0'), r.mqtt_client_id);
  if (std::optional<AuthorizerAnswer> cached = Cached(key)) {
    out.answer = *std::move(cached);
    out.result = "allow";
    out.from_cache = true;
    return out;
  }
  absl::StatusOr<AuthorizerAnswer> answer = Invoke(*a, r);
  if (!answer.ok()) {
    out.deny_reason = std::string(answer.status().message());
    out.result = ResultLabel(answer.status());
    return out;
  }
  out.answer = *std::move(answer);
  if (!out.answer.authenticated) {
    out.deny_reason = "the authorizer function did not authenticate the client";
    out.result = "deny";
    return out;
  }
  out.result = "allow";
  Remember(key, a->name, out.answer);
  return out;
}

std::optional<AuthorizerAnswer> AuthorizerCore::Cached(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  if (clock_->Now() >= it->second.expires) {
    cache_.erase(it);
    return std::nullopt;
  }
  return it->second.answer;
}

void AuthorizerCore::Remember(const std::string& key, const std::string& authorizer,
                              const AuthorizerAnswer& answer) {
  if (limits_.cache_entries == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time expires = clock_->Now() + absl::Seconds(answer.refresh_after_seconds);
  if (cache_.insert_or_assign(key, CacheEntry{answer, expires, authorizer}).second) {
    cache_order_.push_back(key);
  }
  while (cache_.size() > limits_.cache_entries && !cache_order_.empty()) {
    cache_.erase(cache_order_.front());
    cache_order_.pop_front();
  }
  if (cache_order_.size() > 2 * limits_.cache_entries) {
    cache_order_.clear();
    for (const auto& [k, unused] : cache_) cache_order_.push_back(k);
  }
}

void AuthorizerCore::InvalidateCache(absl::string_view authorizer) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::erase_if(cache_, [&](const auto& kv) { return kv.second.authorizer == authorizer; });
}

void AuthorizerCore::InvalidateCache() {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.clear();
  cache_order_.clear();
}

}  // namespace fleetcore::policy_service
