#include "common/grpc/client.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/config/flag_set.h"
#include "grpcpp/grpcpp.h"

namespace fleetcore::grpc_util {

absl::StatusOr<ServiceChannel> ServiceChannel::Create(const ClientOptions& options) {
  if (options.target.empty()) {
    return absl::InvalidArgumentError("no endpoint given for the gRPC client");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!options.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    auto ca = config::ReadFile(options.tls_ca_file, "TLS CA bundle");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (!options.tls_cert_file.empty()) {
      auto cert = config::ReadFile(options.tls_cert_file, "TLS client certificate");
      if (!cert.ok()) return cert.status();
      auto key = config::ReadFile(options.tls_key_file, "TLS client key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  ServiceChannel ch;
  grpc::ChannelArguments args;
  // Reconnect quickly after a peer restarts instead of backing off for minutes.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  ch.channel_ = grpc::CreateCustomChannel(options.target, creds, args);
  ch.token_ = options.token;
  ch.timeout_ = options.timeout;
  return ch;
}

std::unique_ptr<grpc::ClientContext> ServiceChannel::NewContext(
    std::optional<absl::Duration> timeout) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout.value_or(timeout_))));
  if (!token_.empty()) {
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  }
  return ctx;
}

}  // namespace fleetcore::grpc_util
