// Provisioning templates, fleet provisioning with its saga, JITR/JITP and ResolvePeer, run
// against the store this binary links (fake or Postgres).
#include "nlohmann/json.hpp"
#include "services/ca/ca_fixture.h"

namespace fleetcore::ca {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using Code = absl::StatusCode;
using json = nlohmann::json;

constexpr char kFleetTemplate[] = R"({
  "Parameters": {"SerialNumber": {"Type": "String"},
                 "AWS::IoT::Certificate::Id": {"Type": "String"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "Properties": {
      "ThingName": {"Fn::Join": ["", ["dev_", {"Ref": "SerialNumber"}]]},
      "AttributePayload": {"version": "v1", "serial": {"Ref": "SerialNumber"}},
      "ThingGroups": ["fleet"], "BillingGroup": "lab"},
      "OverrideSettings": {"AttributePayload": "MERGE", "ThingGroups": "DO_NOTHING"}},
    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
      "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
    "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument":
      "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}"}}
  },
  "DeviceConfiguration": {"Url": "https://example.com"}
})";

constexpr char kJitpTemplate[] = R"({
  "Parameters": {"AWS::IoT::Certificate::CommonName": {"Type": "String"},
                 "AWS::IoT::Certificate::Country": {"Type": "String"},
                 "AWS::IoT::Certificate::Id": {"Type": "String"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "Properties": {
      "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
      "AttributePayload": {"country": {"Ref": "AWS::IoT::Certificate::Country"}}}},
    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
      "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
    "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "jitp-devices"}}
  }
})";

class ProvisioningTest : public CaFixture {
 protected:
  void CreateFleetTemplate(const std::string& name = "fleet-t", bool enabled = true,
                           const std::string& hook = "") {
    ASSERT_OK(provisioning_
                  .CreateTemplate({.name = name,
                                   .body = kFleetTemplate,
                                   .enabled = enabled,
                                   .hook_url = hook,
                                   .type = TemplateType::kFleetProvisioning})
                  .status());
  }
  // A claim: its device certificate and ownership token.
  FleetCertificate Claim(const std::string& claim_id = std::string(64, 'c')) {
    absl::StatusOr<FleetCertificate> f = provisioning_.FleetCreateCertificate(claim_id, "");
    EXPECT_OK(f.status());
    return f.ok() ? *f : FleetCertificate{};
  }
  void ExpectRejection(const absl::Status& s, int status, const std::string& code) {
    Rejection r = RejectionOf(s);
    EXPECT_EQ(r.status_code, status) << s;
    EXPECT_EQ(r.error_code, code) << s;
  }
  // Nothing provisioned in the peers.
  void ExpectNothingBehind() {
    EXPECT_THAT(peers_.things(), IsEmpty());
    EXPECT_THAT(peers_.thing_principals(), IsEmpty());
    EXPECT_THAT(peers_.policy_targets(), IsEmpty());
    for (const auto& [name, doc] : peers_.policies()) EXPECT_EQ(name, "jitp-devices");
  }
};

// ---- templates

TEST_F(ProvisioningTest, TemplateLifecycleAndVersions) {
  CreateFleetTemplate();
  EXPECT_THAT(provisioning_.CreateTemplate({.name = "fleet-t", .body = kFleetTemplate}),
              StatusIs(Code::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(auto described, provisioning_.DescribeTemplate("fleet-t"));
  EXPECT_EQ(described.first.default_version, 1);
  EXPECT_EQ(described.second.body, kFleetTemplate);
  EXPECT_TRUE(described.first.enabled);

  for (int v = 2; v <= 5; ++v) {
    ASSERT_OK_AND_ASSIGN(auto created,
                         provisioning_.CreateTemplateVersion("fleet-t", kFleetTemplate, v == 3));
    EXPECT_EQ(created.first.version, v);
  }
  EXPECT_THAT(provisioning_.CreateTemplateVersion("fleet-t", kFleetTemplate, false),
              StatusIs(Code::kResourceExhausted));
  ASSERT_OK_AND_ASSIGN(described, provisioning_.DescribeTemplate("fleet-t"));
  EXPECT_EQ(described.first.default_version, 3);
  EXPECT_THAT(provisioning_.DeleteTemplateVersion("fleet-t", 3),
              StatusIs(Code::kFailedPrecondition, HasSubstr("default")));
  ASSERT_OK(provisioning_.DeleteTemplateVersion("fleet-t", 5));
  EXPECT_THAT(provisioning_.DescribeTemplateVersion("fleet-t", 5), StatusIs(Code::kNotFound));
  ASSERT_OK(provisioning_.UpdateTemplate(
      {.name = "fleet-t", .description = "d", .enabled = false, .default_version = 1}));
  ASSERT_OK_AND_ASSIGN(described, provisioning_.DescribeTemplate("fleet-t"));
  EXPECT_EQ(described.first.default_version, 1);
  EXPECT_FALSE(described.first.enabled);
  EXPECT_EQ(described.first.description, "d");
  EXPECT_THAT(provisioning_.UpdateTemplate({.name = "fleet-t", .default_version = 9}),
              StatusIs(Code::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto versions, provisioning_.ListTemplateVersions("fleet-t"));
  EXPECT_THAT(versions.second, SizeIs(4));

  EXPECT_THAT(provisioning_.CreateTemplate({.name = "bad name", .body = kFleetTemplate}),
              StatusIs(Code::kInvalidArgument, HasSubstr("templateName")));
  EXPECT_THAT(provisioning_.CreateTemplate({.name = "broken", .body = R"({"Resources": {}})"}),
              StatusIs(Code::kInvalidArgument, HasSubstr("templateBody: Resources")));
  EXPECT_THAT(provisioning_.CreateTemplate({.name = "hooked",
                                            .body = kJitpTemplate,
                                            .hook_url = "http://h/",
                                            .type = TemplateType::kJitp}),
              StatusIs(Code::kInvalidArgument, HasSubstr("preProvisioningHook")));
  ASSERT_OK(
      provisioning_
          .CreateTemplate({.name = "a-jitp", .body = kJitpTemplate, .type = TemplateType::kJitp})
          .status());
  ASSERT_OK_AND_ASSIGN(Page<TemplateRecord> page, provisioning_.ListTemplates({.page_size = 1}));
  ASSERT_THAT(page.items, SizeIs(1));
  EXPECT_EQ(page.items[0].name, "a-jitp");
  ASSERT_OK_AND_ASSIGN(page, provisioning_.ListTemplates({.marker = page.next_marker}));
  ASSERT_THAT(page.items, SizeIs(1));
  EXPECT_EQ(page.items[0].name, "fleet-t");

  // A template a CA uses for JITP cannot go.
  testing::TestAuthority acme = testing::TestAuthority::Make("Acme", clock_.Now());
  RegisterCa(acme, true, RegistrationConfig{.template_name = "a-jitp"});
  EXPECT_THAT(provisioning_.DeleteTemplate("a-jitp"),
              StatusIs(Code::kFailedPrecondition, HasSubstr("JITP template of 1 CA")));
  ASSERT_OK(provisioning_.DeleteTemplate("fleet-t"));
  EXPECT_THAT(provisioning_.DescribeTemplate("fleet-t"), StatusIs(Code::kNotFound));
}

// ---- fleet provisioning

TEST_F(ProvisioningTest, FleetProvisioningEndToEnd) {
  peers_.AddGroup("fleet");
  peers_.AddBillingGroup("lab");
  CreateFleetTemplate();
  FleetCertificate claim = Claim();
  EXPECT_EQ(claim.issued.record.status, CertStatus::kPendingActivation);
  EXPECT_FALSE(claim.ownership_token.empty());
  EXPECT_FALSE(claim.issued.private_key_pem.empty());
  ASSERT_OK_AND_ASSIGN(CertificateRecord pending,
                       certificates_.DescribeCertificate(claim.issued.record.id));
  EXPECT_EQ(pending.claim_expires_at, clock_.Now() + absl::Hours(1));

  ASSERT_OK_AND_ASSIGN(
      ProvisioningResult result,
      provisioning_.RegisterThing("fleet-t", claim.ownership_token, {{"SerialNumber", "42"}},
                                  std::string(64, 'c'), "client-1"));
  EXPECT_EQ(result.thing_name, "dev_42");
  EXPECT_THAT(result.device_configuration, ElementsAre(Pair("Url", "https://example.com")));
  const std::string arn = Arn(claim.issued.record.id);
  auto things = peers_.things();
  ASSERT_EQ(things.count("dev_42"), 1u);
  EXPECT_THAT(things["dev_42"].attributes,
              ElementsAre(Pair("serial", "42"), Pair("version", "v1")));
  EXPECT_THAT(things["dev_42"].groups, ElementsAre("fleet"));
  EXPECT_EQ(things["dev_42"].billing_group, "lab");
  EXPECT_TRUE(peers_.thing_principals().count({"dev_42", arn}));
  ASSERT_THAT(peers_.policy_targets(), SizeIs(1));
  EXPECT_EQ(peers_.policy_targets().begin()->second, arn);
  ASSERT_OK_AND_ASSIGN(CertificateRecord active,
                       certificates_.DescribeCertificate(claim.issued.record.id));
  EXPECT_EQ(active.status, CertStatus::kActive);
  EXPECT_FALSE(active.claim_expires_at.has_value());

  // A token works once.
  absl::StatusOr<ProvisioningResult> again = provisioning_.RegisterThing(
      "fleet-t", claim.ownership_token, {{"SerialNumber", "42"}}, std::string(64, 'c'), "c");
  ExpectRejection(again.status(), 400, "InvalidCertificateOwnershipToken");

  // A second device with the same serial: the existing thing merges, nothing fails.
  FleetCertificate second = Claim();
  ASSERT_OK(provisioning_
                .RegisterThing("fleet-t", second.ownership_token, {{"SerialNumber", "42"}},
                               std::string(64, 'c'), "c")
                .status());
}

TEST_F(ProvisioningTest, RegisterThingRejectionsHaveAwsCodes) {
  peers_.AddGroup("fleet");
  peers_.AddBillingGroup("lab");
  CreateFleetTemplate();
  CreateFleetTemplate("off", /*enabled=*/false);
  FleetCertificate claim = Claim();
  const std::string claim_id(64, 'c');
  ExpectRejection(
      provisioning_.RegisterThing("nope", claim.ownership_token, {}, claim_id, "c").status(), 404,
      "ResourceNotFound");
  ExpectRejection(
      provisioning_.RegisterThing("off", claim.ownership_token, {}, claim_id, "c").status(), 400,
      "InvalidRequest");
  ExpectRejection(provisioning_.RegisterThing("fleet-t", "forged", {}, claim_id, "c").status(), 400,
                  "InvalidCertificateOwnershipToken");
  ExpectRejection(provisioning_
                      .RegisterThing("fleet-t", claim.ownership_token, {{"SerialNumber", "1"}},
                                     std::string(64, 'd'), "c")
                      .status(),
                  400, "InvalidCertificateOwnershipToken");
  ExpectRejection(
      provisioning_.RegisterThing("fleet-t", claim.ownership_token, {}, claim_id, "c").status(),
      400, "InvalidPayload");  // SerialNumber missing
  clock_.Advance(absl::Minutes(61));
  absl::Status expired =
      provisioning_
          .RegisterThing("fleet-t", claim.ownership_token, {{"SerialNumber", "1"}}, claim_id, "c")
          .status();
  ExpectRejection(expired, 400, "InvalidCertificateOwnershipToken");
  EXPECT_THAT(expired.message(), HasSubstr("expired"));
  ExpectNothingBehind();
}

TEST_F(ProvisioningTest, AFailureHalfWayLeavesNothingBehind) {
  peers_.AddGroup("fleet");
  peers_.AddBillingGroup("lab");
  CreateFleetTemplate();
  FleetCertificate claim = Claim();
  const std::string claim_id(64, 'c');
  // Every step of the saga in turn fails once; each time nothing stays behind and the same
  // token still works afterwards.
  for (const char* op : {"CreateThing", "AddThingToBillingGroup", "AddThingToGroup",
                         "AttachThingPrincipal", "CreatePolicy", "AttachPolicy"}) {
    SCOPED_TRACE(op);
    peers_.FailAt(op, 1, absl::UnavailableError(absl::StrCat("injected failure of ", op)));
    absl::Status s =
        provisioning_
            .RegisterThing("fleet-t", claim.ownership_token, {{"SerialNumber", "7"}}, claim_id, "c")
            .status();
    EXPECT_THAT(s, StatusIs(Code::kUnavailable, HasSubstr(op)));
    ExpectRejection(s, 503, "ServiceUnavailable");
    // The device is not told what failed behind the CA service.
    EXPECT_EQ(RejectionOf(s).error_message, "Service Unavailable");
    ExpectNothingBehind();
    ASSERT_OK_AND_ASSIGN(CertificateRecord c,
                         certificates_.DescribeCertificate(claim.issued.record.id));
    EXPECT_EQ(c.status, CertStatus::kPendingActivation);
    peers_.FailAt(op, 0, absl::OkStatus());  // no more failures of this op
  }
  ASSERT_OK(
      provisioning_
          .RegisterThing("fleet-t", claim.ownership_token, {{"SerialNumber", "7"}}, claim_id, "c")
          .status());
  EXPECT_THAT(peers_.things(), SizeIs(1));
}

TEST_F(ProvisioningTest, PreProvisioningHookDecides) {
  peers_.AddGroup("fleet");
  peers_.AddBillingGroup("lab");
  CreateFleetTemplate("hooked", true, "https://hooks.example/check");
  const std::string claim_id(64, 'c');

  hook_.Answer(200, R"({"allowProvisioning": true, "parameterOverrides": {"SerialNumber": "99"}})");
  FleetCertificate a = Claim();
  ASSERT_OK_AND_ASSIGN(ProvisioningResult r,
                       provisioning_.RegisterThing("hooked", a.ownership_token,
                                                   {{"SerialNumber", "1"}}, claim_id, "client-7"));
  EXPECT_EQ(r.thing_name, "dev_99");  // the hook's override wins
  ASSERT_THAT(hook_.requests(), SizeIs(1));
  json event = json::parse(hook_.requests()[0].body);
  EXPECT_EQ(event["claimCertificateId"], claim_id);
  EXPECT_EQ(event["certificateId"], a.issued.record.id);
  EXPECT_EQ(event["clientId"], "client-7");
  EXPECT_EQ(event["parameters"]["SerialNumber"], "1");
  EXPECT_EQ(event["templateArn"], "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/hooked");
  EXPECT_EQ(hook_.requests()[0].timeout, absl::Seconds(5));

  // Each refusal says why; where the hook lives (a connection's error) is not the device's.
  for (auto [script, why] : std::vector<std::pair<std::function<void()>, std::string>>{
           {[&] { hook_.Answer(200, R"({"allowProvisioning": false})"); },
            "allowProvisioning is false"},
           {[&] { hook_.Answer(200, "nonsense"); }, "its answer has no allowProvisioning"},
           {[&] { hook_.Answer(500, "{}"); }, "it answered HTTP 500"},
           {[&] { hook_.Fail(absl::DeadlineExceededError("hooks.example: timed out after 5s")); },
            "it did not answer within 5 s"},
           {[&] { hook_.Fail(absl::UnavailableError("hooks.example:443: connection refused")); },
            "it could not be called"}}) {
    script();
    FleetCertificate b = Claim();
    absl::Status s =
        provisioning_
            .RegisterThing("hooked", b.ownership_token, {{"SerialNumber", "2"}}, claim_id, "c")
            .status();
    ExpectRejection(s, 403, "AccessDenied");
    EXPECT_EQ(RejectionOf(s).error_message,
              "the pre-provisioning hook refused provisioning: " + why);
  }
  EXPECT_THAT(peers_.things(), SizeIs(1));
}

TEST_F(ProvisioningTest, UnusedClaimCertificatesExpire) {
  peers_.AddGroup("fleet");
  peers_.AddBillingGroup("lab");
  CreateFleetTemplate();
  FleetCertificate unused = Claim();
  FleetCertificate used = Claim();
  ASSERT_OK(provisioning_
                .RegisterThing("fleet-t", used.ownership_token, {{"SerialNumber", "1"}},
                               std::string(64, 'c'), "c")
                .status());
  clock_.Advance(absl::Minutes(61));
  ASSERT_OK_AND_ASSIGN(SweepCounts counts, certificates_.Sweep());
  EXPECT_EQ(counts.claims_deleted, 1);
  EXPECT_EQ(counts.tokens_deleted, 1);
  EXPECT_THAT(certificates_.DescribeCertificate(unused.issued.record.id),
              StatusIs(Code::kNotFound));
  ASSERT_OK(certificates_.DescribeCertificate(used.issued.record.id).status());
}

TEST_F(ProvisioningTest, ProvisionDeviceForOperators) {
  peers_.AddGroup("fleet");
  peers_.AddBillingGroup("lab");
  CreateFleetTemplate();
  ASSERT_OK_AND_ASSIGN(ProvisionedDevice d,
                       provisioning_.ProvisionDevice("fleet-t", {{"SerialNumber", "5"}}, ""));
  EXPECT_EQ(d.result.thing_name, "dev_5");
  EXPECT_EQ(d.issued.record.status, CertStatus::kActive);
  EXPECT_FALSE(d.issued.private_key_pem.empty());
  ASSERT_OK(certificates_.DescribeCertificate(d.issued.record.id).status());
  EXPECT_TRUE(peers_.thing_principals().count({"dev_5", Arn(d.issued.record.id)}));

  // A failure stores no certificate.
  peers_.FailAt("AttachPolicy", 2, absl::UnavailableError("down"));
  EXPECT_THAT(provisioning_.ProvisionDevice("fleet-t", {{"SerialNumber", "6"}}, ""),
              StatusIs(Code::kUnavailable));
  ASSERT_OK_AND_ASSIGN(Page<CertificateRecord> all,
                       certificates_.ListCertificates(std::nullopt, true, {}));
  EXPECT_THAT(all.items, SizeIs(1));
  EXPECT_EQ(peers_.things().count("dev_6"), 0u);
}

// ---- ResolvePeer: known certificates

TEST_F(ProvisioningTest, KnownCertificatesResolveByStatus) {
  ASSERT_OK_AND_ASSIGN(IssuedCertificate c, certificates_.CreateKeysAndCertificate(true));
  ASSERT_OK_AND_ASSIGN(tls::Certificate leaf, tls::Certificate::ParsePem(c.record.pem));
  ASSERT_OK(peers_.CreateThing("lamp-1", "", {}));
  ASSERT_OK(peers_.AttachThingPrincipal("lamp-1", Arn(c.record.id), true));

  ASSERT_OK_AND_ASSIGN(PeerAnswer a, Resolve(leaf));
  EXPECT_EQ(a.result, PeerResult::kAllowed);
  EXPECT_EQ(a.certificate_id, c.record.id);
  ASSERT_THAT(a.things, SizeIs(1));
  EXPECT_EQ(a.things[0].thing_name, "lamp-1");
  EXPECT_TRUE(a.things[0].exclusive);
  EXPECT_FALSE(a.from_cache);
  ASSERT_OK_AND_ASSIGN(a, Resolve(leaf));
  EXPECT_TRUE(a.from_cache);

  ASSERT_OK(certificates_.UpdateCertificate(c.record.id, CertStatus::kInactive));
  resolver_.Invalidate(c.record.id);  // the service does this on the NOTIFY
  ASSERT_OK_AND_ASSIGN(a, Resolve(leaf));
  EXPECT_EQ(a.result, PeerResult::kCertificateInactive);
  ASSERT_OK(certificates_.UpdateCertificate(c.record.id, CertStatus::kRevoked));
  ASSERT_OK_AND_ASSIGN(a, Resolve(leaf));
  EXPECT_EQ(a.result, PeerResult::kCertificateRevoked);

  ASSERT_OK_AND_ASSIGN(IssuedCertificate d, certificates_.CreateKeysAndCertificate(true));
  ASSERT_OK_AND_ASSIGN(tls::Certificate leaf2, tls::Certificate::ParsePem(d.record.pem));
  clock_.Advance(absl::Hours(24 * 365 * 11));
  ASSERT_OK_AND_ASSIGN(a, Resolve(leaf2));
  EXPECT_EQ(a.result, PeerResult::kCertificateExpired);

  ASSERT_OK_AND_ASSIGN(a, resolver_.Resolve({"garbage"}));
  EXPECT_EQ(a.result, PeerResult::kBadCertificate);
  ASSERT_OK_AND_ASSIGN(a, resolver_.Resolve({}));
  EXPECT_EQ(a.result, PeerResult::kBadCertificate);
}

// ---- JITR and JITP

TEST_F(ProvisioningTest, JitrRegistersPendingAndPublishesTheEvent) {
  testing::TestAuthority acme = testing::TestAuthority::Make("Acme", clock_.Now());
  CaCertificateRecord ca = RegisterCa(acme, /*auto_registration=*/true);
  auto [key, leaf] = acme.Device({{{"CN", "new-1"}}}, clock_.Now() - absl::Hours(1));

  ASSERT_OK_AND_ASSIGN(PeerAnswer a, Resolve(leaf));
  EXPECT_EQ(a.result, PeerResult::kJitrRegistered);
  ASSERT_THAT(a.events, SizeIs(1));
  EXPECT_EQ(a.events[0].topic, "$aws/events/certificates/registered/" + ca.id);
  json payload = json::parse(a.events[0].payload);
  EXPECT_EQ(payload["certificateId"], leaf.Id());
  EXPECT_EQ(payload["caCertificateId"], ca.id);
  EXPECT_EQ(payload["certificateStatus"], "PENDING_ACTIVATION");
  EXPECT_EQ(payload["awsAccountId"], "123456789012");
  EXPECT_EQ(payload["timestamp"], absl::ToUnixSeconds(clock_.Now()));
  ASSERT_OK_AND_ASSIGN(CertificateRecord stored, certificates_.DescribeCertificate(leaf.Id()));
  EXPECT_EQ(stored.status, CertStatus::kPendingActivation);
  EXPECT_EQ(stored.ca_certificate_id, ca.id);

  // Presented again while pending: refused, event again.
  ASSERT_OK_AND_ASSIGN(a, Resolve(leaf));
  EXPECT_EQ(a.result, PeerResult::kCertificatePendingActivation);
  EXPECT_THAT(a.events, SizeIs(1));

  // The operator's rule activates it.
  ASSERT_OK(certificates_.UpdateCertificate(leaf.Id(), CertStatus::kActive));
  ASSERT_OK_AND_ASSIGN(a, Resolve(leaf));
  EXPECT_EQ(a.result, PeerResult::kAllowed);
}

TEST_F(ProvisioningTest, JitpProvisionsOnFirstConnect) {
  peers_.AddPolicy("jitp-devices", "{}");
  testing::TestAuthority acme = testing::TestAuthority::Make("Acme", clock_.Now());
  RegisterCa(acme, true, RegistrationConfig{.template_body = kJitpTemplate});
  auto [key, leaf] = acme.Device({{{"C", "DE"}, {"CN", "bulb-9"}}}, clock_.Now() - absl::Hours(1));

  ASSERT_OK_AND_ASSIGN(PeerAnswer a, Resolve(leaf));
  EXPECT_EQ(a.result, PeerResult::kAllowed) << a.reason;
  EXPECT_TRUE(a.provisioned);
  ASSERT_THAT(a.things, SizeIs(1));
  EXPECT_EQ(a.things[0].thing_name, "bulb-9");
  EXPECT_THAT(peers_.things()["bulb-9"].attributes, ElementsAre(Pair("country", "DE")));
  EXPECT_TRUE(peers_.policy_targets().count({"jitp-devices", Arn(leaf.Id())}));
  ASSERT_OK_AND_ASSIGN(CertificateRecord stored, certificates_.DescribeCertificate(leaf.Id()));
  EXPECT_EQ(stored.status, CertStatus::kActive);

  ASSERT_OK_AND_ASSIGN(a, Resolve(leaf));
  EXPECT_EQ(a.result, PeerResult::kAllowed);
  EXPECT_FALSE(a.provisioned);

  // A certificate without the Country the template declares: refused, nothing made.
  auto [k2, no_country] = acme.Device({{{"CN", "bulb-10"}}}, clock_.Now() - absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(a, Resolve(no_country));
  EXPECT_EQ(a.result, PeerResult::kProvisioningFailed);
  EXPECT_THAT(a.reason, HasSubstr("Country"));
  EXPECT_EQ(peers_.things().count("bulb-10"), 0u);
  EXPECT_THAT(certificates_.DescribeCertificate(no_country.Id()), StatusIs(Code::kNotFound));

  // A failing peer half way: undone, refused.
  peers_.FailAt("AttachPolicy", 2, absl::FailedPreconditionError("policy: limit"));
  auto [k3, third] = acme.Device({{{"C", "FR"}, {"CN", "bulb-11"}}}, clock_.Now() - absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(a, Resolve(third));
  EXPECT_EQ(a.result, PeerResult::kProvisioningFailed);
  EXPECT_EQ(peers_.things().count("bulb-11"), 0u);
}

TEST_F(ProvisioningTest, UnknownCertificatesAreRefusedWithTheirReason) {
  testing::TestAuthority stranger = testing::TestAuthority::Make("Stranger", clock_.Now());
  auto [k1, unknown] = stranger.Device({{{"CN", "x"}}}, clock_.Now() - absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(PeerAnswer a, Resolve(unknown));
  EXPECT_EQ(a.result, PeerResult::kUnknownCertificate);

  testing::TestAuthority acme = testing::TestAuthority::Make("Acme", clock_.Now());
  CaCertificateRecord ca = RegisterCa(acme, /*auto_registration=*/false);
  auto [k2, d2] = acme.Device({{{"CN", "y"}}}, clock_.Now() - absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(a, Resolve(d2));
  EXPECT_EQ(a.result, PeerResult::kAutoRegistrationDisabled);
  ASSERT_OK(certificates_.UpdateCaCertificate({.id = ca.id, .active = false}));
  ASSERT_OK_AND_ASSIGN(a, Resolve(d2));
  EXPECT_EQ(a.result, PeerResult::kCaInactive);

  testing::TestAuthority impostor = testing::TestAuthority::Make("Acme", clock_.Now());
  auto [k3, forged] = impostor.Device({{{"CN", "z"}}}, clock_.Now() - absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(a, Resolve(forged));
  EXPECT_EQ(a.result, PeerResult::kBadChain);
  ASSERT_OK_AND_ASSIGN(Page<CertificateRecord> all,
                       certificates_.ListCertificates(std::nullopt, true, {}));
  EXPECT_THAT(all.items, IsEmpty());
}

}  // namespace
}  // namespace fleetcore::ca
