// Fleet provisioning over MQTT, as AWS IoT Core serves it (reference §2): a device connected
// with a claim certificate publishes to
//   $aws/certificates/create/{fmt}                        (CreateKeysAndCertificate)
//   $aws/certificates/create-from-csr/{fmt}               (CreateCertificateFromCsr)
//   $aws/provisioning-templates/{template}/provision/{fmt} (RegisterThing)
// with {fmt} json or cbor (the AWS IoT Device SDK for Embedded C's default), and gets the
// answer, in the request's format, on .../accepted or .../rejected, delivered to its own
// connection only. The CA service does the work; its claim certificate is the connection's.
//
// Thread safety: MaybeForward may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "services/gateway/broker.h"

namespace grpc {
class Channel;
}

namespace fleetcore::gateway {

class ProvisioningForwarder {
 public:
  ProvisioningForwarder(std::shared_ptr<grpc::Channel> ca, std::string token, Broker* broker);
  ~ProvisioningForwarder();

  // Forwards the message when its topic is a fleet provisioning request
  // (ParseProvisioningTopic).
  void MaybeForward(const MessagePtr& message);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::gateway
