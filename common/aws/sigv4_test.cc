// SigV4 against AWS's published answers: the Signature Version 4 test suite (service
// "service", AKIDEXAMPLE) and the S3 documentation's examples (GET Object with a range, PUT
// Object with a "$" in the key, a query with a name alone, a sorted query).
#include "common/aws/sigv4.h"

#include <map>
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::aws {
namespace {

using ::testing::EndsWith;

constexpr char kEmpty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const Credentials kSuite{.access_key_id = "AKIDEXAMPLE",
                         .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
const Credentials kS3{.access_key_id = "AKIAIOSFODNN7EXAMPLE",
                      .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};

SigV4Scope SuiteScope() {
  return {.region = "us-east-1",
          .service = "service",
          .time = absl::FromCivil(absl::CivilSecond(2015, 8, 30, 12, 36, 0), absl::UTCTimeZone())};
}
SigV4Scope S3Scope() {
  return {.region = "us-east-1",
          .service = "s3",
          .time = absl::FromCivil(absl::CivilSecond(2013, 5, 24, 0, 0, 0), absl::UTCTimeZone())};
}

TEST(SigV4, TestSuiteGetVanilla) {
  SigV4Result r = SignV4({.method = "GET", .host = "example.amazonaws.com", .path = "/",
                          .payload_hash = kEmpty},
                         kSuite, SuiteScope());
  EXPECT_EQ(r.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(r.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(r.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(r.amz_date, "20150830T123600Z");
}

TEST(SigV4, TestSuiteCases) {
  struct Case {
    const char* name;
    SigV4Request request;
    const char* signature;
  };
  const Case cases[] = {
      {"post-vanilla",
       {.method = "POST", .host = "example.amazonaws.com", .path = "/", .payload_hash = kEmpty},
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"get-vanilla-query-order-key-case",
       {.method = "GET",
        .host = "example.amazonaws.com",
        .path = "/",
        .query = {{"Param2", "value2"}, {"Param1", "value1"}},
        .payload_hash = kEmpty},
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-utf8",
       {.method = "GET", .host = "example.amazonaws.com", .path = "/\xe1\x88\xb4",
        .payload_hash = kEmpty},
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-unreserved",
       {.method = "GET",
        .host = "example.amazonaws.com",
        .path = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        .payload_hash = kEmpty},
       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-header-key-duplicate",
       {.method = "GET",
        .host = "example.amazonaws.com",
        .path = "/",
        .headers = {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
        .payload_hash = kEmpty},
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(SignV4(c.request, kSuite, SuiteScope()).authorization,
                EndsWith(std::string("Signature=") + c.signature))
        << c.name;
  }
}

TEST(SigV4, S3GetObjectWithRange) {
  SigV4Result r = SignV4({.method = "GET",
                          .host = "examplebucket.s3.amazonaws.com",
                          .path = "/test.txt",
                          .headers = {{"Range", "bytes=0-9"}, {"x-amz-content-sha256", kEmpty}},
                          .payload_hash = kEmpty},
                         kS3, S3Scope());
  EXPECT_EQ(r.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, S3PutObjectEncodesTheKey) {
  const std::string body = "Welcome to Amazon S3.";
  const std::string hash = Sha256Hex(body);
  ASSERT_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SigV4Result r = SignV4({.method = "PUT",
                          .host = "examplebucket.s3.amazonaws.com",
                          .path = "/test$file.text",
                          .headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                      {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                                      {"x-amz-content-sha256", hash}},
                          .payload_hash = hash},
                         kS3, S3Scope());
  EXPECT_THAT(r.canonical_request, ::testing::StartsWith("PUT\n/test%24file.text\n\n"));
  EXPECT_EQ(r.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, S3Queries) {
  SigV4Request lifecycle{.method = "GET",
                         .host = "examplebucket.s3.amazonaws.com",
                         .path = "/",
                         .query = {{"lifecycle", ""}},
                         .headers = {{"x-amz-content-sha256", kEmpty}},
                         .payload_hash = kEmpty};
  EXPECT_THAT(SignV4(lifecycle, kS3, S3Scope()).authorization,
              EndsWith("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
  SigV4Request list = lifecycle;
  list.query = {{"prefix", "J"}, {"max-keys", "2"}};
  EXPECT_THAT(SignV4(list, kS3, S3Scope()).authorization,
              EndsWith("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
}

TEST(SigV4, SessionTokenIsSigned) {
  Credentials temporary = kS3;
  temporary.session_token = "token/with+chars";
  SigV4Result r = SignV4({.method = "GET", .host = "h", .path = "/", .payload_hash = kEmpty},
                         temporary, S3Scope());
  EXPECT_THAT(r.authorization, ::testing::HasSubstr("SignedHeaders=host;x-amz-date;x-amz-security-token,"));
  EXPECT_THAT(r.canonical_request, ::testing::HasSubstr("x-amz-security-token:token/with+chars\n"));
}

TEST(SigV4, UriEncode) {
  EXPECT_EQ(UriEncode("a b/c~d$e", true), "a%20b/c~d%24e");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(UriEncode("\xc3\xa9", false), "%C3%A9");
}

// The server's side: what a request presented, and whether the secret's signature over one
// of the strings it offers is the one sent.

using Headers = std::map<std::string, std::string>;

ReceivedRequest Received(std::string method, std::string target, Headers headers,
                         absl::string_view body = "") {
  auto shared = std::make_shared<Headers>(std::move(headers));
  return {.method = std::move(method),
          .target = std::move(target),
          .header = [shared](absl::string_view name) -> std::optional<std::string> {
            auto it = shared->find(std::string(name));
            if (it == shared->end()) return std::nullopt;
            return it->second;
          },
          .body_sha256 = Sha256Hex(body)};
}

// Whether `secret` signed one of the strings `p` offers with p.signature.
bool Verifies(const SigV4Presented& p, absl::string_view secret) {
  for (const std::string& s : p.strings_to_sign) {
    if (SigV4Signature(secret, p.date, p.region, p.service, s) == p.signature) return true;
  }
  return false;
}

constexpr absl::string_view kService[] = {"service"};
// A signature of the right form, for requests whose reading, not signature, is tested.
const std::string kZeroSignature(64, '0');

TEST(SigV4Server, ReadsTheTestSuitesGetVanilla) {
  absl::StatusOr<SigV4Presented> p = ReadSigV4(
      Received("GET", "/",
               {{"host", "example.amazonaws.com"},
                {"x-amz-date", "20150830T123600Z"},
                {"authorization",
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                 "aws4_request, SignedHeaders=host;x-amz-date, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"}}),
      SuiteScope().time + absl::Minutes(3), "us-east-1", kService);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(p->date, "20150830");
  EXPECT_EQ(p->service, "service");
  EXPECT_TRUE(Verifies(*p, kSuite.secret_access_key));
  EXPECT_FALSE(Verifies(*p, "another secret"));
}

// S3's documented presigned URL (UNSIGNED-PAYLOAD, X-Amz-Expires of a day, only host signed).
TEST(SigV4Server, ReadsAPresignedQuery) {
  const std::string target =
      "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
      "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
      "&X-Amz-SignedHeaders=host&X-Amz-Signature="
      "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  const absl::string_view s3[] = {"s3"};
  EXPECT_TRUE(CarriesSigV4(target, ""));
  absl::StatusOr<SigV4Presented> p =
      ReadSigV4(Received("GET", target, {{"host", "examplebucket.s3.amazonaws.com"}}),
                S3Scope().time + absl::Hours(20), "us-east-1", s3);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(Verifies(*p, kS3.secret_access_key));
  // A day and a second later it has expired.
  EXPECT_THAT(ReadSigV4(Received("GET", target, {{"host", "examplebucket.s3.amazonaws.com"}}),
                        S3Scope().time + absl::Hours(24) + absl::Seconds(1), "us-east-1", s3)
                  .status()
                  .message(),
              ::testing::HasSubstr("expired"));
}

// What SignV4 signs (header form, a path with characters to encode, a query, a body), the
// server reads back and verifies.
TEST(SigV4Server, VerifiesWhatSignV4Signs) {
  const std::string body = R"({"temperature": 21})";
  SigV4Request r{.method = "POST",
                 .host = "iot.example.com:8443",
                 .path = "/topics/dt/room 1/temp",
                 .query = {{"qos", "1"}, {"retain", "false"}},
                 .payload_hash = Sha256Hex(body)};
  const SigV4Scope scope{.region = "eu-west-1",
                         .service = "iotdata",
                         .time = absl::FromUnixSeconds(1790000000)};
  SigV4Result s = SignV4(r, kSuite, scope);
  const absl::string_view iotdata[] = {"iotdata"};
  absl::StatusOr<SigV4Presented> p = ReadSigV4(
      Received("POST", "/topics/dt/room%201/temp?retain=false&qos=1",
               {{"host", "iot.example.com:8443"},
                {"x-amz-date", s.amz_date},
                {"authorization", s.authorization}},
               body),
      scope.time, "eu-west-1", iotdata);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->strings_to_sign, ::testing::Contains(s.string_to_sign));
  EXPECT_TRUE(Verifies(*p, kSuite.secret_access_key));
  // Another body is another request.
  p = ReadSigV4(Received("POST", "/topics/dt/room%201/temp?retain=false&qos=1",
                         {{"host", "iot.example.com:8443"},
                          {"x-amz-date", s.amz_date},
                          {"authorization", s.authorization}},
                         R"({"temperature": 99})"),
                scope.time, "eu-west-1", iotdata);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(Verifies(*p, kSuite.secret_access_key));
}

TEST(SigV4Server, RefusesWhatAwsRefuses) {
  const absl::Time t = SuiteScope().time;
  auto read = [&](Headers h, absl::Time now, absl::string_view region = "us-east-1") {
    h.emplace("host", "example.amazonaws.com");
    h.emplace("x-amz-date", "20150830T123600Z");
    return ReadSigV4(Received("GET", "/", h), now, region, kService).status();
  };
  const std::string good =
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=" + kZeroSignature;
  EXPECT_TRUE(read({{"authorization", good}}, t).ok());
  auto refused = [](const absl::Status& s, absl::string_view words) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
    EXPECT_THAT(s.message(), ::testing::HasSubstr(std::string(words))) << s;
  };
  refused(read({{"authorization", good}}, t + absl::Minutes(16)), "Signature expired");
  // Checked before, verified again later (a connection's credentials after a change).
  EXPECT_TRUE(ReadSigV4(Received("GET", "/",
                                 {{"host", "example.amazonaws.com"},
                                  {"x-amz-date", "20150830T123600Z"},
                                  {"authorization", good}}),
                        std::nullopt, "us-east-1", kService)
                  .ok());
  refused(read({{"authorization", good}}, t - absl::Minutes(16)), "not yet current");
  refused(read({{"authorization", good}}, t, "eu-west-1"), "valid region");
  refused(read({{"authorization", good}, {"x-amz-security-token", ""}}, t),
          "1 to 8192 printable ASCII");
  refused(read({{"authorization", good}, {"x-amz-security-token", "t\xff"}}, t),
          "1 to 8192 printable ASCII");
  // What goes to the key's holder is ASCII: the key id, the signature.
  refused(read({{"authorization",
                 "AWS4-HMAC-SHA256 Credential=AKID\xc3\xa9/20150830/us-east-1/service/"
                 "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + kZeroSignature}},
               t),
          "letters and digits");
  refused(read({{"authorization",
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                 "aws4_request, SignedHeaders=host;x-amz-date, Signature=00"}},
               t),
          "64 hex digits");
  refused(read({{"authorization",
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iot/aws4_request, "
                 "SignedHeaders=host;x-amz-date, Signature=" + kZeroSignature}},
               t),
          "correct service: 'service'");
  refused(read({{"authorization",
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/service/"
                 "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + kZeroSignature}},
               t),
          "does not match");
  refused(read({{"authorization",
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, Signature=" + kZeroSignature}},
               t),
          "Credential should be");
  refused(read({{"authorization",
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                 "aws4_request, SignedHeaders=host;x-amz-date;x-custom, Signature=" +
                     kZeroSignature}},
               t),
          "'x-custom' is not in the request");
  refused(read({{"authorization",
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                 "aws4_request, SignedHeaders=x-amz-date, Signature=" + kZeroSignature}},
               t),
          "host header must be signed");
  refused(read({{"authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
                                  "us-east-1/service/aws4_request"}},
               t),
          "requires Credential, SignedHeaders and Signature");
  EXPECT_EQ(ReadSigV4(Received("GET", "/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA1", {}), t,
                      "us-east-1", kService)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(CarriesSigV4("/mqtt?x-amz-customauthorizer-name=a", ""));
  EXPECT_TRUE(CarriesSigV4("/topics/a", "AWS4-HMAC-SHA256 Credential=..."));
}

// Temporary credentials: the session token is handed on, and a presigned URL's token may
// be signed (a generic presigner) or added after signing (the AWS CRT for AWS IoT).
TEST(SigV4Server, SessionTokensSignedOrAppended) {
  const absl::Time t = SuiteScope().time;
  const std::string base =
      "/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20150830%2F"
      "us-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host";
  // What each signer signs: the canonical request with or without the token.
  auto sign = [&](bool token_signed) {
    const std::string query =
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20150830%2Fus-east-1"
        "%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z" +
        std::string(token_signed ? "&X-Amz-Security-Token=tok%2Ben" : "") +
        "&X-Amz-SignedHeaders=host";
    const std::string canonical =
        "GET\n/mqtt\n" + query + "\nhost:example.amazonaws.com\n\nhost\n" + kEmpty;
    return SigV4Signature("secret", "20150830", "us-east-1", "service",
                          "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/"
                          "aws4_request\n" +
                              Sha256Hex(canonical));
  };
  for (bool token_signed : {true, false}) {
    absl::StatusOr<SigV4Presented> p = ReadSigV4(
        Received("GET",
                 base + "&X-Amz-Security-Token=tok%2Ben&X-Amz-Signature=" + sign(token_signed),
                 {{"host", "example.amazonaws.com"}}),
        t, "us-east-1", kService);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->session_token, "tok+en");
    EXPECT_EQ(p->access_key_id, "ASIAEXAMPLE");
    EXPECT_TRUE(Verifies(*p, "secret")) << token_signed;
  }
  // Without a token nothing is added.
  absl::StatusOr<SigV4Presented> p = ReadSigV4(
      Received("GET", base + "&X-Amz-Signature=" + kZeroSignature,
               {{"host", "example.amazonaws.com"}}),
      t, "us-east-1", kService);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->session_token.has_value());
  EXPECT_EQ(p->strings_to_sign.size(), 2u);  // the empty body's hash, UNSIGNED-PAYLOAD
}

}  // namespace
}  // namespace fleetcore::aws
