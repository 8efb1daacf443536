#include "services/rules/destinations.h"

#include <openssl/rand.h>

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/aws/sigv4.h"
#include "common/log/log.h"
#include "common/pagination/page_token.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace fleetcore::rules {
namespace {

constexpr char kInProgress[] = "IN_PROGRESS";
constexpr char kEnabled[] = "ENABLED";
constexpr char kDisabled[] = "DISABLED";
constexpr char kError[] = "ERROR";
// The ARN's resource: ruledestination/http/{id}.
constexpr char kArnType[] = "ruledestination";
constexpr char kArnPrefix[] = "http/";
// Where an IN_PROGRESS destination's confirmation request is (destinations.h).
constexpr char kWaitingReason[] = "waiting to send the confirmation request";
constexpr char kSendingReason[] = "sending the confirmation request";
constexpr char kAwaitingReason[] = "awaiting confirmation";
// The status reason of a destination whose request a stopping rules service did not send;
// ResendUnsent looks for it.
constexpr char kStoppedReason[] =
    "the rules service stopped before it sent the confirmation request; set the status to "
    "IN_PROGRESS to send another";

// 32 random bytes, base64url: the confirmation token.
absl::StatusOr<std::string> NewToken() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    return absl::InternalError("no random bytes for a confirmation token");
  }
  std::string token = absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
  OPENSSL_cleanse(raw, sizeof(raw));
  return token;
}

google::protobuf::Timestamp Timestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

}  // namespace

bool DestinationCovers(absl::string_view confirmation_url, absl::string_view url) {
  if (confirmation_url.empty() || !absl::StartsWith(url, confirmation_url)) return false;
  if (url.size() == confirmation_url.size() || confirmation_url.back() == '/') return true;
  const char next = url[confirmation_url.size()];
  return next == '/' || next == '?' || next == '#';
}

std::string DestinationUrlOf(const pb::HttpAction& action) {
  if (!action.confirmation_url().empty()) return action.confirmation_url();
  absl::string_view url = action.url();
  return std::string(url.substr(0, url.find_first_of("?#")));
}

absl::StatusOr<std::vector<StoredDestination>> AllDestinations(RulesStore* store) {
  constexpr int kPage = 500;
  std::vector<StoredDestination> all;
  for (std::string after;;) {
    absl::StatusOr<std::vector<StoredDestination>> page = store->ListDestinations(after, kPage);
    if (!page.ok()) return page.status();
    for (StoredDestination& d : *page) all.push_back(std::move(d));
    if (page->size() < kPage) return all;
    after = all.back().id;
  }
}

absl::Status ValidateConfirmationUrl(absl::string_view where, absl::string_view url) {
  auto invalid = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
  };
  if (!absl::StartsWith(url, "https://") && !absl::StartsWith(url, "http://")) {
    return invalid("must be an http:// or https:// URL");
  }
  if (url.size() > 2000) return invalid("is over 2000 characters");
  if (url.find_first_of("?#") != absl::string_view::npos) {
    return invalid("must not have a query or fragment (the confirmation request adds one)");
  }
  absl::StatusOr<http::Url> parsed = http::ParseUrl(url);
  if (!parsed.ok() || parsed->host.empty()) return invalid("has no host");
  return absl::OkStatus();
}

DestinationsCore::DestinationsCore(RulesStore* store, const aws::Arns* arns, const Clock* clock,
                                   IdGenerator* ids, http::HttpClient* http, Options options,
                                   prometheus::Registry* metrics)
    : store_(store),
      arns_(arns),
      clock_(clock),
      ids_(ids),
      http_(http),
      options_(std::move(options)) {
  if (metrics != nullptr) {
    confirmations_ = &prometheus::BuildCounter()
                          .Name("fleetcore_rules_destination_confirmations_total")
                          .Help(
                              "Topic rule destination confirmation requests by result: sent "
                              "(delivered), failed (not delivered: the destination is in "
                              "ERROR), confirmed (its token came back), refused (a token "
                              "no destination awaits), resent (one a stop or a crash left "
                              "unsent, made again)")
                          .Register(*metrics);
  }
  for (int i = 0; i < options_.sender_threads; ++i) senders_.emplace_back([this] { Sender(); });
  if (options_.sweep_every > absl::ZeroDuration()) sweeper_ = std::thread([this] { Sweeper(); });
}

DestinationsCore::~DestinationsCore() {
  std::deque<Waiting> unsent;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    unsent.swap(waiting_);
  }
  cv_.notify_all();
  sweep_cv_.notify_all();
  for (Waiting& w : unsent) MarkError(&w.destination, w.token, kStoppedReason);
  for (std::thread& t : senders_) t.join();
  if (sweeper_.joinable()) sweeper_.join();
}

void DestinationsCore::Sweeper() {
  std::unique_lock<std::mutex> l(mu_);
  while (!sweep_cv_.wait_for(l, absl::ToChronoMilliseconds(options_.sweep_every),
                             [this] { return stopping_; })) {
    l.unlock();
    absl::StatusOr<int> resent = ResendUnsent();
    if (!resent.ok()) {
      log::Warn("topic rule destinations: unsent confirmation requests not looked for",
                {{"error", resent.status()}});
    }
    l.lock();
  }
}

void DestinationsCore::Sender() {
  for (;;) {
    Waiting w;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stopping_ || !waiting_.empty(); });
      if (waiting_.empty()) return;
      w = std::move(waiting_.front());
      waiting_.pop_front();
    }
    SendConfirmation(&w.destination, w.token);
  }
}

void DestinationsCore::RequestConfirmation(StoredDestination* d, const std::string& token) {
  if (senders_.empty()) {
    SendConfirmation(d, token);
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) {
      // (The sweeper, resending as the core stops.)
      return MarkError(d, token, kStoppedReason);
    }
    if (waiting_.size() < options_.max_waiting) {
      waiting_.push_back({*d, token});
      cv_.notify_one();
      return;
    }
  }
  if (confirmations_ != nullptr) confirmations_->Add({{"result", "failed"}}).Increment();
  log::Warn("topic rule destination: confirmation request not sent, too many are waiting",
            {{"destination", Arn(d->id)}, {"waiting", options_.max_waiting}});
  MarkError(d, token,
            absl::StrCat("the confirmation request was not sent: ", options_.max_waiting,
                         " others were waiting to be; set the status to IN_PROGRESS to send "
                         "another"));
}

std::string DestinationsCore::Arn(absl::string_view id) const {
  return arns_->Make(kArnType, absl::StrCat(kArnPrefix, id));
}

pb::TopicRuleDestination DestinationsCore::ToProto(const StoredDestination& d) const {
  pb::TopicRuleDestination out;
  out.set_arn(Arn(d.id));
  out.set_status(d.status);
  out.set_status_reason(d.status_reason);
  out.mutable_http_url_properties()->set_confirmation_url(d.confirmation_url);
  *out.mutable_created_at() = Timestamp(d.created_at);
  *out.mutable_last_updated_at() = Timestamp(d.updated_at);
  return out;
}

absl::StatusOr<StoredDestination> DestinationsCore::Find(const std::string& arn) {
  std::optional<std::string> resource = arns_->ParseResource(arn, kArnType);
  std::optional<StoredDestination> d;
  if (resource.has_value() && absl::StartsWith(*resource, kArnPrefix)) {
    absl::StatusOr<std::optional<StoredDestination>> got =
        store_->GetDestination(absl::string_view(*resource).substr(sizeof(kArnPrefix) - 1));
    if (!got.ok()) return got.status();
    d = *std::move(got);
  }
  if (!d.has_value()) {
    return absl::NotFoundError(absl::StrCat("no topic rule destination ", arn, " (ARNs are ",
                                            Arn("<id>"), ")"));
  }
  return *std::move(d);
}

absl::StatusOr<bool> DestinationsCore::Advance(StoredDestination* d, const std::string& token,
                                               const char* reason) {
  const std::string hash = aws::Sha256Hex(token);
  absl::StatusOr<bool> changed = store_->ChangeDestination(d->id, {.expected_status = kInProgress,
                                                                   .expected_token_sha256 = hash,
                                                                   .status = kInProgress,
                                                                   .status_reason = reason,
                                                                   .token_sha256 = hash});
  if (!changed.ok()) return changed.status();
  if (*changed) d->status_reason = reason;
  return *changed;
}

void DestinationsCore::SendConfirmation(StoredDestination* d, const std::string& token) {
  const std::string arn = Arn(d->id);
  // The claim: not sent when a newer request replaced this one, nor while the store cannot
  // say (ResendUnsent sends it once the store answers again).
  absl::StatusOr<bool> claimed = Advance(d, token, kSendingReason);
  if (!claimed.ok()) {
    log::Warn(
        "topic rule destination: confirmation request not sent now, its claim cannot be "
        "recorded; it is sent again within two minutes of the store's return",
        {{"destination", arn}, {"error", claimed.status()}});
    return;
  }
  if (!*claimed) {
    log::Info(
        "topic rule destination: confirmation request not sent, the destination no "
        "longer awaits it (a newer request replaced it, or it was deleted)",
        {{"destination", arn}});
    return;
  }
  nlohmann::json body = {{"arn", arn},
                         {"confirmationToken", token},
                         {"messageType", "DestinationConfirmation"}};
  if (!options_.enable_url_base.empty()) {
    body["enableUrl"] = absl::StrCat(options_.enable_url_base, "/confirmdestination/", token);
  }
  http::Request req{
      .method = "POST",
      .url = absl::StrCat(d->confirmation_url, absl::EndsWith(d->confirmation_url, "/") ? "" : "/",
                          "?confirmationToken=", token),
      .headers = {{"content-type", "application/json"},
                  {"x-amz-rules-engine-message-type", "DestinationConfirmation"},
                  {"x-amz-rules-engine-destination-arn", arn}},
      .body = body.dump(),
      .timeout = options_.confirmation_timeout};
  absl::StatusOr<http::Response> r = http_->Send(req);
  std::string failure;
  if (!r.ok()) {
    failure = std::string(r.status().message());
  } else if (r->status < 200 || r->status >= 300) {
    failure = absl::StrCat("HTTP ", r->status);
  }
  if (failure.empty()) {
    // Not recorded (the store is away): left "sending", it is sent again after a minute.
    if (absl::StatusOr<bool> r = Advance(d, token, kAwaitingReason); !r.ok()) {
      log::Warn("topic rule destination: delivered confirmation request not recorded",
                {{"destination", arn}, {"error", r.status()}});
    }
    if (confirmations_ != nullptr) confirmations_->Add({{"result", "sent"}}).Increment();
    log::Info("topic rule destination: confirmation request sent",
              {{"destination", arn}, {"confirmation_url", d->confirmation_url}});
    return;
  }
  if (confirmations_ != nullptr) confirmations_->Add({{"result", "failed"}}).Increment();
  log::Warn("topic rule destination: confirmation request not delivered",
            {{"destination", arn}, {"confirmation_url", d->confirmation_url}, {"error", failure}});
  MarkError(d, token,
            absl::StrCat("the confirmation request to ", d->confirmation_url, " failed: ",
                         failure, "; set the status to IN_PROGRESS to send another"));
}

void DestinationsCore::MarkError(StoredDestination* d, const std::string& token,
                                 const std::string& reason) {
  absl::StatusOr<bool> changed =
      store_->ChangeDestination(d->id, {.expected_status = kInProgress,
                                        .expected_token_sha256 = aws::Sha256Hex(token),
                                        .status = kError,
                                        .status_reason = reason});
  if (!changed.ok()) {
    log::Warn("topic rule destination: ERROR not recorded",
              {{"destination", Arn(d->id)}, {"reason", reason}, {"error", changed.status()}});
  } else if (*changed) {
    d->status = kError;
    d->status_reason = reason;
    d->updated_at = clock_->Now();
  }
}

absl::StatusOr<pb::TopicRuleDestination> DestinationsCore::Insert(
    const std::string& confirmation_url) {
  absl::StatusOr<std::string> token = NewToken();
  if (!token.ok()) return token.status();
  const absl::Time now = clock_->Now();
  StoredDestination d{.id = ids_->NewUuid(),
                      .confirmation_url = confirmation_url,
                      .status = kInProgress,
                      .status_reason = kWaitingReason,
                      .created_at = now,
                      .updated_at = now};
  if (absl::Status s = store_->InsertDestination(d, aws::Sha256Hex(*token)); !s.ok()) return s;
  RequestConfirmation(&d, *token);
  return ToProto(d);
}

absl::StatusOr<pb::TopicRuleDestination> DestinationsCore::Create(
    const pb::CreateTopicRuleDestinationRequest& request) {
  const std::string& url =
      request.destination_configuration().http_url_configuration().confirmation_url();
  if (absl::Status s = ValidateConfirmationUrl(
          "destinationConfiguration.httpUrlConfiguration.confirmationUrl", url);
      !s.ok()) {
    return s;
  }
  return Insert(url);
}

absl::StatusOr<pb::TopicRuleDestination> DestinationsCore::Get(const std::string& arn) {
  absl::StatusOr<StoredDestination> d = Find(arn);
  if (!d.ok()) return d.status();
  return ToProto(*d);
}

absl::StatusOr<pb::ListTopicRuleDestinationsResponse> DestinationsCore::List(
    const pb::ListTopicRuleDestinationsRequest& request) {
  absl::StatusOr<int> limit = pagination::ResolveMaxResults(request.max_results(), 50, 250);
  if (!limit.ok()) return limit.status();
  constexpr char kQuery[] = "destinations";
  absl::StatusOr<std::string> after = pagination::DecodePageToken(request.next_token(), kQuery);
  if (!after.ok()) return after.status();
  absl::StatusOr<std::vector<StoredDestination>> rows =
      store_->ListDestinations(*after, *limit + 1);
  if (!rows.ok()) return rows.status();
  pb::ListTopicRuleDestinationsResponse out;
  for (size_t i = 0; i < rows->size() && i < static_cast<size_t>(*limit); ++i) {
    const StoredDestination& d = (*rows)[i];
    pb::TopicRuleDestinationSummary* summary = out.add_destination_summaries();
    summary->set_arn(Arn(d.id));
    summary->set_status(d.status);
    summary->set_status_reason(d.status_reason);
    summary->mutable_http_url_summary()->set_confirmation_url(d.confirmation_url);
    *summary->mutable_created_at() = Timestamp(d.created_at);
    *summary->mutable_last_updated_at() = Timestamp(d.updated_at);
  }
  if (rows->size() > static_cast<size_t>(*limit)) {
    out.set_next_token(pagination::EncodePageToken((*rows)[*limit - 1].id, kQuery));
  }
  return out;
}

absl::Status DestinationsCore::Update(const std::string& arn, const std::string& status) {
  if (status != kEnabled && status != kDisabled && status != kInProgress) {
    return absl::InvalidArgumentError(
        absl::StrCat("status \"", status, "\": ENABLED, DISABLED or IN_PROGRESS"));
  }
  absl::StatusOr<StoredDestination> d = Find(arn);
  if (!d.ok()) return d.status();
  DestinationChange change{.expected_status = d->status, .status = status};
  std::string token;
  if (status == kEnabled && d->status != kDisabled) {
    return absl::FailedPreconditionError(absl::StrCat(
        "destination ", arn, " is ", d->status,
        ": only a DISABLED destination can be enabled; an IN_PROGRESS one is enabled by "
        "confirming it (ConfirmTopicRuleDestination, or a GET of the enableUrl its "
        "confirmation request carries), an ERROR one is sent a new request by setting it to "
        "IN_PROGRESS"));
  }
  if (status == kDisabled && d->status != kEnabled) {
    return absl::FailedPreconditionError(absl::StrCat(
        "destination ", arn, " is ", d->status, ": only an ENABLED destination can be disabled"));
  }
  if (status == kInProgress) {
    absl::StatusOr<std::string> t = NewToken();
    if (!t.ok()) return t.status();
    token = *std::move(t);
    change.status_reason = kWaitingReason;
    change.token_sha256 = aws::Sha256Hex(token);
  }
  absl::StatusOr<bool> changed = store_->ChangeDestination(d->id, change);
  if (!changed.ok()) return changed.status();
  if (!*changed) {
    return absl::AbortedError(
        absl::StrCat("destination ", arn, " changed while it was being updated; try again"));
  }
  if (status == kInProgress) {
    d->status = kInProgress;
    d->status_reason = kWaitingReason;
    RequestConfirmation(&*d, token);
  }
  log::Info("topic rule destination updated", {{"destination", arn}, {"status", d->status}});
  return absl::OkStatus();
}

absl::StatusOr<int> DestinationsCore::ResendUnsent() {
  absl::StatusOr<std::vector<StoredDestination>> all = AllDestinations(store_);
  if (!all.ok()) return all.status();
  const absl::Time now = clock_->Now();
  int resent = 0;
  for (StoredDestination& d : *all) {
    const bool interrupted = d.status == kError && d.status_reason == kStoppedReason;
    const bool lost = d.status == kInProgress &&
                      (d.status_reason == kWaitingReason || d.status_reason == kSendingReason) &&
                      now - d.updated_at >= options_.unsent_after;
    if (!interrupted && !lost) continue;
    absl::StatusOr<std::string> token = NewToken();
    if (!token.ok()) return token.status();
    // Only from what was read: a request claimed, delivered or replaced meanwhile (here or
    // on another replica) is left alone.
    absl::StatusOr<bool> changed =
        store_->ChangeDestination(d.id, {.expected_status = d.status,
                                         .expected_status_reason = d.status_reason,
                                         .status = kInProgress,
                                         .status_reason = kWaitingReason,
                                         .token_sha256 = aws::Sha256Hex(*token)});
    if (!changed.ok()) return changed.status();
    if (!*changed) continue;
    log::Info(interrupted ? "topic rule destination: sending the confirmation request a stop "
                            "interrupted"
                          : "topic rule destination: sending again a confirmation request "
                            "left unsent (its rules service ended before it was delivered)",
              {{"destination", Arn(d.id)}, {"was", d.status_reason}});
    d.status = kInProgress;
    d.status_reason = kWaitingReason;
    if (confirmations_ != nullptr) confirmations_->Add({{"result", "resent"}}).Increment();
    RequestConfirmation(&d, *token);
    ++resent;
  }
  return resent;
}

absl::StatusOr<std::string> DestinationsCore::Confirm(const std::string& token) {
  if (token.empty() || token.size() > 2048) {
    return absl::InvalidArgumentError("confirmationToken: 1 to 2048 characters");
  }
  absl::StatusOr<std::optional<StoredDestination>> d =
      store_->ConfirmDestination(aws::Sha256Hex(token));
  if (!d.ok()) return d.status();
  if (!d->has_value()) {
    if (confirmations_ != nullptr) confirmations_->Add({{"result", "refused"}}).Increment();
    return absl::InvalidArgumentError(
        "no topic rule destination awaits this confirmation token: it is not one fleetcore "
        "sent, was used already, or a newer confirmation request replaced it");
  }
  if (confirmations_ != nullptr) confirmations_->Add({{"result", "confirmed"}}).Increment();
  const std::string arn = Arn((*d)->id);
  log::Info("topic rule destination confirmed",
            {{"destination", arn}, {"confirmation_url", (*d)->confirmation_url}});
  return arn;
}

absl::Status DestinationsCore::Delete(const std::string& arn) {
  absl::StatusOr<StoredDestination> d = Find(arn);
  if (!d.ok()) return d.status();
  absl::StatusOr<bool> existed = store_->DeleteDestination(d->id);
  if (!existed.ok()) return existed.status();
  if (!*existed) return absl::NotFoundError(absl::StrCat("no topic rule destination ", arn));
  log::Info("topic rule destination deleted",
            {{"destination", arn}, {"confirmation_url", d->confirmation_url}});
  return absl::OkStatus();
}

void DestinationsCore::EnsureFor(const pb::TopicRulePayload& payload) {
  std::vector<std::string> urls;
  auto add = [&urls](const pb::Action& a) {
    if (!a.has_http()) return;
    std::string url = DestinationUrlOf(a.http());
    if (!absl::StrContains(url, "${")) urls.push_back(std::move(url));
  };
  for (const pb::Action& a : payload.actions()) add(a);
  if (payload.has_error_action()) add(payload.error_action());
  if (urls.empty()) return;
  absl::StatusOr<std::vector<StoredDestination>> existing = AllDestinations(store_);
  if (!existing.ok()) {
    log::Warn("topic rule destinations not created for a rule's http actions",
              {{"error", existing.status()}});
    return;
  }
  std::vector<std::string> known;
  for (const StoredDestination& d : *existing) known.push_back(d.confirmation_url);
  for (const std::string& url : urls) {
    bool covered = false;
    for (const std::string& k : known) covered = covered || DestinationCovers(k, url);
    if (covered) continue;
    absl::StatusOr<pb::TopicRuleDestination> d = Insert(url);
    if (d.ok()) {
      log::Info("topic rule destination created for a rule's http action",
                {{"destination", d->arn()}, {"confirmation_url", url}, {"status", d->status()}});
      known.push_back(url);
    } else if (!absl::IsAlreadyExists(d.status())) {
      log::Warn("topic rule destination not created for a rule's http action",
                {{"confirmation_url", url}, {"error", d.status()}});
    }
  }
}

}  // namespace fleetcore::rules
