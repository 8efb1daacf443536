// A republish action's headers onto the gateway's PublishRequest, with the substitution
// faked: every value, and every error naming its header.
#include "services/rules/republish_headers.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::rules {
namespace {

namespace gw = ::fleetcore::gateway::v1;
namespace pb = ::fleetcore::rules::v1;
using ::testing::HasSubstr;

// "${x}" stands for a template that gives `x`; anything else is literal.
absl::StatusOr<std::string> Fake(const std::string& text) {
  if (text == "${broken}") return absl::InvalidArgumentError("line 1, column 3: boom");
  if (text.rfind("${", 0) == 0) return text.substr(2, text.size() - 3);
  return text;
}

TEST(RepublishHeaders, EveryHeaderBecomesItsProperty) {
  pb::RepublishHeaders h;
  h.set_payload_format_indicator("UTF8_DATA");
  h.set_content_type("${application/json}");
  h.set_response_topic("replies/lamp-1");
  h.set_correlation_data("AQL/");
  h.set_message_expiry("${300}");
  pb::MqttUserProperty* p = h.add_user_properties();
  p->set_key("${site}");
  p->set_value("${north}");
  gw::PublishRequest out;
  ASSERT_TRUE(ApplyRepublishHeaders(h, Fake, &out).ok());
  EXPECT_EQ(out.payload_format(), gw::UTF8_DATA);
  EXPECT_EQ(out.content_type(), "application/json");
  EXPECT_EQ(out.response_topic(), "replies/lamp-1");
  EXPECT_EQ(out.correlation_data(), std::string("\x01\x02\xff", 3));
  EXPECT_EQ(out.message_expiry_seconds(), 300);
  ASSERT_EQ(out.user_properties_size(), 1);
  EXPECT_EQ(out.user_properties(0).key(), "site");
  EXPECT_EQ(out.user_properties(0).value(), "north");
}

TEST(RepublishHeaders, EmptyHeadersAreLeftOut) {
  gw::PublishRequest out;
  ASSERT_TRUE(ApplyRepublishHeaders(pb::RepublishHeaders(), Fake, &out).ok());
  EXPECT_EQ(out.payload_format(), gw::PAYLOAD_FORMAT_UNSET);
  EXPECT_TRUE(out.content_type().empty() && out.response_topic().empty());
  EXPECT_EQ(out.message_expiry_seconds(), 0);
}

TEST(RepublishHeaders, WrongValuesNameTheirHeader) {
  auto error = [](void (*set)(pb::RepublishHeaders*)) {
    pb::RepublishHeaders h;
    set(&h);
    gw::PublishRequest out;
    return std::string(ApplyRepublishHeaders(h, Fake, &out).message());
  };
  EXPECT_THAT(error([](pb::RepublishHeaders* h) { h->set_message_expiry("${-1}"); }),
              HasSubstr("headers.messageExpiry: is a number of seconds (0 to 4294967295), not \"-1\""));
  EXPECT_THAT(error([](pb::RepublishHeaders* h) { h->set_payload_format_indicator("${utf8}"); }),
              HasSubstr("headers.payloadFormatIndicator: is UTF8_DATA or UNSPECIFIED_BYTES"));
  EXPECT_THAT(error([](pb::RepublishHeaders* h) { h->set_correlation_data("${%%}"); }),
              HasSubstr("headers.correlationData: is base64"));
  EXPECT_THAT(error([](pb::RepublishHeaders* h) { h->set_content_type("${broken}"); }),
              HasSubstr("headers.contentType: line 1, column 3: boom"));
  EXPECT_THAT(error([](pb::RepublishHeaders* h) {
                pb::MqttUserProperty* p = h->add_user_properties();
                p->set_key("k");
                p->set_value("${broken}");
              }),
              HasSubstr("headers.userProperties[0]: line 1"));
}

}  // namespace
}  // namespace fleetcore::rules
