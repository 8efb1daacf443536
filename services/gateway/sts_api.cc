#include "services/gateway/sts_api.h"

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/log/log.h"
#include "common/status/public_message.h"
#include "fleetcore/policy/v1/policy.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/http_publish.h"
#include "services/gateway/in_flight_calls.h"

namespace fleetcore::gateway {
namespace {

namespace ppb = ::fleetcore::policy::v1;
using SessionCall = TrackedCall<ppb::GetSessionTokenRequest, ppb::GetSessionTokenResponse>;

constexpr char kNamespace[] = "https://sts.amazonaws.com/doc/2011-06-15/";

std::string Xml(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"},
                                    {"\"", "&quot;"}});
}

// STS's status for an error code.
int StatusOf(absl::string_view code) {
  if (code == "AccessDenied") return 403;
  if (code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" ||
      code == "ExpiredToken") {
    return 403;
  }
  if (code == "InternalFailure") return 500;
  if (code == "ServiceUnavailable") return 503;
  return 400;
}

}  // namespace

std::optional<std::map<std::string, std::string>> StsParams(absl::string_view target,
                                                            absl::string_view body) {
  std::map<std::string, std::string> out;
  const size_t q = target.find('?');
  if (q != absl::string_view::npos && !AddFormParams(target.substr(q + 1), &out)) {
    return std::nullopt;
  }
  if (!AddFormParams(absl::StripAsciiWhitespace(body), &out)) return std::nullopt;
  return out;
}

std::string StsError(absl::string_view code, absl::string_view message,
                     absl::string_view request_id) {
  return absl::StrCat("<ErrorResponse xmlns=\"", kNamespace, "\"><Error><Type>",
                      StatusOf(code) >= 500 ? "Receiver" : "Sender", "</Type><Code>", Xml(code),
                      "</Code><Message>", Xml(message), "</Message></Error><RequestId>",
                      Xml(request_id), "</RequestId></ErrorResponse>");
}

struct StsApi::Impl {
  std::unique_ptr<ppb::Policy::Stub> policy;
  std::string token;
  GatewayMetrics* metrics;
  InFlightCalls calls;  // last: cancelled and waited for first

  void Count(absl::string_view action, absl::string_view result) const {
    if (metrics != nullptr) metrics->StsRequest(action, result);
  }
};

StsApi::StsApi(std::shared_ptr<grpc::Channel> policy, std::string token,
               GatewayMetrics* metrics)
    : impl_(new Impl{.policy = ppb::Policy::NewStub(std::move(policy)),
                     .token = std::move(token),
                     .metrics = metrics}) {}

StsApi::~StsApi() = default;

bool StsApi::Handles(absl::string_view target) const {
  return target == "/" || absl::StartsWith(target, "/?");
}

void StsApi::Refuse(const absl::Status& status, absl::string_view trace_id, Done done) {
  // STS's words: a signature it cannot check, or one that does not match.
  const bool unknown = absl::StrContains(status.message(), "security token included");
  const std::string code = absl::IsUnavailable(status) ? "ServiceUnavailable"
                           : unknown                   ? "InvalidClientTokenId"
                                                       : "SignatureDoesNotMatch";
  impl_->Count("(unauthenticated)", code);
  done(StatusOf(code), StsError(code, PublicMessage(status), trace_id));
}

void StsApi::Handle(absl::string_view method, absl::string_view target, const HeaderLookup&,
                    std::string body, const Identity* identity, Done done) {
  std::optional<std::map<std::string, std::string>> params = StsParams(target, body);
  // Actions are counted by name only when they are STS's two (clients cannot grow the series).
  std::string action = params.has_value() ? (*params)["Action"] : "";
  const std::string label =
      action == "GetSessionToken" || action == "GetCallerIdentity" ? action : "(other)";
  Impl* impl = impl_.get();
  auto fail = [&done, impl, &label](absl::string_view code, absl::string_view message) {
    impl->Count(label, code);
    done(StatusOf(code), StsError(code, message, ""));
  };
  if (method != "POST" && method != "GET") {
    return fail("InvalidAction", "STS is called with POST (or GET) on /");
  }
  if (!params.has_value()) return fail("MalformedQueryString", "a malformed %-escape");
  if (action != "GetSessionToken" && action != "GetCallerIdentity") {
    return fail("InvalidAction",
                absl::StrCat("Could not find operation ", action.empty() ? "(none)" : action,
                             " for version 2011-06-15; fleetcore answers GetSessionToken and "
                             "GetCallerIdentity"));
  }
  // Only an access key's own signature may ask, as STS wants an IAM identity.
  const absl::string_view arn =
      identity != nullptr ? absl::string_view(identity->principal()) : absl::string_view();
  const size_t slash = arn.rfind(":user/");
  if (identity == nullptr || !identity->from_access_key() ||
      !absl::StartsWith(arn, "arn:aws:iam::") || slash == absl::string_view::npos) {
    return fail("AccessDenied",
                absl::StrCat(action, " needs a request signed with an access key"));
  }
  const absl::string_view user = arn.substr(slash + 6);
  if (action == "GetCallerIdentity") {
    // Who signed: the user (fleetcore's users have no separate unique id: its name is it).
    const absl::string_view account = arn.substr(13, slash - 13);
    impl_->Count(label, "ok");
    return done(200, absl::StrCat("<GetCallerIdentityResponse xmlns=\"", kNamespace,
                                  "\"><GetCallerIdentityResult><Arn>", Xml(arn), "</Arn><UserId>",
                                  Xml(user), "</UserId><Account>", Xml(account),
                                  "</Account></GetCallerIdentityResult><ResponseMetadata>"
                                  "<RequestId></RequestId></ResponseMetadata>"
                                  "</GetCallerIdentityResponse>"));
  }
  if (identity->expires_at_ms() > 0) {
    return fail("AccessDenied", "Cannot call GetSessionToken with session credentials");
  }
  int duration = 0;
  if (params->contains("DurationSeconds") &&
      !absl::SimpleAtoi((*params)["DurationSeconds"], &duration)) {
    return fail("ValidationError", "DurationSeconds must be a number of seconds");
  }
  auto* call = new SessionCall(&impl_->calls);
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!impl_->token.empty()) call->ctx.AddMetadata("authorization", "Bearer " + impl_->token);
  call->req.set_user_name(std::string(user));
  call->req.set_duration_seconds(duration);
  impl_->policy->async()->GetSessionToken(
      &call->ctx, &call->req, &call->resp, [call, done, impl](grpc::Status s) {
        std::unique_ptr<SessionCall> owned(call);
        if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
          impl->Count("GetSessionToken", "ValidationError");
          return done(400, StsError("ValidationError", s.error_message(), ""));
        }
        if (!s.ok()) {
          log::Warn("GetSessionToken failed", {{"code", static_cast<int>(s.error_code())},
                                               {"error", s.error_message()}});
          const bool down = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                            s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
          impl->Count("GetSessionToken", down ? "ServiceUnavailable" : "InternalFailure");
          return done(down ? 503 : 500,
                      StsError(down ? "ServiceUnavailable" : "InternalFailure",
                               PublicMessage(absl::Status(
                                   static_cast<absl::StatusCode>(s.error_code()),
                                   s.error_message())),
                               ""));
        }
        impl->Count("GetSessionToken", "ok");
        const ppb::SessionCredentials& c = call->resp.credentials();
        const std::string expiration =
            absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                             absl::FromUnixSeconds(c.expiration().seconds()), absl::UTCTimeZone());
        done(200, absl::StrCat("<GetSessionTokenResponse xmlns=\"", kNamespace,
                               "\"><GetSessionTokenResult><Credentials><SessionToken>",
                               Xml(c.session_token()), "</SessionToken><SecretAccessKey>",
                               Xml(c.secret_access_key()), "</SecretAccessKey><Expiration>",
                               expiration, "</Expiration><AccessKeyId>",
                               Xml(c.access_key_id()),
                               "</AccessKeyId></Credentials></GetSessionTokenResult>"
                               "<ResponseMetadata><RequestId></RequestId></ResponseMetadata>"
                               "</GetSessionTokenResponse>"));
      });
}

}  // namespace fleetcore::gateway
