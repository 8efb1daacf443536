// Reads the protocols a TLS ClientHello offers by ALPN, before the handshake, so one port
// can serve both MQTT (ALPN "x-amzn-mqtt-ca" or "mqtt", as AWS IoT Core's 443) and HTTPS and
// MQTT over WebSocket (no ALPN, or "http/1.1").
//
//   ClientHello hello = ParseClientHello(bytes_peeked_so_far);
//   if (hello.status == ClientHello::kIncomplete) peek more;
//
// Pure: bytes in, result out. Thread safety: none needed.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fleetcore::gateway {

struct ClientHello {
  enum Status {
    kIncomplete,  // more bytes are needed (the first record is not all there yet)
    kParsed,
    kNotTls,      // not a TLS handshake: let the TLS stack refuse it
  };
  Status status = kIncomplete;
  std::vector<std::string> alpn;  // the protocols offered, in the client's order
};

// `data` is what the client sent first (its first TLS record, at least in part).
ClientHello ParseClientHello(absl::string_view data);

// Whether a connection offering `alpn` speaks MQTT (AWS's x-amzn-mqtt-ca or mqtt).
bool OffersMqtt(const ClientHello& hello);

}  // namespace fleetcore::gateway
