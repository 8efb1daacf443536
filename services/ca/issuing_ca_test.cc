// The issuing CA's files: made once with private permissions, loaded afterwards, refused
// when the key is readable by others or does not match the certificate.
#include "services/ca/issuing_ca.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::ca {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/issuing-ca-XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  return dir != nullptr ? std::string(dir) : "";
}

int Mode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

TEST(IssuingCaTest, MadeOnceThenLoaded) {
  const std::string dir = TempDir() + "/ca";
  ASSERT_OK_AND_ASSIGN(auto made, IssuingCa::LoadOrCreate({.dir = dir}, kNow));
  EXPECT_TRUE(made->created());
  EXPECT_TRUE(made->certificate().is_ca());
  EXPECT_EQ(made->certificate().subject().Get("CN"), "fleetcore issuing CA");
  EXPECT_EQ(Mode(dir), 0700);
  EXPECT_EQ(Mode(dir + "/ca.key"), 0600);
  EXPECT_EQ(Mode(dir + "/ca.pem"), 0644);

  ASSERT_OK_AND_ASSIGN(auto loaded, IssuingCa::LoadOrCreate({.dir = dir}, kNow));
  EXPECT_FALSE(loaded->created());
  EXPECT_EQ(loaded->id(), made->id());

  // It signs device certificates that chain to it, capped at its own expiry.
  ASSERT_OK_AND_ASSIGN(tls::PrivateKey key, tls::PrivateKey::Generate(tls::KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(tls::Certificate device, loaded->Sign(key.public_key(), {{{"CN", "d"}}},
                                                             kNow, absl::Hours(24 * 365 * 100)));
  EXPECT_TRUE(device.SignedBy(loaded->certificate()));
  EXPECT_EQ(device.not_after(), loaded->certificate().not_after());
}

TEST(IssuingCaTest, RefusesAKeyOthersCanRead) {
  const std::string dir = TempDir() + "/ca";
  ASSERT_OK(IssuingCa::LoadOrCreate({.dir = dir}, kNow).status());
  ASSERT_EQ(chmod((dir + "/ca.key").c_str(), 0644), 0);
  EXPECT_THAT(IssuingCa::LoadOrCreate({.dir = dir}, kNow),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("has mode 0644: group or others can read it; make it private "
                                 "with `chmod 600")));
}

TEST(IssuingCaTest, EncryptedKeyNeedsItsPassphrase) {
  const std::string dir = TempDir() + "/ca";
  ASSERT_OK(IssuingCa::LoadOrCreate({.dir = dir, .passphrase = "s3cret"}, kNow).status());
  std::ifstream in(dir + "/ca.key");
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(pem, HasSubstr("ENCRYPTED PRIVATE KEY"));
  EXPECT_OK(IssuingCa::LoadOrCreate({.dir = dir, .passphrase = "s3cret"}, kNow).status());
  EXPECT_THAT(IssuingCa::LoadOrCreate({.dir = dir, .passphrase = "wrong"}, kNow),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("wrong passphrase")));
  EXPECT_THAT(IssuingCa::LoadOrCreate({.dir = dir}, kNow),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no passphrase")));
}

TEST(IssuingCaTest, ConfiguredFilesMustExistAndMatch) {
  const std::string a = TempDir() + "/a";
  const std::string b = TempDir() + "/b";
  ASSERT_OK(IssuingCa::LoadOrCreate({.dir = a}, kNow).status());
  ASSERT_OK(IssuingCa::LoadOrCreate({.dir = b}, kNow).status());
  EXPECT_OK(IssuingCa::LoadOrCreate({.cert_file = a + "/ca.pem", .key_file = a + "/ca.key"}, kNow)
                .status());
  EXPECT_THAT(
      IssuingCa::LoadOrCreate({.cert_file = a + "/ca.pem", .key_file = b + "/ca.key"}, kNow),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("does not belong")));
  EXPECT_THAT(
      IssuingCa::LoadOrCreate({.cert_file = a + "/nope.pem", .key_file = a + "/ca.key"}, kNow),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cannot read")));
  EXPECT_THAT(IssuingCa::LoadOrCreate({.cert_file = a + "/ca.pem"}, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("go together")));
}

}  // namespace
}  // namespace fleetcore::ca
