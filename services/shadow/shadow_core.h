// The shadow service's rules over a store: get, update, delete, list, and the MQTT
// messages every change sends devices (through a Publisher, the gateway's Broker API).
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/broker/publisher.h"
#include "common/time/clock.h"
#include "services/shadow/shadow_store.h"

namespace fleetcore::shadow {

// Sends a message to MQTT subscribers. Best effort: a change is stored whether or not its
// messages go out (a failure is logged and counted by the implementation).
using Publisher = broker::Publisher;

struct ListPage {
  std::vector<std::string> results;
  std::string next_token;
  int64_t timestamp = 0;
};

class ShadowCore {
 public:
  ShadowCore(ShadowStore* store, Publisher* publisher, const Clock* clock)
      : store_(store), publisher_(publisher), clock_(clock) {}

  // The /get/accepted document.
  absl::StatusOr<std::string> Get(const ShadowKey& key, const std::optional<std::string>& token);
  // The /update/accepted document; publishes accepted, documents and delta.
  absl::StatusOr<std::string> Update(const ShadowKey& key, absl::string_view payload);
  // The /delete/accepted document; publishes it.
  absl::StatusOr<std::string> Delete(const ShadowKey& key, const std::optional<std::string>& token);
  absl::StatusOr<ListPage> ListNamed(absl::string_view thing_name, absl::string_view next_token,
                                     int page_size);

 private:
  int64_t NowSeconds() const { return absl::ToUnixSeconds(clock_->Now()); }

  ShadowStore* store_;
  Publisher* publisher_;
  const Clock* clock_;
};

}  // namespace fleetcore::shadow
