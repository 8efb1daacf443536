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

// Rotation: the previous key opens what it sealed and says so; the current one seals.
TEST(SecretBox, PreviousKeysOpenWhatTheySealed) {
  const SecretBox old_box = SecretBox::WithKey(std::string(32, '\x01'));
  const std::string sealed_before = old_box.Seal("secret", "k");
  const SecretBox rotated =
      SecretBox::WithKey(std::string(32, '\x02'), {std::string(32, '\x01')});
  bool stale = false;
  absl::StatusOr<std::string> opened = rotated.Open(sealed_before, "k", &stale);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "secret");
  EXPECT_TRUE(stale);
  const std::string sealed_now = rotated.Seal("secret", "k");
  opened = rotated.Open(sealed_now, "k", &stale);
  ASSERT_TRUE(opened.ok());
  EXPECT_FALSE(stale);
  // The new key alone opens what was sealed again, not what the old one sealed.
  const SecretBox new_only = SecretBox::WithKey(std::string(32, '\x02'));
  EXPECT_TRUE(new_only.Open(sealed_now, "k").ok());
  EXPECT_THAT(new_only.Open(sealed_before, "k"), StatusIs(absl::StatusCode::kDataLoss));

  // From files: a previous key file is read (and must be private) but never made.
  const std::string dir = TempDir();
  ASSERT_TRUE(WriteNewFile(dir + "/old.key", std::string(64, '1') + "\n", 0600).ok());
  absl::StatusOr<SecretBox> loaded =
      SecretBox::Load(dir + "/new.key", /*create=*/true, {dir + "/old.key"});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const std::string sealed_by_old = SecretBox::WithKey(std::string(32, '\x11')).Seal("x", "c");
  EXPECT_TRUE(loaded->Open(sealed_by_old, "c", &stale).ok());
  EXPECT_TRUE(stale);
  EXPECT_THAT(SecretBox::Load(dir + "/new.key", true, {dir + "/missing.key"}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("missing.key")));
}

}  // namespace
}  // namespace fleetcore::tls
