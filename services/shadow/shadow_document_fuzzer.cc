// libFuzzer target: a shadow updated by device payloads. The input is up to three /update
// payloads separated by NUL bytes, applied in turn to a new shadow. Nothing may crash or
// hang, and after every accepted update: the version went up by one, /update/documents'
// current state is the stored state, the delta is published exactly when desired differs
// from reported, and a refused update leaves the shadow as it was. Last, the device
// reports everything desired: then there is no delta.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_split.h"
#include "services/shadow/shadow_document.h"

namespace {

using fleetcore::shadow::StoredShadow;
using json = nlohmann::json;

constexpr int64_t kNow = 1700000000;

json Section(const StoredShadow& s, const char* name) {
  return s.state.is_object() && s.state.contains(name) ? s.state[name] : json(nullptr);
}

void Require(bool ok) {
  if (!ok) std::abort();
}

// Applies `req` and checks what an accepted or refused update must satisfy.
bool Apply(StoredShadow& s, const fleetcore::shadow::UpdateRequest& req) {
  const StoredShadow before = s;
  const int64_t expected_version = fleetcore::shadow::CurrentVersion(s, kNow) + 1;
  absl::StatusOr<fleetcore::shadow::UpdateResult> r =
      fleetcore::shadow::ApplyUpdate(s, req, kNow);
  if (!r.ok()) {
    Require(s.version == before.version && s.state == before.state &&
            s.metadata == before.metadata && s.exists == before.exists);
    const int http = fleetcore::shadow::HttpStatus(r.status());
    Require(http >= 400 && http < 500);
    return false;
  }
  Require(s.exists && s.version == expected_version);
  Require(r->documents["current"]["state"] == s.state);
  Require(r->documents["current"]["version"] == s.version);
  const json delta = fleetcore::shadow::Delta(Section(s, "desired"), Section(s, "reported"));
  Require(r->delta.has_value() == !delta.is_null());
  (void)fleetcore::shadow::GetDocument(s, kNow, req.client_token).dump();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<absl::string_view> payloads = absl::StrSplit(input, absl::MaxSplits('\0', 2));
  StoredShadow s;
  for (absl::string_view payload : payloads) {
    (void)fleetcore::shadow::ParseClientToken(payload);
    absl::StatusOr<fleetcore::shadow::UpdateRequest> req =
        fleetcore::shadow::ParseUpdateRequest(payload);
    if (!req.ok()) {
      const int http = fleetcore::shadow::HttpStatus(req.status());
      Require(http >= 400 && http < 500);
      continue;
    }
    Apply(s, *req);
  }
  // The device reports what is desired: nothing is left to do.
  const json desired = Section(s, "desired");
  if (desired.is_object() && !desired.empty()) {
    fleetcore::shadow::UpdateRequest report{.state = json{{"reported", desired}}};
    if (Apply(s, report)) {
      Require(fleetcore::shadow::Delta(Section(s, "desired"), Section(s, "reported")).is_null());
    }
  }
  const int64_t version = s.version;
  (void)fleetcore::shadow::ApplyDelete(s, kNow, std::nullopt);
  Require(s.version == version && !s.exists);
  return 0;
}
