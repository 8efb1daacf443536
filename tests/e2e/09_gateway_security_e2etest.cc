// The gateway's security end to end: the registry, policy and CA services and the gateway
// on one Postgres. A device gets its certificate from create-keys-and-certificate, a thing
// and a policy with ${iot:Connection.Thing.ThingName}, and connects with mosquitto_pub as
// AWS's tutorials do, then with raw MQTT 5 and 3.1.1 packets to see each decision: its own
// client id only, publish but not to an explicitly denied topic, subscribe under its
// thing only, receive only what the policy allows; no certificate and a certificate of an
// unknown CA are refused.
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/testing/http.h"
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
using json = nlohmann::json;

constexpr char kToken[] = "e2e-admin-token";

constexpr char kDevicePolicy[] = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:us-east-1:000000000000:client/${iot:Connection.Thing.ThingName}"},
    {"Effect": "Allow", "Action": "iot:Publish",
     "Resource": "arn:aws:iot:us-east-1:000000000000:topic/things/${iot:Connection.Thing.ThingName}/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": "arn:aws:iot:us-east-1:000000000000:topicfilter/things/${iot:Connection.Thing.ThingName}/*"},
    {"Effect": "Allow", "Action": "iot:Receive",
     "Resource": "arn:aws:iot:us-east-1:000000000000:topic/things/${iot:Connection.Thing.ThingName}/cmd"},
    {"Effect": "Deny", "Action": "iot:Publish",
     "Resource": "arn:aws:iot:us-east-1:000000000000:topic/things/${iot:Connection.Thing.ThingName}/secret"}
  ]
})";

class GatewaySecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "gw-security-" + std::to_string(getpid());
    ASSERT_EQ(system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    ASSERT_OK_AND_ASSIGN(testing::RunResult made,
                         testing::Run({SourcePath("tools/dev/endpoint-cert.sh"), dir_ + "/ep"}));
    ASSERT_EQ(made.exit_code, 0) << made.err;
    ASSERT_OK_AND_ASSIGN(db_, testing::TestDatabase::Create());
    const testing::EnvOverrides env = {{"FLEETCORE_ADMIN_TOKEN", kToken}};
    ASSERT_OK_AND_ASSIGN(registry_, StartService("services/registry/fleetcore-registry",
                                                 {"--db-url=" + db_->url()}, env));
    ASSERT_OK_AND_ASSIGN(
        policy_,
        StartService("services/policy/fleetcore-policy",
                     {"--db-url=" + db_->url(), "--registry-endpoint=" + registry_.endpoint,
                      // Every authorizer refresh reaches the function (see the refresh test).
                      "--authorizer-cache-size=0",
                      "--access-key-sealing-key-file=" + dir_ + "/sealing.key"},
                     env));
    ASSERT_OK_AND_ASSIGN(
        ca_, StartService("services/ca/fleetcore-ca",
                          {"--db-url=" + db_->url(), "--ca-dir=" + dir_ + "/ca",
                           "--crl-listen=", "--registry-endpoint=" + registry_.endpoint,
                           "--policy-endpoint=" + policy_.endpoint},
                          env));
    // The shadow service is started by the tests that use it, on this port.
    shadow_port_ = FreePort();
    ASSERT_OK_AND_ASSIGN(
        gateway_,
        StartService("services/gateway/fleetcore-gateway",
                     {"--db-url=" + db_->url(), "--mqtts-listen=127.0.0.1:0",
                      "--https-listen=127.0.0.1:0",
                      "--endpoint-cert-file=" + dir_ + "/ep/endpoint.pem",
                      "--endpoint-key-file=" + dir_ + "/ep/endpoint.key",
                      "--ca-endpoint=" + ca_.endpoint, "--policy-endpoint=" + policy_.endpoint,
                      absl::StrCat("--shadow-endpoint=127.0.0.1:", shadow_port_),
                      "--authorizer-refresh-max=1s"},
                     env));
  }

  Fleetctl Ctl() const {
    return Fleetctl(kToken, {{"FLEETCORE_REGISTRY_ENDPOINT", registry_.endpoint},
                             {"FLEETCORE_POLICY_ENDPOINT", policy_.endpoint},
                             {"FLEETCORE_CA_ENDPOINT", ca_.endpoint},
                             {"FLEETCORE_GATEWAY_ENDPOINT", gateway_.endpoint},
                             {"FLEETCORE_SHADOW_ENDPOINT", absl::StrCat("127.0.0.1:", shadow_port_)}});
  }

  // A device certificate and key from the CA, attached to a thing with the device policy.
  void ProvisionDevice(const std::string& thing) {
    json cert = Ctl().Json({"create-keys-and-certificate", "--set-as-active",
                            "--certificate-pem-outfile", dir_ + "/" + thing + ".pem",
                            "--private-key-outfile", dir_ + "/" + thing + ".key"});
    ASSERT_TRUE(cert.contains("certificateArn")) << cert.dump();
    Ctl().Json({"create-thing", "--thing-name", thing});
    Ctl().Json({"attach-thing-principal", "--thing-name", thing, "--principal",
                cert["certificateArn"]});
    std::ofstream(dir_ + "/policy.json") << kDevicePolicy;
    Ctl().Run({"create-policy", "--policy-name", "device", "--policy-document",
               "file://" + dir_ + "/policy.json"});
    Ctl().Json({"attach-policy", "--policy-name", "device", "--target", cert["certificateArn"]});
  }

  // The AWS IoT Device SDK v2 for JavaScript, from tests/node's package-lock.json.
  static ::testing::AssertionResult DeviceSdkInstalled() {
    if (access(SourcePath("tests/node/node_modules/aws-iot-device-sdk-v2/package.json").c_str(),
               R_OK) == 0) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "the AWS IoT Device SDK is not installed in tests/node; ./fleetcore test runs npm ci";
  }

  // Runs `script` with bash in the test's folder; its output, without the trailing newline.
  std::string Sh(const std::string& script) const {
    absl::StatusOr<testing::RunResult> r =
        testing::Run({"/bin/bash", "-c", "cd " + dir_ + " && " + script});
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << script << (r.ok() ? r->err : "");
    return r.ok() ? std::string(absl::StripTrailingAsciiWhitespace(r->out)) : "";
  }

  // The command line of paho_scenarios.py `name` on the gateway's TLS port with `topic`
  // (a thing's name for the device scenarios), then `extra`.
  std::vector<std::string> ScenarioArgv(const std::string& name, const std::string& topic,
                                        std::vector<std::string> extra) const {
    std::vector<std::string> argv{
        "/usr/bin/python3", SourcePath("tests/e2e/clients/paho_scenarios.py"), name, "--port",
        "1", "--tls-port", std::to_string(gateway_.ports.at("mqtts_port")), "--cafile",
        dir_ + "/ep/ca.pem", "--topic", topic};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  // paho_scenarios.py secure_policy_change as `thing` (its certificate in dir_), once it is
  // connected and has published: it publishes again when dir_/go appears, until refused.
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> StartPublishingDevice(
      const std::string& thing) {
    auto device = testing::Subprocess::Start(
        ScenarioArgv("secure_policy_change", thing,
                     {"--cert", dir_ + "/" + thing + ".pem", "--key", dir_ + "/" + thing + ".key",
                      "--out-dir", dir_}));
    if (!device.ok()) return device.status();
    absl::StatusOr<std::string> ready =
        (*device)->WaitForLine([](absl::string_view l) { return l == "ready"; });
    if (!ready.ok()) return ready.status();
    return device;
  }

  testing::RunResult Scenario(const std::string& name, const std::string& thing,
                              const std::string& cert, const std::string& key) {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        ScenarioArgv(name, thing, {"--cert", cert, "--key", key}), {}, absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::RunResult{};
  }

  // The operator's side of provisioning by claim: the device policy, a template "sensors"
  // that makes a thing "sensor-<serial>" with an ACTIVE certificate and that policy, and a
  // claim certificate (claim.pem, claim.key) allowed to use only the provisioning topics.
  void SetUpProvisioningByClaim() {
    std::ofstream(dir_ + "/policy.json") << kDevicePolicy;
    Ctl().Run({"create-policy", "--policy-name", "device", "--policy-document",
               "file://" + dir_ + "/policy.json"});
    const std::string tmpl = R"({
      "Parameters": {"SerialNumber": {"Type": "String"},
                     "AWS::IoT::Certificate::Id": {"Type": "String"}},
      "Resources": {
        "thing": {"Type": "AWS::IoT::Thing", "Properties": {
          "ThingName": {"Fn::Join": ["", ["sensor-", {"Ref": "SerialNumber"}]]}}},
        "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
          "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
        "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "device"}}
      }})";
    Ctl().Json({"create-provisioning-template", "--template-name", "sensors", "--template-body",
                tmpl, "--enabled", "--provisioning-role-arn", "arn:aws:iam::0:role/unused"});
    std::ofstream(dir_ + "/claim-policy.json") << R"({
      "Version": "2012-10-17",
      "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
          "arn:aws:iot:us-east-1:000000000000:topic/$aws/certificates/create/*",
          "arn:aws:iot:us-east-1:000000000000:topic/$aws/certificates/create-from-csr/*",
          "arn:aws:iot:us-east-1:000000000000:topic/$aws/provisioning-templates/sensors/provision/*"]},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
          "arn:aws:iot:us-east-1:000000000000:topicfilter/$aws/certificates/create/*",
          "arn:aws:iot:us-east-1:000000000000:topicfilter/$aws/certificates/create-from-csr/*",
          "arn:aws:iot:us-east-1:000000000000:topicfilter/$aws/provisioning-templates/sensors/provision/*"]}
      ]})";
    Ctl().Run({"create-policy", "--policy-name", "claim", "--policy-document",
               "file://" + dir_ + "/claim-policy.json"});
    json claim = Ctl().Json({"create-keys-and-certificate", "--set-as-active",
                             "--certificate-pem-outfile", dir_ + "/claim.pem",
                             "--private-key-outfile", dir_ + "/claim.key"});
    Ctl().Json({"attach-policy", "--policy-name", "claim", "--target", claim["certificateArn"]});
  }

  std::string dir_;
  int shadow_port_ = 0;
  std::unique_ptr<testing::TestDatabase> db_;
  RunningService registry_, policy_, ca_, gateway_;
};

TEST_F(GatewaySecurityTest, DevicePolicyDecidesEveryAction) {
  ProvisionDevice("lamp-1");
  // As AWS's tutorials write it.
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult pub,
      testing::Run({"/usr/bin/mosquitto_pub", "-h", "localhost", "-p",
                    std::to_string(gateway_.ports.at("mqtts_port")), "--cafile",
                    dir_ + "/ep/ca.pem", "--cert", dir_ + "/lamp-1.pem", "--key",
                    dir_ + "/lamp-1.key", "-i", "lamp-1", "-t", "things/lamp-1/telemetry", "-m",
                    R"({"t":21})", "-q", "1", "-V", "mqttv5"}));
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
  testing::RunResult r =
      Scenario("secure_device", "lamp-1", dir_ + "/lamp-1.pem", dir_ + "/lamp-1.key");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok secure_device"));
  // Every refusal was counted by action.
  const std::string metrics = testing::HttpGet(gateway_.metrics_port, "/metrics");
  for (const char* family :
       {"fleetcore_gateway_authorization_denied_total{action=\"iot:Connect\"}",
        "fleetcore_gateway_authorization_denied_total{action=\"iot:Publish\"}",
        "fleetcore_gateway_authorization_denied_total{action=\"iot:Subscribe\"}",
        // Handshakes and what the CONNECTs found kept.
        "fleetcore_gateway_tls_handshakes_total{listener=\"mqtts\",result=\"full\"}",
        "fleetcore_gateway_identity_cache_lookups_total{cache=\"certificate\",result=\"miss\"}",
        "fleetcore_gateway_identity_cache_lookups_total{cache=\"policies\",result=\"miss\"}"}) {
    EXPECT_THAT(metrics, HasSubstr(family));
  }
}

TEST_F(GatewaySecurityTest, MqttAndHttpsShareThePortByAlpnAsAws443) {
  ProvisionDevice("lamp-3");
  // MQTT over TLS on the HTTPS listener, chosen by ALPN as AWS's port 443 does.
  const std::string https_port = std::to_string(gateway_.ports.at("https_port"));
  std::unique_ptr<testing::Subprocess> sub =
      StartSubscriber(Ctl(),
                      {"-h", "localhost", "-p", https_port, "--tls-alpn", "x-amzn-mqtt-ca",
                       "--cafile", dir_ + "/ep/ca.pem", "--cert", dir_ + "/lamp-3.pem", "--key",
                       dir_ + "/lamp-3.key", "-t", "things/lamp-3/#", "-v", "-C", "1", "-W", "20"},
                      "lamp-3");
  ASSERT_NE(sub, nullptr);
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult pub,
      testing::Run({"/usr/bin/mosquitto_pub", "-h", "localhost", "-p", https_port,
                    "--tls-alpn", "x-amzn-mqtt-ca", "--cafile", dir_ + "/ep/ca.pem", "--cert",
                    dir_ + "/lamp-3.pem", "--key", dir_ + "/lamp-3.key", "-i", "lamp-3-pub",
                    "-t", "things/lamp-3/telemetry", "-m", "over-443", "-q", "1"}));
  // lamp-3-pub is not the thing's client id: the policy refuses it, at CONNECT, over MQTT.
  EXPECT_NE(pub.exit_code, 0);
  EXPECT_THAT(pub.err, HasSubstr("not authorised"));
  // The same port still answers HTTPS (without a client id there is no thing name for the
  // policy's variables, so AWS and fleetcore refuse this publish: an HTTP answer all the same).
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult curl,
      testing::Run({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                    dir_ + "/ep/ca.pem", "--cert", dir_ + "/lamp-3.pem", "--key",
                    dir_ + "/lamp-3.key", "--data-binary", "over-https",
                    "https://localhost:" + https_port + "/topics/things/lamp-3/telemetry?qos=1"}));
  EXPECT_EQ(curl.out, "403");
  // So does a client that asks for HTTP by ALPN x-amzn-http-ca, as the SDKs' HTTP clients
  // do on AWS's 443: the protocol is agreed and the request is HTTP's.
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult alpn,
      testing::Run({"/usr/bin/python3", "-c", R"(
import socket, ssl, sys
port, ca, cert, key = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["x-amzn-http-ca"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="localhost")
s.sendall(b"POST /topics/things/lamp-3/telemetry?qos=1 HTTP/1.1\r\nHost: localhost\r\n"
          b"Content-Length: 3\r\nConnection: close\r\n\r\nabc")
print(s.selected_alpn_protocol(), s.recv(4096).split(b"\r\n")[0].decode())
)",
                    https_port, dir_ + "/ep/ca.pem", dir_ + "/lamp-3.pem",
                    dir_ + "/lamp-3.key"}));
  EXPECT_EQ(alpn.out, "x-amzn-http-ca HTTP/1.1 403 Forbidden\n") << alpn.err;
  // The MQTT subscriber on that port gets what the cloud sends it.
  Ctl().Json({"publish", "--topic", "things/lamp-3/cmd", "--payload", "over-443", "--qos", "1"});
  ASSERT_OK_AND_ASSIGN(int code, sub->Wait(absl::Seconds(30)));
  EXPECT_EQ(code, 0) << sub->output();
  EXPECT_THAT(sub->output(), HasSubstr("things/lamp-3/cmd over-443"));
  // ALPN "mqtt" (AWS's for custom authentication) is MQTT too; the certificate decides.
  ASSERT_OK_AND_ASSIGN(
      pub, testing::Run({"/usr/bin/mosquitto_pub", "-h", "localhost", "-p", https_port,
                         "--tls-alpn", "mqtt", "--cafile", dir_ + "/ep/ca.pem", "--cert",
                         dir_ + "/lamp-3.pem", "--key", dir_ + "/lamp-3.key", "-i", "lamp-3",
                         "-t", "things/lamp-3/telemetry", "-m", "over-443", "-q", "1"}));
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
}

TEST_F(GatewaySecurityTest, JitrRegistersThenTheOperatorActivatesThenTheDeviceConnects) {
  // AWS's JITR: a CA of the operator's, registered with auto-registration and no template.
  const std::string code = Ctl().Json({"get-registration-code"})["registrationCode"];
  Sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
     "-subj '/CN=JITR CA' -keyout jca.key -out jca.pem 2>/dev/null && "
     "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=" + code +
     "' -keyout jv.key -out jv.csr 2>/dev/null && "
     "openssl x509 -req -in jv.csr -CA jca.pem -CAkey jca.key -CAcreateserial -days 1 "
     "-out jv.pem 2>/dev/null && "
     "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=jitr-1' "
     "-keyout jitr-1.key -out jitr-1.csr 2>/dev/null && "
     "openssl x509 -req -in jitr-1.csr -CA jca.pem -CAkey jca.key -CAcreateserial -days 30 "
     "-out jitr-1-leaf.pem 2>/dev/null && cat jitr-1-leaf.pem jca.pem > jitr-1.pem");
  json ca = Ctl().Json({"register-ca-certificate", "--ca-certificate", "file://" + dir_ + "/jca.pem",
                        "--verification-certificate", "file://" + dir_ + "/jv.pem",
                        "--set-as-active", "--allow-auto-registration"});
  const std::string ca_id = ca["certificateId"];
  // The operator's side watches the registration events (a device of its own may).
  ProvisionDevice("ops");
  std::ofstream(dir_ + "/ops-policy.json") << R"({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive"], "Resource": "*"}]})";
  Ctl().Json({"create-policy", "--policy-name", "ops", "--policy-document",
              "file://" + dir_ + "/ops-policy.json"});
  json ops_certs = Ctl().Json({"list-certificates"});
  for (const json& c : ops_certs["certificates"]) {
    Ctl().Json({"attach-policy", "--policy-name", "ops", "--target", c["certificateArn"]});
  }
  auto watcher = StartSubscriber(
      Ctl(), {"-h", "localhost", "-p", std::to_string(gateway_.ports.at("mqtts_port")),
              "--cafile", dir_ + "/ep/ca.pem", "--cert", dir_ + "/ops.pem", "--key",
              dir_ + "/ops.key", "-t", "$aws/events/certificates/registered/" + ca_id, "-C",
              "1", "-W", "20"},
      "ops");
  ASSERT_NE(watcher, nullptr);
  auto device_publish = [&] {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        {"/usr/bin/mosquitto_pub", "-h", "localhost", "-p",
         std::to_string(gateway_.ports.at("mqtts_port")), "--cafile", dir_ + "/ep/ca.pem",
         "--cert", dir_ + "/jitr-1.pem", "--key", dir_ + "/jitr-1.key", "-i", "jitr-1", "-t",
         "things/jitr-1/hello", "-m", "hi", "-q", "1"});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::RunResult{};
  };
  // First connection: refused, the certificate registered PENDING_ACTIVATION, the event out.
  testing::RunResult first = device_publish();
  EXPECT_NE(first.exit_code, 0);
  ASSERT_OK_AND_ASSIGN(int code_w, watcher->Wait(absl::Seconds(30)));
  EXPECT_EQ(code_w, 0) << watcher->output();
  json event = json::parse(watcher->output(), nullptr, false);
  ASSERT_TRUE(event.is_object()) << watcher->output();
  EXPECT_EQ(event["caCertificateId"], ca_id);
  EXPECT_EQ(event["certificateStatus"], "PENDING_ACTIVATION");
  const std::string cert_id = event["certificateId"];
  // The operator (the rule or function of AWS's tutorial) activates it and gives it a thing
  // and a policy; the device's next connection goes through.
  Ctl().Json({"update-certificate", "--certificate-id", cert_id, "--new-status", "ACTIVE"});
  json described = Ctl().Json({"describe-certificate", "--certificate-id", cert_id});
  const std::string arn = described["certificateDescription"]["certificateArn"];
  Ctl().Json({"create-thing", "--thing-name", "jitr-1"});
  Ctl().Json({"attach-thing-principal", "--thing-name", "jitr-1", "--principal", arn});
  Ctl().Json({"attach-policy", "--policy-name", "device", "--target", arn});
  testing::RunResult second = device_publish();
  EXPECT_EQ(second.exit_code, 0) << second.err;
}

TEST_F(GatewaySecurityTest, CertificateOfAnUnknownCaIsRefused) {
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult made,
      testing::Run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=stranger",
                    "-keyout", dir_ + "/stranger.key", "-out", dir_ + "/stranger.pem"}));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  testing::RunResult r = Scenario("unknown_certificate", "x", dir_ + "/stranger.pem",
                                  dir_ + "/stranger.key");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(gateway_.process->output(), HasSubstr("UNKNOWN_CERTIFICATE"));
}

TEST_F(GatewaySecurityTest, RevokedCertificateCannotConnect) {
  ProvisionDevice("lamp-2");
  json certs = Ctl().Json({"list-certificates"});
  ASSERT_FALSE(certs["certificates"].empty());
  const std::string id = certs["certificates"][0]["certificateId"];
  Ctl().Json({"update-certificate", "--certificate-id", id, "--new-status", "REVOKED"});
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult pub,
      testing::Run({"/usr/bin/mosquitto_pub", "-h", "localhost", "-p",
                    std::to_string(gateway_.ports.at("mqtts_port")), "--cafile",
                    dir_ + "/ep/ca.pem", "--cert", dir_ + "/lamp-2.pem", "--key",
                    dir_ + "/lamp-2.key", "-i", "lamp-2", "-t", "things/lamp-2/telemetry", "-m",
                    "x", "-q", "1", "-V", "mqttv5"}));
  EXPECT_NE(pub.exit_code, 0);
  EXPECT_THAT(pub.err, HasSubstr("Not authorized"));
}

TEST_F(GatewaySecurityTest, RevokingACertificateEndsItsLiveConnection) {
  ProvisionDevice("lamp-3");
  ASSERT_OK_AND_ASSIGN(
      auto device,
      testing::Subprocess::Start(
          ScenarioArgv("secure_wait_revoked", "lamp-3",
                       {"--cert", dir_ + "/lamp-3.pem", "--key", dir_ + "/lamp-3.key"})));
  ASSERT_OK(device->WaitForLine([](absl::string_view l) { return l == "connected"; }).status());
  json certs = Ctl().Json({"list-certificates"});
  ASSERT_FALSE(certs["certificates"].empty());
  Ctl().Json({"update-certificate", "--certificate-id", certs["certificates"][0]["certificateId"],
              "--new-status", "REVOKED"});
  ASSERT_OK_AND_ASSIGN(int code, device->Wait(absl::Seconds(30)));
  EXPECT_EQ(code, 0) << device->output();
  EXPECT_THAT(gateway_.process->output(), HasSubstr("no longer active"));
}

// A reconnecting device resumes its TLS session (Python's ssl, as device SDKs do): the
// gateway still knows the certificate without seeing it again, and a revoked certificate's
// resumed session is refused as a full handshake would be.
TEST_F(GatewaySecurityTest, AResumedTlsSessionIsStillItsCertificate) {
  ProvisionDevice("lamp-4");
  ASSERT_OK_AND_ASSIGN(
      auto device,
      testing::Subprocess::Start(ScenarioArgv(
          "secure_resume", "lamp-4",
          {"--cert", dir_ + "/lamp-4.pem", "--key", dir_ + "/lamp-4.key", "--out-dir", dir_})));
  ASSERT_OK(device->WaitForLine([](absl::string_view l) { return l == "resumed"; }).status());
  json certs = Ctl().Json({"list-certificates"});
  ASSERT_EQ(certs["certificates"].size(), 1u);
  Ctl().Json({"update-certificate", "--certificate-id", certs["certificates"][0]["certificateId"],
              "--new-status", "REVOKED"});
  std::ofstream(dir_ + "/revoked") << "yes";
  ASSERT_OK_AND_ASSIGN(int code, device->Wait(absl::Seconds(40)));
  EXPECT_EQ(code, 0) << device->output();
  const std::string metrics = testing::HttpGet(gateway_.metrics_port, "/metrics");
  EXPECT_THAT(metrics,
              HasSubstr(R"(fleetcore_gateway_tls_handshakes_total{listener="mqtts",result="resumed"})"));
}

TEST_F(GatewaySecurityTest, FleetProvisioningByClaimOverMqtt) {
  SetUpProvisioningByClaim();
  absl::StatusOr<testing::RunResult> r = testing::Run(
      ScenarioArgv("fleet_provision", "sensors",
                   {"--cert", dir_ + "/claim.pem", "--key", dir_ + "/claim.key", "--out-dir", dir_}),
      {}, absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
  EXPECT_THAT(r->out, HasSubstr("ok fleet_provision"));
  json thing = Ctl().Json({"describe-thing", "--thing-name", "sensor-77"});
  EXPECT_EQ(thing["thingName"], "sensor-77");
}

TEST_F(GatewaySecurityTest, FleetProvisioningByClaimWithTheAwsIotDeviceSdkV2) {
  ASSERT_TRUE(DeviceSdkInstalled());
  SetUpProvisioningByClaim();
  // A new key from fleetcore ($aws/certificates/create/json), then a key the device made
  // itself and a CSR ($aws/certificates/create-from-csr/json), then a new key again through
  // the SDK's request-response identity client.
  for (const auto& [mode, serial] : {std::pair<std::string, std::string>{"keys", "88"},
                                     std::pair<std::string, std::string>{"csr", "89"},
                                     std::pair<std::string, std::string>{"v2", "90"}}) {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        {"/usr/bin/node", SourcePath("tests/node/device_sdk_provision.js"),
         std::to_string(gateway_.ports.at("mqtts_port")), dir_ + "/ep/ca.pem",
         dir_ + "/claim.pem", dir_ + "/claim.key", "sensors", serial, dir_, mode},
        {}, absl::Seconds(60));
    ASSERT_TRUE(r.ok()) << r.status();
    const std::string thing = "sensor-" + serial;
    EXPECT_EQ(r->exit_code, 0) << mode << ": " << r->out << r->err << gateway_.process->output();
    EXPECT_THAT(r->out, HasSubstr("ok device_sdk_provision " + thing));
    // The thing exists with the new certificate attached, ACTIVE, and the device policy on it.
    json principals = Ctl().Json({"list-thing-principals", "--thing-name", thing});
    ASSERT_EQ(principals["principals"].size(), 1u) << principals.dump();
    const std::string arn = principals["principals"][0];
    json cert =
        Ctl().Json({"describe-certificate", "--certificate-id", arn.substr(arn.rfind('/') + 1)});
    EXPECT_EQ(cert["certificateDescription"]["status"], "ACTIVE") << cert.dump();
    json policies = Ctl().Json({"list-attached-policies", "--target", arn});
    EXPECT_EQ(policies["policies"][0]["policyName"], "device") << policies.dump();
  }
  // The CSR's certificate carries the device's own key.
  Sh("openssl x509 -in sensor-89.pem -noout -pubkey > cert.pub && "
     "openssl pkey -in device-89.key -pubout > own.pub && cmp cert.pub own.pub");
}

// The AWS IoT Device SDK for Embedded C provisions in CBOR by default: the same three
// operations on .../cbor topics, answered in CBOR on the asking connection.
TEST_F(GatewaySecurityTest, FleetProvisioningInCbor) {
  SetUpProvisioningByClaim();
  // The answer's suffix (accepted or rejected) and its CBOR payload, decoded.
  auto ask = [&](const std::string& topic,
                 const std::vector<uint8_t>& request) -> std::pair<std::string, json> {
    const std::string file = dir_ + "/request.bin";
    std::ofstream(file, std::ios::binary)
        .write(reinterpret_cast<const char*>(request.data()),
               static_cast<std::streamsize>(request.size()));
    absl::StatusOr<testing::RunResult> r = testing::Run(
        ScenarioArgv("request", topic,
                     {"--cert", dir_ + "/claim.pem", "--key", dir_ + "/claim.key",
                      "--payload-file", file}),
        {}, absl::Seconds(30));
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << topic << (r.ok() ? r->out + r->err : "");
    if (!r.ok()) return {};
    std::vector<std::string> words = absl::StrSplit(
        absl::StripTrailingAsciiWhitespace(r->out.substr(0, r->out.find("\nok "))), ' ');
    if (words.size() != 3 || words[0] != "answer") {
      ADD_FAILURE() << r->out;
      return {};
    }
    return {words[1], json::from_cbor(absl::HexStringToBytes(words[2]), true, false)};
  };
  auto [created, keys] = ask("$aws/certificates/create/cbor", {});
  ASSERT_EQ(created, "accepted") << keys.dump();
  for (const char* field :
       {"certificateId", "certificatePem", "privateKey", "certificateOwnershipToken"}) {
    EXPECT_TRUE(keys[field].is_string()) << field << ": " << keys.dump();
  }
  auto [provisioned, registered] =
      ask("$aws/provisioning-templates/sensors/provision/cbor",
          json::to_cbor({{"certificateOwnershipToken", keys["certificateOwnershipToken"]},
                         {"parameters", {{"SerialNumber", "90"}}}}));
  EXPECT_EQ(provisioned, "accepted") << registered.dump();
  EXPECT_EQ(registered["thingName"], "sensor-90") << registered.dump();
  EXPECT_EQ(Ctl().Json({"describe-thing", "--thing-name", "sensor-90"})["thingName"], "sensor-90");
  // A payload that is not CBOR is rejected in CBOR, with AWS's fields.
  const std::string junk = "not cbor {";
  auto [refused, rejection] = ask("$aws/provisioning-templates/sensors/provision/cbor",
                                  std::vector<uint8_t>(junk.begin(), junk.end()));
  EXPECT_EQ(refused, "rejected");
  EXPECT_EQ(rejection["statusCode"], 400) << rejection.dump();
  EXPECT_EQ(rejection["errorCode"], "InvalidPayload");
  // CBOR text is not checked as it is read: a token that is not UTF-8 is the device's error
  // (it used to fail inside the CA call, as an internal error).
  std::vector<uint8_t> not_text = {0xa1, 0x78, 25};
  for (char c : std::string("certificateOwnershipToken")) not_text.push_back(c);
  not_text.insert(not_text.end(), {0x62, 0xff, 0xfe});
  auto [refused_text, text_rejection] =
      ask("$aws/provisioning-templates/sensors/provision/cbor", not_text);
  EXPECT_EQ(refused_text, "rejected");
  EXPECT_EQ(text_rejection["statusCode"], 400) << text_rejection.dump();
  EXPECT_EQ(text_rejection["errorMessage"], "the payload's strings must be UTF-8 text")
      << text_rejection.dump(-1, ' ', false, json::error_handler_t::replace);
  // CBOR nests a level per byte: a payload of the largest size nests 131,000 levels, which
  // overflows the stack of a parser that recurses into them. Refused before parsing, and
  // the gateway goes on.
  std::vector<uint8_t> deep(131000, 0x81);
  deep.push_back(0xa0);
  auto [too_deep, deep_rejection] =
      ask("$aws/provisioning-templates/sensors/provision/cbor", deep);
  EXPECT_EQ(too_deep, "rejected");
  EXPECT_EQ(deep_rejection["errorMessage"], "the payload nests too deeply")
      << deep_rejection.dump();
  auto [again, more_keys] = ask("$aws/certificates/create/cbor", {});
  EXPECT_EQ(again, "accepted") << more_keys.dump();
}

// AWS's quota of 10 CreateKeysAndCertificate requests a second: of a burst from a claim
// certificate the first second's worth reach the CA, the rest are rejected with 429 before
// they cost it a key, and a request a second later is served again.
TEST_F(GatewaySecurityTest, FleetProvisioningOverItsQuotaIsThrottled) {
  SetUpProvisioningByClaim();
  absl::StatusOr<testing::RunResult> r =
      testing::Run(ScenarioArgv("request_burst", "$aws/certificates/create/json",
                                {"--cert", dir_ + "/claim.pem", "--key", dir_ + "/claim.key"}),
                   {}, absl::Seconds(120));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->out << r->err;
  int accepted = 0;
  int throttled = 0;
  std::string late;
  for (absl::string_view line : absl::StrSplit(r->out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> words = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    if (words.size() != 3) continue;
    if (words[0] == "late") late = words[1];
    if (words[0] != "answer") continue;
    const json doc = json::parse(words[2], nullptr, /*allow_exceptions=*/false);
    if (words[1] == "accepted") {
      ++accepted;
      EXPECT_TRUE(doc["certificateId"].is_string()) << line;
      continue;
    }
    ++throttled;
    EXPECT_EQ(doc["statusCode"], 429) << line;
    EXPECT_EQ(doc["errorCode"], "Throttled") << line;
    EXPECT_THAT(doc.value("errorMessage", ""),
                HasSubstr("10 CreateKeysAndCertificate requests a second"));
  }
  // The 30 were written at once: 10 pass, more only if reading them took the gateway
  // longer than two seconds.
  EXPECT_EQ(accepted + throttled, 30);
  EXPECT_GE(accepted, 10);
  EXPECT_GE(throttled, 1);
  EXPECT_EQ(late, "accepted") << r->out;
  // The CA made a certificate for each request served and none for the others (the claim
  // certificate is the one more).
  json certs = Ctl().Json({"list-certificates", "--page-size", "100"});
  EXPECT_EQ(certs["certificates"].size(), static_cast<size_t>(accepted + 2));
  const std::string metrics = testing::HttpGet(gateway_.metrics_port, "/metrics");
  const std::string series =
      R"(fleetcore_gateway_provisioning_requests_total{operation="CreateKeysAndCertificate",result=")";
  EXPECT_EQ(testing::MetricValue(metrics, series + R"(throttled"})"), throttled) << metrics;
  EXPECT_EQ(testing::MetricValue(metrics, series + R"(accepted"})"), accepted + 1) << metrics;
}

TEST_F(GatewaySecurityTest, DetachingThePolicyAppliesToTheLiveConnection) {
  ProvisionDevice("lamp-5");
  json certs = Ctl().Json({"list-certificates"});
  ASSERT_FALSE(certs["certificates"].empty());
  const std::string arn = certs["certificates"][0]["certificateArn"];
  ASSERT_OK_AND_ASSIGN(auto device, StartPublishingDevice("lamp-5"));
  Ctl().Json({"detach-policy", "--policy-name", "device", "--target", arn});
  std::ofstream(dir_ + "/go") << "go";
  ASSERT_OK_AND_ASSIGN(int code, device->Wait(absl::Seconds(30)));
  EXPECT_EQ(code, 0) << device->output();
}

TEST_F(GatewaySecurityTest, AThingAttributeChangeAppliesToTheLiveConnection) {
  // A policy that reads a thing attribute: lamp-8 may publish under the topic its "alias"
  // attribute names.
  json cert = Ctl().Json({"create-keys-and-certificate", "--set-as-active",
                          "--certificate-pem-outfile", dir_ + "/lamp-8.pem",
                          "--private-key-outfile", dir_ + "/lamp-8.key"});
  Ctl().Json({"create-thing", "--thing-name", "lamp-8", "--attribute-payload",
              R"({"attributes": {"alias": "lamp-8"}})"});
  Ctl().Json({"attach-thing-principal", "--thing-name", "lamp-8", "--principal",
              cert["certificateArn"]});
  std::ofstream(dir_ + "/alias-policy.json") << R"({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:us-east-1:000000000000:client/${iot:Connection.Thing.ThingName}"},
    {"Effect": "Allow", "Action": "iot:Publish",
     "Resource": "arn:aws:iot:us-east-1:000000000000:topic/things/${iot:Connection.Thing.Attributes[alias]}/*"}]})";
  Ctl().Json({"create-policy", "--policy-name", "alias", "--policy-document",
              "file://" + dir_ + "/alias-policy.json"});
  Ctl().Json({"attach-policy", "--policy-name", "alias", "--target", cert["certificateArn"]});
  ASSERT_OK_AND_ASSIGN(auto device, StartPublishingDevice("lamp-8"));
  // The attribute changes while the device is connected: its next publish is refused.
  Ctl().Json({"update-thing", "--thing-name", "lamp-8", "--attribute-payload",
              R"({"attributes": {"alias": "retired"}})"});
  std::ofstream(dir_ + "/go") << "go";
  ASSERT_OK_AND_ASSIGN(int code, device->Wait(absl::Seconds(30)));
  EXPECT_EQ(code, 0) << device->output();
}

TEST_F(GatewaySecurityTest, ATypesPropagatingAttributesEnrichItsThingsMessages) {
  // AWS's message-enrichment example: things of the type Aircon_Unit carry their
  // "environment" attribute and their client id on every message, as MQTT 5 user
  // properties, whatever MQTT version they publish with.
  Ctl().Json({"create-thing-type", "--thing-type-name", "Aircon_Unit", "--thing-type-properties",
              R"({"mqtt5Configuration": {"propagatingAttributes": [
                 {"userPropertyKey": "environment", "thingAttribute": "environment"},
                 {"userPropertyKey": "iot:ClientId", "connectionAttribute": "iot:ClientId"}]}})"});
  json cert =
      Ctl().Json({"create-keys-and-certificate", "--set-as-active", "--certificate-pem-outfile",
                  dir_ + "/aircon-1.pem", "--private-key-outfile", dir_ + "/aircon-1.key"});
  Ctl().Json({"create-thing", "--thing-name", "aircon-1", "--thing-type-name", "Aircon_Unit",
              "--attribute-payload", R"({"attributes": {"environment": "prod"}})"});
  // Exclusively, so that an HTTPS request (which has no client id) is the thing's too.
  Ctl().Json({"attach-thing-principal", "--thing-name", "aircon-1", "--principal",
              cert["certificateArn"], "--thing-principal-type", "EXCLUSIVE_THING"});
  std::ofstream(dir_ + "/policy.json") << kDevicePolicy;
  Ctl().Run({"create-policy", "--policy-name", "device", "--policy-document",
             "file://" + dir_ + "/policy.json"});
  Ctl().Json({"attach-policy", "--policy-name", "device", "--target", cert["certificateArn"]});
  // An application watching the telemetry over MQTT 5, with a certificate of its own.
  json app =
      Ctl().Json({"create-keys-and-certificate", "--set-as-active", "--certificate-pem-outfile",
                  dir_ + "/app.pem", "--private-key-outfile", dir_ + "/app.key"});
  std::ofstream(dir_ + "/app-policy.json") << R"({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe", "iot:Receive"],
     "Resource": "*"}]})";
  Ctl().Json({"create-policy", "--policy-name", "app", "--policy-document",
              "file://" + dir_ + "/app-policy.json"});
  Ctl().Json({"attach-policy", "--policy-name", "app", "--target", app["certificateArn"]});
  const std::string mqtts_port = std::to_string(gateway_.ports.at("mqtts_port"));
  std::unique_ptr<testing::Subprocess> watcher =
      StartSubscriber(Ctl(),
                      {"-h", "localhost", "-p", mqtts_port, "--cafile", dir_ + "/ep/ca.pem",
                       "--cert", dir_ + "/app.pem", "--key", dir_ + "/app.key", "-t",
                       "things/aircon-1/telemetry", "-V", "mqttv5", "-F", "%P|%p"},
                      "app");
  ASSERT_NE(watcher, nullptr);
  // The device: MQTT 3.1.1, one connection, a message every 200 ms until told to stop.
  ASSERT_OK_AND_ASSIGN(
      auto device,
      testing::Subprocess::Start(
          {"/bin/sh", "-c",
           absl::StrCat("i=0; while [ ! -e ", dir_,
                        "/stop ] && [ $i -lt 300 ]; do echo m$i; "
                        "i=$((i+1)); sleep 0.2; done | /usr/bin/mosquitto_pub -h localhost -p ",
                        mqtts_port, " --cafile ", dir_, "/ep/ca.pem --cert ", dir_,
                        "/aircon-1.pem --key ", dir_,
                        "/aircon-1.key -i aircon-1 -t things/aircon-1/telemetry -q 1 "
                        "-V mqttv311 -l")}));
  ASSERT_OK_AND_ASSIGN(std::string enriched, watcher->WaitForLine([](absl::string_view l) {
    return absl::StrContains(l, "|m");
  }));
  EXPECT_THAT(enriched, HasSubstr("environment:prod")) << enriched;
  EXPECT_THAT(enriched, HasSubstr("iot:ClientId:aircon-1")) << enriched;

  // The type changes while the device stays connected: its next messages carry the new set.
  json before = Ctl().Json({"describe-connection", "--client-id", "aircon-1"});
  ASSERT_TRUE(before["connected"].get<bool>()) << before.dump();
  Ctl().Json({"update-thing-type", "--thing-type-name", "Aircon_Unit", "--thing-type-properties",
              R"({"mqtt5Configuration": {"propagatingAttributes": [
                 {"userPropertyKey": "thing", "connectionAttribute": "iot:Thing.ThingName"}]}})"});
  json described = Ctl().Json({"describe-thing-type", "--thing-type-name", "Aircon_Unit"});
  EXPECT_EQ(described["thingTypeProperties"]["mqtt5Configuration"]["propagatingAttributes"][0]
                     ["connectionAttribute"],
            "iot:Thing.ThingName")
      << described.dump();
  ASSERT_OK_AND_ASSIGN(std::string updated, watcher->WaitForLine([](absl::string_view l) {
    return absl::StrContains(l, "thing:aircon-1|m");
  }));
  EXPECT_THAT(updated, ::testing::Not(HasSubstr("environment"))) << updated;
  // On the same connection.
  json after = Ctl().Json({"describe-connection", "--client-id", "aircon-1"});
  EXPECT_EQ(after["connection"]["connectedAt"], before["connection"]["connectedAt"])
      << after.dump();
  std::ofstream(dir_ + "/stop") << "stop";
  ASSERT_OK_AND_ASSIGN(int device_exit, device->Wait(absl::Seconds(10)));
  EXPECT_EQ(device_exit, 0) << device->output();

  // HTTPS publish: the same enrichment (no client id over HTTP, so no iot:ClientId).
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult curl,
      testing::Run({"/usr/bin/curl", "-s", "-w", " %{http_code}", "--cacert", dir_ + "/ep/ca.pem",
                    "--cert", dir_ + "/aircon-1.pem", "--key", dir_ + "/aircon-1.key",
                    "--data-binary", "over-https",
                    "https://localhost:" + std::to_string(gateway_.ports.at("https_port")) +
                        "/topics/things/aircon-1/telemetry?qos=1"}));
  EXPECT_THAT(curl.out, ::testing::EndsWith(" 200")) << curl.out << curl.err;
  ASSERT_OK_AND_ASSIGN(std::string https, watcher->WaitForLine([](absl::string_view l) {
    return absl::StrContains(l, "|over-https");
  }));
  EXPECT_EQ(https, "thing:aircon-1|over-https");
  // An MQTT 5 device's own user properties come first, the type's after them.
  const std::vector<std::string> own_first = absl::StrSplit(
      absl::StrCat("/usr/bin/mosquitto_pub -h localhost -p ", mqtts_port, " --cafile ", dir_,
                   "/ep/ca.pem --cert ", dir_, "/aircon-1.pem --key ", dir_,
                   "/aircon-1.key -i aircon-1 -t things/aircon-1/telemetry -m own-first -q 1 "
                   "-V mqttv5 -D publish user-property unit C"),
      ' ');
  ASSERT_OK_AND_ASSIGN(testing::RunResult v5, testing::Run(own_first));
  EXPECT_EQ(v5.exit_code, 0) << v5.err;
  ASSERT_OK_AND_ASSIGN(std::string own, watcher->WaitForLine([](absl::string_view l) {
    return absl::StrContains(l, "|own-first");
  }));
  EXPECT_EQ(own, "unit:C thing:aircon-1|own-first");
  // Counted (the threads add theirs every second).
  double enriched_total = 0;
  for (int i = 0; i < 30 && enriched_total < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    enriched_total = testing::MetricValue(testing::HttpGet(gateway_.metrics_port, "/metrics"),
                                          "fleetcore_gateway_enriched_messages_total");
  }
  EXPECT_GE(enriched_total, 3);
  watcher->Signal(SIGTERM);
  (void)watcher->Wait(absl::Seconds(5));
}

TEST_F(GatewaySecurityTest, ACustomAuthorizerThatNoLongerAdmitsAClientDisconnectsIt) {
  // The tutorial's function on a port of our choosing, admitting one token.
  const int port = FreePort();
  auto function = [&](const std::string& token) {
    auto f = testing::Subprocess::Start({"/usr/bin/python3",
                                         SourcePath("tools/examples/custom_authorizer.py"),
                                         "--port", std::to_string(port), "--token", token});
    EXPECT_TRUE(f.ok()) << f.status();
    if (f.ok()) {
      EXPECT_TRUE((*f)->WaitForLine([](absl::string_view l) {
                         return absl::StartsWith(l, "listening on ");
                       }).ok());
    }
    return f.ok() ? std::move(*f) : nullptr;
  };
  std::unique_ptr<testing::Subprocess> first = function("first-token");
  ASSERT_NE(first, nullptr);
  Ctl().Json({"create-authorizer", "--authorizer-name", "refresher", "--authorizer-function-arn",
              absl::StrCat("http://127.0.0.1:", port, "/authorize"), "--signing-disabled",
              "--token-key-name", "x-token", "--status", "ACTIVE"});
  std::unique_ptr<testing::Subprocess> device = StartSubscriber(
      Ctl(),
      {"-h", "localhost", "-p", std::to_string(gateway_.ports.at("mqtts_port")), "--cafile",
       dir_ + "/ep/ca.pem", "-u", "dev?x-amz-customauthorizer-name=refresher", "-P", "first-token",
       "-t", "things/dev-9/#", "-V", "mqttv5"},
      "dev-9");
  ASSERT_NE(device, nullptr);
  // Still admitted at the refreshes (every second here, --authorizer-refresh-max)...
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_THAT(gateway_.process->output(), ::testing::Not(HasSubstr("no longer accepted")));
  // ...until the function stops admitting the token: the next refresh disconnects it.
  first->Signal(SIGTERM);
  (void)first->Wait(absl::Seconds(10));
  std::unique_ptr<testing::Subprocess> second = function("second-token");
  ASSERT_NE(second, nullptr);
  bool disconnected = false;
  for (int i = 0; i < 100 && !disconnected; ++i) {
    disconnected = absl::StrContains(gateway_.process->output(),
                                     "disconnected: the client's credentials are no longer");
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(disconnected) << gateway_.process->output();
  device->Signal(SIGTERM);
  (void)device->Wait(absl::Seconds(5));
}

TEST_F(GatewaySecurityTest, AwsIotDeviceSdksWorkUnchanged) {
  ASSERT_TRUE(DeviceSdkInstalled());
  ASSERT_OK_AND_ASSIGN(RunningService shadow,
                       StartService("services/shadow/fleetcore-shadow",
                                    {"--db-url=" + db_->url(),
                                     absl::StrCat("--listen=127.0.0.1:", shadow_port_),
                                     "--gateway-endpoint=" + gateway_.endpoint},
                                    {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  ProvisionDevice("lamp-6");
  // The SDK's shadow client needs the thing's shadow topics too.
  std::ofstream(dir_ + "/shadow-policy.json") << R"({
    "Version": "2012-10-17",
    "Statement": [
      {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
       "Resource": ["arn:aws:iot:us-east-1:000000000000:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*",
                    "arn:aws:iot:us-east-1:000000000000:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"]},
      {"Effect": "Allow", "Action": "iot:Subscribe",
       "Resource": ["arn:aws:iot:us-east-1:000000000000:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*",
                    "arn:aws:iot:us-east-1:000000000000:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"]}
    ]})";
  Ctl().Run({"create-policy", "--policy-name", "shadow", "--policy-document",
             "file://" + dir_ + "/shadow-policy.json"});
  json certs = Ctl().Json({"list-certificates"});
  Ctl().Json({"attach-policy", "--policy-name", "shadow", "--target",
              certs["certificates"][0]["certificateArn"]});
  // Its MQTT 5 client, then its MQTT 3.1.1 connection, each with the shadow client.
  for (const std::string protocol : {"5", "3.1.1"}) {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        {"/usr/bin/node", SourcePath("tests/node/device_sdk.js"),
         std::to_string(gateway_.ports.at("mqtts_port")), dir_ + "/ep/ca.pem",
         dir_ + "/lamp-6.pem", dir_ + "/lamp-6.key", "lamp-6", protocol},
        {}, absl::Seconds(60));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 0) << protocol << ": " << r->out << r->err;
    EXPECT_THAT(r->out, HasSubstr("MQTT " + protocol + ": published and received"));
    EXPECT_THAT(r->out, HasSubstr("jobs: none pending"));
    EXPECT_THAT(r->out, HasSubstr("shadow v2 client: v2-mqtt"));
    EXPECT_THAT(r->out, HasSubstr("jobs v2 client: none pending"));
    EXPECT_THAT(r->out, HasSubstr("ok device_sdk")) << gateway_.process->output();
  }
  // The SDK's updates reached the shadow service, the 3.1.1 one last.
  json doc = Ctl().Json({"get-thing-shadow", "--thing-name", "lamp-6"});
  EXPECT_EQ(doc["payload"]["state"]["desired"]["color"], "blue") << doc.dump();
  // The v1 SDK's thingShadow client, with its version tracking, on the same thing.
  absl::StatusOr<testing::RunResult> v1 = testing::Run(
      {"/usr/bin/node", SourcePath("tests/node/device_sdk_v1.js"),
       std::to_string(gateway_.ports.at("mqtts_port")), dir_ + "/ep/ca.pem",
       dir_ + "/lamp-6.pem", dir_ + "/lamp-6.key", "lamp-6"},
      {}, absl::Seconds(60));
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->exit_code, 0) << v1->out << v1->err << gateway_.process->output();
  EXPECT_THAT(v1->out, HasSubstr(R"(v1 shadow: desired yellow, delta {"color":"yellow"})"));
  EXPECT_THAT(v1->out, HasSubstr("ok device_sdk_v1"));
  doc = Ctl().Json({"get-thing-shadow", "--thing-name", "lamp-6"});
  EXPECT_EQ(doc["payload"]["state"]["desired"]["color"], "yellow") << doc.dump();
  EXPECT_EQ(doc["payload"]["state"]["reported"]["color"], "yellow") << doc.dump();
}

TEST_F(GatewaySecurityTest, CustomAuthorizerAdmitsWithItsPolicies) {
  // The example authorizer function of the custom-authorizer tutorial, and an authorizer
  // for it without token signing: the device sends the token as its MQTT password.
  ASSERT_OK_AND_ASSIGN(
      auto function,
      testing::Subprocess::Start({"/usr/bin/python3",
                                  SourcePath("tools/examples/custom_authorizer.py"), "--token",
                                  "device-secret-token"}));
  ASSERT_OK_AND_ASSIGN(std::string line, function->WaitForLine([](absl::string_view l) {
    return absl::StartsWith(l, "listening on ");
  }));
  const std::string url =
      "http://127.0.0.1:" + line.substr(strlen("listening on ")) + "/authorize";
  Ctl().Json({"create-authorizer", "--authorizer-name", "tutorial", "--authorizer-function-arn",
              url, "--signing-disabled", "--token-key-name", "x-token", "--status", "ACTIVE"});
  absl::StatusOr<testing::RunResult> r = testing::Run(
      ScenarioArgv("custom_auth_device", "tutorial", {"--password", "device-secret-token"}), {},
      absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
  EXPECT_THAT(r->out, HasSubstr("ok custom_auth_device"));

  // HTTPS publish with the authorizer's name and token in headers, as AWS's curl example.
  auto curl = [&](const std::string& token, const std::string& topic) {
    absl::StatusOr<testing::RunResult> c = testing::Run(
        {"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
         dir_ + "/ep/ca.pem", "-H", "x-amz-customauthorizer-name: tutorial", "-H",
         "x-token: " + token, "-H", "x-device-id: dev-7", "--data-binary", "21",
         absl::StrCat("https://localhost:", gateway_.ports.at("https_port"), "/topics/", topic,
                      "?qos=1")});
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->out : "";
  };
  EXPECT_EQ(curl("device-secret-token", "things/dev-7/temp"), "200");
  EXPECT_EQ(curl("device-secret-token", "things/dev-8/temp"), "403");
  EXPECT_EQ(curl("wrong-token", "things/dev-7/temp"), "401");

  // MQTT over secure WebSocket with the authorizer in the upgrade's headers (MQTT.js).
  absl::StatusOr<testing::RunResult> ws = testing::Run(
      {"/usr/bin/node", SourcePath("tests/node/mqttjs_scenarios.js"), "custom-auth-ws", "--url",
       absl::StrCat("wss://127.0.0.1:", gateway_.ports.at("https_port"), "/mqtt"), "--version",
       "5", "--ca", dir_ + "/ep/ca.pem", "--authorizer", "tutorial", "--token",
       "device-secret-token"},
      {}, absl::Seconds(60));
  ASSERT_TRUE(ws.ok()) << ws.status();
  EXPECT_EQ(ws->exit_code, 0) << ws->out << ws->err;
  EXPECT_THAT(ws->out, HasSubstr("ok custom-auth-ws"));
}

TEST_F(GatewaySecurityTest, AwsIotDeviceSdkV2WithACustomAuthorizerAndSignedToken) {
  ASSERT_TRUE(DeviceSdkInstalled());
  // The token-signing key pair, and a token whose base64 signature has a '+' (which a
  // form-style decoder would turn into a space): the SDK's WebSocket builder sends it as is.
  Sh("openssl genrsa -out signing.key 2048 2>/dev/null && "
     "openssl rsa -in signing.key -pubout -out signing.pub 2>/dev/null");
  std::string token, signature;
  for (int i = 0; i < 50 && !absl::StrContains(signature, '+'); ++i) {
    token = absl::StrCat("device-token-", i);
    signature = Sh("printf %s " + token + " | openssl dgst -sha256 -sign signing.key | base64 -w0");
  }
  ASSERT_THAT(signature, HasSubstr("+"));
  ASSERT_OK_AND_ASSIGN(
      auto function,
      testing::Subprocess::Start({"/usr/bin/python3",
                                  SourcePath("tools/examples/custom_authorizer.py"), "--token",
                                  token}));
  ASSERT_OK_AND_ASSIGN(std::string line, function->WaitForLine([](absl::string_view l) {
    return absl::StartsWith(l, "listening on ");
  }));
  std::ifstream pub(dir_ + "/signing.pub");
  const std::string pem((std::istreambuf_iterator<char>(pub)), std::istreambuf_iterator<char>());
  Ctl().Json({"create-authorizer", "--authorizer-name", "signed", "--authorizer-function-arn",
              "http://127.0.0.1:" + line.substr(strlen("listening on ")) + "/",
              "--token-key-name", "tokenKeyName", "--token-signing-public-keys",
              json{{"key1", pem}}.dump(), "--status", "ACTIVE"});
  absl::StatusOr<testing::RunResult> r = testing::Run(
      {"/usr/bin/node", SourcePath("tests/node/device_sdk_custom_auth.js"),
       std::to_string(gateway_.ports.at("mqtts_port")),
       std::to_string(gateway_.ports.at("https_port")), dir_ + "/ep/ca.pem", "signed",
       "tokenKeyName", token, signature, "sensor-7"},
      {}, absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->out << r->err << gateway_.process->output();
  EXPECT_THAT(r->out, HasSubstr("newDirectMqttBuilderWithCustomAuth: published and received"));
  EXPECT_THAT(r->out, HasSubstr("newWebsocketMqttBuilderWithCustomAuth: published and received"));
  EXPECT_THAT(r->out, HasSubstr("ok device_sdk_custom_auth"));
}

// SigV4 with an access key, as AWS IoT's WebSocket and HTTPS clients sign: the AWS IoT Device
// SDK v2's WebSocket builders (MQTT 5 and 3.1.1) with static credentials, the v1 SDK's own
// signer, curl --aws-sigv4 publishing over HTTPS, boto3's iot-data and sts clients. The
// user's policy decides what it may do; a wrong secret is refused; deactivating the key ends
// the live connection and refuses the next publish; temporary credentials sign too.
TEST_F(GatewaySecurityTest, AccessKeysSignWebSocketAndHttpsRequests) {
  ASSERT_TRUE(DeviceSdkInstalled());
  json key = Ctl().Json({"create-access-key", "--user-name", "dashboard"});
  ASSERT_TRUE(key.contains("secretAccessKey")) << key.dump();
  const std::string id = key["accessKey"]["accessKeyId"];
  const std::string secret = key["secretAccessKey"];
  const std::string user_arn = key["accessKey"]["userArn"];
  EXPECT_EQ(user_arn, "arn:aws:iam::000000000000:user/dashboard");
  std::ofstream(dir_ + "/user.json") << R"({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:us-east-1:000000000000:client/sigv4-dev"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
     "Resource": "arn:aws:iot:us-east-1:000000000000:topic/things/sigv4-dev/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": "arn:aws:iot:us-east-1:000000000000:topicfilter/things/sigv4-dev/*"},
    {"Effect": "Allow", "Action": ["iot:RetainPublish", "iot:GetRetainedMessage"],
     "Resource": "arn:aws:iot:us-east-1:000000000000:topic/things/sigv4-dev/*"},
    {"Effect": "Allow", "Action": "iot:ListRetainedMessages", "Resource": "*"},
    {"Effect": "Allow", "Action": "iot:Receive",
     "Resource": "arn:aws:iot:us-east-1:000000000000:topic/direct/sigv4-dev/*"},
    {"Effect": "Allow", "Action": ["iot:GetConnection", "iot:ListSubscriptions"],
     "Resource": "arn:aws:iot:us-east-1:000000000000:client/sigv4-*"},
    {"Effect": "Allow", "Action": "iot:SendDirectMessage",
     "Resource": "arn:aws:iot:us-east-1:000000000000:client/sigv4-*",
     "Condition": {"StringLike": {"iot:Topic": "direct/*"}}},
    {"Effect": "Allow", "Action": ["iot:GetThingShadow", "iot:UpdateThingShadow",
                                   "iot:DeleteThingShadow", "iot:ListNamedShadowsForThing"],
     "Resource": ["arn:aws:iot:us-east-1:000000000000:thing/sigv4-dev",
                  "arn:aws:iot:us-east-1:000000000000:thing/sigv4-dev/*"]}]})";
  Ctl().Run({"create-policy", "--policy-name", "user", "--policy-document",
             "file://" + dir_ + "/user.json"});
  Ctl().Json({"attach-policy", "--policy-name", "user", "--target", user_arn});

  const std::string https_port = std::to_string(gateway_.ports.at("https_port"));
  // The v1 SDK signs the WebSocket URL with its own code (the port in the signed host); it
  // goes first, as the v2 client below keeps the same client id connected.
  absl::StatusOr<testing::RunResult> v1 = testing::Run(
      {"/usr/bin/node", SourcePath("tests/node/device_sdk_v1_sigv4.js"), https_port, "us-east-1",
       id, secret, "sigv4-dev"},
      {{"NODE_EXTRA_CA_CERTS", dir_ + "/ep/ca.pem"}}, absl::Seconds(60));
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->exit_code, 0) << v1->out << v1->err;
  EXPECT_THAT(v1->out, HasSubstr("v1 sdk over wss with sigv4: published and received"));

  ASSERT_OK_AND_ASSIGN(auto sdk, testing::Subprocess::Start(
                                     {"/usr/bin/node", SourcePath("tests/node/device_sdk_sigv4.js"),
                                      https_port, dir_ + "/ep/ca.pem", "us-east-1", id, secret,
                                      "sigv4-dev"}));
  ASSERT_OK(sdk->WaitForLine([](absl::string_view l) { return l == "holding"; },
                             absl::Seconds(60))
                .status())
      << sdk->output() << gateway_.process->output();
  const std::string out = sdk->output();
  EXPECT_THAT(out, HasSubstr("mqtt5 over wss with sigv4: published and received; outside the "
                             "policy refused"));
  EXPECT_THAT(out, HasSubstr("mqtt 3.1.1 over wss with sigv4: published and received"));
  EXPECT_THAT(out, HasSubstr("wrong secret: refused, not authorized"));

  // curl signs as botocore's iot-data does (service iotdata), over HTTPS. The status code;
  // the body in *body.
  auto curl = [&](const std::string& user, const std::string& topic,
                  std::string* body = nullptr) {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        {"/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--cacert", dir_ + "/ep/ca.pem",
         "--aws-sigv4", "aws:amz:us-east-1:iotdata", "--user", user, "-X", "POST", "--data",
         R"({"temperature": 21})",
         "https://localhost:" + https_port + "/topics/" + topic + "?qos=1"});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return std::string();
    const size_t nl = r->out.rfind('\n');
    if (body != nullptr) *body = r->out.substr(0, nl);
    return r->out.substr(nl + 1);
  };
  EXPECT_EQ(curl(id + ":" + secret, "things%2Fsigv4-dev%2Fhttps"), "200");
  EXPECT_OK(sdk->WaitForLine([](absl::string_view l) {
                  return l == R"(received things/sigv4-dev/https {"temperature": 21})";
                })
                .status())
      << sdk->output();
  // Not the user's to publish: 403; not the key's signature, or no such key: 401, in AWS's
  // words.
  EXPECT_EQ(curl(id + ":" + secret, "elsewhere"), "403");
  std::string body;
  EXPECT_EQ(curl(id + ":not-the-secret", "things%2Fsigv4-dev%2Fhttps", &body), "401");
  EXPECT_THAT(body, HasSubstr("does not match the signature you provided"));
  EXPECT_EQ(curl("AKIAAAAAAAAAAAAAAAAA:" + secret, "things%2Fsigv4-dev%2Fhttps", &body), "401");
  EXPECT_THAT(body, HasSubstr("security token included in the request is invalid"));
  // A signed GET (the shadow's REST API, an empty body's hash): authenticated, then refused
  // by the user's policy, which allows only sigv4-dev's shadow.
  auto shadow = [&](const std::string& user) {
    absl::StatusOr<testing::RunResult> r = testing::Run(
        {"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
         dir_ + "/ep/ca.pem", "--aws-sigv4", "aws:amz:us-east-1:iotdata", "--user", user,
         "https://localhost:" + https_port + "/things/other/shadow?name=lamp"});
    return r.ok() ? r->out : r.status().ToString();
  };
  EXPECT_EQ(shadow(id + ":" + secret), "403");
  EXPECT_EQ(shadow(id + ":not-the-secret"), "401");
  // The AWS SDK for Python's iot-data client: publish, the shadow, its modeled exceptions.
  ASSERT_OK_AND_ASSIGN(RunningService shadow_service,
                       StartService("services/shadow/fleetcore-shadow",
                                    {"--db-url=" + db_->url(),
                                     absl::StrCat("--listen=127.0.0.1:", shadow_port_),
                                     "--gateway-endpoint=" + gateway_.endpoint},
                                    {{"FLEETCORE_ADMIN_TOKEN", kToken}}));
  auto boto3 = [&](const std::string& key, const std::string& key_secret,
                   const std::string& token) {
    std::vector<std::string> argv{"/usr/bin/python3",
                                  SourcePath("tests/e2e/clients/boto3_iot_data.py"),
                                  https_port, dir_ + "/ep/ca.pem", "us-east-1", key, key_secret,
                                  "sigv4-dev"};
    if (!token.empty()) argv.push_back(token);
    absl::StatusOr<testing::RunResult> r = testing::Run(argv, {}, absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::RunResult{};
  };
  testing::RunResult py = boto3(id, secret, "");
  EXPECT_EQ(py.exit_code, 0) << py.out << py.err;
  EXPECT_THAT(py.out, HasSubstr("ok boto3_iot_data"));
  EXPECT_OK(sdk->WaitForLine([](absl::string_view l) {
                  return l == R"(received things/sigv4-dev/boto 1 {"from": "boto3"})";
                })
                .status())
      << sdk->output();
  // The AWS SDK for JavaScript v3's iot-data client: the connection management calls on the
  // live client, and a direct message on a topic it does not subscribe to.
  absl::StatusOr<testing::RunResult> js = testing::Run(
      {"/usr/bin/node", SourcePath("tests/node/iot_data_plane.js"), https_port,
       dir_ + "/ep/ca.pem", "us-east-1", id, secret, "sigv4-dev"},
      {}, absl::Seconds(60));
  ASSERT_TRUE(js.ok()) << js.status();
  EXPECT_EQ(js->exit_code, 0) << js->out << js->err;
  EXPECT_THAT(js->out, HasSubstr("subscriptions: things/sigv4-dev/#@1"));
  EXPECT_THAT(js->out, HasSubstr("ok iot_data_plane"));
  const std::string denied_dm =
      R"(fleetcore_gateway_authorization_denied_total{action="iot:SendDirectMessage"} 1)";
  EXPECT_THAT(MetricsWith(gateway_.metrics_port, {denied_dm}), HasSubstr(denied_dm));
  EXPECT_OK(sdk->WaitForLine([](absl::string_view l) {
                  return l == "received direct/sigv4-dev/reboot reboot now";
                })
                .status())
      << sdk->output();
  // A back end with only its access key gets temporary credentials from STS on the gateway.
  absl::StatusOr<testing::RunResult> sts = testing::Run(
      {"/usr/bin/python3", SourcePath("tests/e2e/clients/boto3_sts.py"), https_port,
       dir_ + "/ep/ca.pem", "us-east-1", id, secret, "things/sigv4-dev/sts"},
      {}, absl::Seconds(60));
  ASSERT_TRUE(sts.ok()) << sts.status();
  EXPECT_EQ(sts->exit_code, 0) << sts->out << sts->err;
  EXPECT_THAT(sts->out, HasSubstr("caller: arn:aws:iam::000000000000:user/dashboard"));
  EXPECT_THAT(sts->out, HasSubstr("again with them: AccessDenied"));
  EXPECT_THAT(sts->out, HasSubstr("another secret: SignatureDoesNotMatch"));
  EXPECT_THAT(sts->out, HasSubstr("ok boto3_sts"));
  const std::string gateway_metrics = testing::HttpGet(gateway_.metrics_port, "/metrics");
  EXPECT_THAT(gateway_metrics, HasSubstr(R"(fleetcore_gateway_sts_requests_total{)"
                                         R"(action="GetSessionToken",result="ok"} 1)"));
  EXPECT_THAT(gateway_metrics, HasSubstr(R"(fleetcore_gateway_sts_requests_total{)"
                                         R"(action="GetSessionToken",result="AccessDenied"} 1)"));
  EXPECT_THAT(gateway_metrics, HasSubstr(R"(fleetcore_gateway_sts_requests_total{)"
                                         R"x(action="(other)",result="InvalidAction"} 1)x"));
  EXPECT_OK(sdk->WaitForLine([](absl::string_view l) {
                  return l == "received things/sigv4-dev/sts from sts";
                })
                .status())
      << sdk->output();
  // test-authorization answers for the user as the gateway decides.
  json decided = Ctl().Json(
      {"test-authorization", "--principal", user_arn, "--client-id", "sigv4-dev",
       "--auth-infos",
       R"([{"actionType": "PUBLISH", "resources": )"
       R"(["arn:aws:iot:us-east-1:000000000000:topic/things/sigv4-dev/https"]},)"
       R"( {"actionType": "PUBLISH", "resources": )"
       R"(["arn:aws:iot:us-east-1:000000000000:topic/elsewhere"]}])"});
  ASSERT_EQ(decided["authResults"].size(), 2u) << decided.dump();
  EXPECT_EQ(decided["authResults"][0]["authDecision"], "ALLOWED") << decided.dump();
  EXPECT_EQ(decided["authResults"][1]["authDecision"], "IMPLICIT_DENY") << decided.dump();

  // The key deactivated: the live connection ends at once, the next request is refused.
  Ctl().Run({"update-access-key", "--access-key-id", id, "--status", "INACTIVE"});
  EXPECT_OK(sdk->WaitForLine(
                   [](absl::string_view l) { return absl::StartsWith(l, "cut: DISCONNECT"); },
                   absl::Seconds(5))
                .status())
      << sdk->output() << gateway_.process->output();
  EXPECT_THAT(sdk->output(), HasSubstr("cut: DISCONNECT 135"));
  EXPECT_EQ(curl(id + ":" + secret, "things%2Fsigv4-dev%2Fhttps"), "401");
  json listed = Ctl().Json({"list-access-keys", "--user-name", "dashboard"});
  ASSERT_EQ(listed["accessKeys"].size(), 1u) << listed.dump();
  EXPECT_EQ(listed["accessKeys"][0]["status"], "INACTIVE");
  EXPECT_FALSE(listed["accessKeys"][0].contains("secretAccessKey"));

  // Temporary credentials for the same user (a browser's), signed with their session token,
  // which the AWS CRT adds to the URL after signing.
  json session = Ctl().Json({"get-session-token", "--user-name", "dashboard",
                             "--duration-seconds", "900"});
  ASSERT_TRUE(session.contains("credentials")) << session.dump();
  const json& c = session["credentials"];
  absl::StatusOr<testing::RunResult> temporary = testing::Run(
      {"/usr/bin/node", SourcePath("tests/node/device_sdk_sigv4.js"), https_port,
       dir_ + "/ep/ca.pem", "us-east-1", c["accessKeyId"], c["secretAccessKey"], "sigv4-dev",
       c["sessionToken"]},
      {}, absl::Seconds(60));
  ASSERT_TRUE(temporary.ok()) << temporary.status();
  EXPECT_EQ(temporary->exit_code, 0) << temporary->out << gateway_.process->output();
  EXPECT_THAT(temporary->out, HasSubstr("mqtt5 over wss with sigv4 and a session token: "
                                        "published and received"));
  py = boto3(c["accessKeyId"], c["secretAccessKey"], c["sessionToken"]);
  EXPECT_EQ(py.exit_code, 0) << py.out << py.err;
  EXPECT_THAT(py.out, HasSubstr("ok boto3_iot_data"));
  // The same key id with another user's token is not admitted.
  json other = Ctl().Json({"get-session-token", "--user-name", "someone-else"});
  temporary = testing::Run(
      {"/usr/bin/node", SourcePath("tests/node/device_sdk_sigv4.js"), https_port,
       dir_ + "/ep/ca.pem", "us-east-1", c["accessKeyId"], c["secretAccessKey"], "sigv4-dev",
       other["credentials"]["sessionToken"]},
      {}, absl::Seconds(60));
  ASSERT_TRUE(temporary.ok()) << temporary.status();
  EXPECT_NE(temporary->exit_code, 0) << temporary->out;
  EXPECT_THAT(temporary->out, HasSubstr("FAIL mqtt5: connect"));
}

}  // namespace
}  // namespace fleetcore::e2e
