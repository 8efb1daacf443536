#include "services/gateway/tls_context.h"

#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

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
// certificate) and "mqtt" (MQTT with a custom authorizer). A client that offers neither
// goes on without ALPN, as on 8883.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  static const unsigned char kServed[] = "\x0ex-amzn-mqtt-ca\x04mqtt";
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

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Create(const TlsOptions& options) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError("SSL_CTX_new: " + OpensslError());
  auto out = std::unique_ptr<TlsContext>(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their 16 KB record buffers back; partial writes and moving
  // buffers suit the non-blocking writer (transports.cc).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--endpoint-cert-file ", options.cert_file,
                                                   ": cannot use it: ", OpensslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--endpoint-key-file ", options.key_file,
                                                   ": cannot use it: ", OpensslError()));
  }
  // A container secret is often mounted readable by all; say so rather than refuse.
  struct stat st {};
  if (::stat(options.key_file.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    log::Warn("the endpoint's private key is readable by group or others; chmod 600 it",
              {{"file", options.key_file}});
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(
        "--endpoint-key-file does not match the certificate of --tls-cert-file");
  }
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

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

}  // namespace fleetcore::gateway
