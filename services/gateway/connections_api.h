// AWS IoT's data-plane connection management on the gateway's HTTP listeners, as the AWS
// SDKs' iot-data clients call it (reference 7.12), each allowed by its policy action on
// `client/{clientId}`:
//
//   GET    /connections/{clientId}?includeSocketInformation=true|false     iot:GetConnection
//          -> {"clientId", "connected", "cleanSession", "keepAliveDuration", "thingName",
//              "connectedSince" | "disconnectedSince" (Unix ms) and "disconnectReason",
//              "sessionExpiry", "sourceIp", "sourcePort", "targetIp", "targetPort" (with
//              includeSocketInformation)}
//   GET    /connections/{clientId}/subscriptions?maxResults=N&nextToken=T  iot:ListSubscriptions
//          -> {"subscriptions": [{"topicFilter", "qos"}], "nextToken"}
//   DELETE /connections/{clientId}?cleanSession=..&preventWillMessage=..  iot:DeleteConnection
//   POST   /connections/{clientId}/messages?topic=T&confirmation=..&timeout=N&contentType=..&
//          responseTopic=..  (+ the x-amz-mqtt5-* headers)  iot:SendDirectMessage, with
//          iot:Topic the topic (services/gateway/direct_messages.h)
//          -> {"message": "OK", "traceId"}
//
// A client held by another gateway replica is answered for through it. Errors as the
// publish API's ({"message", "traceId"}, AWS's x-amzn-ErrorType): 400, 403, 404 (no
// connection and no session; for a direct message, not connected), 405, 413, and for a
// direct message 429 (the client's queue is full) and 504 (no PUBACK within the timeout).
//
// Thread safety: Handle may be called from any thread; `done` runs once, maybe later.
#pragma once

#include "common/ids/id_generator.h"
#include "services/gateway/connection.h"
#include "services/gateway/direct_messages.h"
#include "services/gateway/gateway_service.h"

namespace fleetcore::gateway {

class ConnectionsApi final : public HttpApi {
 public:
  // Nothing is owned; `metrics` (refusals by action) may be null.
  ConnectionsApi(GatewayService* service, DirectMessages* direct, IdGenerator* ids,
                 GatewayMetrics* metrics = nullptr)
      : service_(service), direct_(direct), ids_(ids), metrics_(metrics) {}

  bool Handles(absl::string_view target) const override;
  void Handle(absl::string_view method, absl::string_view target, const HeaderLookup& headers,
              std::string body, const Identity* identity, Done done) override;

 private:
  GatewayService* service_;
  DirectMessages* direct_;
  IdGenerator* ids_;
  GatewayMetrics* metrics_;
};

}  // namespace fleetcore::gateway
