// Fleet provisioning over MQTT, as AWS IoT Core serves it (reference §2): a device connected
// with a claim certificate publishes to
//   $aws/certificates/create/{fmt}                        (CreateKeysAndCertificate)
//   $aws/certificates/create-from-csr/{fmt}               (CreateCertificateFromCsr)
//   $aws/provisioning-templates/{template}/provision/{fmt} (RegisterThing)
// with {fmt} json or cbor (the AWS IoT Device SDK for Embedded C's default), and gets the
// answer, in the request's format, on .../accepted or .../rejected, delivered to its own
// connection only. The CA service does the work; its claim certificate is the connection's.
// Requests over AWS's quotas (ProvisioningLimits) are rejected with 429 before they reach it:
// each costs the CA a signature (and a new key), and a claim certificate is shared by a fleet.
//
// Thread safety: MaybeForward may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "services/gateway/broker.h"

namespace grpc {
class Channel;
}

namespace fleetcore {
class Clock;
}

namespace fleetcore::gateway {

class GatewayMetrics;

// Requests a second this gateway passes on to the CA service, per API, one second's worth at
// once; 0: no limit. The defaults are AWS IoT Core's quotas (per account; here per gateway).
struct ProvisioningLimits {
  int create_keys_and_certificate_per_second = 10;
  int create_certificate_from_csr_per_second = 20;
  int register_thing_per_second = 10;
};

class ProvisioningForwarder {
 public:
  // `metrics` may be null.
  ProvisioningForwarder(std::shared_ptr<grpc::Channel> ca, std::string token, Broker* broker,
                        const ProvisioningLimits& limits, const Clock* clock,
                        GatewayMetrics* metrics);
  ~ProvisioningForwarder();

  // Forwards the message when its topic is a fleet provisioning request
  // (ParseProvisioningTopic).
  void MaybeForward(const MessagePtr& message);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::gateway
