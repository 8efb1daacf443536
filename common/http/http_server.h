// A small HTTP/1.1 server for the few plain endpoints services expose besides gRPC and
// /metrics (the CA's /crl). One thread, one request per connection, bounded waits and
// request sizes; not for high request rates.
//
//   FLEETCORE_ASSIGN_OR_RETURN(auto server, HttpServer::Start("127.0.0.1:9180",
//       [&](const ServerRequest& r) { return ServerResponse{200, "text/plain", "ok"}; }));
//
// Thread safety: the handler runs on the server's thread, one request at a time.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetcore::http {

struct ServerRequest {
  std::string method;
  std::string target;  // path and query
};

struct ServerResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<ServerResponse(const ServerRequest&)>;

  // Listens on `address` (host:port; port 0 picks one). FAILED_PRECONDITION when the port
  // is taken.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(absl::string_view address,
                                                           Handler handler);
  ~HttpServer();  // stops accepting and joins the thread

  int port() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::http
