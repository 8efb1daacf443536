// Invoking custom authorizers: signature checks, the event the function gets, strict
// parsing of its answer, failures as denials (Authorize) or errors (TestInvoke), caching.
// The function is a scripted HttpClient here; the e2e tests call a real one over HTTP.
#include "services/policy/authorizer_core.h"

#include <mutex>

#include "absl/strings/escaping.h"
#include "common/testing/fake_clock.h"
#include "common/testing/keys.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/policy/fake_policy_store.h"

namespace fleetcore::policy_service {
namespace {

using ::fleetcore::testing::StatusIs;
using ::fleetcore::testing::TestKeyPair;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using json = nlohmann::json;
using Code = absl::StatusCode;

// The authorizer function: answers with `next` (a response or an error) and records requests.
class ScriptedFunction final : public http::HttpClient {
 public:
  absl::StatusOr<http::Response> Send(const http::Request& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(request);
    return next_;
  }
  void AnswerJson(const json& body, int status = 200) {
    std::lock_guard<std::mutex> lock(mu_);
    next_ = http::Response{.status = status, .body = body.dump()};
  }
  void AnswerRaw(const std::string& body, int status = 200) {
    std::lock_guard<std::mutex> lock(mu_);
    next_ = http::Response{.status = status, .body = body};
  }
  void Fail(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    next_ = std::move(status);
  }
  std::vector<http::Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  absl::StatusOr<http::Response> next_ = absl::InternalError("no answer scripted");
  std::vector<http::Request> requests_;
};

const char kPolicy[] =
    R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",)"
    R"("Resource":"arn:aws:iot:us-east-1:123456789012:client/dev-1"}]})";

json Allowing(int refresh = 600) {
  return {{"isAuthenticated", true},
          {"principalId", "dev1"},
          {"policyDocuments", {kPolicy}},
          {"disconnectAfterInSeconds", 3600},
          {"refreshAfterInSeconds", refresh}};
}

class AuthorizerCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(core_
                  .CreateAuthorizer(
                      {.name = "signed",
                       .function_url = "http://127.0.0.1:1/auth",
                       .token_key_name = "x-token",
                       .public_keys = {{"k1", other_.public_pem}, {"k2", keys_.public_pem}}})
                  .status());
    ASSERT_OK(core_
                  .CreateAuthorizer({.name = "unsigned",
                                     .function_url = "https://auth.example:8443/check?x=1",
                                     .signing_disabled = true})
                  .status());
  }

  AuthorizerRequest Signed(const std::string& token = "tok-123") {
    return {.authorizer_name = "signed",
            .token = token,
            .token_signature = keys_.SignBase64(token),
            .protocols = {"mqtt", "tls"},
            .mqtt_username = "user?x-token=tok-123",
            .mqtt_password = std::string("p\0w", 3),
            .mqtt_client_id = "dev-1",
            .tls_server_name = "iot.example.com",
            .connection_id = "conn-1"};
  }

  // Authorize must succeed as a call; the outcome carries the decision.
  AuthorizeOutcome Authorize(const AuthorizerRequest& r) {
    absl::StatusOr<AuthorizeOutcome> out = core_.Authorize(r);
    EXPECT_OK(out.status());
    return out.ok() ? *out : AuthorizeOutcome{};
  }

  // RSA key generation takes a while: one pair of keys for every test.
  static const TestKeyPair& Key(int i) {
    static const TestKeyPair keys[2] = {TestKeyPair::Rsa(2048), TestKeyPair::Rsa(2048)};
    return keys[i];
  }
  const TestKeyPair& keys_ = Key(0);
  const TestKeyPair& other_ = Key(1);
  FakePolicyStore store_;
  ScriptedFunction function_;
  aws::Arns arns_{"us-east-1", "123456789012"};
  testing::FakeClock clock_;
  AuthorizerCore core_{
      &store_, &function_, &arns_, &clock_, {.function_timeout = absl::Seconds(3)}};
};

TEST_F(AuthorizerCoreTest, SignedTokenReachesTheFunctionAsAwsEvent) {
  function_.AnswerJson(Allowing());
  AuthorizeOutcome out = Authorize(Signed());
  EXPECT_EQ(out.result, "allow");
  EXPECT_TRUE(out.deny_reason.empty());
  EXPECT_TRUE(out.answer.authenticated);
  EXPECT_EQ(out.answer.principal_id, "dev1");
  EXPECT_THAT(out.answer.policy_documents, ElementsAre(kPolicy));
  EXPECT_EQ(out.answer.disconnect_after_seconds, 3600);
  EXPECT_EQ(out.answer.refresh_after_seconds, 600);

  const std::vector<http::Request> requests = function_.requests();
  ASSERT_THAT(requests, SizeIs(1));
  const http::Request& sent = requests[0];
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.url, "http://127.0.0.1:1/auth");
  EXPECT_EQ(sent.timeout, absl::Seconds(3));
  json event = json::parse(sent.body);
  EXPECT_EQ(event["token"], "tok-123");
  EXPECT_EQ(event["signatureVerified"], true);
  EXPECT_EQ(event["protocols"], json({"mqtt", "tls"}));
  EXPECT_EQ(event["protocolData"]["tls"]["serverName"], "iot.example.com");
  EXPECT_EQ(event["protocolData"]["mqtt"]["username"], "user?x-token=tok-123");
  EXPECT_EQ(event["protocolData"]["mqtt"]["password"], absl::Base64Escape(std::string("p\0w", 3)));
  EXPECT_EQ(event["protocolData"]["mqtt"]["clientId"], "dev-1");
  EXPECT_EQ(event["connectionMetadata"]["id"], "conn-1");
  EXPECT_FALSE(event["protocolData"].contains("http"));
}

TEST_F(AuthorizerCoreTest, BadSignaturesNeverReachTheFunction) {
  function_.AnswerJson(Allowing());
  AuthorizerRequest forged = Signed();
  forged.token = "tok-456";  // signature is over tok-123
  AuthorizeOutcome out = Authorize(forged);
  EXPECT_EQ(out.result, "signature_invalid");
  EXPECT_FALSE(out.answer.authenticated);
  EXPECT_THAT(out.deny_reason, HasSubstr("does not verify"));

  AuthorizerRequest garbled = Signed();
  garbled.token_signature = "!!not base64!!";
  EXPECT_EQ(Authorize(garbled).result, "signature_invalid");
  AuthorizerRequest missing = Signed();
  missing.token.clear();
  EXPECT_EQ(Authorize(missing).result, "signature_invalid");
  EXPECT_THAT(function_.requests(), SizeIs(0));
  EXPECT_THAT(core_.TestInvoke(forged), StatusIs(Code::kPermissionDenied));
}

TEST_F(AuthorizerCoreTest, SigningDisabledPassesHttpContextUnverified) {
  function_.AnswerJson(Allowing());
  AuthorizerRequest r{.authorizer_name = "unsigned",
                      .token = "anything",
                      .protocols = {"http"},
                      .http_headers = std::map<std::string, std::string>{{"x-token", "anything"}},
                      .http_query_string = "?a=1"};
  EXPECT_EQ(Authorize(r).result, "allow");
  json event = json::parse(function_.requests().at(0).body);
  EXPECT_EQ(event["signatureVerified"], false);
  EXPECT_EQ(event["protocolData"]["http"]["headers"]["x-token"], "anything");
  EXPECT_EQ(event["protocolData"]["http"]["queryString"], "?a=1");
  EXPECT_FALSE(event["protocolData"].contains("mqtt"));
}

TEST_F(AuthorizerCoreTest, UnknownInactiveOrMissingDefaultAuthorizerDenies) {
  function_.AnswerJson(Allowing());
  AuthorizerRequest r = Signed();
  r.authorizer_name = "ghost";
  AuthorizeOutcome out = Authorize(r);
  EXPECT_EQ(out.result, "not_found");
  EXPECT_THAT(out.deny_reason, HasSubstr("ghost"));

  r.authorizer_name = "";  // no default yet
  EXPECT_EQ(Authorize(r).result, "not_found");
  ASSERT_OK(core_.SetDefaultAuthorizer("signed").status());
  EXPECT_EQ(Authorize(r).result, "allow");

  ASSERT_OK(core_.UpdateAuthorizer({.name = "signed", .active = false}).status());
  out = Authorize(Signed());
  EXPECT_EQ(out.result, "inactive");
  EXPECT_THAT(core_.TestInvoke(Signed()),
              StatusIs(Code::kFailedPrecondition, HasSubstr("INACTIVE")));
}

TEST_F(AuthorizerCoreTest, FunctionFailuresAreDenialsWithTheirReason) {
  struct Case {
    std::function<void()> script;
    std::string result;
    Code code;
  } cases[] = {
      {[&] { function_.Fail(absl::DeadlineExceededError("no answer within 3s")); }, "timeout",
       Code::kDeadlineExceeded},
      {[&] { function_.Fail(absl::UnavailableError("connection refused")); }, "unreachable",
       Code::kUnavailable},
      {[&] { function_.AnswerRaw("oops", 502); }, "http_error", Code::kUnavailable},
      {[&] {
         function_.AnswerJson({{"isAuthenticated", false}});
       },
       "deny", Code::kOk},
  };
  for (const Case& c : cases) {
    c.script();
    AuthorizeOutcome out = Authorize(Signed());
    EXPECT_EQ(out.result, c.result);
    EXPECT_FALSE(out.answer.authenticated);
    EXPECT_FALSE(out.deny_reason.empty());
    absl::StatusOr<AuthorizerAnswer> tested = core_.TestInvoke(Signed());
    EXPECT_EQ(tested.status().code(), c.code) << c.result << ": " << tested.status();
  }
}

TEST_F(AuthorizerCoreTest, AnswersAreParsedStrictly) {
  auto with = [](const std::string& key, json value) {
    json a = Allowing();
    if (value.is_null()) {
      a.erase(key);
    } else {
      a[key] = value;
    }
    return a.dump();
  };
  const std::string eleven = [] {
    json docs = json::array();
    for (int i = 0; i < 11; ++i) docs.push_back(kPolicy);
    return docs.dump();
  }();
  struct Case {
    std::string body;
    std::string message;
  } cases[] = {
      {"not json", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {R"({"isAuthenticated":"yes"})", "isAuthenticated"},
      {with("principalId", nullptr), "principalId"},
      {with("principalId", "has-dash"), "letters and digits"},
      {with("principalId", std::string(129, 'a')), "principalId"},
      {with("policyDocuments", "one"), "policyDocuments must be a list"},
      {with("policyDocuments", json::parse(eleven)), "more than 10"},
      {with("policyDocuments", json::array({42})), "policyDocuments[0]"},
      {with("policyDocuments", json::array({R"({"Version":"2012-10-17"})"})), "policyDocuments[0]"},
      {with("refreshAfterInSeconds", nullptr), "refreshAfterInSeconds is missing"},
      {with("refreshAfterInSeconds", 299), "300 to 86400"},
      {with("disconnectAfterInSeconds", 86401), "disconnectAfterInSeconds"},
      {with("disconnectAfterInSeconds", "3600"), "disconnectAfterInSeconds"},
  };
  for (const Case& c : cases) {
    function_.AnswerRaw(c.body);
    AuthorizeOutcome out = Authorize(Signed());
    EXPECT_EQ(out.result, "malformed") << c.body;
    EXPECT_THAT(out.deny_reason, HasSubstr(c.message)) << c.body;
    EXPECT_THAT(core_.TestInvoke(Signed()),
                StatusIs(Code::kFailedPrecondition, HasSubstr(c.message)));
  }
}

TEST_F(AuthorizerCoreTest, PolicyDocumentsMayBeObjectsAndDisconnectDefaultsToADay) {
  json a = Allowing();
  a["policyDocuments"] = json::array({json::parse(kPolicy)});
  a.erase("disconnectAfterInSeconds");
  function_.AnswerJson(a);
  ASSERT_OK_AND_ASSIGN(AuthorizerAnswer answer, core_.TestInvoke(Signed()));
  ASSERT_THAT(answer.policy_documents, SizeIs(1));
  EXPECT_EQ(json::parse(answer.policy_documents[0]), json::parse(kPolicy));
  EXPECT_EQ(answer.disconnect_after_seconds, 86400);
}

TEST_F(AuthorizerCoreTest, AnswersAreCachedForRefreshAfterInSeconds) {
  function_.AnswerJson(Allowing(/*refresh=*/300));
  EXPECT_FALSE(Authorize(Signed()).from_cache);
  AuthorizeOutcome again = Authorize(Signed());
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.answer.principal_id, "dev1");
  EXPECT_THAT(function_.requests(), SizeIs(1));

  // Other credentials are another client.
  AuthorizerRequest other = Signed();
  other.mqtt_client_id = "dev-2";
  EXPECT_FALSE(Authorize(other).from_cache);
  EXPECT_THAT(function_.requests(), SizeIs(2));

  clock_.Advance(absl::Seconds(301));
  EXPECT_FALSE(Authorize(Signed()).from_cache);
  EXPECT_THAT(function_.requests(), SizeIs(3));

  // A change to the authorizer drops its answers.
  ASSERT_OK(core_.UpdateAuthorizer({.name = "signed", .caching_for_http = true}).status());
  EXPECT_FALSE(Authorize(Signed()).from_cache);
  EXPECT_TRUE(Authorize(Signed()).from_cache);
  core_.InvalidateCache("signed");
  EXPECT_FALSE(Authorize(Signed()).from_cache);
  core_.InvalidateCache();
  EXPECT_FALSE(Authorize(Signed()).from_cache);
  EXPECT_THAT(function_.requests(), SizeIs(6));
}

TEST_F(AuthorizerCoreTest, DenialsAndTestInvokeAreNeverCached) {
  function_.AnswerJson({{"isAuthenticated", false}});
  EXPECT_EQ(Authorize(Signed()).result, "deny");
  function_.AnswerJson(Allowing());
  EXPECT_FALSE(Authorize(Signed()).from_cache);
  ASSERT_OK(core_.TestInvoke(Signed()).status());
  EXPECT_THAT(function_.requests(), SizeIs(3));
}

TEST_F(AuthorizerCoreTest, CacheSizeIsBoundedAndZeroDisablesIt) {
  AuthorizerCore small(&store_, &function_, &arns_, &clock_, {.cache_entries = 2});
  function_.AnswerJson(Allowing());
  auto as = [&](const std::string& client) {
    AuthorizerRequest r = Signed();
    r.mqtt_client_id = client;
    absl::StatusOr<AuthorizeOutcome> out = small.Authorize(r);
    EXPECT_OK(out.status());
    return out.ok() && out->from_cache;
  };
  EXPECT_FALSE(as("a"));
  EXPECT_FALSE(as("b"));
  EXPECT_TRUE(as("a"));
  EXPECT_FALSE(as("c"));  // evicts the oldest, a
  EXPECT_FALSE(as("a"));
  EXPECT_TRUE(as("c"));

  AuthorizerCore none(&store_, &function_, &arns_, &clock_, {.cache_entries = 0});
  ASSERT_OK(none.Authorize(Signed()).status());
  ASSERT_OK_AND_ASSIGN(AuthorizeOutcome out, none.Authorize(Signed()));
  EXPECT_FALSE(out.from_cache);
}

TEST_F(AuthorizerCoreTest, InvalidUtf8FromAClientIsSentReplaced) {
  function_.AnswerJson(Allowing());
  AuthorizerRequest r{.authorizer_name = "unsigned",
                      .token = "tok",
                      .protocols = {"mqtt"},
                      .mqtt_username = std::string("u\xff\xfe"),
                      .mqtt_client_id = std::string("c\xc3")};
  EXPECT_EQ(Authorize(r).result, "allow");
  json event = json::parse(function_.requests().at(0).body);
  EXPECT_EQ(event["protocolData"]["mqtt"]["username"], "u\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace fleetcore::policy_service
