// HTTP/1.1 on the web listeners (Boost.Beast): a WebSocket upgrade on /mqtt carries MQTT
// (subprotocol "mqtt", binary frames, packets may span frames), POST /topics/{topic}
// publishes (http_publish.h). Over TLS the same, with Beast's ssl_stream.
#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "boost/beast/websocket.hpp"
#include "boost/beast/websocket/ssl.hpp"
#include "common/aws/sigv4.h"
#include "common/ids/id_generator.h"
#include "common/log/log.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/http_publish.h"
#include "services/gateway/transports.h"

namespace fleetcore::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kHttpTimeout = std::chrono::seconds(30);
// How long, and how many more bytes, a refused request's body is read and dropped.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 1 << 20;

template <typename Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

// The subprotocol to answer with: "mqtt" (MQTT 5 and 3.1.1), or "mqttv3.1" for old
// clients; nullopt when the client offers others only; "" when it offers none.
std::optional<std::string> ChooseSubprotocol(absl::string_view offered) {
  if (offered.empty()) return std::string();
  std::optional<std::string> choice;
  for (absl::string_view p : absl::StrSplit(offered, ',')) {
    p = absl::StripAsciiWhitespace(p);
    if (p == "mqtt") return std::string("mqtt");
    if (p == "mqttv3.1") choice = std::string(p);
  }
  return choice;
}

// The credentials an HTTP request (or WebSocket upgrade) carries besides a certificate: when
// it names a custom authorizer in a header or its query string, or is signed with SigV4,
// every header (lower-case names; repeated ones joined with ","), the query, and for SigV4
// the method, path and the body's hash.
void HttpAuth(const http::request<http::string_body>& request, Credentials* out) {
  const std::string target(request.target());
  const size_t q = target.find('?');
  const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  const beast::string_view authorization = request[http::field::authorization];
  const bool sigv4 = aws::CarriesSigV4(
      target, absl::string_view(authorization.data(), authorization.size()));
  if (!sigv4 && request.find("x-amz-customauthorizer-name") == request.end() &&
      query.find("x-amz-customauthorizer-name") == std::string::npos) {
    return;
  }
  std::map<std::string, std::string> headers;
  for (const auto& field : request) {
    std::string& value = headers[absl::AsciiStrToLower(std::string(field.name_string()))];
    if (!value.empty()) value.push_back(',');
    value.append(field.value().data(), field.value().size());
  }
  out->http_headers = std::move(headers);
  out->http_query = query;
  if (sigv4) {
    out->sigv4 = true;
    out->http_method = std::string(request.method_string());
    out->http_path = target.substr(0, q);
    out->http_body_sha256 = aws::Sha256Hex(request.body());
  }
}

// MQTT over a WebSocket.
template <typename Stream>
class WsConnection final : public Connection {
 public:
  WsConnection(Stream stream, IoThread* thread, const ConnectionContext& context,
               std::string remote, PeerCertificates peer)
      : Connection(context, thread, kIsTls<Stream> ? ListenerKind::kWss : ListenerKind::kWs,
                   std::move(remote), LocalAddress(beast::get_lowest_layer(stream).socket())),
        ws_(std::move(stream)),
        peer_(std::move(peer)) {}

  void Start(http::request<http::string_body> request, std::string subprotocol) {
    Open();
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [subprotocol](websocket::response_type& r) {
          if (!subprotocol.empty()) r.set(http::field::sec_websocket_protocol, subprotocol);
          r.set(http::field::server, "fleetcore-gateway");
        }));
    ws_.read_message_max(limits().max_packet_bytes + 1024);
    ws_.binary(true);
    ws_.async_accept(request, [self = Self()](beast::error_code ec) {
      if (ec) return self->Finish(true);
      self->Begin(std::move(self->peer_));
      self->Read();
    });
  }

 private:
  std::shared_ptr<WsConnection> Self() {
    return std::static_pointer_cast<WsConnection>(shared_from_this());
  }
  void Read() {
    reading_ = true;
    ws_.async_read(buffer_, [self = Self()](beast::error_code ec, size_t) {
      self->reading_ = false;
      if (ec) return self->Finish(ec != websocket::error::closed);
      const auto data = self->buffer_.cdata();
      self->OnData(static_cast<const char*>(data.data()), data.size());
      self->buffer_.consume(self->buffer_.size());
      if (self->buffer_.capacity() > 64 * 1024) self->buffer_.shrink_to_fit();
      if (!self->closing() && self->reading_allowed()) self->Read();
    });
  }

  void ResumeReading() override {
    if (!reading_ && !closed_ && !closing()) Read();
  }

  bool gather() const override { return false; }

  void StartWrite() override {
    if (writing_ || closed_ || out_.empty()) return;
    // Beast needs the bytes to stay put while it writes: take them out of the queue.
    writing_bytes_.clear();
    while (!out_.empty()) {
      const absl::string_view front = out_.Front();
      writing_bytes_.append(front.data(), front.size());
      out_.Consume(front.size());
    }
    writing_ = true;
    ws_.async_write(asio::buffer(writing_bytes_), [self = Self()](beast::error_code ec, size_t n) {
      self->writing_ = false;
      if (ec) return self->Finish(true);
      self->thread()->stats().bytes_sent += n;
      if (!self->out_.empty()) return self->StartWrite();
      self->writing_bytes_ = std::string();
      if (self->close_after_write_) return self->CloseWebSocket();
      self->OnDrained();
    });
  }

  void StartClose() override {
    close_after_write_ = true;
    if (writing_) return;
    if (!out_.empty()) return StartWrite();
    CloseWebSocket();
  }

  void CloseWebSocket() {
    if (close_sent_ || closed_) return;
    close_sent_ = true;
    ws_.async_close(websocket::close_code::normal,
                    [self = Self()](beast::error_code) { self->Finish(false); });
  }

  void Abort() override { Finish(false); }

  void Finish(bool error) {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    OnClosed(error);
  }

  websocket::stream<Stream> ws_;
  PeerCertificates peer_;
  beast::flat_buffer buffer_;
  std::string writing_bytes_;
  bool writing_ = false;
  bool reading_ = false;  // an async_read is pending
  bool closed_ = false;
  bool close_after_write_ = false;
  bool close_sent_ = false;
};

// One HTTP/1.1 connection: requests until it upgrades to a WebSocket or closes.
template <typename Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(Stream stream, IoThread* thread, const ConnectionContext& context)
      : stream_(std::move(stream)), thread_(thread), context_(context) {}

  void Start() {
    remote_ = RemoteAddress(beast::get_lowest_layer(stream_).socket());
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true), ec);
    if constexpr (kIsTls<Stream>) {
      beast::get_lowest_layer(stream_).expires_after(kHttpTimeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  log::Debug("TLS handshake failed",
                                             {{"remote", self->remote_},
                                              {"error", ec.message()}});
                                  return self->Close();
                                }
                                self->peer_ = PeerCertificatesOf(self->stream_.native_handle());
                                self->Read();
                              });
    } else {
      Read();
    }
  }

 private:
  const BrokerLimits& limits() const { return context_.broker->limits(); }

  void Read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(limits().max_payload_bytes);
    beast::get_lowest_layer(stream_).expires_after(kHttpTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRequest(ec);
                     });
  }

  void OnRequest(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      context_.metrics->HttpPublish("payload_too_large");
      // The client may still be sending the body: the connection lingers (below).
      return Reply(413, HttpPublishReply(absl::ResourceExhaustedError(
                                             "payload over the limit of " +
                                             std::to_string(limits().max_payload_bytes) +
                                             " bytes"),
                                         "")
                            .body,
                   /*keep_alive=*/false, /*linger=*/true);
    }
    if (ec) return Close();
    http::request<http::string_body> request = parser_->release();
    const std::string target(request.target());
    if (websocket::is_upgrade(request)) {
      const absl::string_view path = absl::string_view(target).substr(0, target.find('?'));
      const std::optional<std::string> subprotocol =
          ChooseSubprotocol(std::string(request[http::field::sec_websocket_protocol]));
      if (path != "/mqtt" || !subprotocol.has_value()) {
        return Reply(path != "/mqtt" ? 404 : 400,
                     path != "/mqtt" ? R"({"message":"WebSocket MQTT is served on /mqtt"})"
                                     : R"({"message":"the WebSocket subprotocol must be mqtt"})",
                     false);
      }
      if (RefuseOverLimit(context_.connections, context_.metrics,
                          kIsTls<Stream> ? ListenerKind::kWss : ListenerKind::kWs)) {
        return Reply(503, R"({"message":"the gateway has as many connections as it takes"})",
                     false);
      }
      Credentials upgrade;
      HttpAuth(request, &upgrade);
      peer_.http_headers = std::move(upgrade.http_headers);
      peer_.http_query = std::move(upgrade.http_query);
      peer_.sigv4 = upgrade.sigv4;
      peer_.http_method = std::move(upgrade.http_method);
      peer_.http_path = std::move(upgrade.http_path);
      peer_.http_body_sha256 = std::move(upgrade.http_body_sha256);
      auto connection = std::make_shared<WsConnection<Stream>>(
          std::move(stream_), thread_, context_, remote_, peer_);
      connection->Start(std::move(request), *subprotocol);
      return;
    }
    const bool keep_alive = request.keep_alive();
    auto shared_request = std::make_shared<http::request<http::string_body>>(std::move(request));
    WithIdentity(*shared_request, [self = this->shared_from_this(), shared_request,
                                   keep_alive](absl::StatusOr<IdentityPtr> identity) {
      self->Dispatch(*shared_request, identity, keep_alive);
    });
  }

  // The client's identity: authenticated once per HTTP connection (its certificate, or the
  // anonymous policy), then reused for every request on it. `then` runs on this thread.
  void WithIdentity(const http::request<http::string_body>& request,
                    std::function<void(absl::StatusOr<IdentityPtr>)> then) {
    if (context_.authenticator == nullptr) return then(IdentityPtr());
    if (identity_ != nullptr) return then(identity_);
    Credentials credentials{.chain_der = peer_.chain_der,
                            .certificate_id = peer_.certificate_id,
                            .source_ip = IpOf(remote_),
                            .server_name = peer_.server_name};
    // A custom authorizer's values may come in headers or the query string, and each SigV4
    // request has its own signature; such an identity is asked for again on every request
    // (the policy service caches authorizers' answers), a certificate's is kept for the
    // connection.
    HttpAuth(request, &credentials);
    const bool keep = !credentials.http_headers.has_value();
    context_.authenticator->Authenticate(
        std::move(credentials),
        [self = this->shared_from_this(), then, keep](absl::StatusOr<IdentityPtr> identity) {
          self->thread_->Post([self, then, identity, keep]() {
            if (identity.ok() && keep) self->identity_ = *identity;
            then(identity);
          });
        });
  }

  void Dispatch(http::request<http::string_body>& request,
                const absl::StatusOr<IdentityPtr>& identity, bool keep_alive) {
    const std::string target(request.target());
    const std::string trace_id = context_.ids->NewUuid();
    HttpApi* api = nullptr;
    for (HttpApi* a : context_.http_apis) {
      if (a != nullptr && a->Handles(target)) {
        api = a;
        break;
      }
    }
    // Answered when the API (and the service behind it) has; written on this thread.
    auto answer = [self = this->shared_from_this(), keep_alive,
                   type = std::string(api != nullptr ? api->content_type()
                                                     : "application/json")](int status,
                                                                            std::string body) {
      self->thread_->Post([self, status, body = std::move(body), keep_alive, type]() mutable {
        self->Reply(status, std::move(body), keep_alive, /*linger=*/false, type);
      });
    };
    if (!identity.ok()) {
      log::Info("HTTP request refused", {{"remote", remote_}, {"error", identity.status()}});
      if (api != nullptr) return api->Refuse(identity.status(), trace_id, answer);
      const HttpReply reply = HttpPublishReply(identity.status(), trace_id);
      return Reply(reply.status, reply.body, keep_alive);
    }
    const HeaderLookup headers = [&request](absl::string_view name) {
      auto it = request.find(beast::string_view(name.data(), name.size()));
      return it == request.end() ? std::string() : std::string(it->value());
    };
    if (api != nullptr) {
      api->Handle(std::string(request.method_string()), target, headers,
                  std::move(request.body()), identity->get(), answer);
      return;
    }
    if (request.method() != http::verb::post) {
      return Reply(405, R"({"message":"publish with POST /topics/{topic}"})", keep_alive);
    }
    absl::StatusOr<std::shared_ptr<Message>> m =
        ParseHttpPublish(target, headers, std::move(request.body()), limits(),
                         thread_->now_ms());
    absl::Status status = m.status();
    const Identity* id = identity->get();
    if (m.ok() && id != nullptr &&
        (!id->Allows(policy::Action::kPublish, (*m)->topic) ||
         ((*m)->retain && !id->Allows(policy::Action::kRetainPublish, (*m)->topic)))) {
      context_.metrics->Denied(policy::ActionName(policy::Action::kPublish));
      status = absl::PermissionDeniedError(
          absl::StrCat("not authorized to publish to ", (*m)->topic));
      log::Info("action denied", {{"principal", id->principal()},
                                  {"action", "iot:Publish"},
                                  {"resource", (*m)->topic},
                                  {"remote", remote_}});
    }
    // At --max-retained-messages a retained message for a new topic is refused, as to an
    // MQTT 5 client that can be told, with AWS's answer to a request over a quota.
    const bool retained_full = status.ok() && !context_.broker->RetainedRoomFor(**m);
    if (retained_full) {
      status = absl::ResourceExhaustedError(
          "the gateway holds as many retained messages as it may: replace or delete one, or "
          "publish without retain");
    }
    if (status.ok()) {
      (*m)->received_ns = IoThread::MonotonicNs();
      (*m)->published_at_ms = absl::ToUnixMillis(absl::Now());
      if (id != nullptr) {
        (*m)->publisher = std::make_shared<Publisher>(
            Publisher{.principal = id->principal(), .source_ip = IpOf(remote_)});
        if (!id->message_enrichment().empty()) {
          AddUserProperties(id->message_enrichment(), m->get());
          ++thread_->stats().enriched;
        }
      }
      context_.broker->Publish(*m);
      ++thread_->stats().received[(*m)->qos];
    } else {
      log::Debug("HTTP publish refused", {{"remote", remote_}, {"error", status}});
    }
    context_.metrics->HttpPublish(status.ok()     ? "ok"
                                  : retained_full ? "retained_full"
                                                  : absl::StatusCodeToString(status.code()));
    HttpReply reply = HttpPublishReply(status, trace_id);
    if (retained_full) reply.status = 429;  // not 413: the payload is not at fault
    Reply(reply.status, reply.body, keep_alive);
  }

  void Reply(int status, std::string body, bool keep_alive, bool linger = false,
             absl::string_view content_type = "application/json") {
    auto response = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(status), 11);
    response->set(http::field::server, "fleetcore-gateway");
    response->set(http::field::content_type,
                  beast::string_view(content_type.data(), content_type.size()));
    if (const absl::string_view type = AwsErrorType(status); !type.empty()) {
      response->set("x-amzn-ErrorType", beast::string_view(type.data(), type.size()));
    }
    response->keep_alive(keep_alive);
    response->body() = std::move(body);
    response->prepare_payload();
    http::async_write(stream_, *response,
                      [self = this->shared_from_this(), response, keep_alive, linger](
                          beast::error_code ec, size_t n) {
                        self->thread_->stats().bytes_sent += n;
                        if (!ec && linger) return self->Linger();
                        if (ec || !keep_alive) return self->Close();
                        self->Read();
                      });
  }

  // After answering a request whose body was not read (413), the client may still be
  // sending it. Closing with unread bytes makes the kernel answer with a reset, which can
  // destroy the answer before the client has read it; so, as nginx's lingering close, the
  // rest is read and dropped until the client closes, for at most kLingerTime and
  // kLingerBytes, and the connection closes then.
  void Linger() {
    if constexpr (!kIsTls<Stream>) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);  // the answer is complete
    }
    beast::get_lowest_layer(stream_).expires_after(kLingerTime);
    drop_buffer_ = std::make_unique<std::array<char, 16384>>();
    Drop();
  }
  void Drop() {
    stream_.async_read_some(asio::buffer(*drop_buffer_), [self = this->shared_from_this()](
                                                             beast::error_code ec, size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > kLingerBytes) return self->Close();
      self->Drop();
    });
  }

  void Close() {
    if constexpr (kIsTls<Stream>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        beast::error_code ec;
        beast::get_lowest_layer(self->stream_).socket().close(ec);
      });
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.socket().close(ec);
    }
  }

  Stream stream_;
  IoThread* thread_;
  ConnectionContext context_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  PeerCertificates peer_;
  IdentityPtr identity_;
  // After a 413: what the client still sends is read into drop_buffer_ and dropped.
  std::unique_ptr<std::array<char, 16384>> drop_buffer_;
  size_t lingered_ = 0;
};

}  // namespace

void StartWebConnection(tcp::socket socket, IoThread* thread, const ConnectionContext& context,
                        asio::ssl::context* tls) {
  if (tls != nullptr) {
    auto s = std::make_shared<HttpSession<TlsStream>>(
        TlsStream(beast::tcp_stream(std::move(socket)), *tls), thread, context);
    s->Start();
  } else {
    auto s = std::make_shared<HttpSession<PlainStream>>(beast::tcp_stream(std::move(socket)),
                                                        thread, context);
    s->Start();
  }
}

}  // namespace fleetcore::gateway
