#include "common/mqtt/codec.h"

#include <cstring>

namespace fleetcore::mqtt {
namespace {

// Where a property may appear (MQTT 5.0, 2.2.2.2).
enum Context : uint16_t {
  kInConnect = 1 << 0,
  kInConnack = 1 << 1,
  kInPublish = 1 << 2,
  kInWill = 1 << 3,
  kInAck = 1 << 4,  // PUBACK, PUBREC, PUBREL, PUBCOMP
  kInSubscribe = 1 << 5,
  kInSuback = 1 << 6,
  kInUnsubscribe = 1 << 7,
  kInUnsuback = 1 << 8,
  kInDisconnect = 1 << 9,
  kInAuth = 1 << 10,
};
constexpr uint16_t kReasonStringContexts =
    kInConnack | kInAck | kInSuback | kInUnsuback | kInDisconnect | kInAuth;
constexpr uint16_t kAllContexts = 0x7ff;

uint16_t AllowedIn(uint8_t id) {
  switch (id) {
    case 0x01: case 0x02: case 0x03: case 0x08: case 0x09:
      return kInPublish | kInWill;
    case 0x0B: return kInPublish | kInSubscribe;
    case 0x11: return kInConnect | kInConnack | kInDisconnect;
    case 0x12: case 0x13: case 0x1A: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
      return kInConnack;
    case 0x15: case 0x16: return kInConnect | kInConnack | kInAuth;
    case 0x17: case 0x19: return kInConnect;
    case 0x18: return kInWill;
    case 0x1C: return kInConnack | kInDisconnect;
    case 0x1F: return kReasonStringContexts;
    case 0x21: case 0x22: case 0x27: return kInConnect | kInConnack;
    case 0x23: return kInPublish;
    case 0x26: return kAllContexts;
    default: return 0;
  }
}

class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  bool AtEnd() const { return pos_ == data_.size(); }
  size_t Remaining() const { return data_.size() - pos_; }

  bool U8(uint8_t* v) {
    if (Remaining() < 1) return false;
    *v = static_cast<uint8_t>(data_[pos_++]);
    return true;
  }
  bool U16(uint16_t* v) {
    if (Remaining() < 2) return false;
    *v = static_cast<uint16_t>((static_cast<uint8_t>(data_[pos_]) << 8) |
                               static_cast<uint8_t>(data_[pos_ + 1]));
    pos_ += 2;
    return true;
  }
  bool U32(uint32_t* v) {
    if (Remaining() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += 4;
    return true;
  }
  // Variable byte integer, minimal encoding, at most 4 bytes.
  bool VarInt(uint32_t* v) {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b;
      if (!U8(&b)) return false;
      value |= static_cast<uint32_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        if (i > 0 && b == 0) return false;  // not the minimal encoding
        *v = value;
        return true;
      }
    }
    return false;
  }
  bool Binary(std::string* out) {
    uint16_t len;
    if (!U16(&len) || Remaining() < len) return false;
    out->assign(data_.data() + pos_, len);
    pos_ += len;
    return true;
  }
  bool Utf8(std::string* out) { return Binary(out) && ValidUtf8(*out); }
  absl::string_view Rest() {
    absl::string_view r = data_.substr(pos_);
    pos_ = data_.size();
    return r;
  }
  // A sub-reader over the next `n` bytes.
  bool Take(size_t n, absl::string_view* out) {
    if (Remaining() < n) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  absl::string_view data_;
  size_t pos_ = 0;
};

bool Fail(DecodeError* e, uint8_t code, const char* message) {
  e->reason_code = code;
  e->message = message;
  return false;
}

bool Malformed(DecodeError* e, const char* message) {
  return Fail(e, reason::kMalformedPacket, message);
}

bool ProtocolError(DecodeError* e, const char* message) {
  return Fail(e, reason::kProtocolError, message);
}

bool BoolByte(uint8_t v) { return v == 0 || v == 1; }

bool DecodeProperties(Reader& r, Context context, Properties* p, DecodeError* e) {
  uint32_t len;
  if (!r.VarInt(&len)) return Malformed(e, "bad property length");
  absl::string_view block;
  if (!r.Take(len, &block)) return Malformed(e, "property length beyond the packet");
  Reader pr(block);
  uint64_t seen = 0;
  while (!pr.AtEnd()) {
    uint32_t id;
    if (!pr.VarInt(&id) || id > 0x7f) return Malformed(e, "bad property identifier");
    const uint16_t allowed = AllowedIn(static_cast<uint8_t>(id));
    if (allowed == 0) return Malformed(e, "unknown property");
    if ((allowed & context) == 0) return ProtocolError(e, "property not allowed in this packet");
    const uint64_t bit = uint64_t{1} << id;
    if ((seen & bit) != 0 && id != 0x26 && id != 0x0B) {
      return ProtocolError(e, "property given twice");
    }
    seen |= bit;
    auto byte = [&](std::optional<uint8_t>* out, bool boolean) {
      uint8_t v;
      if (!pr.U8(&v)) return Malformed(e, "truncated property");
      if (boolean && !BoolByte(v)) return ProtocolError(e, "property must be 0 or 1");
      *out = v;
      return true;
    };
    auto u16 = [&](std::optional<uint16_t>* out) {
      uint16_t v;
      if (!pr.U16(&v)) return Malformed(e, "truncated property");
      *out = v;
      return true;
    };
    auto u32 = [&](std::optional<uint32_t>* out) {
      uint32_t v;
      if (!pr.U32(&v)) return Malformed(e, "truncated property");
      *out = v;
      return true;
    };
    auto utf8 = [&](std::optional<std::string>* out) {
      std::string v;
      if (!pr.Utf8(&v)) return Malformed(e, "bad UTF-8 string property");
      *out = std::move(v);
      return true;
    };
    auto binary = [&](std::optional<std::string>* out) {
      std::string v;
      if (!pr.Binary(&v)) return Malformed(e, "truncated binary property");
      *out = std::move(v);
      return true;
    };
    bool ok = true;
    switch (id) {
      case 0x01: ok = byte(&p->payload_format_indicator, true); break;
      case 0x02: ok = u32(&p->message_expiry_interval); break;
      case 0x03: ok = utf8(&p->content_type); break;
      case 0x08:
        ok = utf8(&p->response_topic);
        if (ok && !ValidTopicName(*p->response_topic)) {
          return ProtocolError(e, "response topic is not a valid topic name");
        }
        break;
      case 0x09: ok = binary(&p->correlation_data); break;
      case 0x0B: {
        uint32_t v;
        if (!pr.VarInt(&v)) return Malformed(e, "bad subscription identifier");
        if (v == 0) return ProtocolError(e, "subscription identifier 0");
        p->subscription_identifiers.push_back(v);
        break;
      }
      case 0x11: ok = u32(&p->session_expiry_interval); break;
      case 0x12: ok = utf8(&p->assigned_client_identifier); break;
      case 0x13: ok = u16(&p->server_keep_alive); break;
      case 0x15: ok = utf8(&p->authentication_method); break;
      case 0x16: ok = binary(&p->authentication_data); break;
      case 0x17: ok = byte(&p->request_problem_information, true); break;
      case 0x18: ok = u32(&p->will_delay_interval); break;
      case 0x19: ok = byte(&p->request_response_information, true); break;
      case 0x1A: ok = utf8(&p->response_information); break;
      case 0x1C: ok = utf8(&p->server_reference); break;
      case 0x1F: ok = utf8(&p->reason_string); break;
      case 0x21:
        ok = u16(&p->receive_maximum);
        if (ok && *p->receive_maximum == 0) return ProtocolError(e, "receive maximum 0");
        break;
      case 0x22: ok = u16(&p->topic_alias_maximum); break;
      case 0x23:
        ok = u16(&p->topic_alias);
        if (ok && *p->topic_alias == 0) return ProtocolError(e, "topic alias 0");
        break;
      case 0x24: ok = byte(&p->maximum_qos, true); break;
      case 0x25: ok = byte(&p->retain_available, true); break;
      case 0x26: {
        UserProperty u;
        if (!pr.Utf8(&u.key) || !pr.Utf8(&u.value)) return Malformed(e, "bad user property");
        p->user_properties.push_back(std::move(u));
        break;
      }
      case 0x27:
        ok = u32(&p->maximum_packet_size);
        if (ok && *p->maximum_packet_size == 0) return ProtocolError(e, "maximum packet size 0");
        break;
      case 0x28: ok = byte(&p->wildcard_subscription_available, true); break;
      case 0x29: ok = byte(&p->subscription_identifier_available, true); break;
      case 0x2A: ok = byte(&p->shared_subscription_available, true); break;
    }
    if (!ok) return false;
  }
  return true;
}

bool DecodeConnect(Reader& r, Connect* c, DecodeError* e) {
  std::string protocol;
  uint8_t level, flags;
  if (!r.Binary(&protocol) || !r.U8(&level)) return Malformed(e, "truncated CONNECT");
  if (protocol != "MQTT" || (level != 4 && level != 5)) {
    // 3.1.1 answers CONNACK 0x01, MQTT 5 answers 0x84; the broker chooses by `level`.
    return Fail(e, reason::kUnsupportedProtocolVersion,
                "only MQTT 3.1.1 (level 4) and MQTT 5 (level 5) are supported");
  }
  c->version = static_cast<Version>(level);
  if (!r.U8(&flags) || !r.U16(&c->keep_alive)) return Malformed(e, "truncated CONNECT");
  if ((flags & 0x01) != 0) return Malformed(e, "CONNECT reserved flag set");
  c->clean_start = (flags & 0x02) != 0;
  const bool will = (flags & 0x04) != 0;
  const uint8_t will_qos = (flags >> 3) & 0x03;
  const bool will_retain = (flags & 0x20) != 0;
  const bool password = (flags & 0x40) != 0;
  const bool username = (flags & 0x80) != 0;
  if (!will && (will_qos != 0 || will_retain)) {
    return Malformed(e, "will QoS or retain without a will");
  }
  if (will_qos == 3) return Malformed(e, "will QoS 3");
  if (c->version == Version::kV311 && password && !username) {
    return ProtocolError(e, "password without user name (MQTT 3.1.1)");
  }
  if (c->version == Version::kV5 && !DecodeProperties(r, kInConnect, &c->properties, e)) {
    return false;
  }
  if (!r.Utf8(&c->client_id)) return Malformed(e, "bad client identifier");
  if (will) {
    Will w{.qos = will_qos, .retain = will_retain};
    if (c->version == Version::kV5 && !DecodeProperties(r, kInWill, &w.properties, e)) {
      return false;
    }
    if (!r.Utf8(&w.topic) || !r.Binary(&w.payload)) return Malformed(e, "bad will");
    if (!ValidTopicName(w.topic)) return Fail(e, reason::kTopicNameInvalid, "bad will topic");
    c->will = std::move(w);
  }
  if (username) {
    std::string u;
    if (!r.Utf8(&u)) return Malformed(e, "bad user name");
    c->username = std::move(u);
  }
  if (password) {
    std::string p;
    if (!r.Binary(&p)) return Malformed(e, "bad password");
    c->password = std::move(p);
  }
  if (!r.AtEnd()) return Malformed(e, "bytes after the CONNECT payload");
  return true;
}

bool DecodePublish(uint8_t flags, Reader& r, Version v, Publish* p, DecodeError* e) {
  p->dup = (flags & 0x08) != 0;
  p->qos = (flags >> 1) & 0x03;
  p->retain = (flags & 0x01) != 0;
  if (p->qos == 3) return Malformed(e, "PUBLISH QoS 3");
  if (p->dup && p->qos == 0) return Malformed(e, "DUP set on a QoS 0 PUBLISH");
  std::string topic;
  if (!r.Binary(&topic)) return Malformed(e, "truncated PUBLISH topic");
  if (!ValidUtf8(topic)) return Malformed(e, "PUBLISH topic is not UTF-8");
  if (topic.find_first_of("+#") != std::string::npos) {
    return Fail(e, reason::kTopicNameInvalid, "wildcard in a PUBLISH topic");
  }
  if (topic.empty() && v == Version::kV311) {
    return Fail(e, reason::kTopicNameInvalid, "empty PUBLISH topic");
  }
  p->topic = std::move(topic);
  if (p->qos > 0) {
    if (!r.U16(&p->packet_id)) return Malformed(e, "truncated packet identifier");
    if (p->packet_id == 0) return ProtocolError(e, "packet identifier 0");
  }
  if (v == Version::kV5 && !DecodeProperties(r, kInPublish, &p->properties, e)) return false;
  if (v == Version::kV5 && p->topic.empty() && !p->properties.topic_alias.has_value()) {
    return Fail(e, reason::kTopicNameInvalid, "empty topic without a topic alias");
  }
  if (!p->properties.subscription_identifiers.empty()) {
    return ProtocolError(e, "a client's PUBLISH carries no subscription identifier");
  }
  const absl::string_view payload = r.Rest();
  p->payload.assign(payload.data(), payload.size());
  if (p->properties.payload_format_indicator == 1 && !ValidUtf8(p->payload)) {
    return Fail(e, reason::kPayloadFormatInvalid, "payload is not the UTF-8 it says it is");
  }
  return true;
}

bool DecodeAck(PacketType type, Reader& r, Version v, Ack* a, DecodeError* e) {
  a->type = type;
  if (!r.U16(&a->packet_id)) return Malformed(e, "truncated acknowledgement");
  if (a->packet_id == 0) return ProtocolError(e, "packet identifier 0");
  if (v == Version::kV5 && !r.AtEnd()) {
    if (!r.U8(&a->reason_code)) return Malformed(e, "truncated reason code");
    if (!r.AtEnd() && !DecodeProperties(r, kInAck, &a->properties, e)) return false;
  }
  if (!r.AtEnd()) return Malformed(e, "bytes after the acknowledgement");
  return true;
}

bool DecodeSubscribe(Reader& r, Version v, Subscribe* s, DecodeError* e) {
  if (!r.U16(&s->packet_id)) return Malformed(e, "truncated SUBSCRIBE");
  if (s->packet_id == 0) return ProtocolError(e, "packet identifier 0");
  if (v == Version::kV5 && !DecodeProperties(r, kInSubscribe, &s->properties, e)) return false;
  if (s->properties.subscription_identifiers.size() > 1) {
    return ProtocolError(e, "more than one subscription identifier");
  }
  while (!r.AtEnd()) {
    SubscriptionRequest req;
    uint8_t options;
    if (!r.Utf8(&req.filter) || !r.U8(&options)) return Malformed(e, "bad subscription");
    req.qos = options & 0x03;
    if (req.qos == 3) return Malformed(e, "subscription QoS 3");
    if (v == Version::kV311) {
      if ((options & 0xfc) != 0) return Malformed(e, "reserved subscription option bits set");
    } else {
      req.no_local = (options & 0x04) != 0;
      req.retain_as_published = (options & 0x08) != 0;
      req.retain_handling = (options >> 4) & 0x03;
      if (req.retain_handling == 3) return ProtocolError(e, "retain handling 3");
      if ((options & 0xc0) != 0) return Malformed(e, "reserved subscription option bits set");
    }
    s->subscriptions.push_back(std::move(req));
  }
  if (s->subscriptions.empty()) return ProtocolError(e, "SUBSCRIBE without a topic filter");
  return true;
}

bool DecodeUnsubscribe(Reader& r, Version v, Unsubscribe* u, DecodeError* e) {
  if (!r.U16(&u->packet_id)) return Malformed(e, "truncated UNSUBSCRIBE");
  if (u->packet_id == 0) return ProtocolError(e, "packet identifier 0");
  if (v == Version::kV5 && !DecodeProperties(r, kInUnsubscribe, &u->properties, e)) return false;
  while (!r.AtEnd()) {
    std::string f;
    if (!r.Utf8(&f)) return Malformed(e, "bad topic filter");
    u->filters.push_back(std::move(f));
  }
  if (u->filters.empty()) return ProtocolError(e, "UNSUBSCRIBE without a topic filter");
  return true;
}

bool DecodeReasonAndProperties(Reader& r, Version v, Context context, uint8_t* code,
                               Properties* p, DecodeError* e) {
  if (v == Version::kV5 && !r.AtEnd()) {
    if (!r.U8(code)) return Malformed(e, "truncated reason code");
    if (!r.AtEnd() && !DecodeProperties(r, context, p, e)) return false;
  }
  if (!r.AtEnd()) return Malformed(e, "unexpected bytes");
  return true;
}

// ---- encoding

void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}
void PutU32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutVarInt(std::string* out, uint32_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v > 0) b |= 0x80;
    out->push_back(static_cast<char>(b));
  } while (v > 0);
}
size_t VarIntSize(uint32_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}
void PutBinary(std::string* out, absl::string_view s) {
  PutU16(out, static_cast<uint16_t>(s.size()));
  out->append(s.data(), s.size());
}

void PutPropertiesBody(std::string& b, const Properties& p) {
  auto byte = [&](uint8_t id, const std::optional<uint8_t>& v) {
    if (v) PutU8(&b, id), PutU8(&b, *v);
  };
  auto u16 = [&](uint8_t id, const std::optional<uint16_t>& v) {
    if (v) PutU8(&b, id), PutU16(&b, *v);
  };
  auto u32 = [&](uint8_t id, const std::optional<uint32_t>& v) {
    if (v) PutU8(&b, id), PutU32(&b, *v);
  };
  auto str = [&](uint8_t id, const std::optional<std::string>& v) {
    if (v) PutU8(&b, id), PutBinary(&b, *v);
  };
  byte(0x01, p.payload_format_indicator);
  u32(0x02, p.message_expiry_interval);
  str(0x03, p.content_type);
  str(0x08, p.response_topic);
  str(0x09, p.correlation_data);
  for (uint32_t id : p.subscription_identifiers) PutU8(&b, 0x0B), PutVarInt(&b, id);
  u32(0x11, p.session_expiry_interval);
  str(0x12, p.assigned_client_identifier);
  u16(0x13, p.server_keep_alive);
  str(0x15, p.authentication_method);
  str(0x16, p.authentication_data);
  byte(0x17, p.request_problem_information);
  u32(0x18, p.will_delay_interval);
  byte(0x19, p.request_response_information);
  str(0x1A, p.response_information);
  str(0x1C, p.server_reference);
  str(0x1F, p.reason_string);
  u16(0x21, p.receive_maximum);
  u16(0x22, p.topic_alias_maximum);
  u16(0x23, p.topic_alias);
  byte(0x24, p.maximum_qos);
  byte(0x25, p.retain_available);
  for (const UserProperty& u : p.user_properties) {
    PutU8(&b, 0x26), PutBinary(&b, u.key), PutBinary(&b, u.value);
  }
  u32(0x27, p.maximum_packet_size);
  byte(0x28, p.wildcard_subscription_available);
  byte(0x29, p.subscription_identifier_available);
  byte(0x2A, p.shared_subscription_available);
}

void PutProperties(std::string* out, const Properties& p) {
  std::string b;
  PutPropertiesBody(b, p);
  PutVarInt(out, static_cast<uint32_t>(b.size()));
  out->append(b);
}

// Writes the fixed header and `body`.
void Frame(std::string* out, uint8_t first_byte, const std::string& body) {
  PutU8(out, first_byte);
  PutVarInt(out, static_cast<uint32_t>(body.size()));
  out->append(body);
}

uint8_t V311ConnackCode(uint8_t reason_code) {
  switch (reason_code) {
    case reason::kSuccess: return 0;
    case reason::kUnsupportedProtocolVersion: return 1;
    case reason::kClientIdentifierNotValid: return 2;
    case reason::kServerUnavailable:
    case reason::kServerBusy:
    case reason::kServerShuttingDown:
    case reason::kConnectionRateExceeded: return 3;
    case reason::kBadUserNameOrPassword: return 4;
    default: return 5;  // not authorized
  }
}

}  // namespace

FrameStatus ParseFrameHeader(absl::string_view data, uint32_t max_packet_size, FrameHeader* out) {
  if (data.size() < 2) return FrameStatus::kIncomplete;
  uint32_t value = 0;
  for (size_t i = 1; i <= 4; ++i) {
    if (i >= data.size()) return FrameStatus::kIncomplete;
    const uint8_t b = static_cast<uint8_t>(data[i]);
    value |= static_cast<uint32_t>(b & 0x7f) << (7 * (i - 1));
    if ((b & 0x80) == 0) {
      if (i > 1 && b == 0) return FrameStatus::kMalformed;
      out->first_byte = static_cast<uint8_t>(data[0]);
      out->remaining_length = value;
      out->header_size = i + 1;
      if (out->total_size() > max_packet_size) return FrameStatus::kTooLarge;
      return data.size() >= out->total_size() ? FrameStatus::kComplete : FrameStatus::kIncomplete;
    }
  }
  return FrameStatus::kMalformed;
}

bool Decode(uint8_t first_byte, absl::string_view body, Version version, Packet* out,
            DecodeError* e) {
  const uint8_t type = first_byte >> 4;
  const uint8_t flags = first_byte & 0x0f;
  Reader r(body);
  // Fixed-header flags: 0010 for PUBREL, SUBSCRIBE, UNSUBSCRIBE; 0000 for the others but
  // PUBLISH.
  const bool needs_0010 = type == 6 || type == 8 || type == 10;
  if (type != 3 && flags != (needs_0010 ? 0x02 : 0x00)) {
    return Malformed(e, "reserved fixed-header flags");
  }
  switch (type) {
    case 1: {
      Connect c;
      if (!DecodeConnect(r, &c, e)) return false;
      *out = std::move(c);
      return true;
    }
    case 2: {
      Connack c;
      uint8_t ack_flags;
      if (!r.U8(&ack_flags) || !r.U8(&c.reason_code)) return Malformed(e, "truncated CONNACK");
      if ((ack_flags & 0xfe) != 0) return Malformed(e, "CONNACK reserved flags");
      if (version == Version::kV311) {
        // 3.1.1 return codes 0-5, kept in the packet as their MQTT 5 reason codes.
        static constexpr uint8_t kFromV311[] = {
            reason::kSuccess,           reason::kUnsupportedProtocolVersion,
            reason::kClientIdentifierNotValid, reason::kServerUnavailable,
            reason::kBadUserNameOrPassword,    reason::kNotAuthorized};
        if (c.reason_code > 5) return Malformed(e, "CONNACK return code above 5");
        c.reason_code = kFromV311[c.reason_code];
      } else if (c.reason_code != reason::kSuccess && c.reason_code < 0x80) {
        return Malformed(e, "CONNACK reason code is neither success nor an error");
      }
      c.session_present = (ack_flags & 1) != 0;
      if (version == Version::kV5 && !DecodeProperties(r, kInConnack, &c.properties, e)) {
        return false;
      }
      if (!r.AtEnd()) return Malformed(e, "bytes after CONNACK");
      *out = std::move(c);
      return true;
    }
    case 3: {
      Publish p;
      if (!DecodePublish(flags, r, version, &p, e)) return false;
      *out = std::move(p);
      return true;
    }
    case 4: case 5: case 6: case 7: {
      Ack a;
      if (!DecodeAck(static_cast<PacketType>(type), r, version, &a, e)) return false;
      *out = std::move(a);
      return true;
    }
    case 8: {
      Subscribe s;
      if (!DecodeSubscribe(r, version, &s, e)) return false;
      *out = std::move(s);
      return true;
    }
    case 9: {
      Suback s;
      if (!r.U16(&s.packet_id)) return Malformed(e, "truncated SUBACK");
      if (version == Version::kV5 && !DecodeProperties(r, kInSuback, &s.properties, e)) return false;
      while (!r.AtEnd()) {
        uint8_t c;
        r.U8(&c);
        const bool granted = c <= 2;
        if (!granted && (version == Version::kV311 ? c != 0x80 : c < 0x80)) {
          return ProtocolError(e, "SUBACK reason code that is not one");
        }
        s.reason_codes.push_back(c);
      }
      if (s.reason_codes.empty()) return ProtocolError(e, "SUBACK without a reason code");
      *out = std::move(s);
      return true;
    }
    case 10: {
      Unsubscribe u;
      if (!DecodeUnsubscribe(r, version, &u, e)) return false;
      *out = std::move(u);
      return true;
    }
    case 11: {
      Unsuback u;
      if (!r.U16(&u.packet_id)) return Malformed(e, "truncated UNSUBACK");
      if (version == Version::kV5) {
        if (!DecodeProperties(r, kInUnsuback, &u.properties, e)) return false;
        while (!r.AtEnd()) {
          uint8_t c;
          r.U8(&c);
          u.reason_codes.push_back(c);
        }
      }
      if (!r.AtEnd()) return Malformed(e, "bytes after UNSUBACK");
      *out = std::move(u);
      return true;
    }
    case 12:
      if (!r.AtEnd()) return Malformed(e, "PINGREQ with a body");
      *out = Pingreq{};
      return true;
    case 13:
      if (!r.AtEnd()) return Malformed(e, "PINGRESP with a body");
      *out = Pingresp{};
      return true;
    case 14: {
      Disconnect d;
      if (!DecodeReasonAndProperties(r, version, kInDisconnect, &d.reason_code, &d.properties, e)) {
        return false;
      }
      *out = std::move(d);
      return true;
    }
    case 15: {
      if (version != Version::kV5) return Malformed(e, "AUTH is MQTT 5 only");
      Auth a;
      if (!DecodeReasonAndProperties(r, version, kInAuth, &a.reason_code, &a.properties, e)) {
        return false;
      }
      *out = std::move(a);
      return true;
    }
    default:
      return Malformed(e, "reserved packet type 0");
  }
}

void Encode(const Packet& packet, Version v, std::string* out) {
  const bool v5 = v == Version::kV5;
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        std::string b;
        if constexpr (std::is_same_v<T, Connect>) {
          PutBinary(&b, "MQTT");
          PutU8(&b, static_cast<uint8_t>(p.version));
          uint8_t flags = p.clean_start ? 0x02 : 0;
          if (p.will) {
            flags |= 0x04 | static_cast<uint8_t>(p.will->qos << 3) | (p.will->retain ? 0x20 : 0);
          }
          if (p.password) flags |= 0x40;
          if (p.username) flags |= 0x80;
          PutU8(&b, flags);
          PutU16(&b, p.keep_alive);
          const bool cv5 = p.version == Version::kV5;
          if (cv5) PutProperties(&b, p.properties);
          PutBinary(&b, p.client_id);
          if (p.will) {
            if (cv5) PutProperties(&b, p.will->properties);
            PutBinary(&b, p.will->topic);
            PutBinary(&b, p.will->payload);
          }
          if (p.username) PutBinary(&b, *p.username);
          if (p.password) PutBinary(&b, *p.password);
          Frame(out, 0x10, b);
        } else if constexpr (std::is_same_v<T, Connack>) {
          PutU8(&b, p.session_present ? 1 : 0);
          PutU8(&b, v5 ? p.reason_code : V311ConnackCode(p.reason_code));
          if (v5) PutProperties(&b, p.properties);
          Frame(out, 0x20, b);
        } else if constexpr (std::is_same_v<T, Publish>) {
          EncodePublishHeader(p, p.payload.size(), v, out);
          out->append(p.payload);
        } else if constexpr (std::is_same_v<T, Ack>) {
          PutU16(&b, p.packet_id);
          const bool has_props =
              !p.properties.user_properties.empty() || p.properties.reason_string.has_value();
          if (v5 && (p.reason_code != 0 || has_props)) {
            PutU8(&b, p.reason_code);
            if (has_props) PutProperties(&b, p.properties);
          }
          const uint8_t type = static_cast<uint8_t>(p.type);
          Frame(out, static_cast<uint8_t>((type << 4) | (type == 6 ? 0x02 : 0)), b);
        } else if constexpr (std::is_same_v<T, Subscribe>) {
          PutU16(&b, p.packet_id);
          if (v5) PutProperties(&b, p.properties);
          for (const SubscriptionRequest& s : p.subscriptions) {
            PutBinary(&b, s.filter);
            uint8_t options = s.qos;
            if (v5) {
              options |= (s.no_local ? 0x04 : 0) | (s.retain_as_published ? 0x08 : 0) |
                         static_cast<uint8_t>(s.retain_handling << 4);
            }
            PutU8(&b, options);
          }
          Frame(out, 0x82, b);
        } else if constexpr (std::is_same_v<T, Suback>) {
          PutU16(&b, p.packet_id);
          if (v5) PutProperties(&b, p.properties);
          for (uint8_t c : p.reason_codes) {
            PutU8(&b, v5 ? c : (c >= 0x80 ? 0x80 : c));
          }
          Frame(out, 0x90, b);
        } else if constexpr (std::is_same_v<T, Unsubscribe>) {
          PutU16(&b, p.packet_id);
          if (v5) PutProperties(&b, p.properties);
          for (const std::string& f : p.filters) PutBinary(&b, f);
          Frame(out, 0xa2, b);
        } else if constexpr (std::is_same_v<T, Unsuback>) {
          PutU16(&b, p.packet_id);
          if (v5) {
            PutProperties(&b, p.properties);
            for (uint8_t c : p.reason_codes) PutU8(&b, c);
          }
          Frame(out, 0xb0, b);
        } else if constexpr (std::is_same_v<T, Pingreq>) {
          Frame(out, 0xc0, b);
        } else if constexpr (std::is_same_v<T, Pingresp>) {
          Frame(out, 0xd0, b);
        } else if constexpr (std::is_same_v<T, Disconnect>) {
          if (v5) {
            PutU8(&b, p.reason_code);
            PutProperties(&b, p.properties);
          }
          Frame(out, 0xe0, b);
        } else if constexpr (std::is_same_v<T, Auth>) {
          PutU8(&b, p.reason_code);
          PutProperties(&b, p.properties);
          Frame(out, 0xf0, b);
        }
      },
      packet);
}

void EncodePublishHeader(const Publish& publish, size_t payload_size, Version version,
                         std::string* out) {
  std::string properties;
  if (version == Version::kV5) PutPropertiesBody(properties, publish.properties);
  EncodePublishHeader(PublishHeader{.dup = publish.dup,
                                    .qos = publish.qos,
                                    .retain = publish.retain,
                                    .topic = publish.topic,
                                    .packet_id = publish.packet_id,
                                    .properties = properties},
                      payload_size, version, out);
}

void EncodePropertiesBody(const Properties& properties, std::string* out) {
  PutPropertiesBody(*out, properties);
}

void EncodePublishHeader(const PublishHeader& h, size_t payload_size, Version version,
                         std::string* out) {
  const bool v5 = version == Version::kV5;
  const size_t properties_size = h.properties.size();
  size_t variable = 2 + h.topic.size() + (h.qos > 0 ? 2 : 0);
  if (v5) variable += VarIntSize(static_cast<uint32_t>(properties_size)) + properties_size;
  PutU8(out, static_cast<uint8_t>((3 << 4) | (h.dup ? 0x08 : 0) | (h.qos << 1) |
                                  (h.retain ? 1 : 0)));
  PutVarInt(out, static_cast<uint32_t>(variable + payload_size));
  PutBinary(out, h.topic);
  if (h.qos > 0) PutU16(out, h.packet_id);
  if (v5) {
    PutVarInt(out, static_cast<uint32_t>(properties_size));
    out->append(h.properties.data(), properties_size);
  }
}

bool ValidUtf8(absl::string_view s) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c == 0) return false;
      ++p;
      continue;
    }
    int n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

bool ValidTopicName(absl::string_view topic) {
  return !topic.empty() && topic.size() <= 65535 &&
         topic.find_first_of("+#") == absl::string_view::npos && ValidUtf8(topic);
}

bool ValidTopicFilter(absl::string_view filter) {
  if (filter.empty() || filter.size() > 65535 || !ValidUtf8(filter)) return false;
  size_t start = 0;
  while (true) {
    const size_t slash = filter.find('/', start);
    const absl::string_view level =
        filter.substr(start, slash == absl::string_view::npos ? absl::string_view::npos
                                                              : slash - start);
    if (level.find('#') != absl::string_view::npos &&
        (level != "#" || slash != absl::string_view::npos)) {
      return false;
    }
    if (level.find('+') != absl::string_view::npos && level != "+") return false;
    if (slash == absl::string_view::npos) return true;
    start = slash + 1;
  }
}

PacketType TypeOf(const Packet& packet) {
  switch (packet.index()) {
    case 0: return PacketType::kConnect;
    case 1: return PacketType::kConnack;
    case 2: return PacketType::kPublish;
    case 3: return std::get<Ack>(packet).type;
    case 4: return PacketType::kSubscribe;
    case 5: return PacketType::kSuback;
    case 6: return PacketType::kUnsubscribe;
    case 7: return PacketType::kUnsuback;
    case 8: return PacketType::kPingreq;
    case 9: return PacketType::kPingresp;
    case 10: return PacketType::kDisconnect;
    default: return PacketType::kAuth;
  }
}

const char* TypeName(PacketType type) {
  static const char* const kNames[] = {"RESERVED", "CONNECT",  "CONNACK",     "PUBLISH",
                                       "PUBACK",   "PUBREC",   "PUBREL",      "PUBCOMP",
                                       "SUBSCRIBE", "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
                                       "PINGREQ",  "PINGRESP", "DISCONNECT",  "AUTH"};
  return kNames[static_cast<uint8_t>(type) & 0x0f];
}

}  // namespace fleetcore::mqtt
