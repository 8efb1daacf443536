// AWS IoT's quota of one CONNECT a second per client id (--max-connects-per-client-id-per-
// second): two devices that share a client id and reconnect when taken over would otherwise
// take the session from each other as fast as their handshakes go, and a device in a
// reconnect loop would cost a handshake, a ResolvePeer and a session takeover each time.
//
//   ConnectThrottle throttle(absl::Seconds(1));  // one a second
//   if (!throttle.Admit(client_id, now_ms)) refuse with CONNACK 0x9F (3.1.1: 3);
//   throttle.Forget(now_ms);                     // now and then: drops stale entries
//
// A CONNECT that is admitted starts the client id's interval; refused ones do not, so a
// client that retries sooner gets in once the interval after its last admitted CONNECT
// has passed.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fleetcore::gateway {

class ConnectThrottle {
 public:
  explicit ConnectThrottle(absl::Duration interval)
      : interval_ms_(absl::ToInt64Milliseconds(interval)) {}

  bool Admit(absl::string_view client_id, int64_t now_ms);
  // Drops the client ids whose interval is over (they would be admitted anyway).
  void Forget(int64_t now_ms);
  size_t size() const;

 private:
  const int64_t interval_ms_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> last_ms_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleetcore::gateway
