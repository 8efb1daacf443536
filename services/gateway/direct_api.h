// AWS IoT's data-plane SendDirectMessage on the gateway's HTTP listeners, as the AWS SDKs'
// iot-data clients call it:
//
//   POST /connections/{url-encoded client id}/messages?topic=T&confirmation=true|false&
//        timeout=N&contentType=..&responseTopic=..
//   x-amz-mqtt5-user-properties, -payload-format-indicator, -correlation-data (as publish)
//
// answered 200 {"message":"OK","traceId":"..."} once delivered (services/gateway/
// direct_messages.h), or {"message","traceId"} with 400, 403 (no iot:SendDirectMessage on
// the client, with iot:Topic the topic; or the client may not receive on it), 404 (not
// connected), 413, 429 (its queue is full), 504 (no PUBACK within the timeout).
//
// Thread safety: Handle may be called from any thread; `done` runs once, maybe later.
#pragma once

#include "common/ids/id_generator.h"
#include "services/gateway/connection.h"
#include "services/gateway/direct_messages.h"

namespace fleetcore::gateway {

class DirectApi final : public HttpApi {
 public:
  // Nothing is owned.
  DirectApi(DirectMessages* direct, IdGenerator* ids) : direct_(direct), ids_(ids) {}

  bool Handles(absl::string_view target) const override;
  void Handle(absl::string_view method, absl::string_view target, const HeaderLookup& headers,
              std::string body, const Identity* identity, Done done) override;

 private:
  DirectMessages* direct_;
  IdGenerator* ids_;
};

}  // namespace fleetcore::gateway
