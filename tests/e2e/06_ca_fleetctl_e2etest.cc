// The CA service with the registry and the policy service, driven with fleetctl and openssl
// as an operator would: issue, revoke and check the CRL with `openssl crl`, register an
// own CA with proof of possession, JITP through ResolvePeer, provisioning one device and
// many, and a template that fails half way.
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "common/testing/http.h"
#include "common/testing/pki.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/test_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/e2e_util.h"

namespace fleetcore::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

constexpr char kToken[] = "e2e-admin-token";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int Mode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

testing::RunResult Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  absl::StatusOr<testing::RunResult> r = testing::Run(args);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : testing::RunResult{};
}

class CaFleetctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ca-e2e-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    const testing::EnvOverrides env = {{"FLEETCORE_ADMIN_TOKEN", kToken}};
    ASSERT_OK_AND_ASSIGN(registry_, StartService("services/registry/fleetcore-registry",
                                                 {"--db-url=" + db_->url()}, env));
    ASSERT_OK_AND_ASSIGN(
        policy_,
        StartService("services/policy/fleetcore-policy",
                     {"--db-url=" + db_->url(), "--registry-endpoint=" + registry_.endpoint}, env));
    ASSERT_OK_AND_ASSIGN(
        ca_, StartService("services/ca/fleetcore-ca",
                          {"--db-url=" + db_->url(), "--ca-dir=" + dir_ + "/ca",
                           "--crl-listen=127.0.0.1:0", "--registry-endpoint=" + registry_.endpoint,
                           "--policy-endpoint=" + policy_.endpoint},
                          env));
    ASSERT_OK_AND_ASSIGN(std::string line, ca_.process->WaitForLine([](absl::string_view l) {
      return absl::StrContains(l, "serving the CRL");
    }));
    crl_port_ = json::parse(line)["crl_port"].get<int>();
  }

  Fleetctl ctl() const {
    return Fleetctl(kToken, {{"FLEETCORE_REGISTRY_ENDPOINT", registry_.endpoint},
                             {"FLEETCORE_POLICY_ENDPOINT", policy_.endpoint},
                             {"FLEETCORE_CA_ENDPOINT", ca_.endpoint}});
  }
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }

  std::string dir_;
  std::unique_ptr<testing::TestDatabase> db_;
  RunningService registry_, policy_, ca_;
  int crl_port_ = 0;
};

TEST_F(CaFleetctlTest, IssueRevokeAndTheCrl) {
  json issued =
      ctl().Json({"create-keys-and-certificate", "--set-as-active", "--certificate-pem-outfile",
                  dir_ + "/device.pem.crt", "--public-key-outfile", dir_ + "/device.public.key",
                  "--private-key-outfile", dir_ + "/device.private.key"});
  const std::string id = issued["certificateId"];
  EXPECT_EQ(issued["certificateArn"], "arn:aws:iot:us-east-1:000000000000:cert/" + id);
  EXPECT_THAT(issued.dump(), Not(HasSubstr("BEGIN PRIVATE KEY")));  // written, not printed
  EXPECT_EQ(Mode(dir_ + "/device.private.key"), 0600);
  EXPECT_THAT(ReadFile(dir_ + "/device.private.key"), HasSubstr("BEGIN PRIVATE KEY"));
  // A second run does not overwrite the key, and asks the service for nothing.
  testing::RunResult again = ctl().Run(
      {"create-keys-and-certificate", "--private-key-outfile", dir_ + "/device.private.key"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("never overwritten"));

  // The certificate chains to the issuing CA, for openssl as for a device.
  json ca = ctl().Json({"get-issuing-ca-certificate"});
  const std::string ca_file = Write("issuing-ca.pem", ca["certificatePem"]);
  EXPECT_EQ(testing::HttpGet(crl_port_, "/ca.pem"), ca["certificatePem"].get<std::string>());
  testing::RunResult verify = Openssl({"verify", "-CAfile", ca_file, dir_ + "/device.pem.crt"});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  json described = ctl().Json({"describe-certificate", "--certificate-id", id});
  EXPECT_EQ(described["certificateDescription"]["status"], "ACTIVE");

  // A CSR made by openssl: the key never leaves this folder.
  Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
           "/CN=sensor-7", "-keyout", dir_ + "/csr.key", "-out", dir_ + "/sensor.csr"});
  json from_csr = ctl().Json({"create-certificate-from-csr", "--certificate-signing-request",
                              "file://" + dir_ + "/sensor.csr"});
  EXPECT_THAT(from_csr["certificatePem"].get<std::string>(), HasSubstr("BEGIN CERTIFICATE"));

  // Revoked: the CRL, over HTTP and over gRPC, lists it; openssl verifies the CRL.
  ctl().Json({"update-certificate", "--certificate-id", id, "--new-status", "REVOKED"});
  const std::string crl_pem = testing::HttpGet(crl_port_, "/crl.pem");
  const std::string crl_file = Write("crl.pem", crl_pem);
  testing::RunResult crl = Openssl({"crl", "-in", crl_file, "-CAfile", ca_file, "-noout", "-text"});
  EXPECT_EQ(crl.exit_code, 0) << crl.err;
  EXPECT_THAT(crl.out + crl.err, HasSubstr("verify OK"));
  testing::RunResult serial =
      Openssl({"x509", "-noout", "-serial", "-in", dir_ + "/device.pem.crt"});
  const std::string hex = serial.out.substr(serial.out.find('=') + 1, serial.out.size() - 8);
  EXPECT_THAT(crl.out, HasSubstr("Serial Number: " + hex.substr(0, hex.find('\n'))));
  json grpc_crl = ctl().Json({"get-crl"});
  EXPECT_EQ(grpc_crl["crlPem"], crl_pem);
  // openssl refuses the revoked certificate once it checks the CRL.
  testing::RunResult refused = Openssl(
      {"verify", "-crl_check", "-CAfile", ca_file, "-CRLfile", crl_file, dir_ + "/device.pem.crt"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.out + refused.err, HasSubstr("revoked"));

  ctl().ExpectFailure({"update-certificate", "--certificate-id", id, "--new-status", "ACTIVE"},
                      "FAILED_PRECONDITION", "REVOKED");
  ctl().ExpectFailure({"delete-certificate", "--certificate-id", std::string(64, 'f')}, "NOT_FOUND",
                      "does not exist");
  ctl().ExpectFailure({"describe-certificate", "--certificate-id", "xyz"}, "INVALID_ARGUMENT",
                      "64 hexadecimal");
  const std::string metrics = testing::HttpGet(ca_.metrics_port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr(R"(fleetcore_ca_certificates_issued_total{how="keys"} 1)"));
  EXPECT_THAT(metrics, HasSubstr("fleetcore_ca_certificates_revoked_total 1"));
}

TEST_F(CaFleetctlTest, OwnCaWithJitp) {
  ASSERT_OK_AND_ASSIGN(testing::TestPki pki,
                       testing::TestPki::Create("jitp-" + std::to_string(getpid())));
  json code = ctl().Json({"get-registration-code"});
  ASSERT_OK(pki.Issue(code["registrationCode"]));
  const std::string tmpl = R"({
    "Parameters": {"AWS::IoT::Certificate::CommonName": {"Type": "String"},
                   "AWS::IoT::Certificate::Id": {"Type": "String"}},
    "Resources": {
      "thing": {"Type": "AWS::IoT::Thing", "Properties": {
        "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
        "AttributePayload": {"onboarded": "jitp"}}},
      "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
        "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
      "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument":
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}"}}
    }})";
  json registered =
      ctl().Json({"register-ca-certificate", "--ca-certificate", "file://" + pki.ca_cert(),
                  "--verification-certificate", "file://" + pki.cert(code["registrationCode"]),
                  "--set-as-active", "--allow-auto-registration", "--registration-config",
                  json({{"templateBody", tmpl}}).dump()});
  const std::string ca_id = registered["certificateId"];
  json ca = ctl().Json({"describe-ca-certificate", "--certificate-id", ca_id});
  EXPECT_EQ(ca["certificateDescription"]["autoRegistrationStatus"], "ENABLE");

  // The device's first connection: the gateway asks ResolvePeer with its chain.
  ASSERT_OK(pki.Issue("bulb-1"));
  Openssl({"x509", "-in", pki.cert("bulb-1"), "-outform", "DER", "-out", dir_ + "/bulb.der"});
  const std::string der_b64 = absl::Base64Escape(ReadFile(dir_ + "/bulb.der"));
  json resolved = ctl().Json({"resolve-peer", "--chain-der", json::array({der_b64}).dump()});
  EXPECT_EQ(resolved["result"], "ALLOWED") << resolved.dump();
  ASSERT_EQ(resolved["things"].size(), 1u);
  EXPECT_EQ(resolved["things"][0]["thingName"], "bulb-1");
  json thing = ctl().Json({"describe-thing", "--thing-name", "bulb-1"});
  EXPECT_EQ(thing["attributes"]["onboarded"], "jitp");
  json policies = ctl().Json({"list-attached-policies", "--target", resolved["certificateArn"]});
  EXPECT_EQ(policies["policies"].size(), 1u);
  json by_ca = ctl().Json({"list-certificates-by-ca", "--ca-certificate-id", ca_id});
  EXPECT_EQ(by_ca["certificates"].size(), 1u);

  // Revoked: the next connection is refused.
  ctl().Json({"update-certificate", "--certificate-id", resolved["certificateId"], "--new-status",
              "REVOKED"});
  json refused = ctl().Json({"resolve-peer", "--chain-der", json::array({der_b64}).dump()});
  EXPECT_EQ(refused["result"], "CERTIFICATE_REVOKED");

  ctl().ExpectFailure({"delete-ca-certificate", "--certificate-id", ca_id}, "FAILED_PRECONDITION",
                      "ACTIVE");
  const std::string metrics = testing::HttpGet(ca_.metrics_port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr(R"(fleetcore_ca_certificates_registered_total{how="jitp"} 1)"));
  EXPECT_THAT(
      metrics,
      HasSubstr(
          R"(fleetcore_ca_resolve_peer_total{cached="false",result="certificate_revoked"} 1)"));
}

TEST_F(CaFleetctlTest, ProvisioningOneAndManyAndAFailureHalfWay) {
  ctl().Json({"create-thing-group", "--thing-group-name", "sensors"});
  const std::string tmpl = R"({
    "Parameters": {"SerialNumber": {"Type": "String"},
                   "AWS::IoT::Certificate::Id": {"Type": "String"}},
    "Resources": {
      "thing": {"Type": "AWS::IoT::Thing", "Properties": {
        "ThingName": {"Fn::Join": ["", ["sensor-", {"Ref": "SerialNumber"}]]},
        "ThingGroups": ["sensors"]}},
      "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
        "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}
    },
    "DeviceConfiguration": {"Endpoint": "iot.example.com"}})";
  ctl().Json({"create-provisioning-template", "--template-name", "sensors", "--template-body", tmpl,
              "--enabled", "--provisioning-role-arn", "arn:aws:iam::0:role/unused"});
  json one = ctl().Json({"provision-device", "--template-name", "sensors", "--parameters",
                         R"({"SerialNumber": "0"})"});
  EXPECT_EQ(one["thingName"], "sensor-0");
  EXPECT_EQ(one["deviceConfiguration"]["Endpoint"], "iot.example.com");

  testing::RunResult bulk =
      ctl().Run({"provision-bulk", "--template-name", "sensors", "--count", "3", "--out-dir",
                 dir_ + "/devices", "--parameters", R"({"SerialNumber": "{i}"})"});
  ASSERT_EQ(bulk.exit_code, 0) << bulk.err;
  EXPECT_EQ(json::parse(bulk.out)["provisioned"], 3);
  for (const char* name : {"sensor-1", "sensor-2", "sensor-3"}) {
    EXPECT_EQ(Mode(dir_ + "/devices/" + name + "/private.pem.key"), 0600) << name;
    EXPECT_THAT(ReadFile(dir_ + "/devices/" + name + "/certificate.pem.crt"),
                HasSubstr("BEGIN CERTIFICATE"));
  }
  json members = ctl().Json({"list-things-in-thing-group", "--thing-group-name", "sensors"});
  EXPECT_EQ(members["things"].size(), 4u);
  const size_t certificates = ctl().Json({"list-certificates"})["certificates"].size();
  EXPECT_EQ(certificates, 4u);

  // A template naming a group that does not exist fails after creating the thing: nothing
  // stays behind (no thing, no certificate).
  ctl().Json({"create-provisioning-template-version", "--template-name", "sensors",
              "--set-as-default", "--template-body",
              absl::StrReplaceAll(tmpl, {{"[\"sensors\"]", "[\"sensors\", \"nowhere\"]"}})});
  ctl().ExpectFailure({"provision-device", "--template-name", "sensors", "--parameters",
                       R"({"SerialNumber": "9"})"},
                      "NOT_FOUND", "nowhere");
  ctl().ExpectFailure({"describe-thing", "--thing-name", "sensor-9"}, "NOT_FOUND", "");
  EXPECT_EQ(ctl().Json({"list-certificates"})["certificates"].size(), certificates);
  const std::string metrics = testing::HttpGet(ca_.metrics_port, "/metrics");
  EXPECT_THAT(
      metrics,
      HasSubstr(R"(fleetcore_ca_provisioning_total{result="success",template="sensors"} 4)"));
  EXPECT_THAT(
      metrics,
      HasSubstr(R"(fleetcore_ca_provisioning_total{result="rejected",template="sensors"} 1)"));

  // With the real registry: a dynamic group the thing matches is none of the template's
  // ThingGroups to replace, and a new thing starts in the template's BillingGroup.
  ctl().Json({"create-dynamic-thing-group", "--thing-group-name", "every-sensor", "--query-string",
              "thingName:sensor-*"});
  ctl().Json({"create-billing-group", "--billing-group-name", "lab"});
  ctl().Json({"create-provisioning-template-version", "--template-name", "sensors",
              "--set-as-default", "--template-body",
              absl::StrReplaceAll(tmpl, {{R"("ThingGroups": ["sensors"]}})",
                                          R"("ThingGroups": ["sensors"], "BillingGroup": "lab"},
                                             "OverrideSettings": {"ThingGroups": "REPLACE"}})"}})});
  ctl().Json({"provision-device", "--template-name", "sensors", "--parameters",
              R"({"SerialNumber": "0"})"});
  json groups = ctl().Json({"list-thing-groups-for-thing", "--thing-name", "sensor-0"});
  ASSERT_EQ(groups["thingGroups"].size(), 2u) << groups.dump();
  EXPECT_EQ(groups["thingGroups"][0]["groupName"], "every-sensor");
  EXPECT_EQ(
      ctl().Json({"describe-thing", "--thing-name", "sensor-0"}).value("billingGroupName", ""),
      "");  // an existing thing keeps its own
  ctl().Json({"provision-device", "--template-name", "sensors", "--parameters",
              R"({"SerialNumber": "5"})"});
  EXPECT_EQ(ctl().Json({"describe-thing", "--thing-name", "sensor-5"})["billingGroupName"], "lab");
}

TEST(CaStartupTest, RefusesAKeyOthersCanRead) {
  const std::string dir = ::testing::TempDir() + "/ca-startup-" + std::to_string(getpid());
  ASSERT_EQ(system(("rm -rf " + dir + " && mkdir -p " + dir + "/ca").c_str()), 0);
  testing::RunResult made = Openssl(
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
       "2", "-subj", "/CN=x", "-keyout", dir + "/ca/ca.key", "-out", dir + "/ca/ca.pem"});
  ASSERT_EQ(made.exit_code, 0);
  ASSERT_EQ(chmod((dir + "/ca/ca.key").c_str(), 0644), 0);
  ASSERT_OK_AND_ASSIGN(auto db, testing::TestDatabase::Create());
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult r,
      testing::Run({testing::BuildPath("services/ca/fleetcore-ca"), "--db-url=" + db->url(),
                    "--ca-dir=" + dir + "/ca", "--listen=127.0.0.1:0",
                    "--metrics-listen=", "--crl-listen="}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("chmod 600"));
}

}  // namespace
}  // namespace fleetcore::e2e
