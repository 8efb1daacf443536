#include "services/gateway/authenticator.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/time/clock.h"

namespace fleetcore::gateway {

Identity::Identity(std::string principal, std::string client_id, std::string source_ip,
                   std::optional<policy::ThingInfo> thing,
                   std::optional<policy::CertificateInfo> certificate,
                   std::shared_ptr<const policy::PolicySet> policies)
    : principal_(std::move(principal)),
      client_id_(std::move(client_id)),
      source_ip_(std::move(source_ip)),
      thing_(std::move(thing)),
      certificate_(std::move(certificate)),
      policies_(std::move(policies)) {
  if (!certificate_.has_value() || !thing_.has_value() || !thing_->attached) return;
  for (const policy::PropagatingAttribute& a : thing_->propagating_attributes) {
    if (!a.thing_attribute.empty()) {
      auto it = thing_->attributes.find(a.thing_attribute);
      if (it != thing_->attributes.end()) enrichment_.push_back({a.user_property_key, it->second});
    } else if (a.connection_attribute == "iot:ClientId" && !client_id_.empty()) {
      enrichment_.push_back({a.user_property_key, client_id_});
    } else if (a.connection_attribute == "iot:Thing.ThingName") {
      enrichment_.push_back({a.user_property_key, thing_->name});
    }
  }
}

policy::Decision Identity::Decide(policy::Action action, absl::string_view resource,
                                  absl::Span<const std::string> connect_attributes,
                                  absl::string_view last_will_topic,
                                  absl::string_view topic) const {
  policy::Context ctx{.client_id = client_id_,
                      .source_ip = source_ip_,
                      .thing = thing_.has_value() ? &*thing_ : nullptr,
                      .certificate = certificate_.has_value() ? &*certificate_ : nullptr,
                      .connect_attributes = connect_attributes,
                      .last_will_topic = last_will_topic,
                      .topic = topic,
                      .now = absl::Now()};
  return policies_->Evaluate(action, resource, ctx);
}

namespace {

struct FieldNid {
  policy::CertField field;
  int nid;
};
constexpr FieldNid kFieldNids[] = {
    {policy::CertField::kCountry, NID_countryName},
    {policy::CertField::kOrganization, NID_organizationName},
    {policy::CertField::kOrganizationalUnit, NID_organizationalUnitName},
    {policy::CertField::kDistinguishedNameQualifier, NID_dnQualifier},
    {policy::CertField::kState, NID_stateOrProvinceName},
    {policy::CertField::kCommonName, NID_commonName},
    {policy::CertField::kSerialNumber, NID_serialNumber},
    {policy::CertField::kTitle, NID_title},
    {policy::CertField::kSurname, NID_surname},
    {policy::CertField::kGivenName, NID_givenName},
    {policy::CertField::kInitials, NID_initials},
    {policy::CertField::kPseudonym, NID_pseudonym},
    {policy::CertField::kGenerationQualifier, NID_generationQualifier},
};

void NameFields(const X509_NAME* name,
                std::array<std::vector<std::string>, policy::kCertFieldCount>* out) {
  for (const FieldNid& f : kFieldNids) {
    int i = -1;
    while ((i = X509_NAME_get_index_by_NID(name, f.nid, i)) >= 0) {
      const ASN1_STRING* v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
      unsigned char* utf8 = nullptr;
      const int n = ASN1_STRING_to_UTF8(&utf8, v);
      if (n >= 0) {
        (*out)[static_cast<int>(f.field)].emplace_back(reinterpret_cast<char*>(utf8),
                                                       static_cast<size_t>(n));
        OPENSSL_free(utf8);
      }
    }
  }
}

void AltNames(X509* cert, int nid,
              std::array<std::vector<std::string>, policy::kAltNameKindCount>* out) {
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, nid, nullptr, nullptr));
  if (names == nullptr) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    auto add = [&](policy::AltNameKind kind, const ASN1_STRING* s) {
      (*out)[static_cast<int>(kind)].emplace_back(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<size_t>(ASN1_STRING_length(s)));
    };
    switch (g->type) {
      case GEN_EMAIL: add(policy::AltNameKind::kRfc822Name, g->d.rfc822Name); break;
      case GEN_DNS: add(policy::AltNameKind::kDnsName, g->d.dNSName); break;
      case GEN_URI: add(policy::AltNameKind::kUniformResourceIdentifier, g->d.uniformResourceIdentifier); break;
      default: break;
    }
  }
  GENERAL_NAMES_free(names);
}


}  // namespace

std::optional<policy::CertificateInfo> CertificateInfoOf(absl::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert == nullptr) return std::nullopt;
  policy::CertificateInfo info;
  NameFields(X509_get_subject_name(cert), &info.subject);
  NameFields(X509_get_issuer_name(cert), &info.issuer);
  AltNames(cert, NID_subject_alt_name, &info.subject_alt_names);
  AltNames(cert, NID_issuer_alt_name, &info.issuer_alt_names);
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* dec = BN_bn2dec(bn)) {
      info.serial_number = dec;
      OPENSSL_free(dec);
    }
    BN_free(bn);
  }
  X509_free(cert);
  info.ComputeAvailableKeys();
  return info;
}

}  // namespace fleetcore::gateway
