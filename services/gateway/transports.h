// Internal to the listeners: starting a connection on an accepted socket, on the socket's
// I/O thread. Includes Asio, so only listeners.cc, transports.cc and web.cc include it.
#pragma once

#include <string>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "services/gateway/connection.h"
#include "services/gateway/io_thread.h"
#include "services/gateway/tls_context.h"

namespace fleetcore::gateway {

// MQTT over TCP, or over TLS when `tls` is set.
void StartMqttConnection(boost::asio::ip::tcp::socket socket, IoThread* thread,
                         const ConnectionContext& context, TlsContext* tls);

// An HTTP/1.1 connection (over TLS when `tls` is set): WebSocket upgrades on /mqtt become
// MQTT connections; POST /topics/{topic} publishes.
void StartWebConnection(boost::asio::ip::tcp::socket socket, IoThread* thread,
                        const ConnectionContext& context, boost::asio::ssl::context* tls);

// "ip:port" of the peer ("[ip]:port" for IPv6).
std::string RemoteAddress(const boost::asio::ip::tcp::socket& socket);
// "ip:port" of this end: the gateway's address the peer reached.
std::string LocalAddress(const boost::asio::ip::tcp::socket& socket);
// The ip of a RemoteAddress, without brackets.
std::string IpOf(absl::string_view remote_address);
// The client certificate chain of a TLS connection, read once the handshake is done.
PeerCertificates PeerCertificatesOf(SSL* ssl);

}  // namespace fleetcore::gateway
