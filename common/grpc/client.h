// Channels from one fleetcore process to another service (or from fleetctl), with the
// admin token attached and a default deadline on every call, so no call waits forever.
//
//   FLEETCORE_ASSIGN_OR_RETURN(auto ch, ServiceChannel::Create({.target = "127.0.0.1:6051",
//                                                               .token = token}));
//   auto stub = registry::v1::Registry::NewStub(ch.channel());
//   auto ctx = ch.NewContext();
//   grpc::Status s = stub->DescribeThing(ctx.get(), req, &resp);
//
// Thread safety: a ServiceChannel is immutable; channels and contexts are gRPC's.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace fleetcore::grpc_util {

struct ClientOptions {
  std::string target;  // host:port
  // TLS: verify the server against this CA bundle. Empty: plaintext.
  std::string tls_ca_file;
  // Mutual TLS: the client's certificate chain and key.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Sent as "authorization: Bearer <token>" when not empty.
  std::string token;
  absl::Duration timeout = absl::Seconds(10);
};

class ServiceChannel {
 public:
  static absl::StatusOr<ServiceChannel> Create(const ClientOptions& options);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // A context with the token and a deadline of `timeout` (default: the options' timeout).
  std::unique_ptr<grpc::ClientContext> NewContext(
      std::optional<absl::Duration> timeout = std::nullopt) const;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
  absl::Duration timeout_;
};

}  // namespace fleetcore::grpc_util
