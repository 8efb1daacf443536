#include "services/gateway/tls_context.h"

#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace fleetcore::gateway {
namespace {

std::string OpensslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// Accepts whatever chain the client presents: the broker decides at CONNECT, when it
// knows the registered CAs of the moment (the security issue's resolver).
int AcceptAnyChain(int, X509_STORE_CTX*) { return 1; }

// ALPN as AWS IoT Core answers it on port 443: "x-amzn-mqtt-ca" (MQTT with a client
// certificate), "mqtt" (MQTT with a custom authorizer) and "x-amzn-http-ca" (HTTPS publish
// with a client certificate, as the device SDKs' HTTP clients ask on 443). A client that
// offers none goes on without ALPN, as on 8883 and 8443.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  static const unsigned char kServed[] = "\x0ex-amzn-mqtt-ca\x04mqtt\x0ex-amzn-http-ca";
  unsigned char* chosen = nullptr;
  unsigned char chosen_len = 0;
  if (SSL_select_next_proto(&chosen, &chosen_len, kServed, sizeof(kServed) - 1, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = chosen;
    *outlen = chosen_len;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

struct TlsContext::Pair {
  X509* leaf = nullptr;
  STACK_OF(X509)* chain = nullptr;  // the certificates after the leaf
  EVP_PKEY* key = nullptr;
  Pair() = default;
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  ~Pair() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

// What says a file changed: a renewal rewrites it, or (Kubernetes) swaps a link to it.
struct TlsContext::FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
  }
};

namespace {

bool Stat(const std::string& file, TlsContext::FileStamp* out) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return false;
  out->dev = st.st_dev;
  out->ino = st.st_ino;
  out->size = st.st_size;
  out->mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

// No passphrase prompt on the terminal: an encrypted key is refused.
int NoPassphrase(char*, int, int, void*) { return 0; }

// The endpoint's certificate (the first in the file), its chain (the rest) and its key,
// which must match.
absl::StatusOr<std::shared_ptr<const TlsContext::Pair>> ReadPair(const TlsOptions& options) {
  auto pair = std::make_shared<TlsContext::Pair>();
  auto cannot = [](const char* flag, const std::string& file, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", file, ": cannot use it: ", why));
  };
  BIO* bio = BIO_new_file(options.cert_file.c_str(), "r");
  if (bio == nullptr) return cannot("--endpoint-cert-file", options.cert_file, OpensslError());
  pair->leaf = PEM_read_bio_X509(bio, nullptr, NoPassphrase, nullptr);
  pair->chain = sk_X509_new_null();
  while (pair->leaf != nullptr) {
    X509* next = PEM_read_bio_X509(bio, nullptr, NoPassphrase, nullptr);
    if (next == nullptr) break;
    sk_X509_push(pair->chain, next);
  }
  BIO_free(bio);
  ERR_clear_error();  // the end of the file
  if (pair->leaf == nullptr) {
    return cannot("--endpoint-cert-file", options.cert_file, "no PEM certificate in it");
  }
  bio = BIO_new_file(options.key_file.c_str(), "r");
  if (bio == nullptr) return cannot("--endpoint-key-file", options.key_file, OpensslError());
  pair->key = PEM_read_bio_PrivateKey(bio, nullptr, NoPassphrase, nullptr);
  BIO_free(bio);
  if (pair->key == nullptr) {
    return cannot("--endpoint-key-file", options.key_file,
                  "no PEM private key in it (an encrypted key is not supported): " +
                      OpensslError());
  }
  if (X509_check_private_key(pair->leaf, pair->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "--endpoint-key-file ", options.key_file, " does not match the certificate of ",
        "--endpoint-cert-file ", options.cert_file));
  }
  return std::shared_ptr<const TlsContext::Pair>(std::move(pair));
}

// A container secret is often mounted readable by all; say so rather than refuse.
void WarnIfReadableByOthers(const std::string& key_file) {
  struct stat st {};
  if (::stat(key_file.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    log::Warn("the endpoint's private key is readable by group or others; chmod 600 it",
              {{"file", key_file}});
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Create(const TlsOptions& options) {
  absl::StatusOr<std::shared_ptr<const Pair>> pair = ReadPair(options);
  if (!pair.ok()) return pair.status();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError("SSL_CTX_new: " + OpensslError());
  auto out = std::unique_ptr<TlsContext>(new TlsContext(ctx, options));
  if (options.min_version != "1.2" && options.min_version != "1.3") {
    return absl::InvalidArgumentError(absl::StrCat("--tls-min-version ", options.min_version,
                                                   ": 1.2 or 1.3"));
  }
  SSL_CTX_set_min_proto_version(ctx,
                                options.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their 16 KB record buffers back; partial writes and moving
  // buffers suit the non-blocking writer (transports.cc).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_cert_and_key(ctx, (*pair)->leaf, (*pair)->key, (*pair)->chain, 1) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--endpoint-cert-file ", options.cert_file,
                                                   ": cannot use it: ", OpensslError()));
  }
  WarnIfReadableByOthers(options.key_file);
  {
    absl::MutexLock lock(&out->mu_);
    out->pair_ = *std::move(pair);
    Stat(options.cert_file, out->cert_stamp_.get());
    Stat(options.key_file, out->key_stamp_.get());
  }
  // A renewed pair replaces the SSL_CTX's own in each handshake (ReloadIfChanged).
  SSL_CTX_set_cert_cb(ctx, UseCurrentPair, out.get());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, AcceptAnyChain);
  SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, nullptr);
  // Resumption for reconnecting devices, one ticket per handshake. With a session cache the
  // ticket only names a session kept here (stateful tickets, SSL_OP_NO_TICKET in TLS 1.3):
  // resuming then costs no decoding, where a stateless ticket carries the session and its
  // client certificate, which OpenSSL 3.0 decodes again at a cost near half a handshake.
  // Sessions expire with the default timeout (2 hours); the oldest go when the cache is full.
  // A mutual-TLS session keeps its decoded client certificate: about 6 KB each.
  static const unsigned char kSessionContext[] = "fleetcore-gateway";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  SSL_CTX_set_num_tickets(ctx, 1);
  if (options.session_cache_size > 0) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, options.session_cache_size);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  return out;
}

TlsContext::TlsContext(SSL_CTX* ctx, TlsOptions options)
    : ctx_(ctx),
      options_(std::move(options)),
      cert_stamp_(std::make_unique<FileStamp>()),
      key_stamp_(std::make_unique<FileStamp>()) {}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

absl::StatusOr<bool> TlsContext::ReloadIfChanged(bool force) {
  FileStamp cert, key;
  if (!Stat(options_.cert_file, &cert) || !Stat(options_.key_file, &key)) {
    return false;  // being replaced: the next call looks again
  }
  {
    absl::MutexLock lock(&mu_);
    if (!force && cert == *cert_stamp_ && key == *key_stamp_) return false;
    *cert_stamp_ = cert;
    *key_stamp_ = key;
  }
  absl::StatusOr<std::shared_ptr<const Pair>> pair = ReadPair(options_);
  if (!pair.ok()) return pair.status();
  WarnIfReadableByOthers(options_.key_file);
  {
    absl::MutexLock lock(&mu_);
    pair_ = *std::move(pair);
  }
  replaced_.store(true, std::memory_order_release);
  return true;
}

std::shared_ptr<const TlsContext::Pair> TlsContext::Current() const {
  absl::MutexLock lock(&mu_);
  return pair_;
}

int TlsContext::UseCurrentPair(SSL* ssl, void* self) {
  auto* tls = static_cast<TlsContext*>(self);
  if (!tls->replaced_.load(std::memory_order_acquire)) return 1;
  const std::shared_ptr<const Pair> pair = tls->Current();
  return SSL_use_cert_and_key(ssl, pair->leaf, pair->key, pair->chain, 1) == 1 ? 1 : 0;
}

std::string TlsContext::DnsName() const {
  const std::shared_ptr<const Pair> pair = Current();
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(pair->leaf, NID_subject_alt_name, nullptr, nullptr));
  std::string out;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names) && out.empty(); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                     static_cast<size_t>(ASN1_STRING_length(dns)));
    if (text.find('*') == std::string::npos) out = std::move(text);
  }
  GENERAL_NAMES_free(names);
  return out;
}

absl::Time TlsContext::not_after() const {
  const std::shared_ptr<const Pair> pair = Current();
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(pair->leaf), &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

}  // namespace fleetcore::gateway
