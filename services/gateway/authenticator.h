// Who a client is and what it may do: the identity behind a connection (its X.509
// certificate as the CA service resolves it, or the operator's anonymous policy for clients
// without credentials), with the IoT policies in force for it, compiled once, so every
// CONNECT, PUBLISH, SUBSCRIBE and delivery is decided in-process without a network call.
//
//   authenticator->Authenticate(credentials, [](absl::StatusOr<IdentityPtr> id) { ... });
//   if (!identity->Allows(policy::Action::kPublish, topic)) refuse;
//
// Authenticate errors: UNAUTHENTICATED (no credentials, or a certificate the CA service
// does not accept: the message says why), UNAVAILABLE (the CA or policy service cannot be
// reached). Whether the identity may connect at all is iot:Connect, decided by the caller.
//
// Thread safety: Identity is immutable and may be shared across threads; Authenticate may
// be called from any thread, and calls `done` once, on another thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/aws/arn.h"
#include "common/policy/policy.h"
#include "services/gateway/session.h"

namespace fleetcore::gateway {

struct Credentials {
  std::vector<std::string> chain_der;  // the client's certificates, leaf first; empty: none
  std::string certificate_id;          // SHA-256 of the leaf (for caches); empty: none
  std::string client_id;
  std::string source_ip;
  std::string server_name;  // SNI
  // MQTT CONNECT's user name and password. Without a certificate, a user name naming a
  // custom authorizer (?x-amz-customauthorizer-name=...) or a password sends the client to
  // a custom authorizer; with one they are only metadata (the AWS SDKs send ?SDK=...).
  std::optional<std::string> username;
  std::optional<std::string> password;
  // HTTP requests and WebSocket upgrades: the request's headers (lower-case names) and
  // query string, which may name a custom authorizer and carry its token.
  std::optional<std::map<std::string, std::string>> http_headers;
  std::string http_query;
  // A request signed with SigV4 (aws::CarriesSigV4): the rest of what was signed.
  bool sigv4 = false;
  std::string http_method;
  std::string http_path;
  std::string http_body_sha256;
};

class Identity final : public Session::ReceiveCheck {
 public:
  Identity(std::string principal, std::string client_id, std::string source_ip,
           std::optional<policy::ThingInfo> thing,
           std::optional<policy::CertificateInfo> certificate,
           std::shared_ptr<const policy::PolicySet> policies);

  // Decides `action` on `resource` (a client id, topic or topic filter) for this identity;
  // `topic` is iot:Topic's value (a direct message's topic).
  policy::Decision Decide(policy::Action action, absl::string_view resource,
                          absl::Span<const std::string> connect_attributes = {},
                          absl::string_view last_will_topic = "",
                          absl::string_view topic = "") const;
  bool Allows(policy::Action action, absl::string_view resource) const {
    return Decide(action, resource).allowed();
  }
  // iot:Receive, for the router.
  bool MayReceive(absl::string_view topic) const override {
    return Allows(policy::Action::kReceive, topic);
  }
  // "allowed by policy ...", "no statement allows it (implicit deny)", ...
  std::string Explain(const policy::Decision& d) const { return policies_->Explain(d); }

  // How long the connection may last: a custom authorizer's disconnectAfterInSeconds, a
  // day for SigV4 (as AWS); 0: no limit.
  int64_t disconnect_after_s() const { return disconnect_after_s_; }
  void set_disconnect_after_s(int64_t s) { disconnect_after_s_ = s; }
  // A custom authorizer's refreshAfterInSeconds, and what to present to it again then (the
  // client's credentials, kept in memory only); for SigV4, no period and the signed request
  // (verified again when its key or policies change); 0 and null for other identities.
  int64_t refresh_after_s() const { return refresh_after_s_; }
  const std::shared_ptr<const Credentials>& reauthentication() const { return reauth_; }
  void set_refresh(int64_t after_s, std::shared_ptr<const Credentials> credentials) {
    refresh_after_s_ = after_s;
    reauth_ = std::move(credentials);
  }

  const std::string& source_ip() const { return source_ip_; }
  const std::optional<policy::CertificateInfo>& certificate() const { return certificate_; }
  // Whether it came from a client certificate (its policies can be fetched again).
  bool from_certificate() const { return certificate_.has_value(); }
  // Whether it came from a SigV4 signature by an access key.
  bool from_access_key() const { return from_access_key_; }
  void set_from_access_key() { from_access_key_ = true; }
  // When its temporary credentials expire (Unix ms); 0: they do not.
  int64_t expires_at_ms() const { return expires_at_ms_; }
  void set_expires_at_ms(int64_t ms) { expires_at_ms_ = ms; }

  // The certificate ARN, an access key's user ARN, a custom authorizer's principalId, or
  // "anonymous".
  const std::string& principal() const { return principal_; }
  const std::string& client_id() const { return client_id_; }
  // The thing behind iot:Connection.Thing.*, when there is one.
  const std::optional<policy::ThingInfo>& thing() const { return thing_; }
  // Message enrichment: the MQTT 5 user properties added to every message this identity
  // publishes, its thing type's propagating attributes valued for this connection (a thing
  // attribute the thing lacks is left out). Only for a certificate attached to the thing,
  // as AWS (a client id naming another's thing must not pass as that thing).
  const std::vector<mqtt::UserProperty>& message_enrichment() const { return enrichment_; }

 private:
  std::string principal_;
  std::string client_id_;
  std::string source_ip_;
  std::optional<policy::ThingInfo> thing_;
  std::optional<policy::CertificateInfo> certificate_;
  std::vector<mqtt::UserProperty> enrichment_;
  // Shared: connections of one certificate and client id use one compiled set.
  std::shared_ptr<const policy::PolicySet> policies_;
  int64_t disconnect_after_s_ = 0;
  int64_t refresh_after_s_ = 0;
  std::shared_ptr<const Credentials> reauth_;
  bool from_access_key_ = false;
  int64_t expires_at_ms_ = 0;
};
using IdentityPtr = std::shared_ptr<const Identity>;

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  using Done = std::function<void(absl::StatusOr<IdentityPtr>)>;
  virtual void Authenticate(Credentials credentials, Done done) = 0;
  // The same identity with the policies in force now (after a policy or attachment
  // changed). Identities that cannot be refreshed come back unchanged.
  virtual void Refresh(IdentityPtr current, Done done) { done(std::move(current)); }
  // Forget what is cached about a certificate (it changed), or every client's policies
  // (`certificate_id` empty: a policy or an attachment changed).
  virtual void Invalidate(absl::string_view certificate_id) {}
};

// The subject, issuer and alternative names of a DER certificate, for the
// iot:Certificate.* policy variables; nullopt when it does not parse.
std::optional<policy::CertificateInfo> CertificateInfoOf(absl::string_view der);

}  // namespace fleetcore::gateway
