#include "common/policy/condition.h"

#include "gtest/gtest.h"

namespace fleetcore::policy {
namespace {

bool Eval(absl::string_view op, absl::string_view key, std::vector<std::string> values,
          const Context& ctx) {
  auto c = Condition::Create(op, key, std::move(values), /*variables=*/true);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() && c->Evaluate(ctx);
}

TEST(ConditionTest, StringOperatorsAndValueOr) {
  Context ctx{.client_id = "Lamp-7"};
  EXPECT_TRUE(Eval("StringEquals", "iot:ClientId", {"x", "Lamp-7"}, ctx));
  EXPECT_FALSE(Eval("StringEquals", "iot:ClientId", {"lamp-7"}, ctx));
  EXPECT_TRUE(Eval("StringEqualsIgnoreCase", "iot:ClientId", {"lamp-7"}, ctx));
  EXPECT_TRUE(Eval("StringNotEquals", "iot:ClientId", {"a", "b"}, ctx));
  EXPECT_FALSE(Eval("StringNotEquals", "iot:ClientId", {"a", "Lamp-7"}, ctx));
  EXPECT_TRUE(Eval("StringLike", "iot:ClientId", {"Lamp-?"}, ctx));
  EXPECT_FALSE(Eval("StringNotLike", "iot:ClientId", {"Lamp-*"}, ctx));
  EXPECT_TRUE(Eval("StringNotEqualsIgnoreCase", "iot:ClientId", {"bulb"}, ctx));
}

TEST(ConditionTest, MissingKeysFollowIam) {
  Context none;
  EXPECT_FALSE(Eval("StringEquals", "iot:ClientId", {"a"}, none));
  EXPECT_TRUE(Eval("StringNotEquals", "iot:ClientId", {"a"}, none));  // negated: true
  EXPECT_TRUE(Eval("StringEqualsIfExists", "iot:ClientId", {"a"}, none));
  EXPECT_FALSE(Eval("StringEqualsIfExists", "iot:ClientId", {"a"}, {.client_id = "b"}));
  EXPECT_TRUE(Eval("Null", "iot:ClientId", {"true"}, none));
  EXPECT_FALSE(Eval("Null", "iot:ClientId", {"false"}, none));
  EXPECT_TRUE(Eval("Null", "iot:ClientId", {"false"}, {.client_id = "c"}));
  // Unknown keys (fleetcore has no Cognito) are always missing.
  EXPECT_FALSE(Eval("StringEquals", "cognito-identity.amazonaws.com:sub", {"x"}, none));
}

TEST(ConditionTest, SetQualifiers) {
  std::vector<std::string> attrs = {"PersistentConnect", "LastWill"};
  Context ctx{.connect_attributes = attrs};
  EXPECT_TRUE(Eval("ForAnyValue:StringEquals", "iot:ConnectAttributes", {"LastWill"}, ctx));
  EXPECT_FALSE(Eval("ForAllValues:StringEquals", "iot:ConnectAttributes", {"LastWill"}, ctx));
  EXPECT_TRUE(Eval("ForAllValues:StringEquals", "iot:ConnectAttributes",
                   {"LastWill", "PersistentConnect"}, ctx));
  // "No LastWill": every value differs from LastWill.
  EXPECT_FALSE(Eval("ForAllValues:StringNotEquals", "iot:ConnectAttributes", {"LastWill"}, ctx));
  Context empty;
  EXPECT_TRUE(Eval("ForAllValues:StringEquals", "iot:ConnectAttributes", {"LastWill"}, empty));
  EXPECT_FALSE(Eval("ForAnyValue:StringEquals", "iot:ConnectAttributes", {"LastWill"}, empty));
}

TEST(ConditionTest, IpAddresses) {
  Context v4{.source_ip = "10.1.2.3"};
  Context v6{.source_ip = "2001:db8::42"};
  EXPECT_TRUE(Eval("IpAddress", "aws:SourceIp", {"10.0.0.0/8"}, v4));
  EXPECT_FALSE(Eval("IpAddress", "aws:SourceIp", {"10.0.0.0/16"}, v4));
  EXPECT_TRUE(Eval("IpAddress", "aws:SourceIp", {"192.168.0.0/16", "10.1.2.3"}, v4));
  EXPECT_TRUE(Eval("NotIpAddress", "aws:SourceIp", {"192.168.0.0/16"}, v4));
  EXPECT_TRUE(Eval("IpAddress", "aws:SourceIp", {"2001:db8::/32"}, v6));
  EXPECT_FALSE(Eval("IpAddress", "aws:SourceIp", {"10.0.0.0/8"}, v6));
  EXPECT_TRUE(Eval("IpAddress", "aws:SourceIp", {"0.0.0.0/0"}, v4));
}

TEST(ConditionTest, NumbersAndDatesFromTheClock) {
  Context ctx{.now = absl::FromUnixSeconds(1800000000)};  // 2027-01-15T08:00:00Z
  EXPECT_TRUE(Eval("NumericLessThan", "aws:EpochTime", {"1800000001"}, ctx));
  EXPECT_FALSE(Eval("NumericLessThan", "aws:EpochTime", {"1800000000"}, ctx));
  EXPECT_TRUE(Eval("NumericLessThanEquals", "aws:EpochTime", {"1800000000"}, ctx));
  EXPECT_TRUE(Eval("NumericGreaterThan", "aws:EpochTime", {"1.7e9"}, ctx));
  EXPECT_TRUE(Eval("NumericNotEquals", "aws:EpochTime", {"1"}, ctx));
  EXPECT_TRUE(Eval("DateGreaterThan", "aws:CurrentTime", {"2027-01-01T00:00:00Z"}, ctx));
  EXPECT_TRUE(Eval("DateLessThan", "aws:CurrentTime", {"2027-02-01"}, ctx));
  EXPECT_FALSE(Eval("DateLessThan", "aws:CurrentTime", {"2026-12-31T23:59:59+01:00"}, ctx));
  EXPECT_TRUE(Eval("DateEquals", "aws:CurrentTime", {"1800000000"}, ctx));
  EXPECT_FALSE(Eval("DateGreaterThan", "aws:CurrentTime", {"2027-01-01"}, {}));  // no clock
}

TEST(ConditionTest, BoolAndArns) {
  ThingInfo t;
  t.name = "t";
  t.attached = true;
  EXPECT_TRUE(Eval("Bool", "iot:Connection.Thing.IsAttached", {"TRUE"}, {.thing = &t}));
  EXPECT_FALSE(Eval("Bool", "iot:Connection.Thing.IsAttached", {"false"}, {.thing = &t}));
  Context will{.last_will_topic = "arn:aws:iot:us-east-1:123456789012:topic/devices/t/status"};
  EXPECT_TRUE(Eval("ArnLike", "iot:LastWillTopic",
                   {"arn:aws:iot:*:123456789012:topic/devices/*/status"}, will));
  EXPECT_TRUE(Eval("ArnEquals", "iot:LastWillTopic",
                   {"arn:aws:iot:us-east-1:123456789012:topic/devices/t/status"}, will));
  EXPECT_FALSE(Eval("ArnLike", "iot:LastWillTopic", {"arn:aws:iot:*:999999999999:topic/*"}, will));
  EXPECT_TRUE(Eval("ArnNotLike", "iot:LastWillTopic", {"arn:aws:iot:*:*:topic/other"}, will));
}

// iot:Topic, a direct message's topic, as AWS's direct-messaging policy examples use it.
TEST(ConditionTest, TopicOfADirectMessage) {
  Context dm{.topic = "commands/reboot"};
  EXPECT_TRUE(Eval("StringEquals", "iot:Topic", {"commands/update", "commands/reboot"}, dm));
  EXPECT_FALSE(Eval("StringEquals", "iot:Topic", {"commands/update"}, dm));
  EXPECT_TRUE(Eval("StringLike", "iot:Topic", {"commands/*"}, dm));
  EXPECT_FALSE(Eval("StringEquals", "iot:Topic", {"commands/reboot"}, {}));  // not a DM
  EXPECT_TRUE(Eval("Null", "iot:Topic", {"true"}, {}));
}

TEST(ConditionTest, RefusesUnknownOperatorsAndBadLiterals) {
  EXPECT_FALSE(Condition::Create("StringEqual", "k", {"v"}, true).ok());
  EXPECT_FALSE(Condition::Create("NullIfExists", "k", {"true"}, true).ok());
  EXPECT_FALSE(Condition::Create("ForAnyValue:Null", "k", {"true"}, true).ok());
  EXPECT_FALSE(Condition::Create("Bool", "k", {"yes"}, true).ok());
  EXPECT_FALSE(Condition::Create("DateLessThan", "k", {"next week"}, true).ok());
  EXPECT_TRUE(Condition::Create("NumericLessThan", "k", {"${iot:ClientId}"}, true).ok());
}

TEST(CidrTest, ParsesAndContains) {
  auto c = Cidr::Parse("192.168.1.0/24");
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->Contains("192.168.1.200"));
  EXPECT_FALSE(c->Contains("192.168.2.1"));
  EXPECT_FALSE(c->Contains("not an ip"));
  EXPECT_FALSE(Cidr::Parse("300.1.1.1").has_value());
  EXPECT_FALSE(Cidr::Parse("::1/129").has_value());
  EXPECT_TRUE(Cidr::Parse("::1").has_value());
}

}  // namespace
}  // namespace fleetcore::policy
