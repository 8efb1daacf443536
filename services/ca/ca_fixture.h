// The fixture of the CA conformance tests: the cores on the store under test (fake or
// Postgres), fake registry and policy services, a scripted pre-provisioning hook, a fake
// clock and an in-memory issuing CA.
#pragma once

#include <fstream>
#include <mutex>

#include "common/testing/fake_clock.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/ca/ca_test_util.h"
#include "services/ca/certificate_core.h"
#include "services/ca/fake_peers.h"
#include "services/ca/provisioning_core.h"
#include "services/ca/resolver.h"
#include "services/ca/store_under_test.h"

namespace fleetcore::ca {

// The pre-provisioning hook: answers with `next` and records requests.
class ScriptedHook final : public http::HttpClient {
 public:
  absl::StatusOr<http::Response> Send(const http::Request& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(request);
    return next_;
  }
  void Answer(int status, std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    next_ = http::Response{.status = status, .body = std::move(body)};
  }
  void Fail(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    next_ = std::move(s);
  }
  std::vector<http::Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  absl::StatusOr<http::Response> next_ = absl::UnavailableError("no hook answer scripted");
  std::vector<http::Request> requests_;
};

class CaFixture : public ::testing::Test {
 protected:
  CaFixture()
      : sut_(MakeStoreUnderTest()),
        arns_("us-east-1", "123456789012"),
        issuing_(testing::MakeIssuingCa(clock_.Now())),
        certificates_(sut_->store(), issuing_.get(), &peers_, &arns_, &clock_, nullptr),
        provisioning_(sut_->store(), &certificates_, &peers_, &hook_, &arns_, &clock_),
        resolver_(sut_->store(), &certificates_, &provisioning_, &peers_, &clock_) {}

  CaStore* store() { return sut_->store(); }
  std::string Arn(const std::string& id) { return arns_.Cert(id); }
  // A registered, ACTIVE customer CA (proof of possession done as an operator would).
  CaCertificateRecord RegisterCa(const testing::TestAuthority& ca, bool auto_registration,
                                 std::optional<RegistrationConfig> config = std::nullopt) {
    absl::StatusOr<std::string> code = certificates_.GetRegistrationCode();
    EXPECT_OK(code.status());
    absl::StatusOr<CaCertificateRecord> r = certificates_.RegisterCaCertificate(
        ca.cert.Pem(), ca.Verification(*code, clock_.Now()).Pem(), true, auto_registration,
        std::move(config), CertMode::kDefault);
    EXPECT_OK(r.status());
    return r.ok() ? *r : CaCertificateRecord{};
  }
  absl::StatusOr<PeerAnswer> Resolve(const tls::Certificate& leaf) {
    return resolver_.Resolve({leaf.Der()});
  }
  // `openssl crl -text` of a DER CRL.
  std::string CrlText(const std::string& der) {
    const std::string path =
        ::testing::TempDir() + "/crl-" + std::to_string(getpid()) + "-" + std::to_string(n_++);
    std::ofstream(path, std::ios::binary) << der;
    absl::StatusOr<fleetcore::testing::RunResult> r = fleetcore::testing::Run(
        {"/usr/bin/openssl", "crl", "-inform", "DER", "-in", path, "-noout", "-text"});
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->err : r.status().ToString());
    return r.ok() ? r->out : "";
  }

  std::unique_ptr<StoreUnderTest> sut_;
  fleetcore::testing::FakeClock clock_;
  aws::Arns arns_;
  std::unique_ptr<IssuingCa> issuing_;
  FakePeers peers_;
  ScriptedHook hook_;
  CertificateCore certificates_;
  ProvisioningCore provisioning_;
  PeerResolver resolver_;
  int n_ = 0;
};

}  // namespace fleetcore::ca
