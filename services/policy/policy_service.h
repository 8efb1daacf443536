// The gRPC adapter of fleetcore.policy.v1.Policy: protos to domain types and back, plus the
// service's metrics:
//   fleetcore_policy_decisions_total{action,result}           (TestAuthorization)
//   fleetcore_policy_authorizer_calls_total{authorizer,result}
//   fleetcore_policy_authorizer_call_duration_seconds{authorizer}  (function calls)
//   fleetcore_policy_authorizer_cache_lookups_total{result}   (hit, miss)
//   fleetcore_policy_access_key_verifications_total{result}   (allow, unknown_key,
//       inactive_key, invalid_token, expired_token, signature_mismatch)
#pragma once

#include <memory>

#include "common/grpc/call_runner.h"
#include "fleetcore/policy/v1/policy.grpc.pb.h"
#include "services/policy/access_key_core.h"
#include "services/policy/authorizer_core.h"
#include "services/policy/policy_core.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace fleetcore::policy_service {

namespace pb = ::fleetcore::policy::v1;

class PolicyService final : public pb::Policy::CallbackService {
 public:
  // Nothing is owned; `metrics` may be null.
  PolicyService(PolicyCore* policies, AuthorizerCore* authorizers, AccessKeyCore* access_keys,
                grpc_util::CallRunner* calls, prometheus::Registry* metrics);
  ~PolicyService() override;

  grpc::ServerUnaryReactor* CreatePolicy(grpc::CallbackServerContext* ctx,
                                         const pb::CreatePolicyRequest* req,
                                         pb::CreatePolicyResponse* resp) override;
  grpc::ServerUnaryReactor* GetPolicy(grpc::CallbackServerContext* ctx,
                                      const pb::GetPolicyRequest* req,
                                      pb::GetPolicyResponse* resp) override;
  grpc::ServerUnaryReactor* ListPolicies(grpc::CallbackServerContext* ctx,
                                         const pb::ListPoliciesRequest* req,
                                         pb::ListPoliciesResponse* resp) override;
  grpc::ServerUnaryReactor* DeletePolicy(grpc::CallbackServerContext* ctx,
                                         const pb::DeletePolicyRequest* req,
                                         pb::DeletePolicyResponse* resp) override;
  grpc::ServerUnaryReactor* CreatePolicyVersion(grpc::CallbackServerContext* ctx,
                                                const pb::CreatePolicyVersionRequest* req,
                                                pb::CreatePolicyVersionResponse* resp) override;
  grpc::ServerUnaryReactor* GetPolicyVersion(grpc::CallbackServerContext* ctx,
                                             const pb::GetPolicyVersionRequest* req,
                                             pb::GetPolicyVersionResponse* resp) override;
  grpc::ServerUnaryReactor* ListPolicyVersions(grpc::CallbackServerContext* ctx,
                                               const pb::ListPolicyVersionsRequest* req,
                                               pb::ListPolicyVersionsResponse* resp) override;
  grpc::ServerUnaryReactor* DeletePolicyVersion(grpc::CallbackServerContext* ctx,
                                                const pb::DeletePolicyVersionRequest* req,
                                                pb::DeletePolicyVersionResponse* resp) override;
  grpc::ServerUnaryReactor* SetDefaultPolicyVersion(
      grpc::CallbackServerContext* ctx, const pb::SetDefaultPolicyVersionRequest* req,
      pb::SetDefaultPolicyVersionResponse* resp) override;
  grpc::ServerUnaryReactor* AttachPolicy(grpc::CallbackServerContext* ctx,
                                         const pb::AttachPolicyRequest* req,
                                         pb::AttachPolicyResponse* resp) override;
  grpc::ServerUnaryReactor* DetachPolicy(grpc::CallbackServerContext* ctx,
                                         const pb::DetachPolicyRequest* req,
                                         pb::DetachPolicyResponse* resp) override;
  grpc::ServerUnaryReactor* ListAttachedPolicies(grpc::CallbackServerContext* ctx,
                                                 const pb::ListAttachedPoliciesRequest* req,
                                                 pb::ListAttachedPoliciesResponse* resp) override;
  grpc::ServerUnaryReactor* ListTargetsForPolicy(grpc::CallbackServerContext* ctx,
                                                 const pb::ListTargetsForPolicyRequest* req,
                                                 pb::ListTargetsForPolicyResponse* resp) override;
  grpc::ServerUnaryReactor* GetEffectivePolicies(grpc::CallbackServerContext* ctx,
                                                 const pb::GetEffectivePoliciesRequest* req,
                                                 pb::GetEffectivePoliciesResponse* resp) override;
  grpc::ServerUnaryReactor* TestAuthorization(grpc::CallbackServerContext* ctx,
                                              const pb::TestAuthorizationRequest* req,
                                              pb::TestAuthorizationResponse* resp) override;
  grpc::ServerUnaryReactor* CreateAuthorizer(grpc::CallbackServerContext* ctx,
                                             const pb::CreateAuthorizerRequest* req,
                                             pb::CreateAuthorizerResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeAuthorizer(grpc::CallbackServerContext* ctx,
                                               const pb::DescribeAuthorizerRequest* req,
                                               pb::DescribeAuthorizerResponse* resp) override;
  grpc::ServerUnaryReactor* ListAuthorizers(grpc::CallbackServerContext* ctx,
                                            const pb::ListAuthorizersRequest* req,
                                            pb::ListAuthorizersResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateAuthorizer(grpc::CallbackServerContext* ctx,
                                             const pb::UpdateAuthorizerRequest* req,
                                             pb::UpdateAuthorizerResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteAuthorizer(grpc::CallbackServerContext* ctx,
                                             const pb::DeleteAuthorizerRequest* req,
                                             pb::DeleteAuthorizerResponse* resp) override;
  grpc::ServerUnaryReactor* SetDefaultAuthorizer(grpc::CallbackServerContext* ctx,
                                                 const pb::SetDefaultAuthorizerRequest* req,
                                                 pb::SetDefaultAuthorizerResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeDefaultAuthorizer(
      grpc::CallbackServerContext* ctx, const pb::DescribeDefaultAuthorizerRequest* req,
      pb::DescribeDefaultAuthorizerResponse* resp) override;
  grpc::ServerUnaryReactor* TestInvokeAuthorizer(grpc::CallbackServerContext* ctx,
                                                 const pb::TestInvokeAuthorizerRequest* req,
                                                 pb::TestInvokeAuthorizerResponse* resp) override;
  grpc::ServerUnaryReactor* Authorize(grpc::CallbackServerContext* ctx,
                                      const pb::AuthorizeRequest* req,
                                      pb::AuthorizeResponse* resp) override;
  grpc::ServerUnaryReactor* CreateAccessKey(grpc::CallbackServerContext* ctx,
                                            const pb::CreateAccessKeyRequest* req,
                                            pb::CreateAccessKeyResponse* resp) override;
  grpc::ServerUnaryReactor* ListAccessKeys(grpc::CallbackServerContext* ctx,
                                           const pb::ListAccessKeysRequest* req,
                                           pb::ListAccessKeysResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateAccessKey(grpc::CallbackServerContext* ctx,
                                            const pb::UpdateAccessKeyRequest* req,
                                            pb::UpdateAccessKeyResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteAccessKey(grpc::CallbackServerContext* ctx,
                                            const pb::DeleteAccessKeyRequest* req,
                                            pb::DeleteAccessKeyResponse* resp) override;
  grpc::ServerUnaryReactor* GetSessionToken(grpc::CallbackServerContext* ctx,
                                            const pb::GetSessionTokenRequest* req,
                                            pb::GetSessionTokenResponse* resp) override;
  grpc::ServerUnaryReactor* VerifyAccessKeySignature(
      grpc::CallbackServerContext* ctx, const pb::VerifyAccessKeySignatureRequest* req,
      pb::VerifyAccessKeySignatureResponse* resp) override;

 private:
  struct Metrics;
  PolicyCore* policies_;
  AuthorizerCore* authorizers_;
  AccessKeyCore* access_keys_;
  grpc_util::CallRunner* calls_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace fleetcore::policy_service
