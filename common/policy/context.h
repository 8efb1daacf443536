// What a policy decision may depend on besides the action and the resource: the values
// behind the policy variables (${iot:ClientId}, ${iot:Connection.Thing.ThingName}, ...) and
// condition keys. Built once per connection by the gateway (or per TestAuthorization call);
// Evaluate only reads it.
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace fleetcore::policy {

// Subject and issuer attributes AWS exposes as iot:Certificate.{Subject,Issuer}.<Field>.
enum class CertField : uint8_t {
  kCountry,
  kOrganization,
  kOrganizationalUnit,
  kDistinguishedNameQualifier,
  kState,
  kCommonName,
  kSerialNumber,
  kTitle,
  kSurname,
  kGivenName,
  kInitials,
  kPseudonym,
  kGenerationQualifier,
};
inline constexpr int kCertFieldCount = 13;

// Subject/issuer alternative names: iot:Certificate.{Subject,Issuer}.AlternativeName.<Kind>.
enum class AltNameKind : uint8_t {
  kRfc822Name,
  kDnsName,
  kDirectoryName,
  kUniformResourceIdentifier,
  kIpAddress,
};
inline constexpr int kAltNameKindCount = 5;

// The names AWS uses, e.g. "CommonName", "DNSName".
absl::string_view CertFieldName(CertField field);
absl::string_view AltNameKindName(AltNameKind kind);

// The X.509 client certificate of the connection.
struct CertificateInfo {
  std::array<std::vector<std::string>, kCertFieldCount> subject;
  std::array<std::vector<std::string>, kCertFieldCount> issuer;
  std::array<std::vector<std::string>, kAltNameKindCount> subject_alt_names;
  std::array<std::vector<std::string>, kAltNameKindCount> issuer_alt_names;
  std::string serial_number;
  // Names of the certificate variables that have a value (iot:Certificate.AvailableKeys);
  // filled by ComputeAvailableKeys().
  std::vector<std::string> available_keys;

  void ComputeAvailableKeys();
};

// One of a thing type's propagating attributes: an MQTT 5 user property the gateway adds to
// the messages of its things' connections, valued by a thing attribute or a connection
// attribute ("iot:ClientId", "iot:Thing.ThingName").
struct PropagatingAttribute {
  std::string user_property_key;
  std::string thing_attribute;
  std::string connection_attribute;
  bool operator==(const PropagatingAttribute&) const = default;
};

// The thing the connection is associated with (client id == thing name, or an exclusive
// principal attachment), for iot:Connection.Thing.*.
struct ThingInfo {
  std::string name;
  std::string type_name;
  std::map<std::string, std::string, std::less<>> attributes;
  // Whether the connection's principal is attached to this thing.
  bool attached = false;
  // Its thing type's (message enrichment), in the type's order.
  std::vector<PropagatingAttribute> propagating_attributes;
};

struct Context {
  absl::string_view client_id;
  absl::string_view source_ip;    // aws:SourceIp
  absl::string_view domain_name;  // iot:DomainName (the SNI or endpoint the client used)
  const ThingInfo* thing = nullptr;
  const CertificateInfo* certificate = nullptr;
  // iot:ConnectAttributes: "PersistentConnect", "LastWill" (CONNECT only).
  absl::Span<const std::string> connect_attributes;
  // iot:LastWillTopic: the will's topic ARN (CONNECT with a will only).
  absl::string_view last_will_topic;
  // iot:Topic: the topic of a direct message (iot:SendDirectMessage only).
  absl::string_view topic;
  // aws:CurrentTime and aws:EpochTime.
  absl::Time now = absl::InfinitePast();
};

}  // namespace fleetcore::policy
