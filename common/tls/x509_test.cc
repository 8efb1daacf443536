// The X.509 helpers, checked against the openssl command where it is the reference (ids as
// fingerprints, chains, CSRs made by openssl, CRLs read back by openssl crl).
#include "common/tls/x509.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_replace.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::tls {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

std::string WriteTemp(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/x509-" + std::to_string(getpid()) + name;
  std::ofstream(path) << content;
  return path;
}

std::string Openssl(std::vector<std::string> args, const std::string& stdin_data = "") {
  args.insert(args.begin(), "/usr/bin/openssl");
  absl::StatusOr<testing::RunResult> r = testing::Run(args, {}, absl::Seconds(30), stdin_data);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << r->err;
  return r->out + r->err;
}

struct Ca {
  PrivateKey key;
  Certificate cert;
};

Ca MakeCa(KeyType type = KeyType::kEcP256) {
  absl::StatusOr<PrivateKey> key = PrivateKey::Generate(type);
  EXPECT_OK(key.status());
  absl::StatusOr<Certificate> cert =
      Issue(key->public_key(),
            {.subject = {{{"C", "DE"}, {"O", "fleetcore"}, {"CN", "Test CA"}}},
             .not_before = kNow - absl::Hours(1),
             .not_after = kNow + absl::Hours(24 * 365),
             .is_ca = true},
            nullptr, *key);
  EXPECT_OK(cert.status());
  return {*key, *cert};
}

TEST(X509Test, IssuedCertificatesChainAndCarryTheirFields) {
  Ca ca = MakeCa();
  ASSERT_OK_AND_ASSIGN(PrivateKey device_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(
      Certificate device,
      Issue(device_key.public_key(),
            {.subject =
                 {{{"C", "DE"}, {"O", "Acme, Inc."}, {"CN", "lamp-1"}, {"serialNumber", "SN-42"}}},
             .not_before = kNow,
             .not_after = kNow + absl::Hours(24),
             .serial_hex = "0a1b2c"},
            &ca.cert, ca.key));
  EXPECT_EQ(device.subject().Get("CN"), "lamp-1");
  EXPECT_EQ(device.subject().Get("O"), "Acme, Inc.");
  EXPECT_EQ(device.subject().Get("serialNumber"), "SN-42");
  EXPECT_EQ(device.subject().ToString(), "serialNumber=SN-42,CN=lamp-1,O=Acme\\, Inc.,C=DE");
  EXPECT_EQ(device.issuer().Get("CN"), "Test CA");
  EXPECT_EQ(device.serial_hex(), "0a1b2c");
  EXPECT_EQ(device.not_before(), kNow);
  EXPECT_EQ(device.not_after(), kNow + absl::Hours(24));
  EXPECT_FALSE(device.is_ca());
  EXPECT_TRUE(ca.cert.is_ca());
  EXPECT_TRUE(device.SignedBy(ca.cert));
  EXPECT_TRUE(ca.cert.SignedBy(ca.cert));
  EXPECT_FALSE(device.SignedBy(device));
  Ca other = MakeCa();  // same subject, another key
  EXPECT_FALSE(device.SignedBy(other.cert));

  // openssl agrees on the chain and on the id (AWS's id is the SHA-256 fingerprint).
  const std::string ca_file = WriteTemp("ca.pem", ca.cert.Pem());
  const std::string dev_file = WriteTemp("dev.pem", device.Pem());
  EXPECT_THAT(Openssl({"verify", "-attime", "1800000100", "-CAfile", ca_file, dev_file}),
              HasSubstr("OK"));
  std::string fingerprint = Openssl({"x509", "-noout", "-fingerprint", "-sha256", "-in", dev_file});
  fingerprint = absl::AsciiStrToLower(
      absl::StrReplaceAll(fingerprint.substr(fingerprint.find('=') + 1), {{":", ""}, {"\n", ""}}));
  EXPECT_EQ(device.Id(), fingerprint);
  EXPECT_EQ(device.Id().size(), 64u);
  EXPECT_THAT(Openssl({"x509", "-noout", "-text", "-in", dev_file}),
              HasSubstr("TLS Web Client Authentication"));

  ASSERT_OK_AND_ASSIGN(Certificate again, Certificate::ParseDer(device.Der()));
  EXPECT_EQ(again.Id(), device.Id());
  ASSERT_OK_AND_ASSIGN(auto chain, Certificate::ParsePemChain(device.Pem() + ca.cert.Pem()));
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[1].Id(), ca.cert.Id());
}

TEST(X509Test, RsaIssuerAndKeys) {
  Ca ca = MakeCa(KeyType::kRsa2048);
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kRsa2048));
  ASSERT_OK_AND_ASSIGN(
      Certificate cert,
      Issue(key.public_key(),
            {.subject = {{{"CN", "d"}}}, .not_before = kNow, .not_after = kNow + absl::Hours(1)},
            &ca.cert, ca.key));
  EXPECT_TRUE(cert.SignedBy(ca.cert));
  EXPECT_EQ(cert.public_key().type(), "RSA");
}

TEST(X509Test, PrivateKeysRoundTripWithAndWithoutPassphrase) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP384));
  ASSERT_OK_AND_ASSIGN(std::string plain, key.ToPem());
  EXPECT_THAT(plain, HasSubstr("BEGIN PRIVATE KEY"));
  ASSERT_OK_AND_ASSIGN(std::string locked, key.ToPem("s3cret"));
  EXPECT_THAT(locked, HasSubstr("BEGIN ENCRYPTED PRIVATE KEY"));
  ASSERT_OK_AND_ASSIGN(PrivateKey back, PrivateKey::ParsePem(locked, "s3cret"));
  ASSERT_OK_AND_ASSIGN(std::string a, PublicKeyPem(back.public_key()));
  ASSERT_OK_AND_ASSIGN(std::string b, PublicKeyPem(key.public_key()));
  EXPECT_EQ(a, b);
  EXPECT_THAT(PrivateKey::ParsePem(locked, "wrong"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wrong passphrase")));
  EXPECT_THAT(PrivateKey::ParsePem(locked),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no passphrase")));
  EXPECT_THAT(PrivateKey::ParsePem("garbage"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(X509Test, EcKeyEncodingsMatchOpenssl) {
  // The EC fast paths (ec_der.h) against openssl's own encodings of the same key.
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384}) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(type));
    ASSERT_OK_AND_ASSIGN(std::string private_pem, key.ToPem());
    ASSERT_OK_AND_ASSIGN(std::string public_pem, PublicKeyPem(key.public_key()));
    const std::string file = WriteTemp("ec.key", private_pem);
    EXPECT_THAT(Openssl({"pkey", "-in", file, "-check", "-noout"}), HasSubstr("valid"));
    EXPECT_EQ(Openssl({"pkey", "-in", file, "-pubout"}), public_pem);
    EXPECT_EQ(Openssl({"pkey", "-in", file}), private_pem);  // openssl writes PKCS#8 too
  }
}

TEST(X509Test, RequestsMadeByOpensslParseAndBadOnesAreRefused) {
  const std::string key_file = WriteTemp("csr.key", "");
  Openssl({"ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key_file});
  const std::string csr =
      Openssl({"req", "-new", "-key", key_file, "-subj", "/C=US/O=Example/CN=sensor-9"});
  ASSERT_OK_AND_ASSIGN(CertificateRequest req, CertificateRequest::ParsePem(csr));
  EXPECT_EQ(req.subject().Get("CN"), "sensor-9");
  EXPECT_OK(CheckDeviceKey(req.public_key()));

  // A CSR whose signature was altered.
  std::string tampered = csr;
  const size_t end = tampered.find("-----END");
  tampered[end - 5] = tampered[end - 5] == 'A' ? 'B' : 'A';
  EXPECT_THAT(CertificateRequest::ParsePem(tampered), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CertificateRequest::ParsePem("nope"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CERTIFICATE REQUEST")));
}

TEST(X509Test, CreatedRequestsVerifyWithOpenssl) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string csr, CreateCsrPem(key, {{{"O", "Acme"}, {"CN", "dev-3"}}}));
  ASSERT_OK_AND_ASSIGN(CertificateRequest req, CertificateRequest::ParsePem(csr));
  EXPECT_EQ(req.subject().Get("CN"), "dev-3");
  EXPECT_THAT(Openssl({"req", "-verify", "-noout", "-in", WriteTemp("made.csr", csr)}),
              HasSubstr("verify OK"));
}

TEST(X509Test, DeviceKeyAllowlist) {
  auto check = [](KeyType t) {
    absl::StatusOr<PrivateKey> k = PrivateKey::Generate(t);
    EXPECT_OK(k.status());
    return CheckDeviceKey(k->public_key());
  };
  EXPECT_OK(check(KeyType::kEcP256));
  EXPECT_OK(check(KeyType::kEcP384));
  EXPECT_OK(check(KeyType::kRsa2048));
  const std::string small = WriteTemp("small.key", "");
  Openssl({"genrsa", "-out", small, "1024"});
  std::ifstream in(small);
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_OK_AND_ASSIGN(PrivateKey weak, PrivateKey::ParsePem(pem));
  EXPECT_THAT(CheckDeviceKey(weak.public_key()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RSA key of 1024 bits")));
}

TEST(X509Test, CrlListsRevokedSerialsAndVerifiesWithOpenssl) {
  Ca ca = MakeCa();
  ASSERT_OK_AND_ASSIGN(
      std::string der,
      MakeCrl(ca.cert, ca.key, {{"0a1b2c", kNow}, {"ff00", kNow + absl::Seconds(5)}}, 7, kNow,
              kNow + absl::Hours(24 * 7)));
  const std::string crl_file = WriteTemp("crl.pem", DerToPem(der, "X509 CRL"));
  const std::string ca_file = WriteTemp("crlca.pem", ca.cert.Pem());
  const std::string text = Openssl({"crl", "-in", crl_file, "-CAfile", ca_file, "-noout", "-text"});
  EXPECT_THAT(text, HasSubstr("verify OK"));
  EXPECT_THAT(text, HasSubstr("Serial Number: 0A1B2C"));
  EXPECT_THAT(text, HasSubstr("Serial Number: FF00"));
  EXPECT_THAT(text, HasSubstr("X509v3 CRL Number: \n                7"));
}

TEST(X509Test, BadInputIsRefused) {
  Ca ca = MakeCa();
  EXPECT_THAT(
      Certificate::ParsePem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Certificate::ParsePemChain(""), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string der = ca.cert.Der();
  EXPECT_THAT(Certificate::ParseDer(der + "x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      Issue(ca.key.public_key(),
            {.subject = {{{"CN", "x"}}}, .not_before = kNow, .not_after = kNow}, nullptr, ca.key),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("validity")));
  EXPECT_THAT(ParseKeyType("dsa"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fleetcore::tls
