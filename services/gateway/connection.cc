#include "services/gateway/connection.h"

#include "common/json/json_text.h"
#include "nlohmann/json.hpp"
#include "services/gateway/authenticator.h"
#include "services/gateway/connect_throttle.h"
#include "services/gateway/http_publish.h"
#include "services/gateway/transports.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/ids/id_generator.h"
#include "common/log/log.h"
#include "common/status/public_message.h"

namespace fleetcore::gateway {
namespace {

using mqtt::Version;
namespace reason = mqtt::reason;

// Messages taken from the session per call; a flush takes batches until the socket's
// backlog reaches max_outbound_bytes.
constexpr size_t kBatch = 64;
// How long a closing connection may take to write its last bytes.
constexpr int64_t kCloseGraceMs = 5000;

// AWS's lifecycle disconnectReason for a disconnect the broker starts.
const char* LifecycleReason(uint8_t code) {
  switch (code) {
    case reason::kSessionTakenOver: return "DUPLICATE_CLIENTID";
    case reason::kAdministrativeAction: return "API_INITIATED_DISCONNECT";
    case reason::kServerShuttingDown: return "SERVER_INITIATED_DISCONNECT";
    case reason::kQuotaExceeded: return "THROTTLED";
    case reason::kKeepAliveTimeout: return "MQTT_KEEP_ALIVE_TIMEOUT";
    default: return "CLIENT_ERROR";
  }
}

const char* ReasonName(uint8_t code) {
  switch (code) {
    case reason::kMalformedPacket: return "malformed_packet";
    case reason::kProtocolError: return "protocol_error";
    case reason::kTopicNameInvalid: return "topic_name_invalid";
    case reason::kTopicFilterInvalid: return "topic_filter_invalid";
    case reason::kPacketTooLarge: return "packet_too_large";
    case reason::kReceiveMaximumExceeded: return "receive_maximum_exceeded";
    case reason::kTopicAliasInvalid: return "topic_alias_invalid";
    case reason::kQosNotSupported: return "qos_not_supported";
    case reason::kRetainNotSupported: return "retain_not_supported";
    case reason::kPayloadFormatInvalid: return "payload_format_invalid";
    case reason::kUnsupportedProtocolVersion: return "unsupported_protocol_version";
    default: return "other";
  }
}

int64_t WallMs() { return absl::ToUnixMillis(absl::Now()); }

// AWS bounds a Message Expiry Interval to [1 s, 7 days].
uint32_t ClampExpiry(uint32_t seconds) { return std::clamp<uint32_t>(seconds, 1, 604800); }

}  // namespace

Connection::Connection(const ConnectionContext& context, IoThread* thread,
                       ListenerKind listener, std::string remote_address,
                       std::string local_address)
    : context_(context),
      broker_(context.broker),
      limits_(context.broker->limits()),
      thread_(thread) {
  info_.listener = listener;
  info_.remote_address = std::move(remote_address);
  info_.local_address = std::move(local_address);
  started_ms_ = thread_->now_ms();
  if (context_.connections != nullptr) context_.connections->Add();
}

Connection::~Connection() {
  if (context_.connections != nullptr) context_.connections->Remove();
}

bool RefuseOverLimit(ConnectionCount* count, GatewayMetrics* metrics, ListenerKind listener) {
  if (count == nullptr || !count->full()) return false;
  if (metrics != nullptr) metrics->Connect(listener, "max_connections");
  static std::atomic<int64_t> last_log_ms{0};
  const int64_t now = absl::ToUnixMillis(absl::Now());
  int64_t last = last_log_ms.load(std::memory_order_relaxed);
  if (now - last >= 10000 && last_log_ms.compare_exchange_strong(last, now)) {
    log::Warn("connections refused: --max-connections reached",
              {{"open", count->open()}, {"max", count->max()}});
  }
  return true;
}

void Connection::Open() {
  started_ms_ = last_packet_ms_ = thread_->now_ms();
  thread_->Register(this);
}

void Connection::Begin(PeerCertificates peer) {
  info_.certificate_id = peer.certificate_id;
  certificate_id_ = peer.certificate_id;
  peer_ = std::move(peer);
  state_ = State::kAwaitConnect;
}

void Connection::Wake() {
  if (IoThread::Current() == thread_) {
    RequestFlush();
  } else {
    thread_->RequestFlush(shared_from_this());
  }
}

void Connection::RequestFlush() {
  if (flush_requested_) return;
  flush_requested_ = true;
  thread_->RequestFlush(shared_from_this());
}

void Connection::Kick(uint8_t code, WillPolicy will) {
  thread_->Post([self = shared_from_this(), code, will] {
    self->Close(code, "disconnected by the server", will, LifecycleReason(code));
  });
}

void Connection::RefreshAuthorization() {
  thread_->Post([self = shared_from_this()] {
    if (self->closing_ || self->identity_ == nullptr || self->context_.authenticator == nullptr) {
      return;
    }
    const bool custom = self->identity_->reauthentication() != nullptr;
    self->context_.authenticator->Refresh(
        self->identity_, [weak = std::weak_ptr<Connection>(self), thread = self->thread_,
                          custom](absl::StatusOr<IdentityPtr> fresh) {
          // Credentials presented again (a custom authorizer's token, a SigV4 signature)
          // that are refused now end the connection; any other failure (a peer down) keeps
          // what it has.
          const bool refused = custom && !fresh.ok() &&
                               (absl::IsUnauthenticated(fresh.status()) ||
                                absl::IsPermissionDenied(fresh.status()));
          if (!refused && (!fresh.ok() || *fresh == nullptr)) return;
          thread->Post([weak, refused, fresh = std::move(fresh)] {
            std::shared_ptr<Connection> c = weak.lock();
            if (c == nullptr || c->closing_ || c->session_ == nullptr) return;
            if (refused) {
              log::Info("disconnected: the client's credentials are no longer accepted",
                        {{"client_id", c->info_.client_id}, {"error", fresh.status()}});
              return c->Close(reason::kNotAuthorized, "no longer authorized",
                              WillPolicy::kPublish, "AUTH_ERROR");
            }
            c->identity_ = *fresh;
            c->session_->SetReceiveCheck(*fresh);
          });
        });
  });
}

void Connection::Tick(int64_t now_ms) {
  if (state_ == State::kClosed) return;
  if (closing_) {
    if (now_ms - closing_since_ms_ > kCloseGraceMs) Abort();
    return;
  }
  if (state_ != State::kConnected) {
    if (now_ms - started_ms_ > absl::ToInt64Milliseconds(limits_.connect_timeout)) {
      context_.metrics->Connect(info_.listener, "timeout");
      log::Debug("no CONNECT in time", {{"remote", info_.remote_address}});
      Abort();
    }
    return;
  }
  // MQTT: a client silent for one and a half keep-alive periods is gone.
  if (keep_alive_ms_ > 0 && now_ms - last_packet_ms_ > keep_alive_ms_ * 3 / 2) {
    return Close(reason::kKeepAliveTimeout, "keep-alive timeout", WillPolicy::kPublish,
                 "MQTT_KEEP_ALIVE_TIMEOUT");
  }
  // A custom authorizer's disconnectAfterInSeconds; SigV4's day, or its temporary
  // credentials' expiry.
  if (identity_ != nullptr && identity_->expires_at_ms() > 0 &&
      WallMs() >= identity_->expires_at_ms()) {
    return Close(reason::kMaximumConnectTime, "the temporary credentials expired",
                 WillPolicy::kPublish, "WEBSOCKET_TTL_EXPIRATION");
  }
  if (identity_ != nullptr && identity_->disconnect_after_s() > 0 &&
      WallMs() - info_.connected_at_ms > identity_->disconnect_after_s() * 1000) {
    if (identity_->from_access_key()) {
      return Close(reason::kMaximumConnectTime, "a SigV4 connection's day is over",
                   WillPolicy::kPublish, "WEBSOCKET_TTL_EXPIRATION");
    }
    return Close(reason::kMaximumConnectTime, "the custom authorizer's connection lifetime ended",
                 WillPolicy::kPublish, "CUSTOMAUTH_TTL_EXPIRATION");
  }
  // Its refreshAfterInSeconds: the authorizer is asked again; a refusal ends the connection.
  if (identity_ != nullptr && identity_->refresh_after_s() > 0 && authorized_at_ms_ > 0 &&
      WallMs() - authorized_at_ms_ > identity_->refresh_after_s() * 1000) {
    authorized_at_ms_ = WallMs();
    RefreshAuthorization();
  }
}

void Connection::OnData(const char* data, size_t size) {
  if (closing_ || state_ == State::kClosed) return;
  thread_->stats().bytes_received += size;
  last_packet_ms_ = thread_->now_ms();
  absl::string_view buffer;
  const bool buffered = !in_.empty();
  if (buffered) {
    in_.append(data, size);
    buffer = in_;
  } else {
    buffer = absl::string_view(data, size);
  }
  if (paused_ && in_.size() > 4 * static_cast<size_t>(limits_.max_packet_bytes)) {
    // A client that floods while its CONNECT is being authenticated.
    return Close(reason::kQuotaExceeded, "too much data before CONNACK", WillPolicy::kSuppress,
                 "CLIENT_ERROR");
  }
  size_t consumed = 0;
  const bool rate_limited =
      limits_.max_publishes_per_second > 0 || limits_.max_inbound_bytes_per_second > 0;
  while (!closing_ && !paused_ && !throttled_) {
    if (state_ == State::kAwaitConnect && consumed < buffer.size() &&
        (static_cast<uint8_t>(buffer[consumed]) >> 4) !=
            static_cast<uint8_t>(mqtt::PacketType::kConnect)) {
      // Not MQTT (an HTTP request, a TLS hello on the plain port): refused at its first
      // byte rather than after waiting for the rest of a "packet" that never comes.
      HandlePacket(static_cast<uint8_t>(buffer[consumed]), {});
      break;
    }
    mqtt::FrameHeader h;
    const mqtt::FrameStatus status =
        mqtt::ParseFrameHeader(buffer.substr(consumed), limits_.max_packet_bytes, &h);
    if (status == mqtt::FrameStatus::kIncomplete) break;
    if (status == mqtt::FrameStatus::kTooLarge) {
      Close(reason::kPacketTooLarge, "packet larger than the maximum packet size",
            WillPolicy::kPublish, "CLIENT_ERROR");
      break;
    }
    if (status == mqtt::FrameStatus::kMalformed) {
      Close(reason::kMalformedPacket, "malformed remaining length", WillPolicy::kPublish,
            "CLIENT_ERROR");
      break;
    }
    if (rate_limited && state_ == State::kConnected &&
        !Admit((h.first_byte >> 4) == static_cast<uint8_t>(mqtt::PacketType::kPublish),
               h.total_size())) {
      break;
    }
    const absl::string_view body = buffer.substr(consumed + h.header_size, h.remaining_length);
    consumed += h.total_size();
    HandlePacket(h.first_byte, body);
  }
  if (closing_) {
    in_ = std::string();
  } else if (!buffered) {
    if (consumed < size) in_.assign(data + consumed, size - consumed);
  } else {
    in_.erase(0, consumed);
    // An idle connection keeps no read buffer.
    if (in_.empty() && in_.capacity() > 256) in_ = std::string();
  }
  Flush();
}

bool Connection::Admit(bool publish, size_t bytes) {
  const int64_t now = IoThread::MonotonicNs();
  const auto publish_rate = static_cast<double>(limits_.max_publishes_per_second);
  const auto byte_rate = static_cast<double>(limits_.max_inbound_bytes_per_second);
  const double publish_wait =
      publish && publish_rate > 0 ? publish_tokens_.Wait(now, publish_rate, 1) : 0;
  const double byte_wait =
      byte_rate > 0 ? byte_tokens_.Wait(now, byte_rate, static_cast<double>(bytes)) : 0;
  if (publish_wait == 0 && byte_wait == 0) {
    if (publish && publish_rate > 0) publish_tokens_.Take(1);
    if (byte_rate > 0) byte_tokens_.Take(std::min(static_cast<double>(bytes), byte_rate));
    return true;
  }
  throttled_ = true;
  if (context_.metrics != nullptr) {
    context_.metrics->Throttled(publish_wait >= byte_wait ? "publishes" : "bytes");
  }
  const auto delay_ms =
      static_cast<int64_t>(std::ceil(std::max(publish_wait, byte_wait) * 1000));
  thread_->RunAfter(std::max<int64_t>(delay_ms, 1), [weak = weak_from_this()] {
    const std::shared_ptr<Connection> self = weak.lock();
    if (self == nullptr || self->state_ == State::kClosed) return;
    IoThread::EventScope scope(self->thread_);
    self->throttled_ = false;
    self->OnData("", 0);  // the packets that waited
    if (!self->throttled_ && !self->closing_) self->ResumeReading();
  });
  return false;
}

void Connection::HandlePacket(uint8_t first_byte, absl::string_view body) {
  const auto type = static_cast<mqtt::PacketType>(first_byte >> 4);
  mqtt::Packet packet;
  mqtt::DecodeError error;
  if (state_ != State::kConnected) {
    if (type != mqtt::PacketType::kConnect) {
      context_.metrics->Connect(info_.listener, "protocol_error");
      Close(reason::kProtocolError, "the first packet must be CONNECT", WillPolicy::kSuppress,
            "CLIENT_ERROR");
      return;
    }
    if (!mqtt::Decode(first_byte, body, Version::kV5, &packet, &error)) {
      // The protocol level sits after the protocol name ("\0\4MQTT"): an MQTT 5 client
      // gets its reason code, an unknown version the 3.1.1 refusal, others are closed.
      const bool v5 = body.size() > 6 && body[6] == 5;
      context_.metrics->ProtocolError(ReasonName(error.reason_code));
      if (error.reason_code == reason::kUnsupportedProtocolVersion || v5) {
        info_.version = v5 ? Version::kV5 : Version::kV311;
        RefuseConnect(error.reason_code, ReasonName(error.reason_code), error.message.c_str());
      } else {
        context_.metrics->Connect(info_.listener, "malformed_packet");
        Close(reason::kMalformedPacket, "malformed CONNECT", WillPolicy::kSuppress,
              "CLIENT_ERROR");
      }
      return;
    }
    HandleConnect(std::get<mqtt::Connect>(packet));
    return;
  }
  if (!mqtt::Decode(first_byte, body, info_.version, &packet, &error)) {
    context_.metrics->ProtocolError(ReasonName(error.reason_code));
    log::Debug("bad packet", {{"client_id", info_.client_id},
                              {"type", mqtt::TypeName(type)},
                              {"error", error.message}});
    Close(error.reason_code, error.message.c_str(), WillPolicy::kPublish, "CLIENT_ERROR");
    return;
  }
  switch (type) {
    case mqtt::PacketType::kPublish:
      HandlePublish(std::get<mqtt::Publish>(packet));
      return;
    case mqtt::PacketType::kPuback:
    case mqtt::PacketType::kPubrec:
    case mqtt::PacketType::kPubrel:
    case mqtt::PacketType::kPubcomp:
      HandleAck(std::get<mqtt::Ack>(packet));
      return;
    case mqtt::PacketType::kSubscribe:
      HandleSubscribe(std::get<mqtt::Subscribe>(packet));
      return;
    case mqtt::PacketType::kUnsubscribe:
      HandleUnsubscribe(std::get<mqtt::Unsubscribe>(packet));
      return;
    case mqtt::PacketType::kPingreq:
      Send(mqtt::Pingresp{});
      return;
    case mqtt::PacketType::kDisconnect:
      HandleDisconnect(std::get<mqtt::Disconnect>(packet));
      return;
    case mqtt::PacketType::kConnect:
      context_.metrics->ProtocolError("protocol_error");
      Close(reason::kProtocolError, "a second CONNECT", WillPolicy::kPublish, "CLIENT_ERROR");
      return;
    default:
      // AUTH without an authentication method, or a packet only a server sends.
      context_.metrics->ProtocolError("protocol_error");
      Close(reason::kProtocolError, "unexpected packet", WillPolicy::kPublish, "CLIENT_ERROR");
      return;
  }
}

void Connection::RefuseConnect(uint8_t code, absl::string_view result, const char* why) {
  mqtt::Connack ack{.reason_code = code};
  if (info_.version == Version::kV5 && problem_information_) ack.properties.reason_string = why;
  Send(ack);
  context_.metrics->Connect(info_.listener, result);
  log::Debug("connect refused", {{"remote", info_.remote_address},
                                 {"client_id", info_.client_id},
                                 {"reason", why}});
  will_.reset();
  closing_ = true;
  closing_since_ms_ = thread_->now_ms();
  StartClose();
}

void Connection::HandleConnect(mqtt::Connect& c) {
  info_.version = c.version;
  const bool v5 = c.version == Version::kV5;
  if (v5) {
    problem_information_ = c.properties.request_problem_information.value_or(1) != 0;
    client_max_packet_ = c.properties.maximum_packet_size.value_or(0);
  }
  if (c.properties.authentication_method.has_value()) {
    return RefuseConnect(reason::kBadAuthenticationMethod, "bad_authentication_method",
                         "enhanced authentication is not supported");
  }
  if (c.client_id.size() > limits_.max_client_id_bytes) {
    return RefuseConnect(reason::kClientIdentifierNotValid, "bad_client_id",
                         "client identifier too long");
  }
  bool assigned = false;
  if (c.client_id.empty()) {
    // MQTT 3.1.1 allows an empty identifier only with a clean session; MQTT 5 gets one.
    if (!v5 && !c.clean_start) {
      return RefuseConnect(reason::kClientIdentifierNotValid, "bad_client_id",
                           "an empty client identifier needs a clean session");
    }
    c.client_id = "fc-" + absl::StrReplaceAll(context_.ids->NewUuid(), {{"-", ""}});
    assigned = v5;
  } else if (context_.connect_throttle != nullptr &&
             !context_.connect_throttle->Admit(c.client_id, WallMs())) {
    // Before any work on the client's credentials or its session.
    info_.client_id = c.client_id;
    return RefuseConnect(reason::kConnectionRateExceeded, "throttled",
                         "too many CONNECTs for this client id: retry in a second");
  }
  std::shared_ptr<Message> will;
  if (c.will.has_value()) {
    mqtt::Will& w = *c.will;
    if (!PublishTopicAllowed(w.topic)) {
      return RefuseConnect(reason::kTopicNameInvalid, "bad_will", "will topic not allowed");
    }
    if (w.qos > limits_.max_qos) {
      return RefuseConnect(reason::kQosNotSupported, "bad_will", "will QoS not supported");
    }
    if (w.retain && !limits_.retain_available) {
      return RefuseConnect(reason::kRetainNotSupported, "bad_will", "retain not available");
    }
    if (w.payload.size() > limits_.max_payload_bytes) {
      return RefuseConnect(reason::kPacketTooLarge, "bad_will", "will payload too large");
    }
    will = std::make_shared<Message>();
    will->topic = std::move(w.topic);
    will->payload = std::move(w.payload);
    will->qos = w.qos;
    will->retain = w.retain;
    will_delay_ = w.properties.will_delay_interval.value_or(0);
    if (w.properties.message_expiry_interval.has_value()) {
      will_expiry_s_ = ClampExpiry(*w.properties.message_expiry_interval);
    }
    CopyMessageProperties(std::move(w.properties), will.get());
    Seal(will.get());
  }
  const absl::Duration keep_alive = EffectiveKeepAlive(limits_, c.keep_alive);
  keep_alive_ms_ = absl::ToInt64Milliseconds(keep_alive);
  const uint32_t max_expiry =
      static_cast<uint32_t>(std::min<int64_t>(absl::ToInt64Seconds(limits_.max_session_expiry),
                                              0xFFFFFFFE));
  const uint32_t requested_expiry =
      v5 ? c.properties.session_expiry_interval.value_or(0) : (c.clean_start ? 0 : max_expiry);
  const uint32_t expiry = std::min(requested_expiry, max_expiry);

  PendingConnect pending{.connect = std::move(c),
                         .will = std::move(will),
                         .expiry = expiry,
                         .assigned = assigned};
  if (context_.authenticator == nullptr) return FinishConnect(std::move(pending), nullptr);
  // Who is it? Later packets wait in in_ until the answer.
  paused_ = true;
  Credentials credentials{.chain_der = std::move(peer_.chain_der),
                          .certificate_id = peer_.certificate_id,
                          .client_id = pending.connect.client_id,
                          .source_ip = ClientIp(),
                          .server_name = peer_.server_name,
                          .username = pending.connect.username,
                          .password = pending.connect.password,
                          .http_headers = std::move(peer_.http_headers),
                          .http_query = std::move(peer_.http_query),
                          .sigv4 = peer_.sigv4,
                          .http_method = std::move(peer_.http_method),
                          .http_path = std::move(peer_.http_path),
                          .http_body_sha256 = std::move(peer_.http_body_sha256)};
  auto shared_pending = std::make_shared<PendingConnect>(std::move(pending));
  context_.authenticator->Authenticate(
      std::move(credentials),
      [weak = weak_from_this(), thread = thread_,
       shared_pending](absl::StatusOr<IdentityPtr> identity) {
        thread->Post([weak, shared_pending, identity = std::move(identity)]() mutable {
          if (std::shared_ptr<Connection> self = weak.lock()) {
            IoThread::EventScope scope(self->thread_);
            self->FinishConnect(std::move(*shared_pending), std::move(identity));
          }
        });
      });
}

void Connection::FinishConnect(PendingConnect pending,
                               absl::StatusOr<std::shared_ptr<const Identity>> identity) {
  if (closing_ || state_ == State::kClosed) return;
  paused_ = false;
  mqtt::Connect& c = pending.connect;
  std::shared_ptr<Message> will = std::move(pending.will);
  const uint32_t expiry = pending.expiry;
  if (!identity.ok()) {
    const bool unavailable = absl::IsUnavailable(identity.status());
    log::Info("connect refused", {{"client_id", c.client_id},
                                  {"remote", info_.remote_address},
                                  {"error", identity.status()}});
    // A client is told why it was not admitted, not what is behind the gateway.
    const std::string why = PublicMessage(identity.status());
    info_.client_id = c.client_id;
    Lifecycle("presence", "connect_failed",
              {{"connectFailureReason", unavailable ? "SERVER_ERROR" : "AUTHENTICATION_FAILED"},
               {"ipAddress", ClientIp()}});
    return RefuseConnect(unavailable ? reason::kServerUnavailable : reason::kNotAuthorized,
                         unavailable ? "server_unavailable" : "not_authenticated", why.c_str());
  }
  identity_ = std::move(*identity);
  if (identity_ != nullptr) principal_ = identity_->principal();
  // The thing whose changes concern this connection: its own, or, for a certificate's
  // connection without one, the thing its client id would name (created or attached later).
  if (identity_ != nullptr && identity_->thing().has_value()) {
    thing_name_ = identity_->thing()->name;
  } else if (identity_ != nullptr && identity_->from_certificate()) {
    thing_name_ = c.client_id;
  }
  if (identity_ != nullptr) {
    std::vector<std::string> attributes;
    if (expiry > 0) attributes.push_back("PersistentConnect");
    if (will != nullptr) attributes.push_back("LastWill");
    const policy::Decision d = identity_->Decide(policy::Action::kConnect, c.client_id, attributes);
    bool allowed = d.allowed();
    std::string why = d.allowed() ? "" : "iot:Connect: " + identity_->Explain(d);
    if (allowed && will != nullptr &&
        (!identity_->Allows(policy::Action::kPublish, will->topic) ||
         (will->retain && !identity_->Allows(policy::Action::kRetainPublish, will->topic)))) {
      allowed = false;
      why = "iot:Publish on the will topic " + will->topic + " is not allowed";
    }
    if (!allowed) {
      context_.metrics->Denied(policy::ActionName(policy::Action::kConnect));
      log::Info("connect denied", {{"client_id", c.client_id},
                                   {"principal", identity_->principal()},
                                   {"remote", info_.remote_address},
                                   {"reason", why}});
      info_.client_id = c.client_id;
      Lifecycle("presence", "connect_failed",
                {{"connectFailureReason", "AUTHORIZATION_FAILED"}, {"ipAddress", ClientIp()}});
      return RefuseConnect(reason::kNotAuthorized, "not_authorized", why.c_str());
    }
  }
  pending.will = std::move(will);
  // Among gateway replicas, a session this one does not hold may be on another: it is
  // brought here (the connection waits, paused) before the client is admitted.
  BrokerCluster* cluster = broker_->cluster();
  if (cluster != nullptr && !c.clean_start && broker_->Find(c.client_id) == nullptr) {
    paused_ = true;
    auto shared_pending = std::make_shared<PendingConnect>(std::move(pending));
    const std::string client_id = shared_pending->connect.client_id;
    cluster->FetchSession(client_id, [weak = weak_from_this(), thread = thread_,
                                      shared_pending]() {
      thread->Post([weak, shared_pending]() mutable {
        if (std::shared_ptr<Connection> self = weak.lock()) {
          IoThread::EventScope scope(self->thread_);
          self->Admit(std::move(*shared_pending));
        }
      });
    });
    return;
  }
  Admit(std::move(pending));
}

void Connection::Admit(PendingConnect pending) {
  if (closing_ || state_ == State::kClosed) return;
  paused_ = false;
  mqtt::Connect& c = pending.connect;
  const bool v5 = c.version == Version::kV5;
  std::shared_ptr<Message> will = std::move(pending.will);
  const uint32_t expiry = pending.expiry;
  const bool assigned = pending.assigned;
  const uint32_t requested_expiry =
      v5 ? c.properties.session_expiry_interval.value_or(0) : (c.clean_start ? 0 : expiry);
  info_.client_id = std::move(c.client_id);
  info_.clean_start = c.clean_start;
  info_.keep_alive = static_cast<uint32_t>(keep_alive_ms_ / 1000);
  info_.connected_at_ms = WallMs();
  authorized_at_ms_ = info_.connected_at_ms;
  info_.username = std::move(c.username);
  state_ = State::kConnected;

  Broker::Attached attached = broker_->Attach(
      shared_from_this(), {.client_id = info_.client_id,
                           .version = c.version,
                           .clean_start = c.clean_start,
                           .expiry_interval = expiry,
                           .receive_maximum = c.properties.receive_maximum.value_or(0),
                           .receive_check = identity_});
  session_ = std::move(attached.session);
  if (will != nullptr) {
    will->origin = session_->id();
    will_ = std::move(will);
  }

  mqtt::Connack ack{.session_present = attached.session_present};
  if (v5) {
    mqtt::Properties& p = ack.properties;
    if (limits_.max_inflight != 65535) p.receive_maximum = limits_.max_inflight;
    if (limits_.max_qos < 2) p.maximum_qos = limits_.max_qos;
    if (!limits_.retain_available) p.retain_available = 0;
    p.maximum_packet_size = limits_.max_packet_bytes;
    if (assigned) p.assigned_client_identifier = info_.client_id;
    if (limits_.max_topic_aliases > 0) p.topic_alias_maximum = limits_.max_topic_aliases;
    if (info_.keep_alive != c.keep_alive) {
      p.server_keep_alive = static_cast<uint16_t>(std::min<uint32_t>(info_.keep_alive, 65535));
    }
    if (expiry != requested_expiry) p.session_expiry_interval = expiry;
  }
  Send(ack);
  context_.metrics->Connect(info_.listener, "accepted");
  context_.metrics->ConnectionOpened(info_.listener, info_.version);
  log::Debug("connected", {{"client_id", info_.client_id},
                           {"remote", info_.remote_address},
                           {"listener", ListenerName(info_.listener)},
                           {"version", static_cast<int>(info_.version)},
                           {"principal", identity_ != nullptr ? identity_->principal() : ""},
                           {"session_present", attached.session_present}});
  session_identifier_ = context_.ids->NewUuid();
  publisher_ = std::make_shared<Publisher>(Publisher{
      .client_id = info_.client_id,
      .principal = !info_.certificate_id.empty()
                       ? info_.certificate_id
                       : (identity_ != nullptr ? identity_->principal() : std::string()),
      .source_ip = ClientIp()});
  version_number_ = broker_->LifecycleVersion(info_.client_id);
  Lifecycle("presence", "connected", {{"ipAddress", ClientIp()}});
  // Packets that came while the CONNECT was being authenticated; OnData flushes.
  OnData("", 0);
}

void Connection::Lifecycle(absl::string_view kind, absl::string_view event,
                           nlohmann::json fields) {
  // AWS sends none for client ids with MQTT wildcards.
  if (info_.client_id.find_first_of("+#") != std::string::npos) return;
  fields["clientId"] = info_.client_id;
  fields["timestamp"] = WallMs();
  fields["eventType"] = event;
  fields["sessionIdentifier"] = session_identifier_;
  fields["principalIdentifier"] =
      !info_.certificate_id.empty()
          ? info_.certificate_id
          : (identity_ != nullptr ? identity_->principal() : std::string("anonymous"));
  fields["versionNumber"] = version_number_;
  if (identity_ != nullptr && identity_->thing().has_value() && identity_->thing()->attached) {
    fields["thingName"] = identity_->thing()->name;
  }
  auto m = std::make_shared<Message>();
  m->topic = absl::StrCat("$aws/events/", kind, "/", event, "/", info_.client_id);
  m->payload = json_text::JsonText(fields);
  m->qos = 1;
  broker_->Publish(m);
}

bool Connection::Authorized(policy::Action action, absl::string_view resource) {
  if (identity_ == nullptr) return true;
  const policy::Decision d = identity_->Decide(action, resource);
  if (d.allowed()) return true;
  const absl::string_view name = policy::ActionName(action);
  context_.metrics->Denied(name);
  log::Info("action denied", {{"client_id", info_.client_id},
                              {"principal", identity_->principal()},
                              {"action", name},
                              {"resource", resource},
                              {"reason", identity_->Explain(d)}});
  return false;
}

std::string Connection::ClientIp() const { return IpOf(info_.remote_address); }

bool Connection::PublishTopicAllowed(absl::string_view topic) const {
  if (!WithinTopicLimits(limits_, topic)) return false;
  return ClientMayPublishTo(topic);
}

void Connection::HandlePublish(mqtt::Publish& p) {
  const bool v5 = info_.version == Version::kV5;
  if (p.properties.topic_alias.has_value()) {
    const uint16_t alias = *p.properties.topic_alias;
    if (alias > limits_.max_topic_aliases) {
      return Close(reason::kTopicAliasInvalid, "topic alias above the maximum",
                   WillPolicy::kPublish, "CLIENT_ERROR");
    }
    if (topic_aliases_.empty()) topic_aliases_.resize(limits_.max_topic_aliases + 1);
    if (!p.topic.empty()) {
      topic_aliases_[alias] = p.topic;
    } else if (topic_aliases_[alias].empty()) {
      return Close(reason::kProtocolError, "unknown topic alias", WillPolicy::kPublish,
                   "CLIENT_ERROR");
    } else {
      p.topic = topic_aliases_[alias];
    }
  }
  if (p.qos > limits_.max_qos) {
    return Close(reason::kQosNotSupported, "QoS not supported", WillPolicy::kPublish,
                 "CLIENT_ERROR");
  }
  if (p.retain && !limits_.retain_available) {
    return Close(reason::kRetainNotSupported, "retain not available", WillPolicy::kPublish,
                 "CLIENT_ERROR");
  }
  if (p.payload.size() > limits_.max_payload_bytes) {
    context_.metrics->ProtocolError("payload_too_large");
    return Close(reason::kPacketTooLarge, "payload too large", WillPolicy::kPublish,
                 "CLIENT_ERROR");
  }
  if (!PublishTopicAllowed(p.topic) || (p.retain && p.topic[0] == '$')) {
    context_.metrics->ProtocolError("topic_name_invalid");
    if (v5 && p.qos > 0) {
      // MQTT 5 can refuse one message and keep the connection.
      Send(mqtt::Ack{.type = p.qos == 1 ? mqtt::PacketType::kPuback : mqtt::PacketType::kPubrec,
                     .packet_id = p.packet_id,
                     .reason_code = reason::kTopicNameInvalid});
      return;
    }
    return Close(reason::kTopicNameInvalid, "topic not allowed", WillPolicy::kPublish,
                 "CLIENT_ERROR");
  }
  if (!Authorized(policy::Action::kPublish, p.topic) ||
      (p.retain && !Authorized(policy::Action::kRetainPublish, p.topic))) {
    if (v5 && p.qos > 0) {
      // MQTT 5 refuses the one message: PUBACK/PUBREC "not authorized".
      Send(mqtt::Ack{.type = p.qos == 1 ? mqtt::PacketType::kPuback : mqtt::PacketType::kPubrec,
                     .packet_id = p.packet_id,
                     .reason_code = reason::kNotAuthorized});
      return;
    }
    // MQTT 3.1.1 cannot say no to a message, and QoS 0 has no answer: AWS disconnects.
    return Close(reason::kNotAuthorized, "publish not authorized", WillPolicy::kPublish,
                 "AUTH_ERROR");
  }
  if (v5 && p.qos > 0 && !broker_->RetainedRoomFor(p.retain, p.payload, p.topic)) {
    // The broker holds as many retained messages as it may (--max-retained-messages): MQTT 5
    // refuses this one, as AWS does at its quota; others are delivered, not retained.
    Send(mqtt::Ack{.type = p.qos == 1 ? mqtt::PacketType::kPuback : mqtt::PacketType::kPubrec,
                   .packet_id = p.packet_id,
                   .reason_code = reason::kQuotaExceeded});
    return;
  }
  if (p.qos == 2) {
    switch (session_->Qos2Received(p.packet_id, limits_.max_inflight)) {
      case Session::InboundQos2::kDuplicate:
        // Delivered when it first came; the client missed our PUBREC.
        Send(mqtt::Ack{.type = mqtt::PacketType::kPubrec, .packet_id = p.packet_id});
        return;
      case Session::InboundQos2::kTooMany:
        return Close(reason::kReceiveMaximumExceeded, "receive maximum exceeded",
                     WillPolicy::kPublish, "CLIENT_ERROR");
      case Session::InboundQos2::kNew:
        break;
    }
  }
  ++thread_->stats().received[p.qos];
  messages_in_.store(messages_in_.load(std::memory_order_relaxed) + 1,
                     std::memory_order_relaxed);
  auto m = std::make_shared<Message>();
  if (p.properties.message_expiry_interval.has_value()) {
    m->expires_at_ms = WallMs() + int64_t{ClampExpiry(*p.properties.message_expiry_interval)} * 1000;
  }
  m->topic = std::move(p.topic);
  m->payload = std::move(p.payload);
  m->qos = p.qos;
  m->retain = p.retain;
  m->origin = session_->id();
  m->publisher = publisher_;
  m->received_ns = IoThread::MonotonicNs();
  if (m->retain) m->published_at_ms = WallMs();
  if (v5) CopyMessageProperties(std::move(p.properties), m.get());
  if (identity_ != nullptr && !identity_->message_enrichment().empty()) {
    AddUserProperties(identity_->message_enrichment(), m.get());
    ++thread_->stats().enriched;
  } else if (v5) {
    Seal(m.get());
  }
  broker_->Publish(m);
  if (p.qos == 1) {
    Send(mqtt::Ack{.type = mqtt::PacketType::kPuback, .packet_id = p.packet_id});
  } else if (p.qos == 2) {
    Send(mqtt::Ack{.type = mqtt::PacketType::kPubrec, .packet_id = p.packet_id});
  }
}

void Connection::HandleAck(const mqtt::Ack& a) {
  switch (a.type) {
    case mqtt::PacketType::kPuback:
      session_->Puback(a.packet_id);
      return;
    case mqtt::PacketType::kPubrec:
      if (a.reason_code >= 0x80) {
        session_->Pubrec(a.packet_id, /*failed=*/true);
        return;
      }
      Send(mqtt::Ack{.type = mqtt::PacketType::kPubrel,
                     .packet_id = a.packet_id,
                     .reason_code = session_->Pubrec(a.packet_id, false)
                                        ? reason::kSuccess
                                        : reason::kPacketIdentifierNotFound});
      return;
    case mqtt::PacketType::kPubrel:
      Send(mqtt::Ack{.type = mqtt::PacketType::kPubcomp,
                     .packet_id = a.packet_id,
                     .reason_code = session_->Qos2Released(a.packet_id)
                                        ? reason::kSuccess
                                        : reason::kPacketIdentifierNotFound});
      return;
    case mqtt::PacketType::kPubcomp:
      session_->Pubcomp(a.packet_id);
      return;
    default:
      return;
  }
}

void Connection::HandleSubscribe(const mqtt::Subscribe& s) {
  mqtt::Suback ack{.packet_id = s.packet_id};
  const uint32_t subscription_id =
      s.properties.subscription_identifiers.empty() ? 0 : s.properties.subscription_identifiers[0];
  struct RetainedFor {
    std::vector<MessagePtr> messages;
    uint8_t qos;
  };
  std::vector<RetainedFor> retained;
  std::vector<std::string> subscribed;
  bool changed = false;
  for (size_t i = 0; i < s.subscriptions.size(); ++i) {
    const mqtt::SubscriptionRequest& req = s.subscriptions[i];
    mqtt::ParsedFilter parsed;
    uint8_t code;
    if (i >= static_cast<size_t>(limits_.max_filters_per_subscribe)) {
      code = reason::kQuotaExceeded;
    } else if (!mqtt::ParseSharedFilter(req.filter, &parsed) ||
               !mqtt::ValidTopicFilter(parsed.filter) ||
               !WithinTopicLimits(limits_, parsed.filter) ||
               !WithinShareNameLimit(parsed.share_group) ||
               (parsed.filter[0] == '$' && !absl::StartsWith(parsed.filter, "$aws/"))) {
      code = reason::kTopicFilterInvalid;
    } else if (!parsed.share_group.empty() && req.no_local) {
      context_.metrics->ProtocolError("protocol_error");
      return Close(reason::kProtocolError, "No Local on a shared subscription",
                   WillPolicy::kPublish, "CLIENT_ERROR");
    } else if (!Authorized(policy::Action::kSubscribe, req.filter)) {
      code = reason::kNotAuthorized;
    } else if (!session_->HasSubscription(req.filter) &&
               session_->subscription_count() >=
                   static_cast<size_t>(limits_.max_subscriptions_per_connection)) {
      code = reason::kQuotaExceeded;
    } else {
      const uint8_t granted = std::min(req.qos, limits_.max_qos);
      const bool is_new = broker_->Subscribe(
          session_, req.filter, parsed,
          mqtt::SubscriptionOptions{.qos = granted,
                                    .no_local = req.no_local,
                                    .retain_as_published = req.retain_as_published,
                                    .retain_handling = req.retain_handling,
                                    .subscription_id = subscription_id});
      changed = true;
      code = granted;
      subscribed.push_back(req.filter);
      // Shared subscriptions get no retained messages (MQTT 5 4.8.2).
      if (parsed.share_group.empty() &&
          (req.retain_handling == 0 || (req.retain_handling == 1 && is_new))) {
        RetainedFor& r = retained.emplace_back();
        r.qos = granted;
        broker_->RetainedFor(parsed.filter, &r.messages);
      }
    }
    ack.reason_codes.push_back(code);
  }
  Send(ack);
  if (changed) broker_->Persist(*session_);
  if (!subscribed.empty()) Lifecycle("subscriptions", "subscribed", {{"topics", subscribed}});
  const int64_t now = WallMs();
  for (const RetainedFor& r : retained) {
    for (const MessagePtr& m : r.messages) {
      std::vector<uint32_t> ids;
      if (subscription_id != 0) ids.push_back(subscription_id);
      session_->Deliver(m, std::min(m->qos, r.qos), /*retain=*/true, std::move(ids), now);
    }
  }
}

void Connection::HandleUnsubscribe(const mqtt::Unsubscribe& u) {
  mqtt::Unsuback ack{.packet_id = u.packet_id};
  bool changed = false;
  std::vector<std::string> removed_filters;
  for (const std::string& filter : u.filters) {
    const bool removed = broker_->Unsubscribe(session_, filter);
    changed |= removed;
    if (removed) removed_filters.push_back(filter);
    ack.reason_codes.push_back(removed ? reason::kSuccess : reason::kNoSubscriptionExisted);
  }
  Send(ack);
  if (changed) broker_->Persist(*session_);
  if (!removed_filters.empty()) {
    Lifecycle("subscriptions", "unsubscribed", {{"topics", removed_filters}});
  }
}

void Connection::HandleDisconnect(const mqtt::Disconnect& d) {
  if (d.properties.session_expiry_interval.has_value()) {
    // A session that was to end with the connection cannot be kept now (MQTT 5 3.14.2.2.2).
    if (session_->expiry_interval() == 0 && *d.properties.session_expiry_interval != 0) {
      context_.metrics->ProtocolError("protocol_error");
      return Close(reason::kProtocolError, "session expiry cannot be set at DISCONNECT",
                   WillPolicy::kPublish, "CLIENT_ERROR");
    }
    const uint32_t max_expiry = static_cast<uint32_t>(
        std::min<int64_t>(absl::ToInt64Seconds(limits_.max_session_expiry), 0xFFFFFFFE));
    session_->SetPersistence(info_.version,
                             std::min(*d.properties.session_expiry_interval, max_expiry));
  }
  // A normal disconnect discards the will; 0x04 asks for it.
  if (d.reason_code != reason::kDisconnectWithWill) will_.reset();
  close_reason_ = "CLIENT_INITIATED_DISCONNECT";
  closing_ = true;
  closing_since_ms_ = thread_->now_ms();
  StartClose();
}

void Connection::Send(const mqtt::Packet& p) { mqtt::Encode(p, info_.version, &out_.Tail()); }

void Connection::Close(uint8_t code, const char* why, WillPolicy will,
                       absl::string_view lifecycle) {
  if (closing_ || state_ == State::kClosed) return;
  if (state_ == State::kConnected && info_.version == Version::kV5) {
    mqtt::Disconnect d{.reason_code = code};
    if (problem_information_) d.properties.reason_string = why;
    Send(d);
  }
  will_policy_ = will;
  close_reason_ = std::string(lifecycle);
  closing_ = true;
  closing_since_ms_ = thread_->now_ms();
  log::Debug("closing", {{"client_id", info_.client_id},
                         {"remote", info_.remote_address},
                         {"reason", why}});
  StartClose();
}

void Connection::OnDrained() {
  if (!closing_) Flush();
}

void Connection::OnClosed(bool error) {
  if (state_ == State::kClosed) return;
  const bool was_connected = state_ == State::kConnected;
  state_ = State::kClosed;
  closing_ = true;
  thread_->Unregister(this);
  if (was_connected) {
    MessagePtr will = will_policy_ == WillPolicy::kSuppress ? nullptr : will_;
    if (will != nullptr && will_expiry_s_.has_value()) {
      // A will's expiry counts from its publication, after any delay.
      auto timed = std::make_shared<Message>(*will);
      timed->expires_at_ms = WallMs() + (int64_t{will_delay_} + *will_expiry_s_) * 1000;
      will = std::move(timed);
    }
    broker_->Detach(session_, this, std::move(will), will_delay_, will_policy_, close_reason_);
    Lifecycle("presence", "disconnected",
              {{"clientInitiatedDisconnect", close_reason_ == "CLIENT_INITIATED_DISCONNECT"},
               {"disconnectReason", close_reason_}});
    context_.metrics->ConnectionClosed(info_.listener, info_.version, close_reason_);
    log::Debug("disconnected", {{"client_id", info_.client_id},
                                {"reason", close_reason_},
                                {"transport_error", error}});
  }
  session_.reset();
  will_.reset();
  out_.Clear();
  in_ = std::string();
  topic_aliases_.clear();
}

void Connection::Flush() {
  flush_requested_ = false;
  if (state_ == State::kClosed || closing_) return;
  if (state_ == State::kConnected) {
    const int64_t now_ns = IoThread::MonotonicNs();
    const int64_t now_ms = thread_->now_ms();
    while (out_.size() < limits_.max_outbound_bytes) {
      size_t expired = 0;
      session_->TakeSendable(kBatch, now_ms, &batch_, &expired);
      thread_->stats().dropped_expired += expired;
      const size_t n = batch_.size();
      for (const Outgoing& o : batch_) EncodeOutgoing(o, now_ns);
      batch_.clear();
      if (n < kBatch) break;
    }
    // What its shared groups queued for absent members comes in parts, as this client
    // takes it (what is moved wakes this connection again).
    if (session_->SharedBacklogDue()) broker_->TakeSharedQueue(session_);
  }
  if (!out_.empty()) StartWrite();
}

void Connection::EncodeOutgoing(const Outgoing& o, int64_t now_ns) {
  if (o.release) {
    Send(mqtt::Ack{.type = mqtt::PacketType::kPubrel, .packet_id = o.packet_id});
    return;
  }
  const Message& m = *o.message;
  absl::string_view properties;
  thread_local std::string extra;
  if (info_.version == Version::kV5) {
    properties = m.encoded_properties;
    if (m.expires_at_ms.has_value() || !o.subscription_ids.empty()) {
      extra.assign(m.encoded_properties);
      mqtt::Properties p;
      if (m.expires_at_ms.has_value()) {
        // The remaining lifetime, in whole seconds (MQTT 5 3.3.2.3.3).
        p.message_expiry_interval =
            static_cast<uint32_t>(std::max<int64_t>(0, (*m.expires_at_ms - WallMs()) / 1000));
      }
      p.subscription_identifiers = o.subscription_ids;
      mqtt::EncodePropertiesBody(p, &extra);
      properties = extra;
    }
  }
  std::string& tail = out_.Tail();
  const size_t before = tail.size();
  mqtt::EncodePublishHeader(mqtt::PublishHeader{.dup = o.dup,
                                                .qos = o.qos,
                                                .retain = o.retain,
                                                .topic = m.topic,
                                                .packet_id = o.packet_id,
                                                .properties = properties},
                            m.payload.size(), info_.version, &tail);
  if (client_max_packet_ > 0 && tail.size() - before + m.payload.size() > client_max_packet_) {
    // Larger than the client accepts: dropped as if delivered (MQTT 5 3.1.2.11.4).
    tail.resize(before);
    ++thread_->stats().dropped_too_large;
    if (o.qos > 0) session_->Abandon(o.packet_id);
    return;
  }
  out_.AppendPayload(o.message, gather());
  ThreadStats& stats = thread_->stats();
  ++stats.sent[o.qos];
  messages_out_.store(messages_out_.load(std::memory_order_relaxed) + 1,
                      std::memory_order_relaxed);
  if (m.received_ns > 0) {
    const double seconds = static_cast<double>(now_ns - m.received_ns) / 1e9;
    const std::vector<double>& bounds = GatewayMetrics::LatencyBounds();
    if (stats.latency_buckets.empty()) stats.latency_buckets.assign(bounds.size() + 1, 0);
    const size_t bucket =
        std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
    ++stats.latency_buckets[bucket];
    stats.latency_sum += seconds;
  }
}

void HttpApi::Refuse(const absl::Status& status, absl::string_view trace_id, Done done) {
  HttpReply reply = HttpPublishReply(status, trace_id);
  done(reply.status, std::move(reply.body));
}

}  // namespace fleetcore::gateway
