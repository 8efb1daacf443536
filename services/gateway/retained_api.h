// AWS IoT's data-plane retained-message API on the gateway's HTTP listeners, as the AWS SDKs'
// iot-data clients call it (GetRetainedMessage, ListRetainedMessages):
//
//   GET /retainedMessage/{url-encoded topic}   -> {"topic", "payload" (base64), "qos",
//                                                  "lastModifiedTime" (Unix ms),
//                                                  "userProperties" (base64 of a JSON array)}
//   GET /retainedMessage?maxResults=N&nextToken=T
//                                               -> {"retainedTopics": [{"topic", "payloadSize",
//                                                  "qos", "lastModifiedTime"}], "nextToken"}
//
// Read from the gateway's memory (no Postgres), after iot:GetRetainedMessage on the topic or
// iot:ListRetainedMessages; errors as the publish API's (404 ResourceNotFoundException for no
// retained message, 400, 403, 405).
//
// Thread safety: Handle may be called from any thread and calls `done` before it returns.
#pragma once

#include "services/gateway/broker.h"
#include "services/gateway/connection.h"

namespace fleetcore::gateway {

class RetainedApi final : public HttpApi {
 public:
  explicit RetainedApi(Broker* broker) : broker_(broker) {}

  bool Handles(absl::string_view target) const override;
  void Handle(absl::string_view method, absl::string_view target, const HeaderLookup& headers,
              std::string body, const Identity* identity, Done done) override;

 private:
  Broker* broker_;
};

}  // namespace fleetcore::gateway
