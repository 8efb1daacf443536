// libFuzzer target: what a client sends the gateway before it is anyone, and the topics it
// routes to the AWS services. None of it may crash, and
//   - the first TLS record (ALPN routing on one port): the answer depends on that record
//     only, so bytes after a decided answer change nothing, and a prefix of the bytes
//     either says "incomplete" or gives the same answer;
//   - the CONNECT user name, an HTTP query string and headers (custom authorizer
//     parameters) decode without crashing, and an HTTPS publish request that parses is a
//     message within the limits;
//   - a shadow, fleet provisioning, jobs or Device Defender topic that parses names a thing,
//     shadow, template or job that is really in it, and the client may publish to it;
//   - a Device Defender report (the input as JSON, then as CBOR) that is well-formed has a
//     report id, and one that is not says why;
//   - a SigV4 request (target, Authorization and X-Amz-Date from the input's lines) that
//     reads offers 1 to 12 strings to sign and ASCII credentials, is within its time, and
//     reads again without the time check.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/aws/sigv4.h"
#include "common/mqtt/codec.h"
#include "services/gateway/broker_limits.h"
#include "services/gateway/client_hello.h"
#include "services/gateway/defender_report.h"
#include "services/gateway/http_publish.h"

namespace {

using namespace fleetcore::gateway;

bool Same(const ClientHello& a, const ClientHello& b) {
  return a.status == b.status && a.alpn == b.alpn;
}

void CheckClientHello(absl::string_view data) {
  const ClientHello whole = ParseClientHello(data);
  for (const std::string& p : whole.alpn) {
    if (p.size() > 255) std::abort();  // one length byte per protocol name
  }
  (void)OffersMqtt(whole);
  if (whole.status != ClientHello::kIncomplete &&
      !Same(ParseClientHello(absl::StrCat(data, "\x16\x03\x01 more")), whole)) {
    std::abort();  // bytes after the first record changed the answer
  }
  for (size_t n : {data.size() / 2, data.size() > 0 ? data.size() - 1 : 0}) {
    const ClientHello prefix = ParseClientHello(data.substr(0, n));
    if (prefix.status != ClientHello::kIncomplete && !Same(prefix, whole)) std::abort();
  }
}

void CheckTopic(absl::string_view topic) {
  if (std::optional<ShadowTopic> shadow = ParseShadowTopic(topic)) {
    if (shadow->thing_name.empty() || !absl::StrContains(topic, shadow->thing_name) ||
        !absl::StrContains(shadow->prefix, shadow->shadow_name) ||
        topic != absl::StrCat(shadow->prefix, "/", shadow->operation) ||
        !ClientMayPublishTo(topic)) {
      std::abort();
    }
  }
  if (std::optional<ProvisioningTopic> p = ParseProvisioningTopic(topic)) {
    if (!absl::EndsWith(topic, p->cbor ? "/cbor" : "/json") || !ClientMayPublishTo(topic) ||
        (p->operation == "provision") == p->template_name.empty() ||
        !absl::StrContains(topic, p->template_name)) {
      std::abort();
    }
  }
  if (std::optional<DefenderTopic> d = ParseDefenderTopic(topic)) {
    if (!ClientMayPublishTo(topic) || ParseJobsTopic(topic).has_value() ||
        topic != absl::StrCat("$aws/things/", d->thing_name, "/defender/metrics/",
                              d->cbor ? "cbor" : "json")) {
      std::abort();
    }
  }
  if (std::optional<JobsTopic> j = ParseJobsTopic(topic)) {
    const bool named = j->operation == "describe" || j->operation == "update";
    if (j->thing_name.empty() || !ClientMayPublishTo(topic) || named == j->job_id.empty() ||
        ParseShadowTopic(topic).has_value() ||
        topic != absl::StrCat("$aws/things/", j->thing_name, "/jobs/",
                              named ? absl::StrCat(j->job_id, "/") : "",
                              j->operation == "describe" ? "get" : j->operation)) {
      std::abort();
    }
  }
}

void CheckDefender(absl::string_view input) {
  for (const bool cbor : {false, true}) {
    const DefenderReportCheck c = fleetcore::gateway::CheckDefenderReport(input, cbor);
    if (c.error.empty() != c.error_code.empty()) std::abort();
    if (c.error.empty() && !c.report_id.has_value()) std::abort();
    if (c.error_code == "InvalidJson" && c.report_id.has_value()) std::abort();
  }
}

void CheckHttpPublish(absl::string_view input) {
  // The first line is the request target, the rest the body; headers echo the target.
  const size_t nl = input.find('\n');
  const absl::string_view target = input.substr(0, nl);
  const std::string body(nl == absl::string_view::npos ? "" : input.substr(nl + 1));
  const BrokerLimits limits;
  auto headers = [&](absl::string_view) { return std::string(target); };
  absl::StatusOr<std::shared_ptr<Message>> m =
      ParseHttpPublish(target, headers, body, limits, 1700000000000);
  if (m.ok()) {
    const Message& msg = **m;
    // What travels on as MQTT 5 UTF-8 strings must be UTF-8.
    const bool text = (!msg.content_type || fleetcore::mqtt::ValidUtf8(*msg.content_type)) &&
                      (!msg.response_topic || fleetcore::mqtt::ValidUtf8(*msg.response_topic));
    if (!fleetcore::mqtt::ValidTopicName(msg.topic) || !WithinTopicLimits(limits, msg.topic) ||
        !text || msg.payload != body || msg.qos > 1 ||
        msg.payload.size() > static_cast<size_t>(limits.max_payload_bytes)) {
      std::abort();
    }
  }
  (void)HttpPublishReply(m.status(), "trace");
}

void CheckSigV4(absl::string_view input) {
  // Lines: the target, the Authorization header, X-Amz-Date; every other header is "h".
  std::vector<std::string> lines = absl::StrSplit(input, absl::MaxSplits('\n', 2));
  lines.resize(3);
  if (!fleetcore::aws::CarriesSigV4(lines[0], lines[1])) return;
  const fleetcore::aws::ReceivedRequest request{
      .method = "GET",
      .target = lines[0],
      .header = [&lines](absl::string_view name) -> std::optional<std::string> {
        if (name == "authorization") return lines[1];
        if (name == "x-amz-date") return lines[2];
        return std::string("h");
      },
      .body_sha256 = fleetcore::aws::Sha256Hex("")};
  const absl::Time now = absl::FromUnixSeconds(1795000000);  // 2026-11-18
  const absl::string_view services[] = {"iotdevicegateway", "iotdata"};
  absl::StatusOr<fleetcore::aws::SigV4Presented> p =
      fleetcore::aws::ReadSigV4(request, now, "us-east-1", services);
  if (!p.ok()) {
    if (!absl::IsUnauthenticated(p.status())) std::abort();
    return;
  }
  if (p->strings_to_sign.empty() || p->strings_to_sign.size() > 12 || p->access_key_id.empty() ||
      p->region != "us-east-1" || p->time > now + absl::Minutes(15) ||
      now > p->time + absl::Hours(24 * 7)) {
    std::abort();
  }
  for (const std::string& s : p->strings_to_sign) {
    if (!absl::StartsWith(s, "AWS4-HMAC-SHA256\n")) std::abort();
  }
  // What travels on to the policy service in gRPC strings must be UTF-8: it is ASCII.
  for (char c : p->access_key_id + p->signature + p->session_token.value_or("")) {
    if (static_cast<unsigned char>(c) >= 0x80) std::abort();
  }
  if (p->signature.size() != 64) std::abort();
  if (!fleetcore::aws::ReadSigV4(request, std::nullopt, "us-east-1", services).ok()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckClientHello(input);
  CheckTopic(input);
  CheckHttpPublish(input);
  CheckDefender(input);
  CheckSigV4(input);
  const std::map<std::string, std::string> headers{
      {"x-amz-customauthorizer-name", std::string(input.substr(0, input.size() / 3))},
      {"token", std::string(input)}};
  (void)AuthorizerParams(input, input.substr(input.size() / 2), &headers);
  (void)AuthorizerParams("", input, nullptr);
  return 0;
}
