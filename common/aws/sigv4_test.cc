// SigV4 against AWS's published answers: the Signature Version 4 test suite (service
// "service", AKIDEXAMPLE) and the S3 documentation's examples (GET Object with a range, PUT
// Object with a "$" in the key, a query with a name alone, a sorted query).
#include "common/aws/sigv4.h"

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

}  // namespace
}  // namespace fleetcore::aws
