// The device shadow's document rules, as AWS IoT Core applies them (reference §1): request
// validation with AWS's exact error strings, the deep merge of an update, per-leaf metadata
// timestamps, the delta, and the response documents. Pure: no I/O, no clock.
//
//   FLEETCORE_ASSIGN_OR_RETURN(UpdateRequest req, ParseUpdateRequest(payload));
//   UpdateResult r = ApplyUpdate(stored, req, now_seconds);   // stored becomes the new state
//   publish(r.accepted), publish(r.documents), if (r.delta) publish(*r.delta)
//
// Errors carry AWS's message; HttpStatus() gives the code AWS answers with:
//   INVALID_ARGUMENT 400, NOT_FOUND 404, ABORTED 409 ("Version conflict"),
//   RESOURCE_EXHAUSTED 413, FAILED_PRECONDITION 415 (not UTF-8), UNAVAILABLE and
//   DEADLINE_EXCEEDED 503, any other 500.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fleetcore::shadow {

// AWS's limits (reference §1.9).
inline constexpr size_t kMaxStateBytes = 8 * 1024;  // desired + reported, metadata excluded
inline constexpr size_t kMaxRequestBytes = 128 * 1024;
inline constexpr int kMaxDepth = 8;  // levels below state, counting desired/reported as 1
inline constexpr size_t kMaxClientTokenBytes = 64;

// A shadow as stored. `exists` is false for one never written or deleted; a deleted one
// keeps its version (and deleted_at_s) so a re-creation within 48 hours continues it.
struct StoredShadow {
  nlohmann::json state = nlohmann::json::object();     // {"desired":{..},"reported":{..}}
  nlohmann::json metadata = nlohmann::json::object();  // the same shape, {"timestamp":s} leaves
  int64_t version = 0;
  bool exists = false;
  int64_t deleted_at_s = 0;  // when deleted; 0 when not
};

struct UpdateRequest {
  // The request's state: "desired"/"reported" each absent, null or an object.
  nlohmann::json state;
  std::optional<int64_t> version;
  std::optional<std::string> client_token;
};

struct UpdateResult {
  nlohmann::json accepted;   // /update/accepted
  nlohmann::json documents;  // /update/documents
  std::optional<nlohmann::json> delta;  // /update/delta, when desired differs from reported
};

// Validates an /update payload (or REST POST body).
absl::StatusOr<UpdateRequest> ParseUpdateRequest(absl::string_view payload);
// The clientToken of a /get or /delete payload (its content is otherwise ignored; an
// empty or non-JSON payload has none). INVALID_ARGUMENT for a bad clientToken.
absl::StatusOr<std::optional<std::string>> ParseClientToken(absl::string_view payload);

// The version an update would create from `stored` at `now_s` (deleted more than 48 hours
// ago: numbering starts again).
int64_t CurrentVersion(const StoredShadow& stored, int64_t now_s);

// Applies a validated request to `stored` (which becomes the new shadow) and builds the
// answers. ABORTED "Version conflict" when req.version differs from the current version;
// RESOURCE_EXHAUSTED when the resulting state is over 8 KB. On error `stored` is unchanged.
absl::StatusOr<UpdateResult> ApplyUpdate(StoredShadow& stored, const UpdateRequest& req,
                                         int64_t now_s);

// The /get/accepted document (state with delta, metadata, version, timestamp, clientToken).
nlohmann::json GetDocument(const StoredShadow& stored, int64_t now_s,
                           const std::optional<std::string>& client_token);

// Deletes: `stored` keeps its version; the /delete/accepted document.
nlohmann::json ApplyDelete(StoredShadow& stored, int64_t now_s,
                           const std::optional<std::string>& client_token);

// The delta of desired over reported (null when they agree).
nlohmann::json Delta(const nlohmann::json& desired, const nlohmann::json& reported);

// An error document for /rejected topics and REST bodies. The service's own failures
// (UNAVAILABLE and DEADLINE_EXCEEDED: 503; INTERNAL and the like: 500) say only "Service
// Unavailable" or "Internal service failure" (PublicMessage): devices are not told what is
// behind the service.
nlohmann::json ErrorDocument(const absl::Status& status, int64_t now_s,
                             const std::optional<std::string>& client_token);
int HttpStatus(const absl::Status& status);

// "No shadow exists with name: 'NAME'" (the classic shadow is named by its thing).
absl::Status NoShadow(absl::string_view thing_name, absl::string_view shadow_name);

// Thing names: 1-128 of [a-zA-Z0-9:_-]; shadow names: 1-64 of [$a-zA-Z0-9:_-] (empty: the
// classic shadow).
absl::Status ValidateNames(absl::string_view thing_name, absl::string_view shadow_name);

// The MQTT topic prefix: $aws/things/T/shadow or $aws/things/T/shadow/name/S.
std::string TopicPrefix(absl::string_view thing_name, absl::string_view shadow_name);

}  // namespace fleetcore::shadow
