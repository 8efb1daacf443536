// SecretBox: what it seals opens only with its key and context, and its key file is made,
// kept and refused as a private key's is.
#include "common/tls/secret_box.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include "common/testing/status_matchers.h"
#include "common/tls/secret_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::tls {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/secret-box-XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

TEST(SecretBox, OpensWhatItSealedInTheSameContextOnly) {
  SecretBox box = SecretBox::WithKey(std::string(32, '\x01'));
  const std::string sealed = box.Seal("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AKIAONE");
  EXPECT_THAT(sealed, ::testing::Not(HasSubstr("wJalr")));
  absl::StatusOr<std::string> opened = box.Open(sealed, "AKIAONE");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
  // Each seal has its own nonce.
  EXPECT_NE(box.Seal("same", "c"), box.Seal("same", "c"));
  EXPECT_THAT(box.Open(sealed, "AKIATWO"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(SecretBox::WithKey(std::string(32, '\x02')).Open(sealed, "AKIAONE"),
              StatusIs(absl::StatusCode::kDataLoss));
  std::string altered = sealed;
  altered[20] = altered[20] == 'A' ? 'B' : 'A';
  EXPECT_THAT(box.Open(altered, "AKIAONE"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(box.Open("not base64!", "AKIAONE"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(box.Open("", "AKIAONE"), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(SecretBox, MakesAPrivateKeyFileAndReadsItAgain) {
  const std::string path = TempDir() + "/sealing.key";
  EXPECT_THAT(SecretBox::Load(path, /*create=*/false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cannot stat")));
  absl::StatusOr<SecretBox> made = SecretBox::Load(path, /*create=*/true);
  ASSERT_TRUE(made.ok()) << made.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  absl::StatusOr<std::string> text = ReadFile(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->size(), 65u);  // 64 hex digits and a newline
  // The same key next time: what was sealed opens.
  const std::string sealed = made->Seal("secret", "k");
  absl::StatusOr<SecretBox> again = SecretBox::Load(path, /*create=*/true);
  ASSERT_TRUE(again.ok()) << again.status();
  absl::StatusOr<std::string> opened = again->Open(sealed, "k");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "secret");
}

TEST(SecretBox, RefusesAKeyFileOthersCanReadOrThatIsNotAKey) {
  const std::string dir = TempDir();
  const std::string open_file = dir + "/open.key";
  ASSERT_TRUE(WriteNewFile(open_file, std::string(64, 'a'), 0644).ok());
  chmod(open_file.c_str(), 0644);  // whatever the umask made it
  EXPECT_THAT(SecretBox::Load(open_file, false),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("has mode 0644: group or others can read it")));
  const std::string short_file = dir + "/short.key";
  ASSERT_TRUE(WriteNewFile(short_file, "abcd\n", 0600).ok());
  EXPECT_THAT(SecretBox::Load(short_file, true),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("openssl rand -hex 32")));
  EXPECT_THAT(WriteNewFile(short_file, "again", 0600), StatusIs(absl::StatusCode::kAlreadyExists));
}

}  // namespace
}  // namespace fleetcore::tls
