#include "services/gateway/listeners.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "common/log/log.h"
#include "common/net/listen_address.h"
#include "services/gateway/client_hello.h"
#include "services/gateway/rate_bucket.h"
#include "services/gateway/transports.h"

namespace fleetcore::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

const char* ListenerKindName(Listener::Kind kind) {
  switch (kind) {
    case Listener::Kind::kMqtt: return "mqtt";
    case Listener::Kind::kMqtts: return "mqtts";
    case Listener::Kind::kHttp: return "http";
    case Listener::Kind::kHttps: return "https";
  }
  return "unknown";
}

struct Listener::Impl : std::enable_shared_from_this<Listener::Impl> {
  Impl(Kind k, std::vector<IoThread*> t, const ConnectionContext& c, TlsContext* tls_context)
      : kind(k),
        threads(std::move(t)),
        context(c),
        tls(tls_context),
        acceptor(threads[0]->context()),
        backoff(threads[0]->context()) {
    if (kind == Kind::kHttps) {
      // Beast's TLS stream wants an Asio context; it shares our SSL_CTX (and takes a
      // reference of its own).
      SSL_CTX_up_ref(tls->get());
      asio_tls = std::make_unique<asio::ssl::context>(tls->get());
    }
  }

  void Accept() {
    IoThread* target = threads[next++ % threads.size()];
    acceptor.async_accept(
        target->context(),
        [self = shared_from_this(), target](const boost::system::error_code& ec,
                                            tcp::socket socket) {
          if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
          if (ec) {
            // Out of file descriptors, most likely: wait a little rather than spin.
            log::Warn("accept failed", {{"listener", ListenerKindName(self->kind)},
                                        {"error", ec.message()}});
            self->backoff.expires_after(std::chrono::milliseconds(100));
            self->backoff.async_wait([self](const boost::system::error_code& e) {
              if (!e) self->Accept();
            });
            return;
          }
          // Over --max-connections an MQTT socket is closed at once, before any TLS work.
          const bool mqtt = self->kind == Kind::kMqtt || self->kind == Kind::kMqtts;
          if (mqtt && RefuseOverLimit(self->context.connections, self->context.metrics,
                                      self->kind == Kind::kMqtt ? ListenerKind::kMqtt
                                                                : ListenerKind::kMqtts)) {
            boost::system::error_code ignored;
            socket.close(ignored);
            return self->Accept();
          }
          target->Post([self, target, s = std::make_shared<tcp::socket>(std::move(socket))] {
            self->StartConnection(std::move(*s), target);
          });
          self->AcceptWhenAllowed();
        });
  }

  // --max-accepts-per-second: a token bucket of one second's worth. When it is empty the
  // next accept waits for a token, and the clients wait in the kernel's backlog, as EMQX's
  // max_conn_rate has them: after a restart, devices reconnecting all at once reach the CA
  // and policy services at a pace they can answer, and none is refused.
  void AcceptWhenAllowed() {
    const auto rate = static_cast<double>(context.max_accepts_per_second);
    if (rate <= 0) return Accept();
    const int64_t now = IoThread::MonotonicNs();
    accepts.Wait(now, rate, 1);
    accepts.Take(1);  // the connection just accepted
    const double wait_s = accepts.Wait(now, rate, 1);  // a token for the next one
    if (wait_s == 0) return Accept();
    context.metrics->Throttled("accepts");
    backoff.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(wait_s)));
    backoff.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
      if (!e) self->Accept();
    });
  }

  void StartConnection(tcp::socket socket, IoThread* thread) {
    switch (kind) {
      case Kind::kMqtt: return StartMqttConnection(std::move(socket), thread, context, nullptr);
      case Kind::kMqtts: return StartMqttConnection(std::move(socket), thread, context, tls);
      case Kind::kHttp: return StartWebConnection(std::move(socket), thread, context, nullptr);
      case Kind::kHttps:
        return Sniff(std::make_shared<Sniffing>(std::move(socket), thread), 0);
    }
  }

  // The HTTPS listener also takes MQTT, as AWS's port 443 does: a client that offers
  // x-amzn-mqtt-ca or mqtt by ALPN is an MQTT client. The ClientHello is peeked (not read),
  // so the chosen TLS stack then reads it from the start.
  struct Sniffing {
    Sniffing(tcp::socket s, IoThread* t) : socket(std::move(s)), thread(t), timer(t->context()) {}
    tcp::socket socket;
    IoThread* thread;
    asio::steady_timer timer;
  };
  static constexpr int kSniffAttempts = 2000;  // 5 ms apart: 10 s for a ClientHello

  void Sniff(std::shared_ptr<Sniffing> c, int attempt) {
    c->socket.async_wait(tcp::socket::wait_read, [self = shared_from_this(), c, attempt](
                                                     const boost::system::error_code& ec) {
      if (ec) return;  // closed or shut down: the socket goes with c
      char buf[16384];
      const ssize_t n = ::recv(c->socket.native_handle(), buf, sizeof(buf), MSG_PEEK);
      if (n <= 0) return;  // the client left
      const ClientHello hello = ParseClientHello(absl::string_view(buf, static_cast<size_t>(n)));
      if (hello.status == ClientHello::kIncomplete && attempt < kSniffAttempts &&
          static_cast<size_t>(n) < sizeof(buf)) {
        // The rest of the record is on its way; data already here keeps the socket
        // readable, so wait a little rather than spin.
        c->timer.expires_after(std::chrono::milliseconds(5));
        c->timer.async_wait([self, c, attempt](const boost::system::error_code& e) {
          if (!e) self->Sniff(c, attempt + 1);
        });
        return;
      }
      if (OffersMqtt(hello)) {
        if (RefuseOverLimit(self->context.connections, self->context.metrics,
                            ListenerKind::kMqtts)) {
          return;  // the socket closes with c
        }
        StartMqttConnection(std::move(c->socket), c->thread, self->context, self->tls);
      } else {
        StartWebConnection(std::move(c->socket), c->thread, self->context, self->asio_tls.get());
      }
    });
  }

  const Kind kind;
  const std::vector<IoThread*> threads;
  const ConnectionContext context;
  TlsContext* const tls;
  std::unique_ptr<asio::ssl::context> asio_tls;
  tcp::acceptor acceptor;
  asio::steady_timer backoff;
  // --max-accepts-per-second's bucket (the acceptor's callbacks run one at a time).
  RateBucket accepts;
  size_t next = 0;
  int port = 0;
};

absl::StatusOr<std::unique_ptr<Listener>> Listener::Start(Kind kind, const std::string& address,
                                                          std::vector<IoThread*> threads,
                                                          const ConnectionContext& context,
                                                          TlsContext* tls) {
  const std::string what = absl::StrCat(ListenerKindName(kind), " listener");
  if ((kind == Kind::kMqtts || kind == Kind::kHttps) && tls == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " needs --tls-cert-file and --tls-key-file"));
  }
  // The clear message for a taken port or a bad address comes from the probe.
  if (absl::Status s = net::ProbeListen(what, address); !s.ok()) return s;
  absl::StatusOr<net::HostPort> hp = net::ParseHostPort(address);
  if (!hp.ok()) return hp.status();
  auto impl = std::make_shared<Impl>(kind, std::move(threads), context, tls);
  boost::system::error_code ec;
  tcp::resolver resolver(impl->threads[0]->context());
  auto results = resolver.resolve(hp->host, std::to_string(hp->port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot resolve \"", hp->host, "\": ", ec.message()));
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": cannot listen on ", address, ": ", ec.message()));
  }
  impl->port = impl->acceptor.local_endpoint(ec).port();
  // Accepting starts on the acceptor's thread.
  impl->threads[0]->Post([impl] { impl->Accept(); });
  return std::unique_ptr<Listener>(new Listener(impl));
}

Listener::~Listener() { Stop(); }

int Listener::port() const { return impl_->port; }

void Listener::Stop() {
  if (impl_ == nullptr) return;
  auto done = std::make_shared<absl::Notification>();
  std::shared_ptr<Impl> impl = impl_;
  impl->threads[0]->Post([impl, done] {
    boost::system::error_code ec;
    impl->acceptor.close(ec);
    impl->backoff.cancel();
    done->Notify();
  });
  // The I/O thread may already be stopped (shutdown order): then nothing accepts anyway.
  done->WaitForNotificationWithTimeout(absl::Seconds(2));
  impl_.reset();
}

}  // namespace fleetcore::gateway
