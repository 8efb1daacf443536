// MQTT over TCP and over TLS, reactor style: the connection waits for readiness, then
// reads into its thread's shared buffer and writes with non-blocking system calls (TLS:
// OpenSSL on the socket itself). No buffer is tied up in a pending read, and OpenSSL
// releases its record buffers when idle, so an idle connection costs little memory.
#include "services/gateway/transports.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/tls/x509.h"

namespace fleetcore::gateway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Socket plumbing shared by both transports: readiness waits and closing. A readiness
// event calls OnReadEvent or OnWriteEvent; at most one wait per direction is pending.
class SocketConnection : public Connection {
 public:
  SocketConnection(tcp::socket socket, IoThread* thread, const ConnectionContext& context,
                   ListenerKind kind)
      : Connection(context, thread, kind, RemoteAddress(socket), LocalAddress(socket)),
        socket_(std::move(socket)) {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(tcp::no_delay(true), ec);
  }

 protected:
  int fd() { return socket_.native_handle(); }

  virtual void OnReadEvent() = 0;
  virtual void OnWriteEvent() = 0;

  void ArmRead() {
    if (read_armed_ || closed_) return;
    read_armed_ = true;
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this(), this](const boost::system::error_code& ec) {
                         read_armed_ = false;
                         if (closed_) return;
                         IoThread::EventScope scope(thread());
                         if (ec) return Finish(true);
                         OnReadEvent();
                       });
  }

  void ArmWrite() {
    if (write_armed_ || closed_) return;
    write_armed_ = true;
    socket_.async_wait(tcp::socket::wait_write,
                       [self = shared_from_this(), this](const boost::system::error_code& ec) {
                         write_armed_ = false;
                         if (closed_) return;
                         IoThread::EventScope scope(thread());
                         if (ec) return Finish(true);
                         OnWriteEvent();
                       });
  }

  // Closes the socket and ends the connection; `error`: it was lost, not closed.
  void Finish(bool error) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    OnClosed(error);
  }

  void Abort() override { Finish(false); }

  void StartClose() override {
    close_after_write_ = true;
    StartWrite();
  }

  // Writes out_ with `write_some` (returns bytes written, 0 when the socket is full, -1
  // on error, -2 when the write waits for a read event) until it is empty, then closes if asked to or takes more from the session.
  // Re-entrant calls (from OnDrained) only ask for another round.
  template <typename W>
  void WriteLoop(W&& write_some) {
    if (in_write_) {
      write_again_ = true;
      return;
    }
    if (write_armed_ || closed_) return;
    in_write_ = true;
    do {
      write_again_ = false;
      while (!out_.empty()) {
        const ssize_t n = write_some();
        if (n > 0) {
          thread()->stats().bytes_sent += static_cast<uint64_t>(n);
          continue;
        }
        in_write_ = false;
        if (n == 0) return ArmWrite();
        if (n == -2) return;  // OnReadEvent retries
        return Finish(/*error=*/true);
      }
      if (close_after_write_) {
        in_write_ = false;
        BeforeClose();
        return Finish(false);
      }
      OnDrained();
    } while (write_again_ && !closed_);
    in_write_ = false;
  }

  virtual void BeforeClose() {}

  tcp::socket socket_;
  bool closed_ = false;
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool close_after_write_ = false;
  bool in_write_ = false;
  bool write_again_ = false;
};

class TcpConnection final : public SocketConnection {
 public:
  using SocketConnection::SocketConnection;

  void Start() {
    Open();
    Begin(PeerCertificates{});
    ArmRead();
  }

 private:
  bool gather() const override { return true; }

  void OnReadEvent() override {
    IoThread* t = thread();
    // A few reads per wake-up, so one busy client does not starve the others.
    for (int i = 0; i < 4 && !closed_ && !closing() && reading_allowed(); ++i) {
      const ssize_t n = ::recv(fd(), t->scratch(), t->scratch_size(), 0);
      if (n > 0) {
        OnData(t->scratch(), static_cast<size_t>(n));
        if (static_cast<size_t>(n) < t->scratch_size()) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      return Finish(/*error=*/true);  // 0: the peer closed without DISCONNECT
    }
    if (!closing() && reading_allowed()) ArmRead();
  }

  void ResumeReading() override {
    if (!closing()) ArmRead();
  }

  void OnWriteEvent() override { StartWrite(); }

  void StartWrite() override {
    WriteLoop([this]() -> ssize_t {
      iovec iov[32];
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = out_.Peek(iov, 32);
      for (;;) {
        const ssize_t n = ::sendmsg(fd(), &msg, MSG_NOSIGNAL);
        if (n > 0) {
          out_.Consume(static_cast<size_t>(n));
          return n;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
      }
    });
  }
};

// TLS with OpenSSL straight on the non-blocking socket. OpenSSL may need the other
// direction than the one an operation is for (a read that must write a key update, a
// write that waits for a read); the *_wants_* flags carry that over to the next event.
class TlsConnection final : public SocketConnection {
 public:
  TlsConnection(tcp::socket socket, IoThread* thread, const ConnectionContext& context,
                SSL_CTX* ctx)
      : SocketConnection(std::move(socket), thread, context, ListenerKind::kMqtts),
        ssl_(SSL_new(ctx)) {}
  ~TlsConnection() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }

  void Start() {
    Open();
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd()) != 1) {
      ERR_clear_error();
      return Finish(true);
    }
    SSL_set_accept_state(ssl_);
    Handshake();
  }

 private:
  bool gather() const override { return false; }

  void ResumeReading() override {
    if (handshaken_ && !closing()) ReadLoop();  // OpenSSL may hold a record already
  }

  void OnReadEvent() override {
    if (!handshaken_) return Handshake();
    if (write_wants_read_) {
      write_wants_read_ = false;
      StartWrite();
    }
    ReadLoop();
  }

  void OnWriteEvent() override {
    if (!handshaken_) return Handshake();
    if (read_wants_write_) {
      read_wants_write_ = false;
      ReadLoop();
    }
    StartWrite();
  }

  void Handshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      handshaken_ = true;
      if (metrics() != nullptr) {
        metrics()->TlsHandshake(info().listener, SSL_session_reused(ssl_) ? "resumed" : "full");
      }
      Begin(PeerCertificatesOf(ssl_));
      return ReadLoop();
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) return ArmRead();
    if (e == SSL_ERROR_WANT_WRITE) return ArmWrite();
    char reason[160] = "connection closed";
    if (const unsigned long code = ERR_peek_error()) {
      ERR_error_string_n(code, reason, sizeof(reason));
    }
    ERR_clear_error();
    log::Debug("TLS handshake failed", {{"remote", info().remote_address}, {"error", reason}});
    if (metrics() != nullptr) metrics()->TlsHandshake(info().listener, "failed");
    Finish(true);
  }

  void ReadLoop() {
    IoThread* t = thread();
    for (int i = 0; i < 16; ++i) {
      if (closed_ || closing() || !reading_allowed()) return;
      ERR_clear_error();
      const int n = SSL_read(ssl_, t->scratch(), static_cast<int>(t->scratch_size()));
      if (n > 0) {
        OnData(t->scratch(), static_cast<size_t>(n));
        continue;
      }
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_READ) return ArmRead();
      if (e == SSL_ERROR_WANT_WRITE) {
        read_wants_write_ = true;
        return ArmWrite();
      }
      // close_notify, a reset, or a TLS error: the connection is gone.
      ERR_clear_error();
      return Finish(e != SSL_ERROR_ZERO_RETURN);
    }
    // Still data after a burst: continue once the other connections had their turn.
    thread()->Post([self = shared_from_this(), this] { ReadLoop(); });
  }

  void StartWrite() override {
    if (!handshaken_) return;
    WriteLoop([this]() -> ssize_t {
      // A retried SSL_write must repeat its length (PARTIAL_WRITE and
      // ACCEPT_MOVING_WRITE_BUFFER let the bytes move and go in parts).
      const absl::string_view front = out_.Front();
      const size_t len =
          pending_len_ > 0 ? pending_len_ : std::min<size_t>(front.size(), 16384);
      ERR_clear_error();
      const int n = SSL_write(ssl_, front.data(), static_cast<int>(len));
      if (n > 0) {
        pending_len_ = 0;
        out_.Consume(static_cast<size_t>(n));
        return n;
      }
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_WRITE) {
        pending_len_ = len;
        return 0;
      }
      if (e == SSL_ERROR_WANT_READ) {
        pending_len_ = len;
        write_wants_read_ = true;
        ArmRead();
        return -2;
      }
      ERR_clear_error();
      return -1;
    });
  }

  void BeforeClose() override {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // close_notify, best effort: the peer's is not awaited
    ERR_clear_error();
  }

  SSL* ssl_;
  bool handshaken_ = false;
  bool read_wants_write_ = false;
  bool write_wants_read_ = false;
  size_t pending_len_ = 0;
};

}  // namespace

namespace {

std::string AddressText(const tcp::endpoint& ep, const boost::system::error_code& ec) {
  if (ec) return "unknown";
  return ep.address().is_v6() ? absl::StrCat("[", ep.address().to_string(), "]:", ep.port())
                              : absl::StrCat(ep.address().to_string(), ":", ep.port());
}

}  // namespace

std::string RemoteAddress(const tcp::socket& s) {
  boost::system::error_code ec;
  const tcp::endpoint ep = s.remote_endpoint(ec);
  return AddressText(ep, ec);
}

std::string LocalAddress(const tcp::socket& s) {
  boost::system::error_code ec;
  const tcp::endpoint ep = s.local_endpoint(ec);
  return AddressText(ep, ec);
}

std::string IpOf(absl::string_view remote_address) {
  absl::string_view ip = remote_address.substr(0, remote_address.rfind(':'));
  if (ip.size() > 2 && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
  return std::string(ip);
}

PeerCertificates PeerCertificatesOf(SSL* ssl) {
  PeerCertificates out;
  if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) out.server_name = sni;
  auto der_of = [](X509* cert) {
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert, &der);
    if (len <= 0) return std::string();
    std::string s(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    return s;
  };
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (leaf == nullptr) return out;
  out.chain_der.push_back(der_of(leaf));
  out.certificate_id = tls::Sha256Hex(out.chain_der[0]);
  // On a server, the peer's chain as sent, without the leaf.
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      X509* c = sk_X509_value(chain, i);
      if (X509_cmp(c, leaf) != 0) out.chain_der.push_back(der_of(c));
    }
  }
  return out;
}

void StartMqttConnection(tcp::socket socket, IoThread* thread, const ConnectionContext& context,
                         TlsContext* tls) {
  if (tls != nullptr) {
    auto c = std::make_shared<TlsConnection>(std::move(socket), thread, context, tls->get());
    c->Start();
  } else {
    auto c = std::make_shared<TcpConnection>(std::move(socket), thread, context,
                                             ListenerKind::kMqtt);
    c->Start();
  }
}

}  // namespace fleetcore::gateway
