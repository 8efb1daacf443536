// The gateway's Authenticator over the CA service (ca.ResolvePeer) and the policy service
// (policy.GetEffectivePolicies). See authenticator.h.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "services/gateway/authenticator.h"
#include "services/gateway/http_publish.h"

namespace grpc {
class Channel;
}

namespace fleetcore::gateway {
class GatewayMetrics;
}

namespace fleetcore::gateway {

// The custom-authorizer values `c` presented (http_publish.h).
inline std::map<std::string, std::string> AuthorizerParams(const Credentials& c) {
  return AuthorizerParams(c.username.value_or(""), c.http_query,
                          c.http_headers.has_value() ? &*c.http_headers : nullptr);
}

// Authenticator over the CA service (ca.ResolvePeer) and the policy service
// (policy.GetEffectivePolicies for certificates and access keys, policy.Authorize for custom
// authorizers, policy.VerifyAccessKeySignature for SigV4).
class GrpcAuthenticator final : public Authenticator {
 public:
  // `anonymous` (may be null): the policy for clients without credentials; without it they
  // are refused. `publish_event` sends the messages ResolvePeer asks for (the JITR
  // registered event).
  // `max_refresh` (0: none) shortens custom authorizers' refreshAfterInSeconds. `metrics`
  // (may be null) counts what CONNECTs find in the caches.
  GrpcAuthenticator(std::shared_ptr<grpc::Channel> ca, std::shared_ptr<grpc::Channel> policy,
                    std::string token, aws::Arns arns,
                    std::shared_ptr<const policy::PolicyDocument> anonymous,
                    std::function<void(std::string topic, std::string payload)> publish_event,
                    absl::Duration max_refresh = absl::ZeroDuration(),
                    GatewayMetrics* metrics = nullptr);
  ~GrpcAuthenticator() override;

  // Known certificates' ResolvePeer answers and clients' compiled policies are kept (for
  // reconnecting devices) until Invalidate or for 5 minutes; `done` may then be called
  // before Authenticate returns.
  void Authenticate(Credentials credentials, Done done) override;
  // Certificate identities fetch their policies again; custom-authorizer identities present
  // their credentials to the authorizer again (an error when it refuses them now).
  void Refresh(IdentityPtr current, Done done) override;
  void Invalidate(absl::string_view certificate_id) override;

 private:
  // GetEffectivePolicies for `principal`, then the identity.
  void FetchPolicies(std::string principal, std::string client_id, std::string source_ip,
                     std::optional<policy::CertificateInfo> cert, bool use_cache, Done done);
  void AuthenticateCustom(Credentials credentials, Done done);
  // A SigV4 signature: checked here (form, time, region, service), verified by the policy
  // service (which holds the secret), then the user's policies. `again`: the credentials
  // of a connection verified before (no time check; policies fetched anew).
  void AuthenticateSigV4(Credentials credentials, bool again, Done done);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::gateway
