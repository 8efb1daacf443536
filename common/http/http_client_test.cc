#include "common/http/http_client.h"

#include "absl/strings/escaping.h"
#include "common/testing/http.h"
#include "common/testing/pki.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fleetcore::http {
namespace {

using ::fleetcore::testing::HttpTestServer;
using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseUrlTest, Forms) {
  ASSERT_OK_AND_ASSIGN(Url u, ParseUrl("https://auth.example.com/a/b?x=1"));
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.host, "auth.example.com");
  EXPECT_EQ(u.port, "443");
  EXPECT_EQ(u.target, "/a/b?x=1");
  ASSERT_OK_AND_ASSIGN(Url v, ParseUrl("http://127.0.0.1:8080"));
  EXPECT_EQ(v.port, "8080");
  EXPECT_EQ(v.target, "/");
  ASSERT_OK_AND_ASSIGN(Url w, ParseUrl("http://[::1]:9/x"));
  EXPECT_EQ(w.host, "::1");
  EXPECT_EQ(HostHeader(u), "auth.example.com");
  EXPECT_EQ(HostHeader(v), "127.0.0.1:8080");
  EXPECT_EQ(HostHeader(w), "[::1]:9");
  EXPECT_THAT(ParseUrl("ftp://x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUrl("http://user:pw@x/"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUrl("http://x:port/"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUrl("http:///"), StatusIs(absl::StatusCode::kInvalidArgument));
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(server_, HttpTestServer::Start()); }
  HttpTestServer server_;
  BeastHttpClient client_{{}};
};

TEST_F(HttpClientTest, PostsAndReadsTheAnswer) {
  ASSERT_OK_AND_ASSIGN(
      Response r, client_.Send({.method = "POST",
                                .url = server_.base_url + "/auth?echo=1",
                                .headers = {{"content-type", "application/json"}},
                                .body = R"({"token":"t"})"}));
  EXPECT_EQ(r.status, 200);
  auto echo = nlohmann::json::parse(r.body);
  EXPECT_EQ(echo["method"], "POST");
  EXPECT_EQ(echo["body"], R"({"token":"t"})");
  EXPECT_EQ(echo["headers"]["content-type"], "application/json");
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  ASSERT_EQ(server_.Requests().size(), 1u);
}

TEST_F(HttpClientTest, HttpErrorStatusesAreAnswersNotErrors) {
  ASSERT_OK_AND_ASSIGN(Response r, client_.Send({.url = server_.base_url + "/?status=503"}));
  EXPECT_EQ(r.status, 503);
}

TEST_F(HttpClientTest, TimesOutOnASlowOrTricklingServer) {
  EXPECT_THAT(client_.Send({.url = server_.base_url + "/?delay=5",
                            .timeout = absl::Milliseconds(300)}),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(client_.Send({.url = server_.base_url + "/?trickle=1",
                            .timeout = absl::Milliseconds(1500)}),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(HttpClientTest, RefusesOversizedAnswers) {
  BeastHttpClient small({.max_response_bytes = 16});
  const std::string big = absl::Base64Escape(std::string(1000, 'x'));
  EXPECT_THAT(small.Send({.url = server_.base_url + "/?body_b64=" + big}),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(HttpClientErrorsTest, ConnectionRefusedIsUnavailable) {
  BeastHttpClient client({});
  EXPECT_THAT(client.Send({.url = "http://127.0.0.1:1/"}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connecting")));
}

TEST(HttpsClientTest, VerifiesTheServerCertificate) {
  ASSERT_OK_AND_ASSIGN(auto pki, testing::TestPki::Create("https"));
  ASSERT_OK(pki.Issue("server"));
  ASSERT_OK_AND_ASSIGN(auto server, HttpTestServer::Start(pki.cert("server"), pki.key("server")));
  BeastHttpClient trusting({.ca_file = pki.ca_cert()});
  ASSERT_OK_AND_ASSIGN(Response r, trusting.Send({.url = "https://localhost:" +
                                                          std::to_string(server.port) + "/"}));
  EXPECT_EQ(r.status, 200);
  // The system CAs do not know the test CA.
  BeastHttpClient system_cas({});
  EXPECT_THAT(system_cas.Send({.url = "https://localhost:" + std::to_string(server.port) + "/"}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("TLS handshake")));
  // The certificate is for localhost and 127.0.0.1, not for another name.
  EXPECT_THAT(trusting.Send({.url = "https://127.0.0.2:" + std::to_string(server.port) + "/"}),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace fleetcore::http
