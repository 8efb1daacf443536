#include "common/tls/secret_box.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/tls/secret_file.h"

namespace fleetcore::tls {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* U(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

namespace {

// The key in `path`: 64 hex digits in a file private to its owner.
absl::StatusOr<std::string> ReadKey(const std::string& path) {
  absl::Status private_file = CheckPrivateFile(path, "the sealing key");
  if (!private_file.ok()) return private_file;
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  const absl::string_view hex = absl::StripAsciiWhitespace(*text);
  bool valid = hex.size() == 2 * kKeyBytes;
  for (char c : hex) valid = valid && absl::ascii_isxdigit(c);
  if (!valid) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the sealing key ", path, " must hold 64 hex digits (32 random bytes); make one with "
        "`openssl rand -hex 32 > ", path, "`"));
  }
  return absl::HexStringToBytes(hex);
}

}  // namespace

absl::StatusOr<SecretBox> SecretBox::Load(const std::string& path, bool create,
                                          const std::vector<std::string>& previous) {
  if (create && access(path.c_str(), F_OK) != 0) {
    std::string key(kKeyBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyBytes) != 1) {
      return absl::InternalError("no randomness for a new sealing key");
    }
    absl::Status written = WriteNewFile(path, absl::StrCat(absl::BytesToHexString(key), "\n"),
                                        0600);
    // Another process that created it first wins; its key is read below.
    if (!written.ok() && !absl::IsAlreadyExists(written)) return written;
  }
  std::vector<std::string> paths = {path};
  paths.insert(paths.end(), previous.begin(), previous.end());
  std::vector<std::string> keys;
  for (const std::string& p : paths) {
    absl::StatusOr<std::string> key = ReadKey(p);
    if (!key.ok()) return key.status();
    keys.push_back(*std::move(key));
  }
  return SecretBox(std::move(keys));
}

SecretBox SecretBox::WithKey(std::string key, std::vector<std::string> previous) {
  previous.insert(previous.begin(), std::move(key));
  return SecretBox(std::move(previous));
}

std::string SecretBox::Seal(absl::string_view plaintext, absl::string_view context) const {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int n = 0;
  // Failures here are out of memory or a broken OpenSSL: nothing a caller could handle.
  if (RAND_bytes(bytes, kNonceBytes) != 1 || ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(keys_[0]), bytes) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, U(context), static_cast<int>(context.size())) !=
          1 ||
      EVP_EncryptUpdate(ctx.get(), bytes + kNonceBytes, &n, U(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), bytes + kNonceBytes + n, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          bytes + kNonceBytes + plaintext.size()) != 1) {
    std::abort();
  }
  return absl::Base64Escape(out);
}

absl::StatusOr<std::string> SecretBox::Open(absl::string_view sealed,
                                            absl::string_view context, bool* stale) const {
  std::string raw;
  if (!absl::Base64Unescape(sealed, &raw) || raw.size() < kNonceBytes + kTagBytes) {
    return absl::DataLossError("a sealed secret is not base64 of nonce, ciphertext and tag");
  }
  const size_t size = raw.size() - kNonceBytes - kTagBytes;
  auto* bytes = reinterpret_cast<unsigned char*>(raw.data());
  for (size_t k = 0; k < keys_.size(); ++k) {
    std::string out(size, '\0');
    CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    int n = 0;
    if (ctx != nullptr &&
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(keys_[k]), bytes) == 1 &&
        EVP_DecryptUpdate(ctx.get(), nullptr, &n, U(context),
                          static_cast<int>(context.size())) == 1 &&
        EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n,
                          bytes + kNonceBytes, static_cast<int>(size)) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                            bytes + kNonceBytes + size) == 1 &&
        EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &n) ==
            1) {
      if (stale != nullptr) *stale = k > 0;
      return out;
    }
  }
  return absl::DataLossError(
      "a sealed secret does not open with this sealing key (another key file, or altered)");
}

}  // namespace fleetcore::tls
