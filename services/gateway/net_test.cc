// The pure parts of the network side: the output queue, HTTPS publish parsing, and the
// per-client-id CONNECT throttle.
#include <sys/uio.h>

#include <map>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/gateway/connect_throttle.h"
#include "services/gateway/http_publish.h"
#include "services/gateway/sts_api.h"
#include "services/gateway/output_queue.h"

namespace fleetcore::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Drain(OutputQueue& q, size_t step) {
  std::string out;
  while (!q.empty()) {
    iovec iov[8];
    const size_t n = q.Peek(iov, 8);
    size_t take = 0;
    for (size_t i = 0; i < n && take < step; ++i) {
      const size_t len = std::min(iov[i].iov_len, step - take);
      out.append(static_cast<const char*>(iov[i].iov_base), len);
      take += len;
    }
    q.Consume(take);
  }
  return out;
}

TEST(OutputQueueTest, KeepsOrderAcrossOwnedAndReferencedChunks) {
  auto big = std::make_shared<Message>();
  big->payload.assign(5000, 'B');
  auto small = std::make_shared<Message>();
  small->payload = "s";
  OutputQueue q;
  EXPECT_TRUE(q.empty());
  q.Append("h1");
  q.AppendPayload(big, /*gather=*/true);  // referenced
  q.Append("h2");
  q.AppendPayload(small, true);  // copied
  EXPECT_EQ(q.size(), 2 + 5000 + 2 + 1);
  iovec iov[8];
  EXPECT_EQ(q.Peek(iov, 8), 3u);
  EXPECT_EQ(iov[1].iov_base, big->payload.data());  // no copy of the large payload
  // Written in odd steps, including partial chunks.
  EXPECT_EQ(Drain(q, 777), "h1" + big->payload + "h2s");
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.Front(), "");
}

TEST(OutputQueueTest, CopiesWhenNotGathering) {
  auto big = std::make_shared<Message>();
  big->payload.assign(3000, 'x');
  OutputQueue q;
  q.Append("head");
  q.AppendPayload(big, /*gather=*/false);
  EXPECT_EQ(q.Front().size(), 3004u);  // one contiguous run for TLS
  q.Consume(3000);
  q.Append("more");
  EXPECT_EQ(Drain(q, 3), "xxxxmore");
}

class HttpPublishTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::shared_ptr<Message>> Parse(const std::string& target,
                                                 std::string body = "payload") {
    return ParseHttpPublish(
        target,
        [this](absl::string_view name) {
          auto it = headers_.find(std::string(name));
          return it == headers_.end() ? std::string() : it->second;
        },
        std::move(body), limits_, /*now_ms=*/1000000);
  }
  std::map<std::string, std::string> headers_;
  BrokerLimits limits_;
};

TEST_F(HttpPublishTest, ParsesTopicAndParameters) {
  headers_["x-amz-mqtt5-user-properties"] =
      absl::Base64Escape(R"([{"deviceName": "alpha"}, {"deviceCnt": "45"}])");
  headers_["x-amz-mqtt5-payload-format-indicator"] = "UTF8_DATA";
  headers_["x-amz-mqtt5-correlation-data"] = absl::Base64Escape("abc");
  auto m = Parse(
      "/topics/my%2Ftopic/x?qos=1&retain=true&contentType=text%2Fplain&messageExpiry=60&"
      "responseTopic=replies");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->topic, "my/topic/x");
  EXPECT_EQ((*m)->qos, 1);
  EXPECT_TRUE((*m)->retain);
  EXPECT_EQ((*m)->content_type, "text/plain");
  EXPECT_EQ((*m)->response_topic, "replies");
  EXPECT_EQ((*m)->correlation_data, "abc");
  EXPECT_EQ((*m)->payload_format_indicator, 1);
  EXPECT_EQ((*m)->expires_at_ms, 1000000 + 60000);
  EXPECT_THAT((*m)->user_properties,
              ElementsAre(mqtt::UserProperty{"deviceName", "alpha"},
                          mqtt::UserProperty{"deviceCnt", "45"}));
  EXPECT_EQ((*m)->payload, "payload");
  EXPECT_FALSE((*m)->encoded_properties.empty());
}

TEST_F(HttpPublishTest, RefusesWhatAwsRefuses) {
  EXPECT_EQ(Parse("/things/x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Parse("/topics/a%2F%2B").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("/topics/a?qos=2").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("/topics/a?retain=yes").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("/topics/a?color=red").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("/topics/a%zz").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("/topics/$SYS/x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("/topics/a/b/c/d/e/f/g/h/i").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("/topics/a", std::string(limits_.max_payload_bytes + 1, 'x')).status().code(),
            absl::StatusCode::kResourceExhausted);
  // contentType is an MQTT 5 UTF-8 string (it goes on to subscribers and the rules).
  EXPECT_THAT(Parse("/topics/a?contentType=%FF").status().message(),
              HasSubstr("contentType must be UTF-8 text"));
  headers_["x-amz-mqtt5-payload-format-indicator"] = "UTF8_DATA";
  EXPECT_THAT(Parse("/topics/a", "\xff").status().message(), HasSubstr("UTF-8"));
}

TEST(HttpPublishReplyTest, StatusCodes) {
  EXPECT_EQ(HttpPublishReply(absl::OkStatus(), "t").status, 200);
  EXPECT_EQ(HttpPublishReply(absl::OkStatus(), "t").body, R"({"message":"OK","traceId":"t"})");
  EXPECT_EQ(HttpPublishReply(absl::InvalidArgumentError("x"), "t").status, 400);
  EXPECT_EQ(HttpPublishReply(absl::ResourceExhaustedError("x"), "t").status, 413);
  EXPECT_EQ(HttpPublishReply(absl::PermissionDeniedError("x"), "t").status, 403);
}

// Found by gateway_input_fuzzer: a parameter name that is not UTF-8 was quoted in the error,
// and printing it as JSON threw, which ended the gateway.
TEST_F(HttpPublishTest, AnErrorQuotingBytesThatAreNotUtf8IsStillAnAnswer) {
  absl::StatusOr<std::shared_ptr<Message>> m = Parse("/topics/es&x\xff=1");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  const HttpReply reply = HttpPublishReply(m.status(), "t");
  EXPECT_EQ(reply.status, 400);
  EXPECT_THAT(reply.body, HasSubstr("\xef\xbf\xbd"));  // U+FFFD
}

TEST(ConnectThrottle, OneConnectPerIntervalPerClientId) {
  ConnectThrottle t(absl::Seconds(1));
  EXPECT_TRUE(t.Admit("lamp-1", 10'000));
  EXPECT_TRUE(t.Admit("lamp-2", 10'100));  // another client id is not concerned
  EXPECT_FALSE(t.Admit("lamp-1", 10'500));
  // A refused CONNECT does not move the interval: a second after the admitted one, in.
  EXPECT_FALSE(t.Admit("lamp-1", 10'999));
  EXPECT_TRUE(t.Admit("lamp-1", 11'000));
  EXPECT_FALSE(t.Admit("lamp-1", 11'001));
  // Entries whose interval is over go; those within it stay.
  EXPECT_EQ(t.size(), 2u);
  t.Forget(11'500);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.Admit("lamp-1", 11'500));
  t.Forget(12'000);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.Admit("lamp-1", 12'000));
}

TEST(AwsErrorType, TheDataPlanesExceptionsByStatus) {
  EXPECT_EQ(AwsErrorType(404), "ResourceNotFoundException");
  EXPECT_EQ(AwsErrorType(409), "ConflictException");
  EXPECT_EQ(AwsErrorType(413), "RequestEntityTooLargeException");
  EXPECT_EQ(AwsErrorType(401), "UnauthorizedException");
  EXPECT_EQ(AwsErrorType(200), "");
  EXPECT_EQ(AwsErrorType(101), "");
}

TEST(StsApi, ParamsFromQueryAndFormAndErrorsAsXml) {
  std::optional<std::map<std::string, std::string>> p =
      StsParams("/?Version=2011-06-15", "Action=GetSessionToken&DurationSeconds=900&X=a+b%2Fc\n");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ((*p)["Action"], "GetSessionToken");
  EXPECT_EQ((*p)["Version"], "2011-06-15");
  EXPECT_EQ((*p)["DurationSeconds"], "900");
  EXPECT_EQ((*p)["X"], "a b/c");
  EXPECT_FALSE(StsParams("/", "Action=%ZZ").has_value());
  EXPECT_EQ(StsError("AccessDenied", "a <b> & c", "r-1"),
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>"
            "Sender</Type><Code>AccessDenied</Code><Message>a &lt;b&gt; &amp; c</Message>"
            "</Error><RequestId>r-1</RequestId></ErrorResponse>");
}

}  // namespace
}  // namespace fleetcore::gateway
