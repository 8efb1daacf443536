// The policy service's domain types: plain values, no gRPC or Postgres types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/pagination/page_token.h"

namespace fleetcore::policy_service {

struct PolicyInfo {
  std::string name;
  int default_version = 1;
  int next_version = 2;
  int64_t generation = 1;
  absl::Time created_at;
  absl::Time updated_at;
};

struct PolicyVersionRecord {
  std::string policy;
  int version = 1;
  std::string document;
  absl::Time created_at;
};

// A policy's default version as it applies to a target.
struct AttachedPolicy {
  std::string policy;
  int version = 1;
  std::string document;
  std::string target;  // the certificate or thing-group ARN it is attached to
};

struct Authorizer {
  std::string name;
  std::string function_url;
  std::string token_key_name;
  std::map<std::string, std::string> public_keys;  // name -> PEM
  bool active = true;
  bool signing_disabled = false;
  bool caching_for_http = false;
  bool is_default = false;
  absl::Time created_at;
  absl::Time updated_at;
};

// An access key for SigV4, as an IAM user's: the secret only sealed (SecretBox).
struct AccessKey {
  std::string id;  // AKIA + 16 base32 characters
  std::string user_name;
  std::string sealed_secret;
  bool active = true;
  absl::Time created_at;
};

// Announced on the fleetcore_policy NOTIFY channel, naming what it affects, so caches drop
// exactly that: e.g. {"type":"policy.attached","policy":"p","target":"arn:...:cert/..."}.
struct PolicyEvent {
  std::string type;
  std::string policy;
  std::string target;
  std::string authorizer;
  std::string access_key;
};

inline constexpr char kPolicyChannel[] = "fleetcore_policy";

struct PageRequest {
  std::string marker;
  int page_size = 0;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_marker;
};

// One page from a store read that returned up to `limit` + 1 items: the first `limit`, and
// when there were more, the marker that continues after the last of them (`key` gives an
// item's name in the marker; `query` is what the marker is bound to).
template <typename T, typename KeyFn>
Page<T> PageOf(std::vector<T> items, int limit, absl::string_view query, KeyFn key) {
  Page<T> page;
  if (static_cast<int>(items.size()) > limit) {
    items.resize(static_cast<size_t>(limit));
    page.next_marker = pagination::EncodePageToken(key(items.back()), query);
  }
  page.items = std::move(items);
  return page;
}

}  // namespace fleetcore::policy_service
