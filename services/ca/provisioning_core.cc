#include "services/ca/provisioning_core.h"

#include <openssl/rand.h>

#include <functional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/json_text.h"
#include "common/log/log.h"
#include "common/nesting/nesting.h"
#include "common/pagination/page_token.h"
#include "common/status/public_message.h"
#include "common/status/quoted.h"
#include "common/status/status_macros.h"
#include "common/tls/x509.h"
#include "nlohmann/json.hpp"

namespace fleetcore::ca {
namespace {

using json = nlohmann::json;

constexpr char kRejectionPayload[] = "type.fleetcore.dev/ca.Rejection";
constexpr int kMaxTemplates = 256;
constexpr int kMaxTemplateVersions = 5;

// A Status carrying AWS's rejection for the fleet-provisioning MQTT API.
absl::Status Rejected(absl::StatusCode code, int http_status, absl::string_view error_code,
                      absl::string_view message) {
  absl::Status s(code, message);
  s.SetPayload(kRejectionPayload, absl::Cord(absl::StrCat(http_status, "|", error_code)));
  return s;
}

absl::Status TemplateNotFound(absl::string_view name) {
  return Rejected(absl::StatusCode::kNotFound, 404, "ResourceNotFound",
                  absl::StrCat("provisioning template ", Quoted(name), " does not exist"));
}

absl::Status InvalidToken(absl::string_view why) {
  return Rejected(absl::StatusCode::kInvalidArgument, 400, "InvalidCertificateOwnershipToken",
                  absl::StrCat("certificateOwnershipToken ", why));
}

std::string NewToken() {
  unsigned char raw[32];
  RAND_bytes(raw, sizeof(raw));
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
}

absl::Status CheckBody(absl::string_view body, TemplateType type) {
  absl::StatusOr<ProvisioningTemplate> t = ProvisioningTemplate::Parse(body, type);
  if (!t.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("templateBody: ", t.status().message()));
  }
  return absl::OkStatus();
}

absl::Status CheckHook(absl::string_view url, TemplateType type) {
  if (url.empty()) return absl::OkStatus();
  if (type != TemplateType::kFleetProvisioning) {
    return absl::InvalidArgumentError(
        "only FLEET_PROVISIONING templates take a preProvisioningHook");
  }
  if (absl::Status s = http::ParseUrl(url).status(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "preProvisioningHook.targetArn must be the http(s) URL of the hook: ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

Rejection RejectionOf(const absl::Status& status) {
  Rejection r;
  r.error_message = std::string(status.message());
  if (auto p = status.GetPayload(kRejectionPayload)) {
    std::vector<std::string> parts = absl::StrSplit(std::string(*p), absl::MaxSplits('|', 1));
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &r.status_code)) {
      r.error_code = parts[1];
      return r;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return {400, "InvalidPayload", r.error_message};
    case absl::StatusCode::kNotFound:
      return {404, "ResourceNotFound", r.error_message};
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return {409, "ResourceConflictsException", r.error_message};
    case absl::StatusCode::kPermissionDenied:
      return {403, "AccessDenied", r.error_message};
    case absl::StatusCode::kResourceExhausted:
      return {429, "Throttled", r.error_message};
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return {503, "ServiceUnavailable", PublicMessage(status)};
    default:
      return {500, "InternalFailure", PublicMessage(status)};
  }
}

absl::Status ValidateTemplateName(absl::string_view name) {
  if (name.empty() || name.size() > 36 || !std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '_' || c == '-';
      })) {
    return absl::InvalidArgumentError(
        absl::StrCat("templateName ", Quoted(name), " must be 1-36 letters, digits, _ or -"));
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> CertificateParameters(const tls::Certificate& cert) {
  const tls::Name subject = cert.subject();
  std::map<std::string, std::string> out = {{kCertificateIdParameter, cert.Id()}};
  const std::pair<const char*, const char*> fields[] = {
      {"CN", "AWS::IoT::Certificate::CommonName"},
      {"C", "AWS::IoT::Certificate::Country"},
      {"O", "AWS::IoT::Certificate::Organization"},
      {"OU", "AWS::IoT::Certificate::OrganizationalUnit"},
      {"dnQualifier", "AWS::IoT::Certificate::DistinguishedNameQualifier"},
      {"ST", "AWS::IoT::Certificate::StateName"},
      {"serialNumber", "AWS::IoT::Certificate::SerialNumber"},
  };
  for (const auto& [short_name, parameter] : fields) {
    std::string v = subject.Get(short_name);
    if (!v.empty()) out[parameter] = std::move(v);
  }
  return out;
}

// What provisioning did so far, undone in reverse when a later step fails.
class ProvisioningCore::Saga {
 public:
  void Done(std::string what, std::function<absl::Status()> undo) {
    steps_.push_back({std::move(what), std::move(undo)});
  }
  void Undo() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
      if (absl::Status s = it->second(); !s.ok()) {
        log::Error("provisioning: cannot undo a step; fix it by hand",
                   {{"step", it->first}, {"error", s}});
      }
    }
    steps_.clear();
  }

 private:
  std::vector<std::pair<std::string, std::function<absl::Status()>>> steps_;
};

ProvisioningCore::ProvisioningCore(CaStore* store, CertificateCore* certificates, Peers* peers,
                                   http::HttpClient* hooks, const aws::Arns* arns,
                                   const Clock* clock)
    : store_(store),
      certificates_(certificates),
      peers_(peers),
      hooks_(hooks),
      arns_(arns),
      clock_(clock) {}

// ---- templates

absl::StatusOr<TemplateRecord> ProvisioningCore::CreateTemplate(const TemplateInput& in) {
  FLEETCORE_RETURN_IF_ERROR(ValidateTemplateName(in.name));
  if (in.description.size() > 500) {
    return absl::InvalidArgumentError("description has more than 500 characters");
  }
  FLEETCORE_RETURN_IF_ERROR(CheckBody(in.body, in.type));
  FLEETCORE_RETURN_IF_ERROR(CheckHook(in.hook_url, in.type));
  const absl::Time now = clock_->Now();
  TemplateRecord t{.name = in.name,
                   .description = in.description,
                   .enabled = in.enabled,
                   .type = in.type,
                   .provisioning_role_arn = in.provisioning_role_arn,
                   .hook_url = in.hook_url,
                   .hook_payload_version = in.hook_url.empty() ? ""
                                           : in.hook_payload_version.empty()
                                               ? "2020-04-01"
                                               : in.hook_payload_version,
                   .default_version = 1,
                   .next_version = 2,
                   .created_at = now,
                   .updated_at = now};
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(int64_t n, tx.CountTemplates());
    if (n >= kMaxTemplates) {
      return absl::ResourceExhaustedError(
          absl::StrCat("there are already ", n, " provisioning templates, the most allowed"));
    }
    if (absl::Status s = tx.InsertTemplate(t); !s.ok()) {
      if (absl::IsAlreadyExists(s)) {
        return absl::AlreadyExistsError(
            absl::StrCat("provisioning template ", Quoted(in.name), " already exists"));
      }
      return s;
    }
    FLEETCORE_RETURN_IF_ERROR(tx.InsertTemplateVersion(
        {.template_name = in.name, .version = 1, .body = in.body, .created_at = now}));
    tx.Publish({.type = "template.created", .template_name = in.name});
    return absl::OkStatus();
  }));
  return t;
}

absl::StatusOr<std::pair<TemplateRecord, TemplateVersionRecord>> ProvisioningCore::DescribeTemplate(
    absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateTemplateName(name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t, store_->GetTemplate(name));
  if (!t.has_value()) return TemplateNotFound(name);
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateVersionRecord> v,
                             store_->GetTemplateVersion(name, t->default_version));
  if (!v.has_value()) {
    return absl::InternalError(
        absl::StrCat("template ", Quoted(name), " lacks its default version"));
  }
  return std::make_pair(*std::move(t), *std::move(v));
}

absl::StatusOr<Page<TemplateRecord>> ProvisioningCore::ListTemplates(const PageRequest& page) {
  FLEETCORE_ASSIGN_OR_RETURN(int limit, pagination::ResolveMaxResults(page.page_size));
  FLEETCORE_ASSIGN_OR_RETURN(std::string after,
                             pagination::DecodePageToken(page.marker, "templates"));
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<TemplateRecord> items,
                             store_->ListTemplates(after, limit + 1));
  Page<TemplateRecord> out;
  if (static_cast<int>(items.size()) > limit) {
    items.resize(static_cast<size_t>(limit));
    out.next_marker = pagination::EncodePageToken(items.back().name, "templates");
  }
  out.items = std::move(items);
  return out;
}

absl::Status ProvisioningCore::UpdateTemplate(const TemplateUpdate& u) {
  FLEETCORE_RETURN_IF_ERROR(ValidateTemplateName(u.name));
  if (u.description.has_value() && u.description->size() > 500) {
    return absl::InvalidArgumentError("description has more than 500 characters");
  }
  return store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t,
                               tx.GetTemplate(u.name, Lock::kUpdate));
    if (!t.has_value()) return TemplateNotFound(u.name);
    if (u.description.has_value()) t->description = *u.description;
    if (u.enabled.has_value()) t->enabled = *u.enabled;
    if (u.provisioning_role_arn.has_value()) t->provisioning_role_arn = *u.provisioning_role_arn;
    if (u.default_version.has_value()) {
      FLEETCORE_ASSIGN_OR_RETURN(std::vector<TemplateVersionRecord> versions,
                                 tx.TemplateVersions(u.name));
      if (std::none_of(versions.begin(), versions.end(), [&](const TemplateVersionRecord& v) {
            return v.version == *u.default_version;
          })) {
        return absl::NotFoundError(absl::StrCat("provisioning template ", Quoted(u.name),
                                                " has no version ", *u.default_version));
      }
      t->default_version = *u.default_version;
    }
    if (u.remove_hook) {
      t->hook_url.clear();
      t->hook_payload_version.clear();
    } else if (u.hook.has_value()) {
      FLEETCORE_RETURN_IF_ERROR(CheckHook(u.hook->first, t->type));
      t->hook_url = u.hook->first;
      t->hook_payload_version = u.hook->second.empty() ? "2020-04-01" : u.hook->second;
    }
    t->updated_at = clock_->Now();
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateTemplate(*t));
    tx.Publish({.type = "template.updated", .template_name = u.name});
    return absl::OkStatus();
  });
}

absl::Status ProvisioningCore::DeleteTemplate(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateTemplateName(name));
  return store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t,
                               tx.GetTemplate(name, Lock::kUpdate));
    if (!t.has_value()) return TemplateNotFound(name);
    FLEETCORE_ASSIGN_OR_RETURN(int64_t users, tx.CountCaCertificatesUsingTemplate(name));
    if (users > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "provisioning template ", Quoted(name), " is the JITP template of ", users,
          " CA certificate(s); change their registrationConfig first (UpdateCACertificate)"));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteTemplate(name));
    tx.Publish({.type = "template.deleted", .template_name = std::string(name)});
    return absl::OkStatus();
  });
}

absl::StatusOr<std::pair<TemplateVersionRecord, bool>> ProvisioningCore::CreateTemplateVersion(
    absl::string_view name, absl::string_view body, bool set_as_default) {
  FLEETCORE_RETURN_IF_ERROR(ValidateTemplateName(name));
  TemplateVersionRecord v;
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t,
                               tx.GetTemplate(name, Lock::kUpdate));
    if (!t.has_value()) return TemplateNotFound(name);
    FLEETCORE_RETURN_IF_ERROR(CheckBody(body, t->type));
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<TemplateVersionRecord> versions,
                               tx.TemplateVersions(name));
    if (static_cast<int>(versions.size()) >= kMaxTemplateVersions) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "provisioning template ", Quoted(name), " has ", versions.size(),
          " versions, the most it can have; delete one first (DeleteProvisioningTemplateVersion)"));
    }
    const absl::Time now = clock_->Now();
    v = {.template_name = std::string(name),
         .version = t->next_version,
         .body = std::string(body),
         .created_at = now};
    FLEETCORE_RETURN_IF_ERROR(tx.InsertTemplateVersion(v));
    t->next_version += 1;
    t->updated_at = now;
    if (set_as_default) t->default_version = v.version;
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateTemplate(*t));
    tx.Publish({.type = "template.updated", .template_name = std::string(name)});
    return absl::OkStatus();
  }));
  return std::make_pair(v, set_as_default);
}

absl::StatusOr<std::pair<TemplateRecord, TemplateVersionRecord>>
ProvisioningCore::DescribeTemplateVersion(absl::string_view name, int version) {
  FLEETCORE_RETURN_IF_ERROR(ValidateTemplateName(name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t, store_->GetTemplate(name));
  if (!t.has_value()) return TemplateNotFound(name);
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateVersionRecord> v,
                             store_->GetTemplateVersion(name, version));
  if (!v.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("provisioning template ", Quoted(name), " has no version ", version));
  }
  return std::make_pair(*std::move(t), *std::move(v));
}

absl::StatusOr<std::pair<TemplateRecord, std::vector<TemplateVersionRecord>>>
ProvisioningCore::ListTemplateVersions(absl::string_view name) {
  FLEETCORE_RETURN_IF_ERROR(ValidateTemplateName(name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t, store_->GetTemplate(name));
  if (!t.has_value()) return TemplateNotFound(name);
  FLEETCORE_ASSIGN_OR_RETURN(std::vector<TemplateVersionRecord> versions,
                             store_->TemplateVersions(name));
  return std::make_pair(*std::move(t), std::move(versions));
}

absl::Status ProvisioningCore::DeleteTemplateVersion(absl::string_view name, int version) {
  FLEETCORE_RETURN_IF_ERROR(ValidateTemplateName(name));
  return store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t,
                               tx.GetTemplate(name, Lock::kUpdate));
    if (!t.has_value()) return TemplateNotFound(name);
    if (t->default_version == version) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version ", version, " is the default of provisioning template ", Quoted(name),
          "; make another the default first (UpdateProvisioningTemplate defaultVersionId)"));
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<TemplateVersionRecord> versions,
                               tx.TemplateVersions(name));
    if (std::none_of(versions.begin(), versions.end(),
                     [&](const TemplateVersionRecord& v) { return v.version == version; })) {
      return absl::NotFoundError(
          absl::StrCat("provisioning template ", Quoted(name), " has no version ", version));
    }
    FLEETCORE_RETURN_IF_ERROR(tx.DeleteTemplateVersion(name, version));
    tx.Publish({.type = "template.updated", .template_name = std::string(name)});
    return absl::OkStatus();
  });
}

absl::StatusOr<ProvisioningTemplate> ProvisioningCore::Load(const TemplateRecord& t) {
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateVersionRecord> v,
                             store_->GetTemplateVersion(t.name, t.default_version));
  if (!v.has_value()) {
    return absl::InternalError(
        absl::StrCat("template ", Quoted(t.name), " lacks its default version"));
  }
  return ProvisioningTemplate::Parse(v->body, t.type);
}

// ---- the saga

absl::Status ProvisioningCore::Execute(const ProvisioningPlan& plan, const std::string& cert_arn,
                                       Saga& saga) {
  Peers* peers = peers_;
  if (plan.thing.has_value()) {
    const ThingPlan& t = *plan.thing;
    const std::string name = t.thing_name;
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<PeerThingRecord> existing, peers->DescribeThing(name));
    auto conflict = [&](absl::string_view what) {
      return Rejected(absl::StatusCode::kAlreadyExists, 409, "ResourceConflictsException",
                      absl::StrCat("thing ", Quoted(name), " exists with another ", what,
                                   " and the template says FAIL"));
    };
    if (!existing.has_value()) {
      FLEETCORE_RETURN_IF_ERROR(
          peers->CreateThing(name, t.thing_type_name.value_or(""),
                             t.attributes.value_or(std::map<std::string, std::string>{})));
      saga.Done("create thing " + name, [peers, name] { return peers->DeleteThing(name); });
      if (t.billing_group.has_value()) {
        // Undone with the thing.
        FLEETCORE_RETURN_IF_ERROR(peers->AddThingToBillingGroup(name, *t.billing_group));
      }
      for (const std::string& g : t.thing_groups.value_or(std::vector<std::string>{})) {
        FLEETCORE_RETURN_IF_ERROR(peers->AddThingToGroup(name, g));
        saga.Done("add to group " + g,
                  [peers, name, g] { return peers->RemoveThingFromGroup(name, g); });
      }
    } else {
      const PeerThingRecord old = *existing;
      if (t.attributes.has_value() && t.attributes_override != Override::kDoNothing) {
        if (t.attributes_override == Override::kFail) {
          if (*t.attributes != old.attributes) return conflict("AttributePayload");
        } else {
          FLEETCORE_RETURN_IF_ERROR(peers->UpdateThing(name, std::nullopt, t.attributes,
                                                       t.attributes_override == Override::kMerge));
          saga.Done("update attributes of " + name, [peers, name, old] {
            return peers->UpdateThing(name, std::nullopt, old.attributes, /*merge=*/false);
          });
        }
      }
      if (t.thing_type_name.has_value() && t.thing_type_override != Override::kDoNothing &&
          *t.thing_type_name != old.type_name) {
        if (t.thing_type_override == Override::kFail) return conflict("ThingTypeName");
        FLEETCORE_RETURN_IF_ERROR(peers->UpdateThing(name, t.thing_type_name, std::nullopt, false));
        saga.Done("set type of " + name, [peers, name, old] {
          return peers->UpdateThing(name, old.type_name, std::nullopt, false);
        });
      }
      if (t.thing_groups.has_value() && t.thing_groups_override != Override::kDoNothing) {
        const std::set<std::string> want(t.thing_groups->begin(), t.thing_groups->end());
        const std::set<std::string> have(old.groups.begin(), old.groups.end());
        if (t.thing_groups_override == Override::kFail) {
          if (want != have) return conflict("ThingGroups");
        } else {
          if (t.thing_groups_override == Override::kReplace) {
            for (const std::string& g : have) {
              if (want.count(g) != 0) continue;
              FLEETCORE_RETURN_IF_ERROR(peers->RemoveThingFromGroup(name, g));
              saga.Done("remove from group " + g,
                        [peers, name, g] { return peers->AddThingToGroup(name, g); });
            }
          }
          for (const std::string& g : want) {
            if (have.count(g) != 0) continue;
            FLEETCORE_RETURN_IF_ERROR(peers->AddThingToGroup(name, g));
            saga.Done("add to group " + g,
                      [peers, name, g] { return peers->RemoveThingFromGroup(name, g); });
          }
        }
      }
    }
    const bool exclusive = plan.certificate.has_value() && plan.certificate->exclusive;
    FLEETCORE_RETURN_IF_ERROR(peers->AttachThingPrincipal(name, cert_arn, exclusive));
    saga.Done("attach certificate to " + name,
              [peers, name, cert_arn] { return peers->DetachThingPrincipal(name, cert_arn); });
  }
  for (const PolicyPlan& p : plan.policies) {
    const std::string policy = p.policy_name;
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<std::string> existing, peers->GetPolicy(policy));
    if (!existing.has_value()) {
      if (p.policy_document.empty()) {
        return Rejected(
            absl::StatusCode::kNotFound, 404, "ResourceNotFound",
            absl::StrCat("policy ", Quoted(policy), " named by the template does not exist"));
      }
      FLEETCORE_RETURN_IF_ERROR(peers->CreatePolicy(policy, p.policy_document));
      saga.Done("create policy " + policy, [peers, policy] { return peers->DeletePolicy(policy); });
    }
    FLEETCORE_RETURN_IF_ERROR(peers->AttachPolicy(policy, cert_arn));
    saga.Done("attach policy " + policy,
              [peers, policy, cert_arn] { return peers->DetachPolicy(policy, cert_arn); });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> ProvisioningCore::CallHook(
    const TemplateRecord& t, absl::string_view claim_id, const CertificateRecord& cert,
    absl::string_view client_id, std::map<std::string, std::string> parameters) {
  if (t.hook_url.empty()) return parameters;
  const json event = {{"claimCertificateId", claim_id},
                      {"certificateId", cert.id},
                      {"certificatePem", cert.pem},
                      {"templateArn", arns_->Make("provisioningtemplate", t.name)},
                      {"clientId", client_id},
                      {"parameters", parameters}};
  auto denied = [&](absl::string_view why) {
    return Rejected(absl::StatusCode::kPermissionDenied, 403, "AccessDenied",
                    absl::StrCat("the pre-provisioning hook refused provisioning: ", why));
  };
  absl::StatusOr<http::Response> r =
      hooks_->Send({.method = "POST",
                    .url = t.hook_url,
                    .headers = {{"content-type", "application/json"}},
                    .body = json_text::JsonText(event),
                    .timeout = absl::Seconds(5)});
  if (!r.ok()) {
    // Where the hook lives is the operator's to know, not the device's.
    log::Warn("pre-provisioning hook failed", {{"template", t.name}, {"error", r.status()}});
    return denied(absl::IsDeadlineExceeded(r.status()) ? "it did not answer within 5 s"
                                                       : "it could not be called");
  }
  if (r->status < 200 || r->status > 299)
    return denied(absl::StrCat("it answered HTTP ", r->status));
  if (!nesting::JsonNestingWithin(r->body, 64)) return denied("its answer nests too deeply");
  json answer = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object() || !answer.contains("allowProvisioning") ||
      !answer["allowProvisioning"].is_boolean()) {
    return denied("its answer has no allowProvisioning");
  }
  if (!answer["allowProvisioning"].get<bool>()) return denied("allowProvisioning is false");
  if (answer.contains("parameterOverrides")) {
    const json& o = answer["parameterOverrides"];
    if (!o.is_object()) return denied("parameterOverrides is not an object");
    for (const auto& [k, v] : o.items()) {
      if (!v.is_string()) return denied(absl::StrCat("parameterOverrides.", k, " is not a string"));
      parameters[k] = v.get<std::string>();
    }
  }
  return parameters;
}

// ---- fleet provisioning

absl::StatusOr<FleetCertificate> ProvisioningCore::FleetCreateCertificate(
    absl::string_view claim_certificate_id, absl::string_view csr_pem) {
  FleetCertificate out;
  const bool from_csr = !csr_pem.empty();
  absl::StatusOr<IssuedCertificate> issued =
      certificates_->Mint(csr_pem, CertStatus::kPendingActivation);
  if (!issued.ok()) {
    if (absl::IsInvalidArgument(issued.status())) {
      return Rejected(absl::StatusCode::kInvalidArgument, 400, "InvalidCsr",
                      issued.status().message());
    }
    return issued.status();
  }
  out.issued = *std::move(issued);
  const absl::Time expires = clock_->Now() + certificates_->options().claim_validity;
  out.issued.record.claim_expires_at = expires;
  out.ownership_token = NewToken();
  const OwnershipToken token{.token_hash = tls::Sha256Hex(out.ownership_token),
                             .certificate_id = out.issued.record.id,
                             .claim_certificate_id = std::string(claim_certificate_id),
                             .expires_at = expires};
  FLEETCORE_RETURN_IF_ERROR(
      certificates_->Store(out.issued.record, [&](CaTx& tx) { return tx.InsertToken(token); }));
  certificates_->observer().CertificateIssued(from_csr ? "fleet_csr" : "fleet_keys");
  return out;
}

absl::StatusOr<ProvisioningResult> ProvisioningCore::RegisterThing(
    absl::string_view template_name, absl::string_view ownership_token,
    const std::map<std::string, std::string>& parameters, absl::string_view claim_certificate_id,
    absl::string_view client_id) {
  const std::string name(template_name);
  // Devices name the template: only names that exist become metric labels.
  std::string label = "(unknown)";
  auto fail = [&](absl::Status s) {
    certificates_->observer().Provisioned(
        label, absl::IsUnavailable(s) || absl::IsInternal(s) ? "failed" : "rejected");
    return s;
  };
  if (absl::Status s = ValidateTemplateName(name); !s.ok()) return fail(TemplateNotFound(name));
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t, store_->GetTemplate(name));
  if (!t.has_value()) return fail(TemplateNotFound(name));
  label = name;
  if (!t->enabled) {
    return fail(Rejected(absl::StatusCode::kFailedPrecondition, 400, "InvalidRequest",
                         absl::StrCat("provisioning template ", Quoted(name), " is disabled")));
  }
  if (t->type != TemplateType::kFleetProvisioning) {
    return fail(Rejected(absl::StatusCode::kFailedPrecondition, 400, "InvalidRequest",
                         absl::StrCat("provisioning template ", Quoted(name),
                                      " is a JITP template, not FLEET_PROVISIONING")));
  }
  if (ownership_token.empty()) return fail(InvalidToken("is missing"));
  const std::string hash = tls::Sha256Hex(ownership_token);
  std::optional<OwnershipToken> token;
  FLEETCORE_RETURN_IF_ERROR(store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(token, tx.GetToken(hash));
    return absl::OkStatus();
  }));
  const absl::Time now = clock_->Now();
  if (!token.has_value()) return fail(InvalidToken("is not valid (used already, or never issued)"));
  if (token->expires_at <= now) return fail(InvalidToken("has expired"));
  if (token->claim_certificate_id != claim_certificate_id) {
    return fail(InvalidToken("belongs to another claim certificate"));
  }
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> cert,
                             store_->GetCertificate(token->certificate_id));
  if (!cert.has_value() || cert->status != CertStatus::kPendingActivation) {
    return fail(InvalidToken("names a certificate that is no longer pending activation"));
  }

  absl::StatusOr<std::map<std::string, std::string>> params =
      CallHook(*t, claim_certificate_id, *cert, client_id, parameters);
  if (!params.ok()) return fail(params.status());
  (*params)[kCertificateIdParameter] = cert->id;
  absl::StatusOr<ProvisioningTemplate> tmpl = Load(*t);
  if (!tmpl.ok()) return fail(tmpl.status());
  absl::StatusOr<ProvisioningPlan> plan = tmpl->Resolve(*params);
  if (!plan.ok()) {
    return fail(Rejected(absl::StatusCode::kInvalidArgument, 400, "InvalidPayload",
                         plan.status().message()));
  }

  Saga saga;
  const std::string arn = arns_->Cert(cert->id);
  if (absl::Status s = Execute(*plan, arn, saga); !s.ok()) {
    saga.Undo();
    return fail(s);
  }
  const CertStatus status = !plan->certificate.has_value() || plan->certificate->active
                                ? CertStatus::kActive
                                : CertStatus::kInactive;
  absl::Status committed = store_->Transact([&](CaTx& tx) -> absl::Status {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<OwnershipToken> taken, tx.TakeToken(hash));
    if (!taken.has_value()) return InvalidToken("was used by a concurrent RegisterThing");
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> c,
                               tx.GetCertificate(cert->id, Lock::kUpdate));
    if (!c.has_value() || c->status != CertStatus::kPendingActivation) {
      return InvalidToken("names a certificate that is no longer pending activation");
    }
    c->status = status;
    c->claim_expires_at.reset();
    c->updated_at = clock_->Now();
    c->generation += 1;
    FLEETCORE_RETURN_IF_ERROR(tx.UpdateCertificate(*c));
    tx.Publish({.type = "certificate.status_changed",
                .certificate = c->id,
                .status = std::string(StatusName(status))});
    return absl::OkStatus();
  });
  if (!committed.ok()) {
    saga.Undo();
    return fail(committed);
  }
  certificates_->observer().Provisioned(label, "success");
  return ProvisioningResult{plan->thing.has_value() ? plan->thing->thing_name : "",
                            plan->device_configuration};
}

absl::StatusOr<ProvisionedDevice> ProvisioningCore::ProvisionDevice(
    absl::string_view template_name, const std::map<std::string, std::string>& parameters,
    absl::string_view csr_pem) {
  FLEETCORE_RETURN_IF_ERROR(ValidateTemplateName(template_name));
  const std::string name(template_name);
  FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t, store_->GetTemplate(name));
  if (!t.has_value()) return TemplateNotFound(name);
  if (!t->enabled) {
    return absl::FailedPreconditionError(
        absl::StrCat("provisioning template ", Quoted(name), " is disabled"));
  }
  FLEETCORE_ASSIGN_OR_RETURN(ProvisioningTemplate tmpl, Load(*t));
  ProvisionedDevice out;
  FLEETCORE_ASSIGN_OR_RETURN(out.issued,
                             certificates_->Mint(csr_pem, CertStatus::kPendingActivation));
  std::map<std::string, std::string> params = parameters;
  absl::StatusOr<tls::Certificate> cert = tls::Certificate::ParsePem(out.issued.record.pem);
  if (cert.ok()) {
    for (const auto& [k, v] : CertificateParameters(*cert)) params.emplace(k, v);
  }
  params[kCertificateIdParameter] = out.issued.record.id;
  absl::StatusOr<ProvisioningPlan> plan = tmpl.Resolve(params);
  if (!plan.ok()) {
    certificates_->observer().Provisioned(name, "rejected");
    return plan.status();
  }
  Saga saga;
  absl::Status s = Execute(*plan, arns_->Cert(out.issued.record.id), saga);
  if (s.ok()) {
    out.issued.record.status = !plan->certificate.has_value() || plan->certificate->active
                                   ? CertStatus::kActive
                                   : CertStatus::kInactive;
    s = certificates_->Store(out.issued.record);
  }
  if (!s.ok()) {
    saga.Undo();
    certificates_->observer().Provisioned(name, absl::IsUnavailable(s) ? "failed" : "rejected");
    return s;
  }
  certificates_->observer().CertificateIssued("provision");
  certificates_->observer().Provisioned(name, "success");
  out.result = {plan->thing.has_value() ? plan->thing->thing_name : "", plan->device_configuration};
  return out;
}

// ---- JITP

absl::StatusOr<CertificateRecord> ProvisioningCore::Jitp(const tls::Certificate& cert,
                                                         const CaCertificateRecord& ca) {
  const RegistrationConfig& config = *ca.registration_config;
  std::string label = config.template_name.empty() ? "(inline)" : config.template_name;
  auto fail = [&](absl::Status s) {
    certificates_->observer().Provisioned(label, absl::IsUnavailable(s) ? "failed" : "rejected");
    return s;
  };
  absl::StatusOr<ProvisioningTemplate> tmpl = absl::InternalError("no template");
  if (!config.template_body.empty()) {
    tmpl = ProvisioningTemplate::Parse(config.template_body, TemplateType::kJitp);
  } else {
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<TemplateRecord> t,
                               store_->GetTemplate(config.template_name));
    if (!t.has_value()) return fail(TemplateNotFound(config.template_name));
    if (!t->enabled) {
      return fail(absl::FailedPreconditionError(
          absl::StrCat("provisioning template ", Quoted(t->name), " is disabled")));
    }
    tmpl = Load(*t);
  }
  if (!tmpl.ok()) return fail(tmpl.status());
  absl::StatusOr<ProvisioningPlan> plan = tmpl->Resolve(CertificateParameters(cert));
  if (!plan.ok()) return fail(plan.status());

  Saga saga;
  CertificateRecord record{.id = cert.Id(),
                           .pem = cert.Pem(),
                           .status = !plan->certificate.has_value() || plan->certificate->active
                                         ? CertStatus::kActive
                                         : CertStatus::kInactive,
                           .ca_certificate_id = ca.id,
                           .serial = cert.serial_hex(),
                           .subject = cert.subject().ToString(),
                           .mode = CertMode::kDefault,
                           .not_before = cert.not_before(),
                           .not_after = cert.not_after(),
                           .created_at = clock_->Now(),
                           .updated_at = clock_->Now()};
  absl::Status s = Execute(*plan, arns_->Cert(record.id), saga);
  if (s.ok()) s = certificates_->Store(record);
  if (absl::IsAlreadyExists(s)) {
    // A concurrent first connect of the same device provisioned it: its outcome stands.
    FLEETCORE_ASSIGN_OR_RETURN(std::optional<CertificateRecord> stored,
                               store_->GetCertificate(record.id));
    if (stored.has_value()) return *std::move(stored);
  }
  if (!s.ok()) {
    saga.Undo();
    return fail(s);
  }
  certificates_->observer().CertificateRegistered("jitp");
  certificates_->observer().Provisioned(label, "success");
  return record;
}

}  // namespace fleetcore::ca
