// The codec: every packet both ways in both versions, and the malformed inputs the
// specifications name, each with its reason code.
#include "common/mqtt/codec.h"

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::mqtt {
namespace {

using ::testing::HasSubstr;

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// Encodes, frames and decodes `p` again.
Packet RoundTrip(const Packet& p, Version v) {
  std::string wire;
  Encode(p, v, &wire);
  FrameHeader h;
  EXPECT_EQ(ParseFrameHeader(wire, 1 << 20, &h), FrameStatus::kComplete);
  EXPECT_EQ(h.total_size(), wire.size());
  Packet out;
  DecodeError e;
  EXPECT_TRUE(Decode(h.first_byte, absl::string_view(wire).substr(h.header_size), v, &out, &e))
      << e.message;
  return out;
}

DecodeError MustFail(const std::string& wire, Version v) {
  FrameHeader h;
  EXPECT_EQ(ParseFrameHeader(wire, 1 << 20, &h), FrameStatus::kComplete)
      << absl::BytesToHexString(wire);
  Packet out;
  DecodeError e;
  EXPECT_FALSE(Decode(h.first_byte, absl::string_view(wire).substr(h.header_size), v, &out, &e))
      << absl::BytesToHexString(wire);
  return e;
}

Properties AllPublishProperties() {
  Properties p;
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 60;
  p.content_type = "application/json";
  p.response_topic = "replies/1";
  p.correlation_data = std::string("\x00\x01\xff", 3);
  p.topic_alias = 3;
  p.user_properties = {{"a", "1"}, {"a", "2"}, {"b", ""}};
  return p;
}

TEST(CodecTest, EveryPacketRoundTripsInMqtt5) {
  Connect c{.version = Version::kV5,
            .clean_start = false,
            .keep_alive = 30,
            .client_id = "dev-1",
            .will = Will{.topic = "wills/dev-1", .payload = "gone", .qos = 1, .retain = true},
            .username = "user",
            .password = std::string("p\0ss", 4)};
  c.properties.session_expiry_interval = 3600;
  c.properties.receive_maximum = 20;
  c.properties.maximum_packet_size = 65536;
  c.properties.topic_alias_maximum = 8;
  c.properties.request_problem_information = 0;
  c.will->properties.will_delay_interval = 5;
  c.will->properties.content_type = "text/plain";
  Connack ca{.session_present = true, .reason_code = 0};
  ca.properties.assigned_client_identifier = "auto-1";
  ca.properties.server_keep_alive = 60;
  ca.properties.maximum_qos = 1;
  ca.properties.retain_available = 1;
  ca.properties.wildcard_subscription_available = 1;
  ca.properties.subscription_identifier_available = 0;
  ca.properties.shared_subscription_available = 1;
  ca.properties.topic_alias_maximum = 8;
  Publish pub{.qos = 1, .retain = true, .topic = "a/b", .packet_id = 7,
              .properties = AllPublishProperties(), .payload = "hello"};
  pub.properties.payload_format_indicator = 1;
  Subscribe sub{.packet_id = 9,
                .subscriptions = {{"a/+", 1, true, true, 2}, {"$share/g/x/#", 0}}};
  sub.properties.subscription_identifiers = {12};
  Ack ack{.type = PacketType::kPubrec, .packet_id = 7, .reason_code = 0x10};
  ack.properties.reason_string = "nobody listens";
  const std::vector<Packet> packets = {
      c,
      ca,
      pub,
      Ack{.type = PacketType::kPuback, .packet_id = 7},
      ack,
      Ack{.type = PacketType::kPubrel, .packet_id = 7, .reason_code = 0x92},
      Ack{.type = PacketType::kPubcomp, .packet_id = 7},
      sub,
      Suback{.packet_id = 9, .reason_codes = {1, 0x87}},
      Unsubscribe{.packet_id = 10, .filters = {"a/+", "b"}},
      Unsuback{.packet_id = 10, .reason_codes = {0, 0x11}},
      Pingreq{},
      Pingresp{},
      Disconnect{.reason_code = 0x04},
      Auth{.reason_code = 0x18},
  };
  for (const Packet& p : packets) {
    EXPECT_EQ(RoundTrip(p, Version::kV5), p) << TypeName(TypeOf(p));
  }
}

TEST(CodecTest, Mqtt311LeavesMqtt5FieldsOut) {
  Connect c{.version = Version::kV311, .keep_alive = 60, .client_id = "c", .username = "u"};
  EXPECT_EQ(RoundTrip(c, Version::kV311), Packet(c));
  Publish p{.qos = 2, .topic = "t", .packet_id = 1, .payload = "x"};
  p.properties.content_type = "dropped";
  Packet back = RoundTrip(p, Version::kV311);
  EXPECT_FALSE(std::get<Publish>(back).properties.content_type.has_value());
  EXPECT_EQ(std::get<Publish>(back).payload, "x");
  // A refusal's MQTT 5 reason becomes 3.1.1's return code.
  std::string wire;
  Encode(Connack{.reason_code = reason::kNotAuthorized}, Version::kV311, &wire);
  EXPECT_EQ(wire, Bytes({0x20, 2, 0, 5}));
  wire.clear();
  Encode(Connack{.reason_code = reason::kBadUserNameOrPassword}, Version::kV311, &wire);
  EXPECT_EQ(wire, Bytes({0x20, 2, 0, 4}));
  wire.clear();
  Encode(Suback{.packet_id = 1, .reason_codes = {0x87}}, Version::kV311, &wire);
  EXPECT_EQ(wire, Bytes({0x90, 3, 0, 1, 0x80}));
  // And back: a 3.1.1 return code decodes to its MQTT 5 reason; codes above 5 are malformed.
  Packet back311 = RoundTrip(Connack{.reason_code = reason::kServerBusy}, Version::kV311);
  EXPECT_EQ(std::get<Connack>(back311).reason_code, reason::kServerUnavailable);
  EXPECT_THAT(MustFail(Bytes({0x20, 2, 0, 0x7e}), Version::kV311).message,
              HasSubstr("return code"));
  EXPECT_THAT(MustFail(Bytes({0x20, 3, 0, 0x10, 0}), Version::kV5).message,
              HasSubstr("reason code"));
}

TEST(CodecTest, KnownBytes) {
  // mosquitto_pub -V mqttv311 -i c -t a/b -m hi -q 1: CONNECT then PUBLISH.
  std::string wire;
  Encode(Connect{.version = Version::kV311, .clean_start = true, .keep_alive = 60, .client_id = "c"},
         Version::kV311, &wire);
  EXPECT_EQ(wire, Bytes({0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 1, 'c'}));
  wire.clear();
  Encode(Publish{.qos = 1, .topic = "a/b", .packet_id = 1, .payload = "hi"}, Version::kV311, &wire);
  EXPECT_EQ(wire, Bytes({0x32, 9, 0, 3, 'a', '/', 'b', 0, 1, 'h', 'i'}));
  wire.clear();
  Encode(Publish{.topic = "a", .payload = "x"}, Version::kV5, &wire);
  EXPECT_EQ(wire, Bytes({0x30, 5, 0, 1, 'a', 0, 'x'}));
}

TEST(CodecTest, FrameHeaders) {
  FrameHeader h;
  EXPECT_EQ(ParseFrameHeader(Bytes({0x30}), 100, &h), FrameStatus::kIncomplete);
  EXPECT_EQ(ParseFrameHeader(Bytes({0x30, 0x80}), 100, &h), FrameStatus::kIncomplete);
  EXPECT_EQ(ParseFrameHeader(Bytes({0x30, 0x80, 0x80, 0x80, 0x80, 0x01}), 1 << 30, &h),
            FrameStatus::kMalformed);  // five length bytes
  EXPECT_EQ(ParseFrameHeader(Bytes({0x30, 0x80, 0x00}), 100, &h),
            FrameStatus::kMalformed);  // not the minimal encoding
  EXPECT_EQ(ParseFrameHeader(Bytes({0x30, 0xff, 0x7f}), 100, &h), FrameStatus::kTooLarge);
  EXPECT_EQ(ParseFrameHeader(Bytes({0x30, 0xc1, 0x02}), 1000, &h), FrameStatus::kIncomplete);
  EXPECT_EQ(h.remaining_length, 321u);
  EXPECT_EQ(h.header_size, 3u);
}

TEST(CodecTest, MalformedPacketsHaveTheirReason) {
  struct Case {
    std::string wire;
    Version version;
    uint8_t reason;
    std::string message;
  } cases[] = {
      {Bytes({0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 3, 2, 0, 60, 0, 1, 'c'}), Version::kV311,
       reason::kUnsupportedProtocolVersion, "MQTT 3.1.1"},
      {Bytes({0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 3, 0, 60, 0, 1, 'c'}), Version::kV311,
       reason::kMalformedPacket, "reserved flag"},
      {Bytes({0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x42, 0, 60, 0, 1, 'c'}), Version::kV311,
       reason::kProtocolError, "password without user name"},
      {Bytes({0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x1e, 0, 60, 0, 1, 'c'}), Version::kV311,
       reason::kMalformedPacket, "will QoS 3"},
      {Bytes({0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 1, 'c', 9}), Version::kV311,
       reason::kMalformedPacket, "bytes after"},
      {Bytes({0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 1, 0}), Version::kV311,
       reason::kMalformedPacket, "client identifier"},  // U+0000
      {Bytes({0x36, 5, 0, 1, 'a', 0, 1}), Version::kV311, reason::kMalformedPacket, "QoS 3"},
      {Bytes({0x38, 3, 0, 1, 'a'}), Version::kV311, reason::kMalformedPacket, "DUP"},
      {Bytes({0x30, 3, 0, 1, '#'}), Version::kV311, reason::kTopicNameInvalid, "wildcard"},
      {Bytes({0x30, 4, 0, 2, 'a', '+'}), Version::kV5, reason::kTopicNameInvalid, "wildcard"},
      {Bytes({0x32, 5, 0, 1, 'a', 0, 0}), Version::kV311, reason::kProtocolError,
       "packet identifier 0"},
      {Bytes({0x30, 4, 0, 2, 0xc3, 0x28}), Version::kV311, reason::kMalformedPacket, "UTF-8"},
      {Bytes({0x30, 5, 0, 3, 0xed, 0xa0, 0x80}), Version::kV311, reason::kMalformedPacket,
       "UTF-8"},  // a surrogate
      {Bytes({0x30, 2, 0, 0}), Version::kV311, reason::kTopicNameInvalid, "empty"},
      {Bytes({0x30, 3, 0, 0, 0}), Version::kV5, reason::kTopicNameInvalid, "topic alias"},
      {Bytes({0x30, 6, 0, 1, 'a', 2, 0x7f, 0}), Version::kV5, reason::kMalformedPacket,
       "unknown property"},
      {Bytes({0x30, 6, 0, 1, 'a', 2, 0x11, 0}), Version::kV5, reason::kProtocolError,
       "not allowed"},  // session expiry in PUBLISH
      {Bytes({0x30, 8, 0, 1, 'a', 4, 0x01, 1, 0x01, 1}), Version::kV5, reason::kProtocolError,
       "twice"},
      {Bytes({0x30, 7, 0, 1, 'a', 2, 0x01, 1, 0xff}), Version::kV5, reason::kPayloadFormatInvalid,
       "UTF-8"},
      {Bytes({0x30, 6, 0, 1, 'a', 9, 0x01, 1}), Version::kV5, reason::kMalformedPacket,
       "beyond the packet"},
      {Bytes({0x80, 6, 0, 1, 0, 1, 'a', 0}), Version::kV311, reason::kMalformedPacket,
       "reserved fixed-header flags"},
      {Bytes({0x82, 2, 0, 1}), Version::kV311, reason::kProtocolError, "without a topic filter"},
      {Bytes({0x82, 6, 0, 1, 0, 1, 'a', 3}), Version::kV311, reason::kMalformedPacket, "QoS 3"},
      {Bytes({0x82, 6, 0, 1, 0, 1, 'a', 4}), Version::kV311, reason::kMalformedPacket,
       "reserved subscription option"},
      {Bytes({0x82, 7, 0, 1, 0, 0, 1, 'a', 0x30}), Version::kV5, reason::kProtocolError,
       "retain handling 3"},
      {Bytes({0xa2, 2, 0, 1}), Version::kV311, reason::kProtocolError, "without a topic filter"},
      {Bytes({0x40, 2, 0, 0}), Version::kV311, reason::kProtocolError, "packet identifier 0"},
      {Bytes({0x62, 2, 0, 1}), Version::kV311, reason::kSuccess, ""},  // valid PUBREL (sentinel)
      {Bytes({0xc0, 1, 0}), Version::kV311, reason::kMalformedPacket, "PINGREQ"},
      {Bytes({0xf0, 0}), Version::kV311, reason::kMalformedPacket, "AUTH is MQTT 5 only"},
      {Bytes({0x00, 0}), Version::kV311, reason::kMalformedPacket, "reserved packet type"},
      {Bytes({0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 3, 0x21, 0, 0, 0, 1, 'c'}),
       Version::kV5, reason::kProtocolError, "receive maximum 0"},
  };
  for (const Case& c : cases) {
    if (c.reason == reason::kSuccess) continue;
    DecodeError e = MustFail(c.wire, c.version);
    EXPECT_EQ(e.reason_code, c.reason) << absl::BytesToHexString(c.wire) << ": " << e.message;
    EXPECT_THAT(e.message, HasSubstr(c.message)) << absl::BytesToHexString(c.wire);
  }
}

TEST(CodecTest, Utf8AndTopics) {
  EXPECT_TRUE(ValidUtf8("température/μ/日本/🚀"));
  EXPECT_FALSE(ValidUtf8(std::string("a\0b", 3)));
  EXPECT_FALSE(ValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(ValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(ValidUtf8("\xe2\x82"));          // truncated

  EXPECT_TRUE(ValidTopicName("a/b/c"));
  EXPECT_TRUE(ValidTopicName("/"));
  EXPECT_FALSE(ValidTopicName(""));
  EXPECT_FALSE(ValidTopicName("a/+/c"));
  for (const char* ok : {"#", "+", "a/#", "+/+/c", "a//b", "/", "$SYS/#", "a/+/#"}) {
    EXPECT_TRUE(ValidTopicFilter(ok)) << ok;
  }
  for (const char* bad : {"", "a#", "a/#/b", "a+", "a/b+/c", "#/a", "++"}) {
    EXPECT_FALSE(ValidTopicFilter(bad)) << bad;
  }
}

}  // namespace
}  // namespace fleetcore::mqtt
