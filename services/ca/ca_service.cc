#include "services/ca/ca_service.h"

#include "common/log/log.h"
#include "common/status/public_message.h"
#include "common/status/status_macros.h"
#include "google/protobuf/util/time_util.h"

namespace fleetcore::ca {
namespace {

using grpc_util::CallContext;

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

pb::CertificateStatus ToProto(CertStatus s) {
  switch (s) {
    case CertStatus::kActive:
      return pb::ACTIVE;
    case CertStatus::kInactive:
      return pb::INACTIVE;
    case CertStatus::kRevoked:
      return pb::REVOKED;
    case CertStatus::kPendingTransfer:
      return pb::PENDING_TRANSFER;
    case CertStatus::kRegisterInactive:
      return pb::REGISTER_INACTIVE;
    case CertStatus::kPendingActivation:
      return pb::PENDING_ACTIVATION;
  }
  return pb::CERTIFICATE_STATUS_UNSPECIFIED;
}

absl::StatusOr<CertStatus> FromProto(pb::CertificateStatus s, absl::string_view field) {
  switch (s) {
    case pb::ACTIVE:
      return CertStatus::kActive;
    case pb::INACTIVE:
      return CertStatus::kInactive;
    case pb::REVOKED:
      return CertStatus::kRevoked;
    case pb::PENDING_TRANSFER:
      return CertStatus::kPendingTransfer;
    case pb::REGISTER_INACTIVE:
      return CertStatus::kRegisterInactive;
    case pb::PENDING_ACTIVATION:
      return CertStatus::kPendingActivation;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, " is required: ACTIVE, INACTIVE, REVOKED or REGISTER_INACTIVE"));
  }
}

pb::CertificateMode ToProto(CertMode m) {
  return m == CertMode::kSniOnly ? pb::SNI_ONLY : pb::DEFAULT;
}

pb::TemplateType ToProto(TemplateType t) {
  return t == TemplateType::kJitp ? pb::JITP : pb::FLEET_PROVISIONING;
}

std::optional<RegistrationConfig> FromProto(const pb::RegistrationConfig& c) {
  if (c.template_body().empty() && c.template_name().empty() && c.role_arn().empty()) {
    return std::nullopt;
  }
  return RegistrationConfig{c.template_body(), c.role_arn(), c.template_name()};
}

void ToProto(const RegistrationConfig& c, pb::RegistrationConfig* out) {
  out->set_template_body(c.template_body);
  out->set_role_arn(c.role_arn);
  out->set_template_name(c.template_name);
}

void Describe(const CertificateRecord& c, const aws::Arns& arns, pb::CertificateDescription* out) {
  out->set_certificate_arn(arns.Cert(c.id));
  out->set_certificate_id(c.id);
  out->set_ca_certificate_id(c.ca_certificate_id);
  out->set_status(ToProto(c.status));
  out->set_certificate_pem(c.pem);
  out->set_owned_by(arns.account_id());
  ToProto(c.created_at, out->mutable_creation_date());
  ToProto(c.updated_at, out->mutable_last_modified_date());
  out->set_customer_version(c.customer_version);
  out->set_generation_id(absl::StrCat(c.generation));
  ToProto(c.not_before, out->mutable_validity()->mutable_not_before());
  ToProto(c.not_after, out->mutable_validity()->mutable_not_after());
  out->set_certificate_mode(ToProto(c.mode));
  if (c.deactivate_at.has_value()) ToProto(*c.deactivate_at, out->mutable_scheduled_deactivation());
}

void Summarize(const CertificateRecord& c, const aws::Arns& arns, pb::CertificateSummary* out) {
  out->set_certificate_arn(arns.Cert(c.id));
  out->set_certificate_id(c.id);
  out->set_status(ToProto(c.status));
  out->set_certificate_mode(ToProto(c.mode));
  ToProto(c.created_at, out->mutable_creation_date());
}

void Describe(const CaCertificateRecord& c, const aws::Arns& arns,
              pb::CACertificateDescription* out) {
  out->set_certificate_arn(arns.CaCert(c.id));
  out->set_certificate_id(c.id);
  out->set_status(c.active ? pb::ACTIVE : pb::INACTIVE);
  out->set_certificate_pem(c.pem);
  out->set_owned_by(arns.account_id());
  ToProto(c.created_at, out->mutable_creation_date());
  out->set_auto_registration_status(c.auto_registration ? pb::ENABLE : pb::DISABLE);
  ToProto(c.updated_at, out->mutable_last_modified_date());
  out->set_customer_version(c.customer_version);
  out->set_generation_id(absl::StrCat(c.generation));
  ToProto(c.not_before, out->mutable_validity()->mutable_not_before());
  ToProto(c.not_after, out->mutable_validity()->mutable_not_after());
  out->set_certificate_mode(ToProto(c.mode));
}

template <typename Resp>
void Reject(const absl::Status& s, Resp* resp) {
  // The call succeeds, so the service's own failure is logged here: the device is told
  // only "Service Unavailable" or "Internal service failure".
  if (IsServerError(s)) log::Warn("fleet provisioning failed", {{"error", s}});
  Rejection r = RejectionOf(s);
  resp->mutable_rejected()->set_status_code(r.status_code);
  resp->mutable_rejected()->set_error_code(r.error_code);
  resp->mutable_rejected()->set_error_message(r.error_message);
}

// Fleet provisioning answers every failure in the response, as AWS's rejected payload for
// the gateway to publish on .../rejected; the call itself succeeds.
template <typename Resp>
absl::Status Answered(const absl::Status& s, Resp* resp) {
  if (!s.ok()) Reject(s, resp);
  return absl::OkStatus();
}

pb::PeerResult ToProto(PeerResult r) {
  switch (r) {
    case PeerResult::kAllowed:
      return pb::ALLOWED;
    case PeerResult::kUnknownCertificate:
      return pb::UNKNOWN_CERTIFICATE;
    case PeerResult::kCaInactive:
      return pb::CA_INACTIVE;
    case PeerResult::kAutoRegistrationDisabled:
      return pb::AUTO_REGISTRATION_DISABLED;
    case PeerResult::kCertificateInactive:
      return pb::CERTIFICATE_INACTIVE;
    case PeerResult::kCertificateRevoked:
      return pb::CERTIFICATE_REVOKED;
    case PeerResult::kCertificatePendingActivation:
      return pb::CERTIFICATE_PENDING_ACTIVATION;
    case PeerResult::kCertificateExpired:
      return pb::CERTIFICATE_EXPIRED;
    case PeerResult::kCertificateNotYetValid:
      return pb::CERTIFICATE_NOT_YET_VALID;
    case PeerResult::kBadChain:
      return pb::BAD_CHAIN;
    case PeerResult::kJitrRegistered:
      return pb::JITR_REGISTERED;
    case PeerResult::kProvisioningFailed:
      return pb::PROVISIONING_FAILED;
    case PeerResult::kBadCertificate:
      return pb::BAD_CERTIFICATE;
  }
  return pb::PEER_RESULT_UNSPECIFIED;
}

}  // namespace

CaService::CaService(CertificateCore* certificates, ProvisioningCore* provisioning,
                     PeerResolver* resolver, grpc_util::CallRunner* calls, CaMetrics* metrics)
    : certificates_(certificates),
      provisioning_(provisioning),
      resolver_(resolver),
      calls_(calls),
      metrics_(metrics) {}

// ---- device certificates

grpc::ServerUnaryReactor* CaService::CreateKeysAndCertificate(
    grpc::CallbackServerContext* ctx, const pb::CreateKeysAndCertificateRequest* req,
    pb::CreateKeysAndCertificateResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(IssuedCertificate c,
                               certificates_->CreateKeysAndCertificate(req->set_as_active()));
    resp->set_certificate_arn(certificates_->arns().Cert(c.record.id));
    resp->set_certificate_id(c.record.id);
    resp->set_certificate_pem(c.record.pem);
    resp->mutable_key_pair()->set_public_key(c.public_key_pem);
    resp->mutable_key_pair()->set_private_key(c.private_key_pem);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::CreateCertificateFromCsr(
    grpc::CallbackServerContext* ctx, const pb::CreateCertificateFromCsrRequest* req,
    pb::CreateCertificateFromCsrResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(IssuedCertificate c,
                               certificates_->CreateCertificateFromCsr(
                                   req->certificate_signing_request(), req->set_as_active()));
    resp->set_certificate_arn(certificates_->arns().Cert(c.record.id));
    resp->set_certificate_id(c.record.id);
    resp->set_certificate_pem(c.record.pem);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::RegisterCertificate(grpc::CallbackServerContext* ctx,
                                                         const pb::RegisterCertificateRequest* req,
                                                         pb::RegisterCertificateResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    CertStatus status = req->set_as_active() ? CertStatus::kActive : CertStatus::kInactive;
    if (req->status() != pb::CERTIFICATE_STATUS_UNSPECIFIED) {
      FLEETCORE_ASSIGN_OR_RETURN(status, FromProto(req->status(), "status"));
    }
    FLEETCORE_ASSIGN_OR_RETURN(
        CertificateRecord c, certificates_->RegisterCertificate(req->certificate_pem(),
                                                                req->ca_certificate_pem(), status));
    resp->set_certificate_arn(certificates_->arns().Cert(c.id));
    resp->set_certificate_id(c.id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::RegisterCertificateWithoutCA(
    grpc::CallbackServerContext* ctx, const pb::RegisterCertificateWithoutCARequest* req,
    pb::RegisterCertificateWithoutCAResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    CertStatus status = CertStatus::kInactive;
    if (req->status() != pb::CERTIFICATE_STATUS_UNSPECIFIED) {
      FLEETCORE_ASSIGN_OR_RETURN(status, FromProto(req->status(), "status"));
    }
    FLEETCORE_ASSIGN_OR_RETURN(CertificateRecord c, certificates_->RegisterCertificateWithoutCa(
                                                        req->certificate_pem(), status));
    resp->set_certificate_arn(certificates_->arns().Cert(c.id));
    resp->set_certificate_id(c.id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::UpdateCertificate(grpc::CallbackServerContext* ctx,
                                                       const pb::UpdateCertificateRequest* req,
                                                       pb::UpdateCertificateResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(CertStatus status, FromProto(req->new_status(), "newStatus"));
    return certificates_->UpdateCertificate(req->certificate_id(), status);
  });
}

grpc::ServerUnaryReactor* CaService::DescribeCertificate(grpc::CallbackServerContext* ctx,
                                                         const pb::DescribeCertificateRequest* req,
                                                         pb::DescribeCertificateResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(CertificateRecord c,
                               certificates_->DescribeCertificate(req->certificate_id()));
    Describe(c, certificates_->arns(), resp->mutable_certificate_description());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::ListCertificates(grpc::CallbackServerContext* ctx,
                                                      const pb::ListCertificatesRequest* req,
                                                      pb::ListCertificatesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<CertificateRecord> page,
        certificates_->ListCertificates(std::nullopt, req->ascending_order(),
                                        {.marker = req->marker(), .page_size = req->page_size()}));
    for (const CertificateRecord& c : page.items) {
      Summarize(c, certificates_->arns(), resp->add_certificates());
    }
    resp->set_next_marker(page.next_marker);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::ListCertificatesByCA(
    grpc::CallbackServerContext* ctx, const pb::ListCertificatesByCARequest* req,
    pb::ListCertificatesByCAResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<CertificateRecord> page,
        certificates_->ListCertificates(req->ca_certificate_id(), req->ascending_order(),
                                        {.marker = req->marker(), .page_size = req->page_size()}));
    for (const CertificateRecord& c : page.items) {
      Summarize(c, certificates_->arns(), resp->add_certificates());
    }
    resp->set_next_marker(page.next_marker);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::DeleteCertificate(grpc::CallbackServerContext* ctx,
                                                       const pb::DeleteCertificateRequest* req,
                                                       pb::DeleteCertificateResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return certificates_->DeleteCertificate(req->certificate_id(), req->force_delete());
  });
}

grpc::ServerUnaryReactor* CaService::RotateCertificate(grpc::CallbackServerContext* ctx,
                                                       const pb::RotateCertificateRequest* req,
                                                       pb::RotateCertificateResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        RotationResult r,
        certificates_->RotateCertificate(req->certificate_id(), req->certificate_signing_request(),
                                         absl::Seconds(req->grace_period_seconds())));
    resp->set_certificate_arn(certificates_->arns().Cert(r.issued.record.id));
    resp->set_certificate_id(r.issued.record.id);
    resp->set_certificate_pem(r.issued.record.pem);
    if (!r.issued.private_key_pem.empty()) {
      resp->mutable_key_pair()->set_public_key(r.issued.public_key_pem);
      resp->mutable_key_pair()->set_private_key(r.issued.private_key_pem);
    }
    for (const std::string& t : r.things) resp->add_thing_names(t);
    for (const std::string& p : r.policies) resp->add_policy_names(p);
    ToProto(r.old_deactivation, resp->mutable_old_certificate_deactivation());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::GetCrl(grpc::CallbackServerContext* ctx,
                                            const pb::GetCrlRequest*, pb::GetCrlResponse* resp) {
  return calls_->Run(ctx, [this, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(CrlRecord crl, certificates_->Crl());
    resp->set_crl_pem(tls::DerToPem(crl.der, "X509 CRL"));
    resp->set_crl_number(crl.number);
    ToProto(crl.this_update, resp->mutable_this_update());
    ToProto(crl.next_update, resp->mutable_next_update());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::GetIssuingCaCertificate(
    grpc::CallbackServerContext* ctx, const pb::GetIssuingCaCertificateRequest*,
    pb::GetIssuingCaCertificateResponse* resp) {
  return calls_->Run(ctx, [this, resp](const CallContext&) -> absl::Status {
    resp->set_certificate_id(certificates_->issuing().id());
    resp->set_certificate_pem(certificates_->issuing().pem());
    return absl::OkStatus();
  });
}

// ---- registered CAs

grpc::ServerUnaryReactor* CaService::GetRegistrationCode(grpc::CallbackServerContext* ctx,
                                                         const pb::GetRegistrationCodeRequest*,
                                                         pb::GetRegistrationCodeResponse* resp) {
  return calls_->Run(ctx, [this, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::string code, certificates_->GetRegistrationCode());
    resp->set_registration_code(code);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::DeleteRegistrationCode(
    grpc::CallbackServerContext* ctx, const pb::DeleteRegistrationCodeRequest*,
    pb::DeleteRegistrationCodeResponse*) {
  return calls_->Run(
      ctx, [this](const CallContext&) { return certificates_->DeleteRegistrationCode(); });
}

grpc::ServerUnaryReactor* CaService::RegisterCACertificate(
    grpc::CallbackServerContext* ctx, const pb::RegisterCACertificateRequest* req,
    pb::RegisterCACertificateResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        CaCertificateRecord ca,
        certificates_->RegisterCaCertificate(
            req->ca_certificate(), req->verification_certificate(), req->set_as_active(),
            req->allow_auto_registration(), FromProto(req->registration_config()),
            req->certificate_mode() == pb::SNI_ONLY ? CertMode::kSniOnly : CertMode::kDefault));
    resp->set_certificate_arn(certificates_->arns().CaCert(ca.id));
    resp->set_certificate_id(ca.id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::UpdateCACertificate(grpc::CallbackServerContext* ctx,
                                                         const pb::UpdateCACertificateRequest* req,
                                                         pb::UpdateCACertificateResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    CertificateCore::CaUpdate u{.id = req->certificate_id(),
                                .remove_auto_registration = req->remove_auto_registration()};
    if (req->new_status() == pb::ACTIVE) u.active = true;
    if (req->new_status() == pb::INACTIVE) u.active = false;
    if (req->new_status() != pb::CERTIFICATE_STATUS_UNSPECIFIED && !u.active.has_value()) {
      return absl::InvalidArgumentError("newStatus of a CA certificate is ACTIVE or INACTIVE");
    }
    if (req->new_auto_registration_status() == pb::ENABLE) u.auto_registration = true;
    if (req->new_auto_registration_status() == pb::DISABLE) u.auto_registration = false;
    if (req->has_registration_config())
      u.registration_config = FromProto(req->registration_config());
    return certificates_->UpdateCaCertificate(u);
  });
}

grpc::ServerUnaryReactor* CaService::DescribeCACertificate(
    grpc::CallbackServerContext* ctx, const pb::DescribeCACertificateRequest* req,
    pb::DescribeCACertificateResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(CaCertificateRecord ca,
                               certificates_->DescribeCaCertificate(req->certificate_id()));
    Describe(ca, certificates_->arns(), resp->mutable_certificate_description());
    if (ca.registration_config.has_value()) {
      ToProto(*ca.registration_config, resp->mutable_registration_config());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::ListCACertificates(grpc::CallbackServerContext* ctx,
                                                        const pb::ListCACertificatesRequest* req,
                                                        pb::ListCACertificatesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        Page<CaCertificateRecord> page,
        certificates_->ListCaCertificates(
            req->ascending_order(), {.marker = req->marker(), .page_size = req->page_size()}));
    for (const CaCertificateRecord& ca : page.items) {
      pb::CACertificateSummary* s = resp->add_certificates();
      s->set_certificate_arn(certificates_->arns().CaCert(ca.id));
      s->set_certificate_id(ca.id);
      s->set_status(ca.active ? pb::ACTIVE : pb::INACTIVE);
      ToProto(ca.created_at, s->mutable_creation_date());
    }
    resp->set_next_marker(page.next_marker);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::DeleteCACertificate(grpc::CallbackServerContext* ctx,
                                                         const pb::DeleteCACertificateRequest* req,
                                                         pb::DeleteCACertificateResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return certificates_->DeleteCaCertificate(req->certificate_id());
  });
}

// ---- provisioning templates

grpc::ServerUnaryReactor* CaService::CreateProvisioningTemplate(
    grpc::CallbackServerContext* ctx, const pb::CreateProvisioningTemplateRequest* req,
    pb::CreateProvisioningTemplateResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        TemplateRecord t,
        provisioning_->CreateTemplate(
            {.name = req->template_name(),
             .description = req->description(),
             .body = req->template_body(),
             .enabled = req->enabled(),
             .provisioning_role_arn = req->provisioning_role_arn(),
             .hook_url = req->pre_provisioning_hook().target_arn(),
             .hook_payload_version = req->pre_provisioning_hook().payload_version(),
             .type = req->type() == pb::JITP ? TemplateType::kJitp
                                             : TemplateType::kFleetProvisioning}));
    resp->set_template_arn(certificates_->arns().Make("provisioningtemplate", t.name));
    resp->set_template_name(t.name);
    resp->set_default_version_id(t.default_version);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::DescribeProvisioningTemplate(
    grpc::CallbackServerContext* ctx, const pb::DescribeProvisioningTemplateRequest* req,
    pb::DescribeProvisioningTemplateResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(auto tv, provisioning_->DescribeTemplate(req->template_name()));
    const TemplateRecord& t = tv.first;
    resp->set_template_arn(certificates_->arns().Make("provisioningtemplate", t.name));
    resp->set_template_name(t.name);
    resp->set_description(t.description);
    ToProto(t.created_at, resp->mutable_creation_date());
    ToProto(t.updated_at, resp->mutable_last_modified_date());
    resp->set_default_version_id(t.default_version);
    resp->set_template_body(tv.second.body);
    resp->set_enabled(t.enabled);
    resp->set_provisioning_role_arn(t.provisioning_role_arn);
    if (!t.hook_url.empty()) {
      resp->mutable_pre_provisioning_hook()->set_target_arn(t.hook_url);
      resp->mutable_pre_provisioning_hook()->set_payload_version(t.hook_payload_version);
    }
    resp->set_type(ToProto(t.type));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::ListProvisioningTemplates(
    grpc::CallbackServerContext* ctx, const pb::ListProvisioningTemplatesRequest* req,
    pb::ListProvisioningTemplatesResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(Page<TemplateRecord> page,
                               provisioning_->ListTemplates(
                                   {.marker = req->next_token(), .page_size = req->max_results()}));
    for (const TemplateRecord& t : page.items) {
      pb::ProvisioningTemplateSummary* s = resp->add_templates();
      s->set_template_arn(certificates_->arns().Make("provisioningtemplate", t.name));
      s->set_template_name(t.name);
      s->set_description(t.description);
      ToProto(t.created_at, s->mutable_creation_date());
      ToProto(t.updated_at, s->mutable_last_modified_date());
      s->set_enabled(t.enabled);
      s->set_type(ToProto(t.type));
    }
    resp->set_next_token(page.next_marker);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::UpdateProvisioningTemplate(
    grpc::CallbackServerContext* ctx, const pb::UpdateProvisioningTemplateRequest* req,
    pb::UpdateProvisioningTemplateResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) -> absl::Status {
    TemplateUpdate u{.name = req->template_name(),
                     .remove_hook = req->remove_pre_provisioning_hook()};
    if (req->has_description()) u.description = req->description();
    if (req->has_enabled()) u.enabled = req->enabled();
    if (req->default_version_id() != 0) u.default_version = req->default_version_id();
    if (!req->provisioning_role_arn().empty())
      u.provisioning_role_arn = req->provisioning_role_arn();
    if (req->has_pre_provisioning_hook()) {
      u.hook = std::make_pair(req->pre_provisioning_hook().target_arn(),
                              req->pre_provisioning_hook().payload_version());
    }
    return provisioning_->UpdateTemplate(u);
  });
}

grpc::ServerUnaryReactor* CaService::DeleteProvisioningTemplate(
    grpc::CallbackServerContext* ctx, const pb::DeleteProvisioningTemplateRequest* req,
    pb::DeleteProvisioningTemplateResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return provisioning_->DeleteTemplate(req->template_name());
  });
}

grpc::ServerUnaryReactor* CaService::CreateProvisioningTemplateVersion(
    grpc::CallbackServerContext* ctx, const pb::CreateProvisioningTemplateVersionRequest* req,
    pb::CreateProvisioningTemplateVersionResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        auto v, provisioning_->CreateTemplateVersion(req->template_name(), req->template_body(),
                                                     req->set_as_default()));
    resp->set_template_arn(
        certificates_->arns().Make("provisioningtemplate", req->template_name()));
    resp->set_template_name(req->template_name());
    resp->set_version_id(v.first.version);
    resp->set_is_default_version(v.second);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::DescribeProvisioningTemplateVersion(
    grpc::CallbackServerContext* ctx, const pb::DescribeProvisioningTemplateVersionRequest* req,
    pb::DescribeProvisioningTemplateVersionResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        auto tv, provisioning_->DescribeTemplateVersion(req->template_name(), req->version_id()));
    resp->set_version_id(tv.second.version);
    ToProto(tv.second.created_at, resp->mutable_creation_date());
    resp->set_template_body(tv.second.body);
    resp->set_is_default_version(tv.first.default_version == tv.second.version);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::ListProvisioningTemplateVersions(
    grpc::CallbackServerContext* ctx, const pb::ListProvisioningTemplateVersionsRequest* req,
    pb::ListProvisioningTemplateVersionsResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    // At most 5 versions: one page always holds them all.
    FLEETCORE_ASSIGN_OR_RETURN(auto tv, provisioning_->ListTemplateVersions(req->template_name()));
    for (const TemplateVersionRecord& v : tv.second) {
      pb::ProvisioningTemplateVersionSummary* s = resp->add_versions();
      s->set_version_id(v.version);
      ToProto(v.created_at, s->mutable_creation_date());
      s->set_is_default_version(v.version == tv.first.default_version);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::DeleteProvisioningTemplateVersion(
    grpc::CallbackServerContext* ctx, const pb::DeleteProvisioningTemplateVersionRequest* req,
    pb::DeleteProvisioningTemplateVersionResponse*) {
  return calls_->Run(ctx, [this, req](const CallContext&) {
    return provisioning_->DeleteTemplateVersion(req->template_name(), req->version_id());
  });
}

// ---- fleet provisioning

grpc::ServerUnaryReactor* CaService::FleetCreateKeysAndCertificate(
    grpc::CallbackServerContext* ctx, const pb::FleetCreateKeysAndCertificateRequest* req,
    pb::FleetCreateKeysAndCertificateResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    absl::StatusOr<FleetCertificate> f =
        provisioning_->FleetCreateCertificate(req->claim_certificate_id(), "");
    if (!f.ok()) return Answered(f.status(), resp);
    resp->set_certificate_id(f->issued.record.id);
    resp->set_certificate_pem(f->issued.record.pem);
    resp->set_private_key(f->issued.private_key_pem);
    resp->set_certificate_ownership_token(f->ownership_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::FleetCreateCertificateFromCsr(
    grpc::CallbackServerContext* ctx, const pb::FleetCreateCertificateFromCsrRequest* req,
    pb::FleetCreateCertificateFromCsrResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    if (req->certificate_signing_request().empty()) {
      Reject(absl::InvalidArgumentError("certificateSigningRequest is required"), resp);
      return absl::OkStatus();
    }
    absl::StatusOr<FleetCertificate> f = provisioning_->FleetCreateCertificate(
        req->claim_certificate_id(), req->certificate_signing_request());
    if (!f.ok()) return Answered(f.status(), resp);
    resp->set_certificate_id(f->issued.record.id);
    resp->set_certificate_pem(f->issued.record.pem);
    resp->set_certificate_ownership_token(f->ownership_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::RegisterThing(grpc::CallbackServerContext* ctx,
                                                   const pb::RegisterThingRequest* req,
                                                   pb::RegisterThingResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    absl::StatusOr<ProvisioningResult> r =
        provisioning_->RegisterThing(req->template_name(), req->certificate_ownership_token(),
                                     {req->parameters().begin(), req->parameters().end()},
                                     req->claim_certificate_id(), req->client_id());
    if (!r.ok()) return Answered(r.status(), resp);
    resp->set_thing_name(r->thing_name);
    for (const auto& [k, v] : r->device_configuration)
      (*resp->mutable_device_configuration())[k] = v;
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaService::ProvisionDevice(grpc::CallbackServerContext* ctx,
                                                     const pb::ProvisionDeviceRequest* req,
                                                     pb::ProvisionDeviceResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(
        ProvisionedDevice d,
        provisioning_->ProvisionDevice(req->template_name(),
                                       {req->parameters().begin(), req->parameters().end()},
                                       req->certificate_signing_request()));
    resp->set_certificate_arn(certificates_->arns().Cert(d.issued.record.id));
    resp->set_certificate_id(d.issued.record.id);
    resp->set_certificate_pem(d.issued.record.pem);
    if (!d.issued.private_key_pem.empty()) {
      resp->mutable_key_pair()->set_public_key(d.issued.public_key_pem);
      resp->mutable_key_pair()->set_private_key(d.issued.private_key_pem);
    }
    resp->set_thing_name(d.result.thing_name);
    for (const auto& [k, v] : d.result.device_configuration) {
      (*resp->mutable_device_configuration())[k] = v;
    }
    return absl::OkStatus();
  });
}

// ---- ResolvePeer

grpc::ServerUnaryReactor* CaService::ResolvePeer(grpc::CallbackServerContext* ctx,
                                                 const pb::ResolvePeerRequest* req,
                                                 pb::ResolvePeerResponse* resp) {
  return calls_->Run(ctx, [this, req, resp](const CallContext&) -> absl::Status {
    std::vector<std::string> chain(req->chain_der().begin(), req->chain_der().end());
    FLEETCORE_ASSIGN_OR_RETURN(PeerAnswer a, resolver_->Resolve(chain));
    if (metrics_ != nullptr) metrics_->PeerResolved(PeerResultLabel(a.result), a.from_cache);
    resp->set_result(ToProto(a.result));
    resp->set_reason(a.reason);
    resp->set_certificate_id(a.certificate_id);
    if (!a.certificate_id.empty()) {
      resp->set_certificate_arn(certificates_->arns().Cert(a.certificate_id));
    }
    for (const PrincipalThingRecord& t : a.things) {
      pb::PeerThing* out = resp->add_things();
      out->set_thing_name(t.thing_name);
      out->set_exclusive(t.exclusive);
    }
    for (const PeerEventOut& e : a.events) {
      pb::PeerEvent* out = resp->add_events();
      out->set_topic(e.topic);
      out->set_payload(e.payload);
    }
    return absl::OkStatus();
  });
}

}  // namespace fleetcore::ca
