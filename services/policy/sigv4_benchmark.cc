// The CPU a SigV4 connect costs in-process, step by step: the gateway reading a presigned
// WebSocket upgrade (the candidates' canonical requests and their SHA-256), and the policy
// service opening the sealed secret and computing the signature of each candidate; for
// temporary credentials, opening the session token instead.
//
//   taskset -c 1 build/services/policy/sigv4_benchmark
#include "benchmark/benchmark.h"
#include "common/aws/sigv4.h"
#include "common/testing/fake_clock.h"
#include "common/tls/secret_box.h"
#include "services/policy/access_key_core.h"
#include "services/policy/fake_policy_store.h"

namespace fleetcore {
namespace {

const std::string kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

// What the AWS IoT Device SDK sends: a presigned upgrade of /mqtt, only host signed.
aws::ReceivedRequest Upgrade(absl::Time now, const std::string& key_id) {
  const std::string date = absl::FormatTime("%Y%m%dT%H%M%SZ", now, absl::UTCTimeZone());
  return {.method = "GET",
          .target = absl::StrCat("/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=",
                                 key_id, "%2F", date.substr(0, 8),
                                 "%2Fus-east-1%2Fiotdevicegateway%2Faws4_request&X-Amz-Date=",
                                 date, "&X-Amz-SignedHeaders=host&X-Amz-Signature=",
                                 std::string(64, '0')),
          .header = [](absl::string_view name) -> std::optional<std::string> {
            if (name == "host") return std::string("iot.example.com");
            return std::nullopt;
          },
          .body_sha256 = aws::Sha256Hex("")};
}

constexpr absl::string_view kServices[] = {"iotdevicegateway", "iotdata"};

void BM_GatewayReadsAPresignedUpgrade(benchmark::State& state) {
  const absl::Time now = absl::Now();
  const aws::ReceivedRequest r = Upgrade(now, "AKIAIOSFODNN7EXAMPLE");
  for (auto _ : state) {
    benchmark::DoNotOptimize(aws::ReadSigV4(r, now, "us-east-1", kServices));
  }
}
BENCHMARK(BM_GatewayReadsAPresignedUpgrade);

void BM_OneSignature(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(aws::SigV4Signature(kSecret, "20261127", "us-east-1",
                                                 "iotdevicegateway", "AWS4-HMAC-SHA256\nx"));
  }
}
BENCHMARK(BM_OneSignature);

// The policy service's VerifyAccessKeySignature for an access key (its store in memory) and
// for temporary credentials (no store), with the gateway's two candidates.
void BM_PolicyVerifies(benchmark::State& state) {
  const bool temporary = state.range(0) == 1;
  testing::FakeClock clock(absl::Now());
  policy_service::FakePolicyStore store;
  const aws::Arns arns("us-east-1", "000000000000");
  const tls::SecretBox box = tls::SecretBox::WithKey(std::string(32, 'k'));
  policy_service::AccessKeyCore core(&store, &box, &arns, &clock);
  std::string id, secret, token;
  if (temporary) {
    policy_service::SessionCredentials c =
        core.GetSessionToken("u", absl::Hours(1)).value();
    id = c.access_key_id;
    secret = c.secret;
    token = c.session_token;
  } else {
    policy_service::NewAccessKey k = core.CreateAccessKey("u").value();
    id = k.key.id;
    secret = k.secret;
  }
  absl::StatusOr<aws::SigV4Presented> p =
      aws::ReadSigV4(Upgrade(clock.Now(), id), clock.Now(), "us-east-1", kServices);
  policy_service::SignatureCheck check{.access_key_id = id,
                                       .date = p->date,
                                       .region = p->region,
                                       .service = p->service,
                                       .strings_to_sign = p->strings_to_sign,
                                       .signature = aws::SigV4Signature(
                                           secret, p->date, p->region, p->service,
                                           p->strings_to_sign[0]),
                                       .session_token = token};
  for (auto _ : state) {
    absl::StatusOr<policy_service::SignatureVerdict> v = core.Verify(check);
    if (!v.ok() || !v->authenticated) state.SkipWithError("not verified");
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_PolicyVerifies)->Arg(0)->Arg(1)->ArgName("temporary");

}  // namespace
}  // namespace fleetcore

BENCHMARK_MAIN();
