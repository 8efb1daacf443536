// The gateway's listeners. Each accepts on one I/O thread and hands every new connection
// to the I/O threads in turn, where it lives until it closes.
//   mqtt   MQTT over TCP (development; 1883)
//   mqtts  MQTT over TLS (8883)
//   http   WebSocket (ws://host/mqtt) and HTTP publish (POST /topics/{topic}) in clear
//   https  the same over TLS: wss://host/mqtt and HTTPS publish (AWS: 443 and 8443)
//
// Thread safety: Start and Stop from one thread (main); the rest runs on I/O threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/gateway/connection.h"
#include "services/gateway/io_thread.h"
#include "services/gateway/tls_context.h"

namespace fleetcore::gateway {

class Listener {
 public:
  enum class Kind { kMqtt, kMqtts, kHttp, kHttps };

  // Binds `address` (host:port; port 0 picks one). FAILED_PRECONDITION when the port is
  // taken. `tls` is needed by kMqtts and kHttps and must outlive the listener, as must
  // `threads` and what `context` points to.
  static absl::StatusOr<std::unique_ptr<Listener>> Start(Kind kind, const std::string& address,
                                                         std::vector<IoThread*> threads,
                                                         const ConnectionContext& context,
                                                         TlsContext* tls);
  ~Listener();

  int port() const;
  // Stops accepting; open connections stay.
  void Stop();

  struct Impl;

 private:
  explicit Listener(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

const char* ListenerKindName(Listener::Kind kind);

}  // namespace fleetcore::gateway
