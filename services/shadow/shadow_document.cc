#include "services/shadow/shadow_document.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/nesting/nesting.h"
#include "common/status/public_message.h"

namespace fleetcore::shadow {
namespace {

using json = nlohmann::json;

constexpr int64_t kContinuitySeconds = 48 * 3600;
// Levels a request may nest at all (the root, "state", the section, then kMaxDepth).
constexpr int kMaxPayloadNesting = kMaxDepth + 8;

bool ValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// Levels of nesting below a section (the section itself is level 1).
int Depth(const json& v) {
  if (!v.is_object() && !v.is_array()) return 0;
  int deepest = 0;
  for (const json& child : v) deepest = std::max(deepest, Depth(child));
  return 1 + deepest;
}

bool ArrayHasNull(const json& v) {
  if (v.is_array()) {
    for (const json& e : v) {
      if (e.is_null() || ArrayHasNull(e)) return true;
    }
  } else if (v.is_object()) {
    for (const json& e : v) {
      if (ArrayHasNull(e)) return true;
    }
  }
  return false;
}

absl::Status BadRequest(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::Status CheckClientToken(const json& doc, std::optional<std::string>* out) {
  auto it = doc.find("clientToken");
  if (it == doc.end()) return absl::OkStatus();
  if (!it->is_string() || it->get_ref<const std::string&>().size() > kMaxClientTokenBytes ||
      it->get_ref<const std::string&>().empty()) {
    return BadRequest("Invalid clientToken");
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// The metadata of a request value: {"timestamp": now} at every leaf (arrays and nulls are
// leaves), objects mirrored.
json MetadataOf(const json& v, int64_t now_s) {
  if (v.is_object()) {
    json m = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) m[it.key()] = MetadataOf(it.value(), now_s);
    return m;
  }
  return json{{"timestamp", now_s}};
}

// Merges `update` (an object) into `target` and `meta`: null deletes, objects recurse,
// anything else replaces. Objects left empty are removed.
void Merge(json& target, json& meta, const json& update, int64_t now_s) {
  for (auto it = update.begin(); it != update.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    if (value.is_null()) {
      target.erase(key);
      meta.erase(key);
    } else if (value.is_object()) {
      json& child = target[key];
      json& child_meta = meta[key];
      if (!child.is_object()) {
        // A leaf (or nothing) becomes an object: its leaf timestamp goes too.
        child = json::object();
        child_meta = json::object();
      } else if (!child_meta.is_object()) {
        child_meta = json::object();
      }
      Merge(child, child_meta, value, now_s);
      if (child.empty()) {
        target.erase(key);
        meta.erase(key);
      }
    } else {
      target[key] = value;
      meta[key] = json{{"timestamp", now_s}};
    }
  }
}

// The metadata of the delta: the desired metadata along the delta's keys.
json DeltaMetadata(const json& delta, const json& desired_meta) {
  json out = json::object();
  for (auto it = delta.begin(); it != delta.end(); ++it) {
    auto m = desired_meta.find(it.key());
    if (m == desired_meta.end()) continue;
    if (it.value().is_object() && m->is_object()) {
      out[it.key()] = DeltaMetadata(it.value(), *m);
    } else {
      out[it.key()] = *m;
    }
  }
  return out;
}

json Section(const json& doc, const char* name) {
  auto it = doc.find(name);
  return it == doc.end() ? json() : *it;
}

json FullDocument(const StoredShadow& s) {
  return json{{"state", s.state}, {"metadata", s.metadata}, {"version", s.version}};
}

}  // namespace

absl::StatusOr<UpdateRequest> ParseUpdateRequest(absl::string_view payload) {
  if (payload.size() > kMaxRequestBytes) {
    return absl::ResourceExhaustedError("The payload exceeds the maximum size allowed");
  }
  if (!ValidUtf8(payload)) {
    return absl::FailedPreconditionError(
        "Unsupported documented encoding; supported encoding is UTF-8");
  }
  // The state may nest kMaxDepth levels below "state"; anything much deeper is refused
  // before the parser and the checks below recurse through it.
  if (!nesting::JsonNestingWithin(payload, kMaxPayloadNesting)) {
    return BadRequest("JSON contains too many levels of nesting; maximum is 6");
  }
  json doc = json::parse(payload.begin(), payload.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return BadRequest("Invalid JSON");
  UpdateRequest req;
  if (absl::Status s = CheckClientToken(doc, &req.client_token); !s.ok()) return s;
  if (auto v = doc.find("version"); v != doc.end()) {
    if (!v->is_number_integer()) return BadRequest("Invalid version");
    req.version = v->get<int64_t>();
  }
  auto state = doc.find("state");
  if (state == doc.end()) return BadRequest("Missing required node: state");
  if (state->is_null()) {
    // A null state clears both sections; the shadow stays.
    req.state = json{{"desired", nullptr}, {"reported", nullptr}};
    return req;
  }
  if (!state->is_object()) return BadRequest("State node must be an object");
  for (auto it = state->begin(); it != state->end(); ++it) {
    if (it.key() != "desired" && it.key() != "reported") {
      return BadRequest("State contains an invalid node");
    }
    if (!it.value().is_null() && !it.value().is_object()) {
      return BadRequest(it.key() == "desired" ? "Desired node must be an object"
                                              : "Reported node must be an object");
    }
    if (Depth(it.value()) > kMaxDepth) {
      return BadRequest("JSON contains too many levels of nesting; maximum is 6");
    }
    if (ArrayHasNull(it.value())) return BadRequest("Invalid JSON");
  }
  req.state = std::move(*state);
  return req;
}

absl::StatusOr<std::optional<std::string>> ParseClientToken(absl::string_view payload) {
  std::optional<std::string> token;
  if (payload.empty() || !ValidUtf8(payload) ||
      !nesting::JsonNestingWithin(payload, kMaxPayloadNesting)) {
    return token;
  }
  json doc = json::parse(payload.begin(), payload.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return token;
  if (absl::Status s = CheckClientToken(doc, &token); !s.ok()) return s;
  return token;
}

int64_t CurrentVersion(const StoredShadow& stored, int64_t now_s) {
  if (!stored.exists && stored.deleted_at_s > 0 &&
      now_s - stored.deleted_at_s > kContinuitySeconds) {
    return 0;
  }
  return stored.version;
}

json Delta(const json& desired, const json& reported) {
  if (!desired.is_object()) return json();
  json out = json::object();
  for (auto it = desired.begin(); it != desired.end(); ++it) {
    const json* r = nullptr;
    if (reported.is_object()) {
      auto found = reported.find(it.key());
      if (found != reported.end()) r = &*found;
    }
    if (it.value().is_object() && r != nullptr && r->is_object()) {
      json sub = Delta(it.value(), *r);
      if (!sub.is_null()) out[it.key()] = std::move(sub);
    } else if (r == nullptr || *r != it.value()) {
      // nlohmann compares numbers by value (1 == 1.0) and arrays as wholes.
      out[it.key()] = it.value();
    }
  }
  return out.empty() ? json() : out;
}

absl::StatusOr<UpdateResult> ApplyUpdate(StoredShadow& stored, const UpdateRequest& req,
                                         int64_t now_s) {
  const int64_t current = CurrentVersion(stored, now_s);
  if (req.version.has_value() && *req.version != current) {
    return absl::AbortedError("Version conflict");
  }
  StoredShadow next = stored;
  if (!stored.exists) {
    next.state = json::object();
    next.metadata = json::object();
  }
  json accepted_meta = json::object();
  for (const char* section : {"desired", "reported"}) {
    auto it = req.state.find(section);
    if (it == req.state.end()) continue;
    accepted_meta[section] = MetadataOf(*it, now_s);
    if (it->is_null()) {
      next.state.erase(section);
      next.metadata.erase(section);
      continue;
    }
    json& target = next.state[section];
    json& meta = next.metadata[section];
    if (!target.is_object()) target = json::object();
    if (!meta.is_object()) meta = json::object();
    Merge(target, meta, *it, now_s);
    if (target.empty()) {
      next.state.erase(section);
      next.metadata.erase(section);
    }
  }
  if (next.state.dump().size() > kMaxStateBytes) {
    return absl::ResourceExhaustedError("The payload exceeds the maximum size allowed");
  }
  next.version = current + 1;
  next.exists = true;
  next.deleted_at_s = 0;

  UpdateResult r;
  r.accepted = json{{"state", req.state},
                    {"metadata", accepted_meta},
                    {"version", next.version},
                    {"timestamp", now_s}};
  r.documents = json{{"current", FullDocument(next)}, {"timestamp", now_s}};
  if (stored.exists) r.documents["previous"] = FullDocument(stored);
  json delta = Delta(Section(next.state, "desired"), Section(next.state, "reported"));
  if (!delta.is_null()) {
    json delta_meta = DeltaMetadata(delta, Section(next.metadata, "desired"));
    r.delta = json{{"state", std::move(delta)},
                   {"metadata", std::move(delta_meta)},
                   {"version", next.version},
                   {"timestamp", now_s}};
  }
  if (req.client_token.has_value()) {
    r.accepted["clientToken"] = *req.client_token;
    r.documents["clientToken"] = *req.client_token;
    if (r.delta) (*r.delta)["clientToken"] = *req.client_token;
  }
  stored = std::move(next);
  return r;
}

json GetDocument(const StoredShadow& stored, int64_t now_s,
                 const std::optional<std::string>& client_token) {
  json state = stored.state;
  json metadata = stored.metadata;
  json delta = Delta(Section(stored.state, "desired"), Section(stored.state, "reported"));
  if (!delta.is_null()) {
    metadata["delta"] = DeltaMetadata(delta, Section(stored.metadata, "desired"));
    state["delta"] = std::move(delta);
  }
  json out{{"state", std::move(state)},
           {"metadata", std::move(metadata)},
           {"version", stored.version},
           {"timestamp", now_s}};
  if (client_token.has_value()) out["clientToken"] = *client_token;
  return out;
}

json ApplyDelete(StoredShadow& stored, int64_t now_s,
                 const std::optional<std::string>& client_token) {
  json out{{"version", stored.version}, {"timestamp", now_s}};
  if (client_token.has_value()) out["clientToken"] = *client_token;
  stored.exists = false;
  stored.deleted_at_s = now_s;
  stored.state = json::object();
  stored.metadata = json::object();
  return out;
}

int HttpStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 413;
    case absl::StatusCode::kFailedPrecondition: return 415;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return 503;
    default: return 500;
  }
}

json ErrorDocument(const absl::Status& status, int64_t now_s,
                   const std::optional<std::string>& client_token) {
  const int code = HttpStatus(status);
  json out{{"code", code}, {"message", PublicMessage(status)}, {"timestamp", now_s}};
  if (client_token.has_value()) out["clientToken"] = *client_token;
  return out;
}

absl::Status NoShadow(absl::string_view thing_name, absl::string_view shadow_name) {
  return absl::NotFoundError(absl::StrCat("No shadow exists with name: '",
                                          shadow_name.empty() ? thing_name : shadow_name, "'"));
}

absl::Status ValidateNames(absl::string_view thing_name, absl::string_view shadow_name) {
  auto ok_chars = [](absl::string_view s, bool dollar) {
    for (char c : s) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == ':' || c == '_' || c == '-' ||
                      (dollar && c == '$');
      if (!ok) return false;
    }
    return true;
  };
  if (thing_name.empty() || thing_name.size() > 128 || !ok_chars(thing_name, false)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Invalid thing name '", thing_name,
                     "': 1 to 128 characters of a-z, A-Z, 0-9, ':', '_' and '-'"));
  }
  if (shadow_name.size() > 64 || !ok_chars(shadow_name, true)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Invalid shadow name '", shadow_name,
                     "': 1 to 64 characters of a-z, A-Z, 0-9, ':', '_', '-' and '$'"));
  }
  return absl::OkStatus();
}

std::string TopicPrefix(absl::string_view thing_name, absl::string_view shadow_name) {
  if (shadow_name.empty()) return absl::StrCat("$aws/things/", thing_name, "/shadow");
  return absl::StrCat("$aws/things/", thing_name, "/shadow/name/", shadow_name);
}

}  // namespace fleetcore::shadow
