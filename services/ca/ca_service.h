// The gRPC adapter of fleetcore.ca.v1.Ca: protos to domain types and back. The cores hold
// the rules; this file only maps, and counts ResolvePeer answers.
#pragma once

#include "common/grpc/call_runner.h"
#include "fleetcore/ca/v1/ca.grpc.pb.h"
#include "services/ca/ca_metrics.h"
#include "services/ca/certificate_core.h"
#include "services/ca/provisioning_core.h"
#include "services/ca/resolver.h"

namespace fleetcore::ca {

namespace pb = ::fleetcore::ca::v1;

class CaService final : public pb::Ca::CallbackService {
 public:
  // Nothing is owned; `metrics` may be null.
  CaService(CertificateCore* certificates, ProvisioningCore* provisioning, PeerResolver* resolver,
            grpc_util::CallRunner* calls, CaMetrics* metrics);

  grpc::ServerUnaryReactor* CreateKeysAndCertificate(
      grpc::CallbackServerContext* ctx, const pb::CreateKeysAndCertificateRequest* req,
      pb::CreateKeysAndCertificateResponse* resp) override;
  grpc::ServerUnaryReactor* CreateCertificateFromCsr(
      grpc::CallbackServerContext* ctx, const pb::CreateCertificateFromCsrRequest* req,
      pb::CreateCertificateFromCsrResponse* resp) override;
  grpc::ServerUnaryReactor* RegisterCertificate(grpc::CallbackServerContext* ctx,
                                                const pb::RegisterCertificateRequest* req,
                                                pb::RegisterCertificateResponse* resp) override;
  grpc::ServerUnaryReactor* RegisterCertificateWithoutCA(
      grpc::CallbackServerContext* ctx, const pb::RegisterCertificateWithoutCARequest* req,
      pb::RegisterCertificateWithoutCAResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateCertificate(grpc::CallbackServerContext* ctx,
                                              const pb::UpdateCertificateRequest* req,
                                              pb::UpdateCertificateResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeCertificate(grpc::CallbackServerContext* ctx,
                                                const pb::DescribeCertificateRequest* req,
                                                pb::DescribeCertificateResponse* resp) override;
  grpc::ServerUnaryReactor* ListCertificates(grpc::CallbackServerContext* ctx,
                                             const pb::ListCertificatesRequest* req,
                                             pb::ListCertificatesResponse* resp) override;
  grpc::ServerUnaryReactor* ListCertificatesByCA(grpc::CallbackServerContext* ctx,
                                                 const pb::ListCertificatesByCARequest* req,
                                                 pb::ListCertificatesByCAResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteCertificate(grpc::CallbackServerContext* ctx,
                                              const pb::DeleteCertificateRequest* req,
                                              pb::DeleteCertificateResponse* resp) override;
  grpc::ServerUnaryReactor* RotateCertificate(grpc::CallbackServerContext* ctx,
                                              const pb::RotateCertificateRequest* req,
                                              pb::RotateCertificateResponse* resp) override;
  grpc::ServerUnaryReactor* GetCrl(grpc::CallbackServerContext* ctx, const pb::GetCrlRequest* req,
                                   pb::GetCrlResponse* resp) override;
  grpc::ServerUnaryReactor* GetIssuingCaCertificate(
      grpc::CallbackServerContext* ctx, const pb::GetIssuingCaCertificateRequest* req,
      pb::GetIssuingCaCertificateResponse* resp) override;
  grpc::ServerUnaryReactor* GetRegistrationCode(grpc::CallbackServerContext* ctx,
                                                const pb::GetRegistrationCodeRequest* req,
                                                pb::GetRegistrationCodeResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteRegistrationCode(
      grpc::CallbackServerContext* ctx, const pb::DeleteRegistrationCodeRequest* req,
      pb::DeleteRegistrationCodeResponse* resp) override;
  grpc::ServerUnaryReactor* RegisterCACertificate(grpc::CallbackServerContext* ctx,
                                                  const pb::RegisterCACertificateRequest* req,
                                                  pb::RegisterCACertificateResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateCACertificate(grpc::CallbackServerContext* ctx,
                                                const pb::UpdateCACertificateRequest* req,
                                                pb::UpdateCACertificateResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeCACertificate(grpc::CallbackServerContext* ctx,
                                                  const pb::DescribeCACertificateRequest* req,
                                                  pb::DescribeCACertificateResponse* resp) override;
  grpc::ServerUnaryReactor* ListCACertificates(grpc::CallbackServerContext* ctx,
                                               const pb::ListCACertificatesRequest* req,
                                               pb::ListCACertificatesResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteCACertificate(grpc::CallbackServerContext* ctx,
                                                const pb::DeleteCACertificateRequest* req,
                                                pb::DeleteCACertificateResponse* resp) override;
  grpc::ServerUnaryReactor* CreateProvisioningTemplate(
      grpc::CallbackServerContext* ctx, const pb::CreateProvisioningTemplateRequest* req,
      pb::CreateProvisioningTemplateResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeProvisioningTemplate(
      grpc::CallbackServerContext* ctx, const pb::DescribeProvisioningTemplateRequest* req,
      pb::DescribeProvisioningTemplateResponse* resp) override;
  grpc::ServerUnaryReactor* ListProvisioningTemplates(
      grpc::CallbackServerContext* ctx, const pb::ListProvisioningTemplatesRequest* req,
      pb::ListProvisioningTemplatesResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateProvisioningTemplate(
      grpc::CallbackServerContext* ctx, const pb::UpdateProvisioningTemplateRequest* req,
      pb::UpdateProvisioningTemplateResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteProvisioningTemplate(
      grpc::CallbackServerContext* ctx, const pb::DeleteProvisioningTemplateRequest* req,
      pb::DeleteProvisioningTemplateResponse* resp) override;
  grpc::ServerUnaryReactor* CreateProvisioningTemplateVersion(
      grpc::CallbackServerContext* ctx, const pb::CreateProvisioningTemplateVersionRequest* req,
      pb::CreateProvisioningTemplateVersionResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeProvisioningTemplateVersion(
      grpc::CallbackServerContext* ctx, const pb::DescribeProvisioningTemplateVersionRequest* req,
      pb::DescribeProvisioningTemplateVersionResponse* resp) override;
  grpc::ServerUnaryReactor* ListProvisioningTemplateVersions(
      grpc::CallbackServerContext* ctx, const pb::ListProvisioningTemplateVersionsRequest* req,
      pb::ListProvisioningTemplateVersionsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteProvisioningTemplateVersion(
      grpc::CallbackServerContext* ctx, const pb::DeleteProvisioningTemplateVersionRequest* req,
      pb::DeleteProvisioningTemplateVersionResponse* resp) override;
  grpc::ServerUnaryReactor* FleetCreateKeysAndCertificate(
      grpc::CallbackServerContext* ctx, const pb::FleetCreateKeysAndCertificateRequest* req,
      pb::FleetCreateKeysAndCertificateResponse* resp) override;
  grpc::ServerUnaryReactor* FleetCreateCertificateFromCsr(
      grpc::CallbackServerContext* ctx, const pb::FleetCreateCertificateFromCsrRequest* req,
      pb::FleetCreateCertificateFromCsrResponse* resp) override;
  grpc::ServerUnaryReactor* RegisterThing(grpc::CallbackServerContext* ctx,
                                          const pb::RegisterThingRequest* req,
                                          pb::RegisterThingResponse* resp) override;
  grpc::ServerUnaryReactor* ProvisionDevice(grpc::CallbackServerContext* ctx,
                                            const pb::ProvisionDeviceRequest* req,
                                            pb::ProvisionDeviceResponse* resp) override;
  grpc::ServerUnaryReactor* ResolvePeer(grpc::CallbackServerContext* ctx,
                                        const pb::ResolvePeerRequest* req,
                                        pb::ResolvePeerResponse* resp) override;

 private:
  CertificateCore* certificates_;
  ProvisioningCore* provisioning_;
  PeerResolver* resolver_;
  grpc_util::CallRunner* calls_;
  CaMetrics* metrics_;
};

}  // namespace fleetcore::ca
