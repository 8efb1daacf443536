// AWS STS's GetSessionToken (and GetCallerIdentity, the check every AWS tool starts with) on
// the gateway's HTTPS listener, so that a back end that hands temporary credentials to
// browsers needs only its own access key, not the admin token:
//
//   POST / (form: Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900)
//   signed with SigV4 for service "sts" by a long-lived access key
//
// answers STS's XML (Credentials: AccessKeyId, SecretAccessKey, SessionToken, Expiration) for
// the key's user, as `aws sts get-session-token --endpoint-url https://HOST:8443` and boto3's
// sts client expect; errors in STS's XML (AccessDenied for a request not signed by an access
// key, GetSessionToken signed with session credentials, InvalidAction, ValidationError).
//
// Thread safety: Handle may be called from any thread; `done` is called once, on another.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/gateway/connection.h"

namespace grpc {
class Channel;
}

namespace fleetcore::gateway {

class StsApi final : public HttpApi {
 public:
  // `policy`: the policy service, called with the admin `token`. `metrics` may be null.
  StsApi(std::shared_ptr<grpc::Channel> policy, std::string token, GatewayMetrics* metrics);
  ~StsApi() override;

  bool Handles(absl::string_view target) const override;
  void Handle(absl::string_view method, absl::string_view target, const HeaderLookup& headers,
              std::string body, const Identity* identity, Done done) override;
  absl::string_view content_type() const override { return "text/xml"; }
  void Refuse(const absl::Status& status, absl::string_view trace_id, Done done) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The parameters of a query-protocol request: the query string's and, for a form body, the
// body's (application/x-www-form-urlencoded: '+' is a space); nullopt for a malformed escape.
std::optional<std::map<std::string, std::string>> StsParams(absl::string_view target,
                                                            absl::string_view body);

// STS's error document.
std::string StsError(absl::string_view code, absl::string_view message,
                     absl::string_view request_id);

}  // namespace fleetcore::gateway
