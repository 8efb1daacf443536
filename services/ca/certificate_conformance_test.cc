// Device certificates, registered CAs and the CRL, run against the store this binary links
// (the in-memory fake in ca_core_test, Postgres in ca_store_pgtest).
#include "absl/strings/ascii.h"
#include "services/ca/ca_fixture.h"

namespace fleetcore::ca {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using Code = absl::StatusCode;

class CertificateTest : public CaFixture {};

TEST_F(CertificateTest, CreateKeysAndCertificateSignsANewKey) {
  ASSERT_OK_AND_ASSIGN(IssuedCertificate issued, certificates_.CreateKeysAndCertificate(true));
  const CertificateRecord& r = issued.record;
  EXPECT_EQ(r.status, CertStatus::kActive);
  EXPECT_TRUE(r.issued_here);
  EXPECT_EQ(r.ca_certificate_id, issuing_->id());
  ASSERT_OK_AND_ASSIGN(tls::Certificate cert, tls::Certificate::ParsePem(r.pem));
  EXPECT_EQ(cert.Id(), r.id);
  EXPECT_TRUE(cert.SignedBy(issuing_->certificate()));
  ASSERT_OK_AND_ASSIGN(tls::PrivateKey key, tls::PrivateKey::ParsePem(issued.private_key_pem));
  ASSERT_OK_AND_ASSIGN(std::string pub, tls::PublicKeyPem(key.public_key()));
  EXPECT_EQ(pub, issued.public_key_pem);
  ASSERT_OK_AND_ASSIGN(std::string cert_pub, tls::PublicKeyPem(cert.public_key()));
  EXPECT_EQ(pub, cert_pub);

  ASSERT_OK_AND_ASSIGN(CertificateRecord described, certificates_.DescribeCertificate(r.id));
  EXPECT_EQ(described.pem, r.pem);
  EXPECT_EQ(described.created_at, clock_.Now());
  EXPECT_EQ(described.not_after, r.not_after);
  // The private key is nowhere in what was stored.
  EXPECT_THAT(described.pem, Not(HasSubstr("PRIVATE")));

  ASSERT_OK_AND_ASSIGN(IssuedCertificate inactive, certificates_.CreateKeysAndCertificate(false));
  EXPECT_EQ(inactive.record.status, CertStatus::kInactive);
  // Creation announces nothing (no cache holds what did not exist); a change does.
  ASSERT_OK(certificates_.UpdateCertificate(r.id, CertStatus::kInactive));
  std::vector<CaEvent> events = sut_->WaitForEvents(1);
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].type, "certificate.status_changed");
  EXPECT_EQ(events[0].certificate, r.id);
}

TEST_F(CertificateTest, CreateCertificateFromCsrKeepsTheSubjectAndChecksTheKey) {
  ASSERT_OK_AND_ASSIGN(tls::PrivateKey key, tls::PrivateKey::Generate(tls::KeyType::kEcP384));
  const std::string csr = testing::MakeCsr(key, {{{"O", "Acme"}, {"CN", "sensor-1"}}});
  ASSERT_OK_AND_ASSIGN(IssuedCertificate issued, certificates_.CreateCertificateFromCsr(csr, true));
  EXPECT_TRUE(issued.private_key_pem.empty());
  ASSERT_OK_AND_ASSIGN(tls::Certificate cert, tls::Certificate::ParsePem(issued.record.pem));
  EXPECT_EQ(cert.subject().Get("CN"), "sensor-1");
  EXPECT_EQ(issued.record.subject, "CN=sensor-1,O=Acme");

  EXPECT_THAT(certificates_.CreateCertificateFromCsr("not a csr", true),
              StatusIs(Code::kInvalidArgument, HasSubstr("certificateSigningRequest")));
  EXPECT_THAT(certificates_.CreateCertificateFromCsr("", true),
              StatusIs(Code::kInvalidArgument, HasSubstr("required")));
}

TEST_F(CertificateTest, StatusMachine) {
  ASSERT_OK_AND_ASSIGN(IssuedCertificate issued, certificates_.CreateKeysAndCertificate(true));
  const std::string id = issued.record.id;
  ASSERT_OK(certificates_.UpdateCertificate(id, CertStatus::kInactive));
  ASSERT_OK(certificates_.UpdateCertificate(id, CertStatus::kInactive));  // no change
  ASSERT_OK(certificates_.UpdateCertificate(absl::AsciiStrToUpper(id), CertStatus::kActive));
  ASSERT_OK_AND_ASSIGN(CertificateRecord r, certificates_.DescribeCertificate(id));
  EXPECT_EQ(r.status, CertStatus::kActive);
  EXPECT_EQ(r.customer_version, 3);

  EXPECT_THAT(certificates_.UpdateCertificate(id, CertStatus::kPendingActivation),
              StatusIs(Code::kInvalidArgument, HasSubstr("PENDING_ACTIVATION")));
  EXPECT_THAT(certificates_.UpdateCertificate(id, CertStatus::kPendingTransfer),
              StatusIs(Code::kInvalidArgument));
  ASSERT_OK(certificates_.UpdateCertificate(id, CertStatus::kRevoked));
  EXPECT_THAT(certificates_.UpdateCertificate(id, CertStatus::kActive),
              StatusIs(Code::kFailedPrecondition, HasSubstr("REVOKED")));
  ASSERT_OK_AND_ASSIGN(r, certificates_.DescribeCertificate(id));
  EXPECT_EQ(r.revoked_at, clock_.Now());

  EXPECT_THAT(certificates_.UpdateCertificate("abc", CertStatus::kActive),
              StatusIs(Code::kInvalidArgument, HasSubstr("64 hexadecimal")));
  EXPECT_THAT(certificates_.UpdateCertificate(std::string(64, 'e'), CertStatus::kActive),
              StatusIs(Code::kNotFound));

  std::vector<CaEvent> events = sut_->WaitForEvents(3);
  ASSERT_THAT(events, SizeIs(3));  // INACTIVE, ACTIVE, REVOKED (no event for no-ops)
  EXPECT_EQ(events[2].type, "certificate.status_changed");
  EXPECT_EQ(events[2].status, "REVOKED");
}

TEST_F(CertificateTest, RevocationRenewsTheCrl) {
  ASSERT_OK_AND_ASSIGN(IssuedCertificate a, certificates_.CreateKeysAndCertificate(true));
  ASSERT_OK_AND_ASSIGN(IssuedCertificate b, certificates_.CreateKeysAndCertificate(true));
  ASSERT_OK_AND_ASSIGN(CrlRecord empty, certificates_.Crl());
  EXPECT_EQ(empty.number, 1);
  EXPECT_THAT(CrlText(empty.der), HasSubstr("No Revoked Certificates"));

  ASSERT_OK(certificates_.UpdateCertificate(a.record.id, CertStatus::kRevoked));
  ASSERT_OK_AND_ASSIGN(CrlRecord one, certificates_.Crl());
  EXPECT_EQ(one.number, 2);
  const std::string text = CrlText(one.der);
  EXPECT_THAT(text,
              HasSubstr(absl::StrCat("Serial Number: ", absl::AsciiStrToUpper(a.record.serial))));
  EXPECT_THAT(text, Not(HasSubstr(absl::AsciiStrToUpper(b.record.serial))));

  // A revoked certificate that is deleted stays in the CRL until it would have expired.
  ASSERT_OK(certificates_.DeleteCertificate(a.record.id, false));
  ASSERT_OK(certificates_.UpdateCertificate(b.record.id, CertStatus::kRevoked));
  ASSERT_OK_AND_ASSIGN(CrlRecord two, certificates_.Crl());
  EXPECT_EQ(two.number, 3);
  EXPECT_THAT(CrlText(two.der), HasSubstr(absl::AsciiStrToUpper(a.record.serial)));
  EXPECT_THAT(CrlText(two.der), HasSubstr(absl::AsciiStrToUpper(b.record.serial)));

  // Served as it is until a day before it expires, then renewed.
  ASSERT_OK_AND_ASSIGN(CrlRecord same, certificates_.Crl());
  EXPECT_EQ(same.number, 3);
  clock_.Advance(absl::Hours(24 * 6 + 1));
  ASSERT_OK_AND_ASSIGN(CrlRecord renewed, certificates_.Crl());
  EXPECT_EQ(renewed.number, 4);
}

TEST_F(CertificateTest, DeleteNeedsAnInactiveUnattachedCertificate) {
  ASSERT_OK_AND_ASSIGN(IssuedCertificate c, certificates_.CreateKeysAndCertificate(true));
  const std::string id = c.record.id;
  EXPECT_THAT(certificates_.DeleteCertificate(id, true),
              StatusIs(Code::kFailedPrecondition, HasSubstr("ACTIVE")));
  ASSERT_OK(certificates_.UpdateCertificate(id, CertStatus::kInactive));
  ASSERT_OK(peers_.CreateThing("lamp-1", "", {}));
  ASSERT_OK(peers_.AttachThingPrincipal("lamp-1", Arn(id), false));
  EXPECT_THAT(certificates_.DeleteCertificate(id, true),
              StatusIs(Code::kFailedPrecondition, HasSubstr("lamp-1")));
  ASSERT_OK(peers_.DetachThingPrincipal("lamp-1", Arn(id)));
  peers_.AddPolicy("p", "{}");
  ASSERT_OK(peers_.AttachPolicy("p", Arn(id)));
  EXPECT_THAT(certificates_.DeleteCertificate(id, false),
              StatusIs(Code::kFailedPrecondition, HasSubstr("forceDelete")));
  ASSERT_OK(certificates_.DeleteCertificate(id, true));
  EXPECT_THAT(peers_.policy_targets(), ::testing::IsEmpty());
  EXPECT_THAT(certificates_.DescribeCertificate(id), StatusIs(Code::kNotFound));
  EXPECT_THAT(certificates_.DeleteCertificate(id, false), StatusIs(Code::kNotFound));
}

TEST_F(CertificateTest, ListingsPageByCreationDate) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(IssuedCertificate c, certificates_.CreateKeysAndCertificate(true));
    ids.push_back(c.record.id);
    clock_.Advance(absl::Seconds(1));
  }
  auto all = [&](std::optional<std::string> ca, bool ascending) {
    std::vector<std::string> out;
    PageRequest req{.page_size = 2};
    for (int i = 0; i < 10; ++i) {
      absl::StatusOr<Page<CertificateRecord>> page =
          certificates_.ListCertificates(ca, ascending, req);
      EXPECT_OK(page.status());
      if (!page.ok()) break;
      for (const auto& c : page->items) out.push_back(c.id);
      if (page->next_marker.empty()) break;
      req.marker = page->next_marker;
    }
    return out;
  };
  EXPECT_EQ(all(std::nullopt, true), ids);
  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  EXPECT_EQ(all(std::nullopt, false), newest_first);
  EXPECT_EQ(all(issuing_->id(), true), ids);
  EXPECT_THAT(all(std::string(64, 'a'), true), ::testing::IsEmpty());
  absl::StatusOr<Page<CertificateRecord>> first =
      certificates_.ListCertificates(std::nullopt, true, {.page_size = 2});
  ASSERT_OK(first.status());
  EXPECT_THAT(certificates_.ListCertificates(std::nullopt, false,
                                             {.marker = first->next_marker, .page_size = 2}),
              StatusIs(Code::kInvalidArgument));
}

TEST_F(CertificateTest, RegisterCertificateOfARegisteredCa) {
  testing::TestAuthority acme = testing::TestAuthority::Make("Acme Device CA", clock_.Now());
  auto [key, device] = acme.Device({{{"CN", "d-1"}}}, clock_.Now() - absl::Hours(1));
  EXPECT_THAT(certificates_.RegisterCertificate(device.Pem(), "", CertStatus::kActive),
              StatusIs(Code::kInvalidArgument, HasSubstr("no registered CA signed")));
  EXPECT_THAT(certificates_.RegisterCertificate(device.Pem(), acme.cert.Pem(), CertStatus::kActive),
              StatusIs(Code::kNotFound, HasSubstr("not registered")));
  CaCertificateRecord ca = RegisterCa(acme, false);

  ASSERT_OK_AND_ASSIGN(CertificateRecord r,
                       certificates_.RegisterCertificate(device.Pem(), "", CertStatus::kActive));
  EXPECT_EQ(r.ca_certificate_id, ca.id);
  EXPECT_FALSE(r.issued_here);
  EXPECT_EQ(r.mode, CertMode::kDefault);
  EXPECT_THAT(certificates_.RegisterCertificate(device.Pem(), "", CertStatus::kActive),
              StatusIs(Code::kAlreadyExists));

  auto [k2, d2] = acme.Device({{{"CN", "d-2"}}}, clock_.Now() - absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(CertificateRecord r2, certificates_.RegisterCertificate(
                                                 d2.Pem(), acme.cert.Pem(), CertStatus::kInactive));
  EXPECT_EQ(r2.status, CertStatus::kInactive);

  // Same issuer name, another key: not its CA.
  testing::TestAuthority impostor = testing::TestAuthority::Make("Acme Device CA", clock_.Now());
  auto [k3, forged] = impostor.Device({{{"CN", "d-3"}}}, clock_.Now() - absl::Hours(1));
  EXPECT_THAT(certificates_.RegisterCertificate(forged.Pem(), "", CertStatus::kActive),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(certificates_.RegisterCertificate(forged.Pem(), acme.cert.Pem(), CertStatus::kActive),
              StatusIs(Code::kInvalidArgument, HasSubstr("not signed by")));

  auto [k4, expired] = acme.Device({{{"CN", "old"}}}, clock_.Now() - absl::Hours(48));
  EXPECT_THAT(certificates_.RegisterCertificate(expired.Pem(), "", CertStatus::kActive),
              StatusIs(Code::kInvalidArgument, HasSubstr("expired")));

  ASSERT_OK(certificates_.UpdateCaCertificate({.id = ca.id, .active = false}));
  auto [k5, d5] = acme.Device({{{"CN", "d-5"}}}, clock_.Now() - absl::Hours(1));
  EXPECT_THAT(certificates_.RegisterCertificate(d5.Pem(), "", CertStatus::kActive),
              StatusIs(Code::kFailedPrecondition, HasSubstr("INACTIVE")));

  ASSERT_OK_AND_ASSIGN(Page<CertificateRecord> by_ca,
                       certificates_.ListCertificates(ca.id, true, {}));
  EXPECT_THAT(by_ca.items, SizeIs(2));
}

TEST_F(CertificateTest, RegisterCertificateWithoutCa) {
  testing::TestAuthority unknown = testing::TestAuthority::Make("Somebody", clock_.Now());
  auto [key, device] = unknown.Device({{{"CN", "x"}}}, clock_.Now() - absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(CertificateRecord r, certificates_.RegisterCertificateWithoutCa(
                                                device.Pem(), CertStatus::kActive));
  EXPECT_EQ(r.mode, CertMode::kSniOnly);
  EXPECT_TRUE(r.ca_certificate_id.empty());
  EXPECT_THAT(certificates_.RegisterCertificateWithoutCa("junk", CertStatus::kActive),
              StatusIs(Code::kInvalidArgument, HasSubstr("certificatePem")));
  EXPECT_THAT(
      certificates_.RegisterCertificateWithoutCa(device.Pem(), CertStatus::kPendingActivation),
      StatusIs(Code::kInvalidArgument));
}

TEST_F(CertificateTest, RotationMovesThingsAndPoliciesAndEndsTheOldCertificateLater) {
  ASSERT_OK_AND_ASSIGN(IssuedCertificate old, certificates_.CreateKeysAndCertificate(true));
  ASSERT_OK(peers_.CreateThing("lamp-1", "", {}));
  ASSERT_OK(peers_.AttachThingPrincipal("lamp-1", Arn(old.record.id), true));
  peers_.AddPolicy("device", "{}");
  ASSERT_OK(peers_.AttachPolicy("device", Arn(old.record.id)));

  ASSERT_OK_AND_ASSIGN(RotationResult rotated,
                       certificates_.RotateCertificate(old.record.id, "", absl::Hours(1)));
  const std::string fresh = rotated.issued.record.id;
  EXPECT_THAT(rotated.things, ElementsAre("lamp-1"));
  EXPECT_THAT(rotated.policies, ElementsAre("device"));
  EXPECT_FALSE(rotated.issued.private_key_pem.empty());
  EXPECT_TRUE(peers_.thing_principals().count({"lamp-1", Arn(fresh)}));
  EXPECT_TRUE(peers_.policy_targets().count({"device", Arn(fresh)}));
  ASSERT_OK_AND_ASSIGN(CertificateRecord o, certificates_.DescribeCertificate(old.record.id));
  EXPECT_EQ(o.status, CertStatus::kActive);
  EXPECT_EQ(o.deactivate_at, clock_.Now() + absl::Hours(1));

  ASSERT_OK_AND_ASSIGN(SweepCounts early, certificates_.Sweep());
  EXPECT_EQ(early.deactivated, 0);
  clock_.Advance(absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(SweepCounts due, certificates_.Sweep());
  EXPECT_EQ(due.deactivated, 1);
  ASSERT_OK_AND_ASSIGN(o, certificates_.DescribeCertificate(old.record.id));
  EXPECT_EQ(o.status, CertStatus::kInactive);
  EXPECT_FALSE(o.deactivate_at.has_value());

  // Grace 0: the old one goes INACTIVE at once; only ACTIVE certificates rotate.
  ASSERT_OK_AND_ASSIGN(RotationResult again,
                       certificates_.RotateCertificate(fresh, "", absl::ZeroDuration()));
  ASSERT_OK_AND_ASSIGN(o, certificates_.DescribeCertificate(fresh));
  EXPECT_EQ(o.status, CertStatus::kInactive);
  EXPECT_THAT(certificates_.RotateCertificate(fresh, "", absl::ZeroDuration()),
              StatusIs(Code::kFailedPrecondition, HasSubstr("INACTIVE")));
}

TEST_F(CertificateTest, FailedRotationLeavesNothingBehind) {
  ASSERT_OK_AND_ASSIGN(IssuedCertificate old, certificates_.CreateKeysAndCertificate(true));
  ASSERT_OK(peers_.CreateThing("lamp-1", "", {}));
  ASSERT_OK(peers_.AttachThingPrincipal("lamp-1", Arn(old.record.id), false));
  peers_.AddPolicy("device", "{}");
  ASSERT_OK(peers_.AttachPolicy("device", Arn(old.record.id)));
  peers_.FailAt("AttachPolicy", 2, absl::UnavailableError("policy: down"));
  EXPECT_THAT(certificates_.RotateCertificate(old.record.id, "", absl::Hours(1)),
              StatusIs(Code::kUnavailable));
  EXPECT_THAT(peers_.thing_principals(), ElementsAre(std::make_pair("lamp-1", Arn(old.record.id))));
  EXPECT_THAT(peers_.policy_targets(), ElementsAre(std::make_pair("device", Arn(old.record.id))));
  ASSERT_OK_AND_ASSIGN(Page<CertificateRecord> all,
                       certificates_.ListCertificates(std::nullopt, true, {}));
  EXPECT_THAT(all.items, SizeIs(1));
}

// ---- registered CAs

TEST_F(CertificateTest, RegistrationCodeIsStableUntilDeleted) {
  ASSERT_OK_AND_ASSIGN(std::string code, certificates_.GetRegistrationCode());
  EXPECT_EQ(code.size(), 64u);
  ASSERT_OK_AND_ASSIGN(std::string same, certificates_.GetRegistrationCode());
  EXPECT_EQ(same, code);
  ASSERT_OK(certificates_.DeleteRegistrationCode());
  ASSERT_OK_AND_ASSIGN(std::string fresh, certificates_.GetRegistrationCode());
  EXPECT_NE(fresh, code);
}

TEST_F(CertificateTest, RegisterCaCertificateNeedsProofOfPossession) {
  testing::TestAuthority acme = testing::TestAuthority::Make("Acme CA", clock_.Now());
  EXPECT_THAT(certificates_.RegisterCaCertificate(acme.cert.Pem(),
                                                  acme.Verification("x", clock_.Now()).Pem(), true,
                                                  false, std::nullopt, CertMode::kDefault),
              StatusIs(Code::kFailedPrecondition, HasSubstr("GetRegistrationCode")));
  ASSERT_OK_AND_ASSIGN(std::string code, certificates_.GetRegistrationCode());
  EXPECT_THAT(certificates_.RegisterCaCertificate(acme.cert.Pem(),
                                                  acme.Verification("wrong", clock_.Now()).Pem(),
                                                  true, false, std::nullopt, CertMode::kDefault),
              StatusIs(Code::kInvalidArgument, HasSubstr("not the registration code")));
  testing::TestAuthority other = testing::TestAuthority::Make("Acme CA", clock_.Now());
  EXPECT_THAT(certificates_.RegisterCaCertificate(acme.cert.Pem(),
                                                  other.Verification(code, clock_.Now()).Pem(),
                                                  true, false, std::nullopt, CertMode::kDefault),
              StatusIs(Code::kInvalidArgument, HasSubstr("proof of possession")));
  EXPECT_THAT(certificates_.RegisterCaCertificate(acme.cert.Pem(), "", true, false, std::nullopt,
                                                  CertMode::kDefault),
              StatusIs(Code::kInvalidArgument, HasSubstr("verificationCertificate is required")));
  auto [k, leaf] = acme.Device({{{"CN", "not a CA"}}}, clock_.Now() - absl::Hours(1));
  EXPECT_THAT(certificates_.RegisterCaCertificate(leaf.Pem(), "", true, false, std::nullopt,
                                                  CertMode::kSniOnly),
              StatusIs(Code::kInvalidArgument, HasSubstr("not a CA certificate")));

  ASSERT_OK_AND_ASSIGN(
      CaCertificateRecord ca,
      certificates_.RegisterCaCertificate(
          acme.cert.Pem(), acme.Verification(code, clock_.Now()).Pem(), true, true,
          RegistrationConfig{.role_arn = "arn:aws:iam::1:role/x"}, CertMode::kDefault));
  EXPECT_EQ(ca.id, acme.cert.Id());
  EXPECT_TRUE(ca.active);
  EXPECT_TRUE(ca.auto_registration);
  ASSERT_OK_AND_ASSIGN(CaCertificateRecord described, certificates_.DescribeCaCertificate(ca.id));
  ASSERT_TRUE(described.registration_config.has_value());
  EXPECT_EQ(described.registration_config->role_arn, "arn:aws:iam::1:role/x");
  EXPECT_THAT(certificates_.RegisterCaCertificate(acme.cert.Pem(), "", true, false, std::nullopt,
                                                  CertMode::kSniOnly),
              StatusIs(Code::kAlreadyExists));

  // SNI_ONLY needs no verification certificate.
  ASSERT_OK(certificates_
                .RegisterCaCertificate(other.cert.Pem(), "", false, false, std::nullopt,
                                       CertMode::kSniOnly)
                .status());
  CertificateCore limited(store(), issuing_.get(), &peers_, &arns_, &clock_, nullptr,
                          {.max_ca_certificates_per_subject = 2});
  testing::TestAuthority third = testing::TestAuthority::Make("Acme CA", clock_.Now());
  EXPECT_THAT(limited.RegisterCaCertificate(third.cert.Pem(), "", true, false, std::nullopt,
                                            CertMode::kSniOnly),
              StatusIs(Code::kResourceExhausted, HasSubstr("CN=Acme CA")));
}

TEST_F(CertificateTest, RegistrationConfigIsCheckedAndCaDeletionGuarded) {
  testing::TestAuthority acme = testing::TestAuthority::Make("Acme CA", clock_.Now());
  CaCertificateRecord ca = RegisterCa(acme, true);
  EXPECT_THAT(certificates_.UpdateCaCertificate(
                  {.id = ca.id, .registration_config = RegistrationConfig{.template_body = "{}"}}),
              StatusIs(Code::kInvalidArgument, HasSubstr("registrationConfig.templateBody")));
  EXPECT_THAT(
      certificates_.UpdateCaCertificate(
          {.id = ca.id, .registration_config = RegistrationConfig{.template_name = "nope"}}),
      StatusIs(Code::kNotFound, HasSubstr("nope")));
  ASSERT_OK(certificates_.UpdateCaCertificate({.id = ca.id, .auto_registration = false}));
  ASSERT_OK_AND_ASSIGN(CaCertificateRecord r, certificates_.DescribeCaCertificate(ca.id));
  EXPECT_FALSE(r.auto_registration);
  EXPECT_EQ(r.customer_version, 2);

  auto [k, device] = acme.Device({{{"CN", "d"}}}, clock_.Now() - absl::Hours(1));
  ASSERT_OK(certificates_.RegisterCertificate(device.Pem(), "", CertStatus::kInactive).status());
  EXPECT_THAT(certificates_.DeleteCaCertificate(ca.id),
              StatusIs(Code::kFailedPrecondition, HasSubstr("ACTIVE")));
  ASSERT_OK(certificates_.UpdateCaCertificate({.id = ca.id, .active = false}));
  EXPECT_THAT(certificates_.DeleteCaCertificate(ca.id),
              StatusIs(Code::kFailedPrecondition, HasSubstr("1 device certificate")));
  ASSERT_OK(certificates_.DeleteCertificate(device.Id(), false));
  ASSERT_OK(certificates_.DeleteCaCertificate(ca.id));
  EXPECT_THAT(certificates_.DescribeCaCertificate(ca.id), StatusIs(Code::kNotFound));
  ASSERT_OK_AND_ASSIGN(Page<CaCertificateRecord> all, certificates_.ListCaCertificates(true, {}));
  EXPECT_THAT(all.items, ::testing::IsEmpty());
}

}  // namespace
}  // namespace fleetcore::ca
