#include "tools/bench/mqtt_load.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "common/mqtt/codec.h"

namespace fleetcore::bench {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int kReceiveMaximum = 100;  // QoS 1/2 publishes in flight per connection

class Load;

// One MQTT connection. Everything runs on the load's single io_context thread.
class Client : public std::enable_shared_from_this<Client> {
 public:
  enum class Role { kPublisher, kSubscriber, kConnector, kIdle };

  Client(Load* load, int index, Role role, std::string topic);
  void Start();
  // Appends one PUBLISH to the output (Flush writes it).
  void Publish(uint64_t seq, int64_t now_ns);
  void Flush();
  void Close();

  bool ready() const { return ready_ && !closed_; }
  bool can_publish() const {
    return ready() && unacked_ < kReceiveMaximum && out_.size() < (1u << 20);
  }
  int index() const { return index_; }
  Role role() const { return role_; }
  // A connector that stands for this device (its client id, its TLS session).
  void set_device(int device) { device_ = device; }

 private:
  template <typename F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }
  tcp::socket& Raw() { return tls_ ? tls_->next_layer() : *plain_; }
  void OnTcpConnected();
  void SendConnect();
  void Read();
  void Consume();
  void HandlePublish(uint8_t first, const char* body, size_t size);
  void Fail(const std::string& what);
  void Ack(uint8_t first, uint16_t packet_id) {
    const char b[4] = {static_cast<char>(first), 2, static_cast<char>(packet_id >> 8),
                       static_cast<char>(packet_id & 0xFF)};
    out_.append(b, 4);
  }

  Load* load_;
  int index_;
  int device_ = -1;
  Role role_;
  std::string topic_;
  std::unique_ptr<tcp::socket> plain_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
  std::string in_;
  size_t in_start_ = 0;
  std::string out_, writing_buf_;
  bool writing_ = false;
  bool ready_ = false;
  bool closed_ = false;
  int unacked_ = 0;
  uint16_t next_id_ = 0;
  int64_t started_ns_ = 0;
  char read_buf_[65536];
};

class Load {
 public:
  explicit Load(const MqttOptions& o) : o_(o), tick_(io_) {}
  ~Load() {
    for (SSL_SESSION* s : sessions_) SSL_SESSION_free(s);
  }

  absl::StatusOr<nlohmann::json> Run();

  // Events from clients.
  void OnReady(Client*) { ++ready_; }
  void OnMessage(int64_t sent_ns, int64_t now_ns) {
    ++received_;
    if (now_ns >= window_start_ns_ && now_ns < window_end_ns_) ++received_in_window_;
    if (sent_ns >= window_start_ns_ && sent_ns < window_end_ns_) {
      latencies_.push_back(now_ns - sent_ns);
    }
  }
  void OnConnected(Client* c, int64_t latency_ns);
  void OnFailure(Client* c, const std::string& what);
  void OnClosed(Client* c);

  const MqttOptions& options() const { return o_; }
  asio::io_context& io() { return io_; }
  asio::ssl::context* tls() { return tls_.get(); }
  tcp::endpoint server(bool subscriber) const {
    return subscriber && o_.subscriber_port != 0
               ? tcp::endpoint(server_.address(), static_cast<uint16_t>(o_.subscriber_port))
               : server_;
  }
  asio::ip::address source(int index) const {
    const int n = std::max(o_.sources, 1);
    return asio::ip::make_address_v4(0x7F000001u + static_cast<uint32_t>(index % n));
  }
  const std::string& padding() const { return padding_; }
  // --resume: the session a device's last connection left (nullptr: none yet), and the
  // one this connection ended with (owned from then on).
  SSL_SESSION* session(int device) const {
    return device >= 0 && static_cast<size_t>(device) < sessions_.size() ? sessions_[device]
                                                                         : nullptr;
  }
  void KeepSession(int device, SSL_SESSION* s, bool reused) {
    if (reused) ++resumed_;
    if (device < 0 || static_cast<size_t>(device) >= sessions_.size()) {
      SSL_SESSION_free(s);
      return;
    }
    SSL_SESSION_free(sessions_[device]);
    sessions_[device] = s;
  }

 private:
  void Tick();
  void Pump(int64_t now_ns);
  void StartConnector();
  int deliveries_per_publish() const { return o_.scenario == "mqtt-fanout" ? o_.clients : 1; }

  MqttOptions o_;
  asio::io_context io_;
  asio::steady_timer tick_;
  std::unique_ptr<asio::ssl::context> tls_;
  tcp::endpoint server_;
  std::string padding_;
  std::vector<std::shared_ptr<Client>> publishers_, subscribers_, others_;
  size_t next_publisher_ = 0;
  int ready_ = 0;
  int expected_ready_ = 0;
  int64_t start_ns_ = 0, load_start_ns_ = 0, window_start_ns_ = INT64_MAX, window_end_ns_ = 0;
  int64_t stop_ns_ = 0, deadline_ns_ = 0;
  uint64_t sent_ = 0, sent_in_window_ = 0, received_ = 0, received_in_window_ = 0;
  uint64_t connects_ = 0, connects_in_window_ = 0, connects_started_ = 0;
  int active_connectors_ = 0;
  uint64_t failures_ = 0;
  std::string first_failure_;
  std::vector<int64_t> latencies_;
  std::vector<SSL_SESSION*> sessions_;
  uint64_t resumed_ = 0;
  bool loading_ = false, done_ = false;
};

Client::Client(Load* load, int index, Role role, std::string topic)
    : load_(load), index_(index), role_(role), topic_(std::move(topic)) {
  if (load->tls() != nullptr) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(load->io(), *load->tls());
    SSL_set_tlsext_host_name(tls_->native_handle(), "localhost");
  } else {
    plain_ = std::make_unique<tcp::socket>(load->io());
  }
}

void Client::Start() {
  started_ns_ = NowNs();
  error_code ec;
  tcp::socket& s = Raw();
  s.open(tcp::v4(), ec);
  if (!ec && load_->options().sources > 1) s.bind(tcp::endpoint(load_->source(index_), 0), ec);
  if (ec) return Fail("socket: " + ec.message());
  s.async_connect(load_->server(role_ == Role::kSubscriber),
                  [self = shared_from_this()](const error_code& e) {
    if (e) return self->Fail("connect: " + e.message());
    self->OnTcpConnected();
  });
}

void Client::OnTcpConnected() {
  error_code ec;
  Raw().set_option(tcp::no_delay(true), ec);
  if (!tls_) return SendConnect();
  if (SSL_SESSION* s = load_->session(device_)) SSL_set_session(tls_->native_handle(), s);
  tls_->async_handshake(asio::ssl::stream_base::client,
                        [self = shared_from_this()](const error_code& e) {
                          if (e) return self->Fail("TLS handshake: " + e.message());
                          self->SendConnect();
                        });
}

void Client::SendConnect() {
  const MqttOptions& o = load_->options();
  mqtt::Connect c;
  c.version = o.version == 5 ? mqtt::Version::kV5 : mqtt::Version::kV311;
  c.clean_start = true;
  c.keep_alive = role_ == Role::kIdle ? 1200 : 60;
  c.client_id = device_ >= 0 ? absl::StrCat(o.prefix, "-device-", device_)
                             : absl::StrCat(o.prefix, "-", static_cast<int>(role_), "-", index_,
                                            "-", started_ns_ % 1000000);
  mqtt::Encode(c, c.version, &out_);
  Flush();
  Read();
}

void Client::Read() {
  auto handler = [self = shared_from_this()](const error_code& e, size_t n) {
    if (e) {
      if (!self->closed_) self->Fail("read: " + e.message());
      return;
    }
    self->in_.append(self->read_buf_, n);
    self->Consume();
    if (!self->closed_) self->Read();
  };
  WithStream([&](auto& s) { s.async_read_some(asio::buffer(read_buf_), handler); });
}

void Client::Consume() {
  const mqtt::Version version =
      load_->options().version == 5 ? mqtt::Version::kV5 : mqtt::Version::kV311;
  while (!closed_) {
    absl::string_view data(in_.data() + in_start_, in_.size() - in_start_);
    mqtt::FrameHeader h;
    const mqtt::FrameStatus st = mqtt::ParseFrameHeader(data, 1u << 28, &h);
    if (st == mqtt::FrameStatus::kIncomplete) break;
    if (st != mqtt::FrameStatus::kComplete) return Fail("malformed packet from the broker");
    const char* body = data.data() + h.header_size;
    const uint8_t type = h.first_byte >> 4;
    const uint16_t id = h.remaining_length >= 2
                            ? static_cast<uint16_t>((static_cast<uint8_t>(body[0]) << 8) |
                                                    static_cast<uint8_t>(body[1]))
                            : 0;
    switch (type) {
      case 2: {  // CONNACK
        if (h.remaining_length < 2 || body[1] != 0) {
          return Fail(absl::StrCat("CONNACK refused: ", static_cast<int>(
                                                            static_cast<uint8_t>(body[1]))));
        }
        if (role_ == Role::kSubscriber) {
          mqtt::Subscribe s{.packet_id = 1};
          s.subscriptions.push_back(
              {.filter = topic_, .qos = static_cast<uint8_t>(load_->options().qos)});
          mqtt::Encode(s, version, &out_);
        } else if (role_ == Role::kConnector) {
          load_->OnConnected(this, NowNs() - started_ns_);
          // TLS 1.3's ticket came right after the handshake, before the CONNACK.
          if (tls_ && load_->options().resume) {
            SSL* ssl = tls_->native_handle();
            // A copy: closing without a TLS close_notify, as here, marks the connection's
            // own session as not resumable.
            load_->KeepSession(device_, SSL_SESSION_dup(SSL_get0_session(ssl)),
                               SSL_session_reused(ssl) == 1);
          }
          mqtt::Encode(mqtt::Disconnect{}, version, &out_);
          Flush();
          closed_ = true;
        } else {
          ready_ = true;
          load_->OnReady(this);
        }
        break;
      }
      case 9:  // SUBACK
        ready_ = true;
        load_->OnReady(this);
        break;
      case 3:  // PUBLISH
        HandlePublish(h.first_byte, body, h.remaining_length);
        break;
      case 4:  // PUBACK
      case 7:  // PUBCOMP
        --unacked_;
        break;
      case 5:  // PUBREC
        Ack(0x62, id);
        break;
      case 6:  // PUBREL
        Ack(0x70, id);
        break;
      case 14:  // DISCONNECT
        return Fail("the broker disconnected");
      default:
        break;
    }
    in_start_ += h.total_size();
  }
  if (in_start_ == in_.size()) {
    in_.clear();
    in_start_ = 0;
  } else if (in_start_ > 65536) {
    in_.erase(0, in_start_);
    in_start_ = 0;
  }
  Flush();
}

void Client::HandlePublish(uint8_t first, const char* body, size_t size) {
  const uint8_t qos = (first >> 1) & 3;
  size_t i = 2 + ((static_cast<uint8_t>(body[0]) << 8) | static_cast<uint8_t>(body[1]));
  uint16_t id = 0;
  if (qos > 0 && i + 2 <= size) {
    id = static_cast<uint16_t>((static_cast<uint8_t>(body[i]) << 8) |
                               static_cast<uint8_t>(body[i + 1]));
    i += 2;
  }
  if (load_->options().version == 5) {
    uint32_t len = 0;
    int shift = 0;
    while (i < size) {
      const uint8_t b = static_cast<uint8_t>(body[i++]);
      len |= static_cast<uint32_t>(b & 0x7F) << shift;
      shift += 7;
      if ((b & 0x80) == 0) break;
    }
    i += len;
  }
  int64_t sent_ns = 0;
  if (i + 8 <= size) std::memcpy(&sent_ns, body + i, 8);
  load_->OnMessage(sent_ns, NowNs());
  if (qos == 1) Ack(0x40, id);
  if (qos == 2) Ack(0x50, id);
}

void Client::Publish(uint64_t seq, int64_t now_ns) {
  const MqttOptions& o = load_->options();
  const size_t size = static_cast<size_t>(std::max(o.payload_size, 16));
  uint16_t id = 0;
  if (o.qos > 0) {
    if (++next_id_ == 0) next_id_ = 1;
    id = next_id_;
    ++unacked_;
  }
  mqtt::EncodePublishHeader(
      mqtt::PublishHeader{.qos = static_cast<uint8_t>(o.qos), .topic = topic_, .packet_id = id},
      size, o.version == 5 ? mqtt::Version::kV5 : mqtt::Version::kV311, &out_);
  out_.append(reinterpret_cast<const char*>(&now_ns), 8);
  out_.append(reinterpret_cast<const char*>(&seq), 8);
  out_.append(load_->padding(), 0, size - 16);
}

void Client::Flush() {
  if (writing_ || out_.empty() || Raw().is_open() == false) return;
  writing_ = true;
  writing_buf_.swap(out_);
  out_.clear();
  auto handler = [self = shared_from_this()](const error_code& e, size_t) {
    self->writing_ = false;
    self->writing_buf_.clear();
    if (e) {
      if (self->closed_) {
        self->Close();
      } else {
        self->Fail("write: " + e.message());
      }
      return;
    }
    if (self->closed_ && self->out_.empty()) {
      self->Close();
      return;
    }
    self->Flush();
  };
  WithStream([&](auto& s) { asio::async_write(s, asio::buffer(writing_buf_), handler); });
}

void Client::Close() {
  const bool was_open = Raw().is_open();
  closed_ = true;
  error_code ec;
  Raw().close(ec);
  if (was_open) load_->OnClosed(this);
}

void Client::Fail(const std::string& what) {
  if (closed_) return;
  closed_ = true;
  load_->OnFailure(this, what);
  error_code ec;
  Raw().close(ec);
}

void Load::OnConnected(Client*, int64_t latency_ns) {
  ++connects_;
  const int64_t now = NowNs();
  if (now >= window_start_ns_ && now < window_end_ns_) {
    ++connects_in_window_;
    latencies_.push_back(latency_ns);
  }
}

void Load::OnClosed(Client* c) {
  if (c->role() == Client::Role::kConnector) {
    --active_connectors_;
    if (o_.rate == 0 && !done_ && NowNs() < stop_ns_) StartConnector();
  }
}

void Load::OnFailure(Client* c, const std::string& what) {
  ++failures_;
  if (first_failure_.empty()) first_failure_ = what;
  if (c->role() == Client::Role::kConnector) OnClosed(c);
}

void Load::StartConnector() {
  ++active_connectors_;
  ++connects_started_;
  // The index picks the source address: connections rotate over them (--sources) so the
  // TIME_WAIT ports of closed ones do not run out.
  auto c = std::make_shared<Client>(this, static_cast<int>(connects_started_ % 1000000),
                                    Client::Role::kConnector, "");
  if (o_.devices > 0) c->set_device(static_cast<int>(connects_started_ % o_.devices));
  c->Start();
}

void Load::Pump(int64_t now_ns) {
  if (!loading_ || publishers_.empty()) return;
  const uint64_t fan = static_cast<uint64_t>(deliveries_per_publish());
  uint64_t budget;
  if (o_.rate > 0) {
    const double due = o_.rate * static_cast<double>(now_ns - load_start_ns_) / 1e9;
    budget = due > static_cast<double>(sent_) ? static_cast<uint64_t>(due) - sent_ : 0;
  } else {
    const uint64_t limit =
        static_cast<uint64_t>(o_.window) * publishers_.size() * fan;
    const uint64_t outstanding = sent_ * fan - std::min(sent_ * fan, received_);
    budget = outstanding < limit ? (limit - outstanding) / fan : 0;
  }
  for (size_t tried = 0; budget > 0 && tried < publishers_.size();) {
    Client* p = publishers_[next_publisher_].get();
    next_publisher_ = (next_publisher_ + 1) % publishers_.size();
    if (!p->can_publish()) {
      ++tried;
      continue;
    }
    tried = 0;
    p->Publish(sent_, now_ns);
    ++sent_;
    if (now_ns >= window_start_ns_ && now_ns < window_end_ns_) ++sent_in_window_;
    --budget;
  }
  for (auto& p : publishers_) p->Flush();
}

void Load::Tick() {
  const int64_t now = NowNs();
  if (!loading_ && ready_ >= expected_ready_) {
    loading_ = true;
    load_start_ns_ = now;
    window_start_ns_ = now + absl::ToInt64Nanoseconds(o_.warmup);
    window_end_ns_ = window_start_ns_ + absl::ToInt64Nanoseconds(o_.duration);
    stop_ns_ = window_end_ns_;
    if (o_.scenario == "mqtt-idle") {
      std::cerr << "established " << ready_ << " connections\n";
    }
  }
  if (!loading_ && now > deadline_ns_) {
    done_ = true;
    io_.stop();
    return;
  }
  if (loading_) {
    if (o_.scenario == "mqtt-connect" && o_.rate > 0 && now < stop_ns_) {
      const double due = o_.rate * static_cast<double>(now - load_start_ns_) / 1e9;
      while (static_cast<double>(connects_started_) < due && active_connectors_ < o_.clients) {
        StartConnector();
      }
    }
    if (now < stop_ns_) {
      Pump(now);
    } else {
      // Stopped publishing: wait for what is on its way, at most 3 s.
      const uint64_t expected = sent_ * static_cast<uint64_t>(deliveries_per_publish());
      if (received_ >= expected || now > stop_ns_ + 3'000'000'000) {
        done_ = true;
        io_.stop();
        return;
      }
    }
  }
  tick_.expires_after(std::chrono::milliseconds(1));
  tick_.async_wait([this](const error_code& e) {
    if (!e) Tick();
  });
}

absl::StatusOr<nlohmann::json> Load::Run() {
  error_code ec;
  server_ = tcp::endpoint(asio::ip::make_address(o_.host, ec), static_cast<uint16_t>(o_.port));
  if (ec) return absl::InvalidArgumentError("--host: expected an IP address");
  if (o_.tls) {
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    if (!o_.cafile.empty()) {
      tls_->load_verify_file(o_.cafile, ec);
      if (ec) return absl::InvalidArgumentError("--cafile: " + ec.message());
      tls_->set_verify_mode(asio::ssl::verify_peer);
    }
    if (!o_.cert.empty()) {
      tls_->use_certificate_chain_file(o_.cert, ec);
      if (!ec) tls_->use_private_key_file(o_.key, asio::ssl::context::pem, ec);
      if (ec) return absl::InvalidArgumentError("--cert/--key: " + ec.message());
    }
    // Every connection does a full handshake, as a fleet of devices does on first connect,
    // unless --resume: then each device resumes its previous session.
    SSL_CTX_set_session_cache_mode(tls_->native_handle(), SSL_SESS_CACHE_OFF);
    if (!o_.resume) SSL_CTX_set_options(tls_->native_handle(), SSL_OP_NO_TICKET);
  }
  if (o_.resume) {
    if (!o_.tls || o_.devices <= 0 || o_.scenario != "mqtt-connect") {
      return absl::InvalidArgumentError("--resume needs mqtt-connect, --tls and --devices");
    }
    sessions_.assign(static_cast<size_t>(o_.devices), nullptr);
  }
  padding_.assign(static_cast<size_t>(std::max(o_.payload_size, 16)), 'x');
  start_ns_ = NowNs();
  deadline_ns_ = start_ns_ + 120'000'000'000;  // everything connected within 2 minutes

  const std::string base = absl::StrCat(o_.prefix, "/", start_ns_ % 1000000);
  const int n = o_.clients;
  if (o_.scenario == "mqtt-p2p" || o_.scenario == "mqtt-fanin" || o_.scenario == "mqtt-fanout") {
    const int pubs = o_.scenario == "mqtt-fanout" ? 1 : n;
    const int subs = o_.scenario == "mqtt-fanin" ? 1 : n;
    for (int i = 0; i < subs; ++i) {
      std::string filter = o_.scenario == "mqtt-p2p"     ? absl::StrCat(base, "/p2p/", i)
                           : o_.scenario == "mqtt-fanin" ? absl::StrCat(base, "/fanin/+")
                                                         : absl::StrCat(base, "/fanout");
      subscribers_.push_back(
          std::make_shared<Client>(this, i, Client::Role::kSubscriber, std::move(filter)));
    }
    for (int i = 0; i < pubs; ++i) {
      std::string topic = o_.scenario == "mqtt-p2p"     ? absl::StrCat(base, "/p2p/", i)
                          : o_.scenario == "mqtt-fanin" ? absl::StrCat(base, "/fanin/", i)
                                                        : absl::StrCat(base, "/fanout");
      publishers_.push_back(
          std::make_shared<Client>(this, i, Client::Role::kPublisher, std::move(topic)));
    }
    expected_ready_ = pubs + subs;
    for (auto& s : subscribers_) s->Start();
    for (auto& p : publishers_) p->Start();
  } else if (o_.scenario == "mqtt-idle") {
    // Opened in batches of 500 handshakes at a time.
    expected_ready_ = n;
    for (int i = 0; i < n; ++i) {
      others_.push_back(std::make_shared<Client>(this, i, Client::Role::kIdle, ""));
    }
    auto opener = std::make_shared<std::function<void(size_t)>>();
    auto timer = std::make_shared<asio::steady_timer>(io_);
    *opener = [this, opener, timer](size_t next) {
      const size_t in_progress = next - static_cast<size_t>(ready_) - failures_;
      size_t i = next;
      for (; i < others_.size() && i - next + in_progress < 500; ++i) others_[i]->Start();
      if (i < others_.size()) {
        timer->expires_after(std::chrono::milliseconds(5));
        timer->async_wait([opener, i](const error_code&) { (*opener)(i); });
      }
    };
    (*opener)(0);
  } else if (o_.scenario == "mqtt-connect") {
    expected_ready_ = 0;
  } else {
    return absl::InvalidArgumentError("unknown MQTT scenario " + o_.scenario);
  }
  Tick();
  if (o_.scenario == "mqtt-connect" && o_.rate == 0) {
    for (int i = 0; i < n; ++i) StartConnector();
  }
  io_.run();

  const double secs = absl::ToDoubleSeconds(o_.duration);
  nlohmann::json r;
  r["scenario"] = o_.scenario;
  r["clients"] = o_.clients;
  r["errors"] = failures_;
  if (!first_failure_.empty()) r["first_error"] = first_failure_;
  if (!loading_) {
    return absl::DeadlineExceededError(
        absl::StrCat("only ", ready_, " of ", expected_ready_,
                     " clients were ready within 2 minutes; first error: ", first_failure_));
  }
  std::sort(latencies_.begin(), latencies_.end());
  auto pct = [&](double q) -> double {
    if (latencies_.empty()) return 0;
    const size_t i = std::min(latencies_.size() - 1,
                              static_cast<size_t>(q * static_cast<double>(latencies_.size())));
    return static_cast<double>(latencies_[i]) / 1000.0;
  };
  r["p50_us"] = pct(0.50);
  r["p99_us"] = pct(0.99);
  r["p999_us"] = pct(0.999);
  if (o_.scenario == "mqtt-connect") {
    r["connects"] = connects_;
    r["calls_per_second"] = static_cast<double>(connects_in_window_) / secs;
    r["tls"] = o_.tls;
    r["mutual_tls"] = !o_.cert.empty();
    r["devices"] = o_.devices;
    r["resumed"] = resumed_;
  } else if (o_.scenario == "mqtt-idle") {
    r["established"] = ready_;
    int open = 0;
    for (auto& c : others_) open += c->ready() ? 1 : 0;
    r["still_open"] = open;
    r["calls_per_second"] = 0;
  } else {
    const uint64_t expected = sent_ * static_cast<uint64_t>(deliveries_per_publish());
    r["qos"] = o_.qos;
    r["payload_size"] = std::max(o_.payload_size, 16);
    r["offered_rate"] = o_.rate;
    r["sent"] = sent_;
    r["received"] = received_;
    r["lost"] = expected > received_ ? expected - received_ : 0;
    r["sent_per_second"] = static_cast<double>(sent_in_window_) / secs;
    r["calls_per_second"] = static_cast<double>(received_in_window_) / secs;
  }
  for (auto& c : publishers_) c->Close();
  for (auto& c : subscribers_) c->Close();
  for (auto& c : others_) c->Close();
  return r;
}

}  // namespace

absl::StatusOr<nlohmann::json> RunMqtt(const MqttOptions& options) {
  if (options.qos < 0 || options.qos > 2) return absl::InvalidArgumentError("--qos: 0, 1 or 2");
  if (options.version != 4 && options.version != 5) {
    return absl::InvalidArgumentError("--mqtt-version: 4 (3.1.1) or 5");
  }
  Load load(options);
  return load.Run();
}

}  // namespace fleetcore::bench
