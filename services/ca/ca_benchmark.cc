// The CPU a certificate costs the CA, step by step (docs/benchmarks.md, "CA").
//
//   build/services/ca/ca_benchmark
#include "benchmark/benchmark.h"
#include "common/testing/fake_clock.h"
#include "services/ca/ca_test_util.h"
#include "services/ca/certificate_core.h"
#include "services/ca/fake_ca_store.h"
#include "services/ca/fake_peers.h"

namespace fleetcore::ca {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

void BM_GenerateEcKey(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(tls::PrivateKey::Generate(tls::KeyType::kEcP256));
}
BENCHMARK(BM_GenerateEcKey);

void BM_PrivateKeyPem(benchmark::State& state) {
  tls::PrivateKey key = *tls::PrivateKey::Generate(tls::KeyType::kEcP256);
  for (auto _ : state) benchmark::DoNotOptimize(key.ToPem());
}
BENCHMARK(BM_PrivateKeyPem);

void BM_PublicKeyPem(benchmark::State& state) {
  tls::PrivateKey key = *tls::PrivateKey::Generate(tls::KeyType::kEcP256);
  for (auto _ : state) benchmark::DoNotOptimize(tls::PublicKeyPem(key.public_key()));
}
BENCHMARK(BM_PublicKeyPem);

void BM_Sign(benchmark::State& state) {
  std::unique_ptr<IssuingCa> ca = testing::MakeIssuingCa(kNow);
  tls::PrivateKey key = *tls::PrivateKey::Generate(tls::KeyType::kEcP256);
  tls::PublicKey pub = key.public_key();
  for (auto _ : state) {
    benchmark::DoNotOptimize(ca->Sign(pub, {{{"CN", "d"}}}, kNow, absl::Hours(24)));
  }
}
BENCHMARK(BM_Sign);

void BM_CertificateFields(benchmark::State& state) {
  std::unique_ptr<IssuingCa> ca = testing::MakeIssuingCa(kNow);
  tls::PrivateKey key = *tls::PrivateKey::Generate(tls::KeyType::kEcP256);
  tls::Certificate cert = *ca->Sign(key.public_key(), {{{"CN", "d"}}}, kNow, absl::Hours(24));
  for (auto _ : state) {
    benchmark::DoNotOptimize(cert.Id());
    benchmark::DoNotOptimize(cert.Pem());
    benchmark::DoNotOptimize(cert.serial_hex());
    benchmark::DoNotOptimize(cert.subject().ToString());
  }
}
BENCHMARK(BM_CertificateFields);

void BM_ParseDerAndId(benchmark::State& state) {
  std::unique_ptr<IssuingCa> ca = testing::MakeIssuingCa(kNow);
  tls::PrivateKey key = *tls::PrivateKey::Generate(tls::KeyType::kEcP256);
  const std::string der = ca->Sign(key.public_key(), {{{"CN", "d"}}}, kNow, absl::Hours(24))->Der();
  for (auto _ : state) {
    absl::StatusOr<tls::Certificate> c = tls::Certificate::ParseDer(der);
    benchmark::DoNotOptimize(c->Id());
  }
}
BENCHMARK(BM_ParseDerAndId);

// Everything CreateKeysAndCertificate does but the database: new key, signature, encodings.
void BM_MintWithNewKey(benchmark::State& state) {
  fleetcore::testing::FakeClock clock(kNow);
  std::unique_ptr<IssuingCa> ca = testing::MakeIssuingCa(kNow);
  FakeCaStore store;
  FakePeers peers;
  aws::Arns arns("us-east-1", "123456789012");
  CertificateCore core(&store, ca.get(), &peers, &arns, &clock, nullptr);
  for (auto _ : state) benchmark::DoNotOptimize(core.Mint("", CertStatus::kActive));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MintWithNewKey);

void BM_MintFromCsr(benchmark::State& state) {
  fleetcore::testing::FakeClock clock(kNow);
  std::unique_ptr<IssuingCa> ca = testing::MakeIssuingCa(kNow);
  FakeCaStore store;
  FakePeers peers;
  aws::Arns arns("us-east-1", "123456789012");
  CertificateCore core(&store, ca.get(), &peers, &arns, &clock, nullptr);
  tls::PrivateKey key = *tls::PrivateKey::Generate(tls::KeyType::kEcP256);
  const std::string csr = *tls::CreateCsrPem(key, {{{"CN", "d"}}});
  for (auto _ : state) benchmark::DoNotOptimize(core.Mint(csr, CertStatus::kActive));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MintFromCsr);

}  // namespace
}  // namespace fleetcore::ca

BENCHMARK_MAIN();
