// The gateway's TLS server configuration: one OpenSSL SSL_CTX shared by the MQTT/TLS,
// WebSocket-over-TLS and HTTPS listeners. TLS 1.2 and 1.3 only; client certificates are
// requested and captured (their chain is judged at CONNECT, against trust anchors that
// change at run time), not verified by OpenSSL.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

typedef struct ssl_ctx_st SSL_CTX;  // openssl/ssl.h, not included from headers
typedef struct ssl_st SSL;

namespace fleetcore::gateway {

struct TlsOptions {
  std::string cert_file;  // PEM server certificate, followed by its chain
  std::string key_file;   // PEM private key (not encrypted; file mode 0600)
  // Sessions kept in memory for resumption (the ticket names one); 0: stateless tickets,
  // which carry the session, client certificate included, encrypted to the client.
  int session_cache_size = 10000;
  // The oldest TLS version a client may use: "1.2" (AWS's default policy) or "1.3".
  std::string min_version = "1.2";
};

class TlsContext {
 public:
  // INVALID_ARGUMENT naming the file when the certificate or key cannot be read, or they
  // do not match.
  static absl::StatusOr<std::unique_ptr<TlsContext>> Create(const TlsOptions& options);
  ~TlsContext();

  SSL_CTX* get() const { return ctx_; }

  // Reads the certificate and key files again when either changed since they were last
  // read (a renewal: cert-manager, certbot), or always with `force` (SIGHUP). Handshakes
  // from then on present the new pair; connections made before keep theirs. True when a new
  // pair is in use; false when nothing changed (or a file cannot be read right now: the
  // next call tries again); INVALID_ARGUMENT when the files do not make a pair (the
  // previous one stays, and the files are not read again until they change). Any thread.
  absl::StatusOr<bool> ReloadIfChanged(bool force);

  // The notAfter of the certificate in use.
  absl::Time not_after() const;
  // The first DNS name (not a wildcard) among the subjectAltNames of the certificate in
  // use; empty if none.
  std::string DnsName() const;

  // Defined in tls_context.cc: a certificate, its chain and key; a file's identity.
  struct Pair;
  struct FileStamp;

 private:
  TlsContext(SSL_CTX* ctx, TlsOptions options);
  static int UseCurrentPair(SSL* ssl, void* self);
  // The pair in use (a reload may replace it at any time).
  std::shared_ptr<const Pair> Current() const;

  SSL_CTX* ctx_;
  const TlsOptions options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Pair> pair_ ABSL_GUARDED_BY(mu_);
  // Set once a pair replaced the one the SSL_CTX was made with; until then handshakes use
  // the SSL_CTX's own at no cost.
  std::atomic<bool> replaced_{false};
  std::unique_ptr<FileStamp> cert_stamp_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<FileStamp> key_stamp_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleetcore::gateway
