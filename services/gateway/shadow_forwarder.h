// The shadow's MQTT surface: requests published to $aws/things/T/shadow[/name/S]/get,
// /update and /delete go to the shadow service, and its answers come back on the
// /accepted and /rejected topics, as AWS IoT Core does. The shadow service itself
// publishes update/accepted, update/delta, update/documents and delete/accepted (so
// changes made over gRPC reach devices too); this publishes get/accepted and the
// rejections.
//
// Requests run asynchronously on gRPC's threads: a publisher never waits for them. Each
// shadow takes at most `max_requests_per_shadow` a second (AWS's quota: 20), get, update and
// delete together over MQTT and HTTPS, and each thing as many list requests; one over it is
// rejected with 429 before it reaches the shadow service.
//
// Thread safety: Forward may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "services/gateway/broker.h"
#include "services/gateway/connection.h"

namespace grpc {
class Channel;
}

namespace fleetcore::gateway {

class GatewayMetrics;

class ShadowForwarder final : public HttpApi {
 public:
  // `channel` reaches the shadow service; `token` is its admin token;
  // `max_requests_per_shadow` 0: no limit. Nothing is owned but the stub.
  ShadowForwarder(std::shared_ptr<grpc::Channel> channel, std::string token, Broker* broker,
                  GatewayMetrics* metrics, int max_requests_per_shadow);
  ~ShadowForwarder() override;

  // Forwards the message when its topic is a shadow request; else does nothing.
  void MaybeForward(const MessagePtr& message);

  // The REST API (reference §1.11) on the HTTP listeners: GET, POST, DELETE
  // /things/{thing}/shadow?name={shadow} and
  // GET /api/things/shadow/ListNamedShadowsForThing/{thing}?nextToken=..&pageSize=..
  // Handles says whether `target` is one of those paths; Handle calls `done(status, body)`
  // once, on a gRPC thread, with AWS's status code and document (or error document).
  bool Handles(absl::string_view target) const override;
  void Handle(absl::string_view method, absl::string_view target, const HeaderLookup& headers,
              std::string body, const Identity* identity, Done done) override;

 private:
  struct Impl;
  void Answer(const std::string& topic, std::string payload);
  // Whether the request is within the quota of `key` (ShadowKey); counts and logs one over.
  bool Admit(const std::string& key, absl::string_view operation);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::gateway
