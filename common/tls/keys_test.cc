#include "common/tls/keys.h"

#include <fstream>
#include <sstream>

#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "gtest/gtest.h"

namespace fleetcore::tls {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An RSA key pair and a signature of `data`, made with the openssl command.
struct Signed {
  std::string public_pem;
  std::string signature;
};

Signed SignWithOpenssl(const std::string& tag, std::vector<std::string> genpkey_args,
                       const std::string& data) {
  const std::string dir = ::testing::TempDir() + "/keys-" + tag;
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  std::ofstream(dir + "/data") << data;
  auto run = [](std::vector<std::string> args) {
    auto r = testing::Run(args);
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->err : r.status().ToString());
  };
  genpkey_args.insert(genpkey_args.begin(), {"/usr/bin/openssl", "genpkey"});
  genpkey_args.insert(genpkey_args.end(), {"-out", dir + "/key.pem"});
  run(genpkey_args);
  run({"/usr/bin/openssl", "pkey", "-in", dir + "/key.pem", "-pubout", "-out", dir + "/pub.pem"});
  run({"/usr/bin/openssl", "dgst", "-sha256", "-sign", dir + "/key.pem", "-out", dir + "/sig",
       dir + "/data"});
  return {Read(dir + "/pub.pem"), Read(dir + "/sig")};
}

TEST(KeysTest, VerifiesAnRsaSignatureAndRejectsTampering) {
  Signed s = SignWithOpenssl("rsa", {"-algorithm", "RSA"}, "allow-me");
  ASSERT_OK_AND_ASSIGN(PublicKey key, ParsePublicKeyPem(s.public_pem));
  EXPECT_EQ(key.type(), "RSA");
  EXPECT_EQ(key.bits(), 2048);
  EXPECT_TRUE(VerifySha256(key, "allow-me", s.signature));
  EXPECT_FALSE(VerifySha256(key, "allow-me!", s.signature));
  std::string bad = s.signature;
  bad[10] ^= 1;
  EXPECT_FALSE(VerifySha256(key, "allow-me", bad));
  EXPECT_FALSE(VerifySha256(key, "allow-me", ""));
}

TEST(KeysTest, VerifiesAnEcdsaSignature) {
  Signed s =
      SignWithOpenssl("ec", {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, "token");
  ASSERT_OK_AND_ASSIGN(PublicKey key, ParsePublicKeyPem(s.public_pem));
  EXPECT_EQ(key.type(), "EC");
  EXPECT_EQ(key.bits(), 256);
  EXPECT_TRUE(VerifySha256(key, "token", s.signature));
  EXPECT_FALSE(VerifySha256(key, "other", s.signature));
}

TEST(KeysTest, RejectsWhatIsNotAPublicKey) {
  EXPECT_THAT(ParsePublicKeyPem("hello"), testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParsePublicKeyPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fleetcore::tls
