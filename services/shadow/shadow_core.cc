#include "services/shadow/shadow_core.h"

#include "absl/strings/str_cat.h"
#include "common/pagination/page_token.h"

namespace fleetcore::shadow {

absl::StatusOr<std::string> ShadowCore::Get(const ShadowKey& key,
                                            const std::optional<std::string>& token) {
  if (absl::Status s = ValidateNames(key.thing_name, key.shadow_name); !s.ok()) return s;
  absl::StatusOr<StoredShadow> stored = store_->Get(key);
  if (!stored.ok()) return stored.status();
  if (!stored->exists) return NoShadow(key.thing_name, key.shadow_name);
  return GetDocument(*stored, NowSeconds(), token).dump();
}

absl::StatusOr<std::string> ShadowCore::Update(const ShadowKey& key, absl::string_view payload) {
  if (absl::Status s = ValidateNames(key.thing_name, key.shadow_name); !s.ok()) return s;
  absl::StatusOr<UpdateRequest> req = ParseUpdateRequest(payload);
  if (!req.ok()) return req.status();
  UpdateResult result;
  const int64_t now = NowSeconds();
  absl::Status s = store_->Modify(key, [&](StoredShadow& stored) -> absl::Status {
    absl::StatusOr<UpdateResult> r = ApplyUpdate(stored, *req, now);
    if (!r.ok()) return r.status();
    result = std::move(*r);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  const std::string prefix = TopicPrefix(key.thing_name, key.shadow_name);
  std::string accepted = result.accepted.dump();
  std::vector<Publisher::Message> messages;
  messages.reserve(3);
  messages.emplace_back(prefix + "/update/accepted", accepted);
  if (result.delta) messages.emplace_back(prefix + "/update/delta", result.delta->dump());
  messages.emplace_back(prefix + "/update/documents", result.documents.dump());
  publisher_->PublishAll(std::move(messages));
  return accepted;
}

absl::StatusOr<std::string> ShadowCore::Delete(const ShadowKey& key,
                                               const std::optional<std::string>& token) {
  if (absl::Status s = ValidateNames(key.thing_name, key.shadow_name); !s.ok()) return s;
  std::string answer;
  const int64_t now = NowSeconds();
  absl::Status s = store_->Modify(key, [&](StoredShadow& stored) -> absl::Status {
    if (!stored.exists) return NoShadow(key.thing_name, key.shadow_name);
    answer = ApplyDelete(stored, now, token).dump();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  publisher_->Publish(TopicPrefix(key.thing_name, key.shadow_name) + "/delete/accepted", answer);
  return answer;
}

absl::StatusOr<ListPage> ShadowCore::ListNamed(absl::string_view thing_name,
                                               absl::string_view next_token, int page_size) {
  if (absl::Status s = ValidateNames(thing_name, ""); !s.ok()) return s;
  absl::StatusOr<int> limit = pagination::ResolveMaxResults(page_size, 25, 100);
  if (!limit.ok()) return limit.status();
  const std::string query = absl::StrCat("named-shadows:", thing_name);
  absl::StatusOr<std::string> after = pagination::DecodePageToken(next_token, query);
  if (!after.ok()) return after.status();
  absl::StatusOr<std::vector<std::string>> names =
      store_->ListNamed(thing_name, *after, *limit + 1);
  if (!names.ok()) return names.status();
  ListPage page;
  page.timestamp = NowSeconds();
  if (static_cast<int>(names->size()) > *limit) {
    names->resize(static_cast<size_t>(*limit));
    page.next_token = pagination::EncodePageToken(names->back(), query);
  }
  page.results = std::move(*names);
  return page;
}

}  // namespace fleetcore::shadow
