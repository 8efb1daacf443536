// The gateway's TLS server configuration: one OpenSSL SSL_CTX shared by the MQTT/TLS,
// WebSocket-over-TLS and HTTPS listeners. TLS 1.2 and 1.3 only; client certificates are
// requested and captured (their chain is judged at CONNECT, against trust anchors that
// change at run time), not verified by OpenSSL.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

typedef struct ssl_ctx_st SSL_CTX;  // openssl/ssl.h, not included from headers

namespace fleetcore::gateway {

struct TlsOptions {
  std::string cert_file;  // PEM server certificate, followed by its chain
  std::string key_file;   // PEM private key (not encrypted; file mode 0600)
  // Sessions kept in memory for resumption (the ticket names one); 0: stateless tickets,
  // which carry the session, client certificate included, encrypted to the client.
  int session_cache_size = 10000;
};

class TlsContext {
 public:
  // INVALID_ARGUMENT naming the file when the certificate or key cannot be read, or they
  // do not match.
  static absl::StatusOr<std::unique_ptr<TlsContext>> Create(const TlsOptions& options);
  ~TlsContext();

  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

}  // namespace fleetcore::gateway
