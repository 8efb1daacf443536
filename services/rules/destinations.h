// Topic rule destinations, as AWS IoT's: an http action sends only to a URL that starts
// with the confirmation URL of an ENABLED destination, so a rule cannot send a fleet's data
// to an endpoint whose owner never agreed to receive it.
//
// Creating a destination (or setting it back to IN_PROGRESS) POSTs a confirmation request,
// AWS's, to {confirmationUrl}/?confirmationToken={token}: headers
// x-amz-rules-engine-message-type: DestinationConfirmation and
// x-amz-rules-engine-destination-arn, and a JSON body with arn, confirmationToken, enableUrl
// and messageType. Whoever receives it enables the destination by passing the token to
// Confirm (ConfirmTopicRuleDestination) or by a GET of the enableUrl. A request that cannot
// be delivered leaves the destination in ERROR with the reason. Only the token's SHA-256 is
// stored, and a token confirms once.
//
//   DestinationsCore destinations(&store, &arns, &clock, &ids, &http, {.enable_url_base = b});
//   destinations.Create(request);     // IN_PROGRESS; its confirmation request follows
//   destinations.Confirm(token);      // ENABLED
//
// As on AWS, the confirmation request is sent after the call that made it returns (by
// `sender_threads` threads of the core's own, or by the caller when that is 0): an endpoint
// that is slow or down delays no API call. Requests beyond `max_waiting` are not sent: their
// destinations go to ERROR saying so, and setting them to IN_PROGRESS sends a new one.
//
// No request is lost with the rules service that was to send it. An IN_PROGRESS
// destination's status reason says where its request is: "waiting to send the confirmation
// request", "sending the confirmation request" (a sender claims it just before the POST, a
// compare-and-set that fails when a newer request replaced it, so that one is not sent), then
// "awaiting confirmation" once delivered. Requests still waiting when the core is destroyed
// leave their destinations in ERROR saying the stop interrupted them; ResendUnsent, at start
// and every `sweep_every`, sends those again, and those left waiting or sending for
// `unsent_after` (their rules service crashed or hung), on whichever replica runs it first.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/aws/arn.h"
#include "common/http/http_client.h"
#include "common/ids/id_generator.h"
#include "common/time/clock.h"
#include "fleetcore/rules/v1/rules.pb.h"
#include "services/rules/rules_store.h"

namespace prometheus {
template <typename T>
class Family;
class Counter;
class Registry;
}  // namespace prometheus

namespace fleetcore::rules {

namespace pb = ::fleetcore::rules::v1;

// Whether a destination with `confirmation_url` admits a request to `url`: url starts with
// it, and at a boundary (the whole URL, or followed by /, ? or #, or it ends with /), so
// https://a.example does not admit https://a.example.net.
bool DestinationCovers(absl::string_view confirmation_url, absl::string_view url);

// The destination an http action sends under: its confirmationUrl, or its url without the
// query and fragment.
std::string DestinationUrlOf(const pb::HttpAction& action);

// Every destination in the store, a page at a time.
absl::StatusOr<std::vector<StoredDestination>> AllDestinations(RulesStore* store);

// INVALID_ARGUMENT, naming `where`, unless `url` is an http(s) URL of at most 2000
// characters with a host and no query or fragment.
absl::Status ValidateConfirmationUrl(absl::string_view where, absl::string_view url);

class DestinationsCore {
 public:
  struct Options {
    // The public base of the enableUrl sent in confirmation requests
    // ({base}/confirmdestination/{token}); empty: none is sent.
    std::string enable_url_base;
    absl::Duration confirmation_timeout = absl::Seconds(5);
    // 0: Create, Update and EnsureFor send the request themselves before they return.
    int sender_threads = 2;
    size_t max_waiting = 1000;
    // How long a request may stay waiting or sending before ResendUnsent takes it as lost
    // (far above a request's time in a live replica: the claim before each POST renews it).
    absl::Duration unsent_after = absl::Minutes(1);
    // How often a thread of the core's own runs ResendUnsent; zero: never (tests, and
    // callers that run it themselves).
    absl::Duration sweep_every = absl::ZeroDuration();
  };

  // Nothing is owned; `metrics` may be null.
  DestinationsCore(RulesStore* store, const aws::Arns* arns, const Clock* clock,
                   IdGenerator* ids, http::HttpClient* http, Options options,
                   prometheus::Registry* metrics = nullptr);
  // Joins the senders after the request each is sending; the waiting ones go to ERROR
  // (and ResendUnsent at the next start sends them).
  ~DestinationsCore();
  DestinationsCore(const DestinationsCore&) = delete;
  DestinationsCore& operator=(const DestinationsCore&) = delete;

  absl::StatusOr<pb::TopicRuleDestination> Create(
      const pb::CreateTopicRuleDestinationRequest& request);
  absl::StatusOr<pb::TopicRuleDestination> Get(const std::string& arn);
  absl::StatusOr<pb::ListTopicRuleDestinationsResponse> List(
      const pb::ListTopicRuleDestinationsRequest& request);
  absl::Status Update(const std::string& arn, const std::string& status);
  // INVALID_ARGUMENT when no destination awaits the token. Returns the destination's ARN.
  absl::StatusOr<std::string> Confirm(const std::string& token);
  absl::Status Delete(const std::string& arn);

  // For a rule being created or replaced: each http action whose destination URL
  // (DestinationUrlOf, without a substitution template) no destination covers gets one,
  // IN_PROGRESS, and its confirmation request, as AWS does. Failures are logged: the rule
  // stands, and its http actions fail until a destination covers them.
  void EnsureFor(const pb::TopicRulePayload& payload);

  // Each destination whose request a stop interrupted (ERROR saying so), or that has waited
  // or been sending for `unsent_after`, is IN_PROGRESS again with a new token and request,
  // as if set so by hand. Another replica doing the same at once changes each only once.
  // Returns how many.
  absl::StatusOr<int> ResendUnsent();

 private:
  std::string Arn(absl::string_view id) const;
  absl::StatusOr<StoredDestination> Find(const std::string& arn);
  absl::StatusOr<pb::TopicRuleDestination> Insert(const std::string& confirmation_url);
  // Has the confirmation request sent: now (no senders; `d` goes to ERROR with the
  // destination when it is not delivered), or by a sender.
  void RequestConfirmation(StoredDestination* d, const std::string& token);
  // Claims the request, POSTs it, and records it delivered; when it is not delivered, the
  // destination goes to ERROR (unless it moved on meanwhile) and so does `d`. Nothing is
  // sent when a newer request replaced this one.
  void SendConfirmation(StoredDestination* d, const std::string& token);
  // Moves the destination awaiting `token` from one IN_PROGRESS reason to another; false
  // when it no longer awaits it.
  absl::StatusOr<bool> Advance(StoredDestination* d, const std::string& token, const char* reason);
  // ERROR with `reason`, unless the destination moved on from awaiting `token`.
  void MarkError(StoredDestination* d, const std::string& token, const std::string& reason);
  void Sender();
  void Sweeper();
  pb::TopicRuleDestination ToProto(const StoredDestination& d) const;

  RulesStore* store_;
  const aws::Arns* arns_;
  const Clock* clock_;
  IdGenerator* ids_;
  http::HttpClient* http_;
  Options options_;
  prometheus::Family<prometheus::Counter>* confirmations_ = nullptr;

  struct Waiting {
    StoredDestination destination;
    std::string token;
  };
  std::mutex mu_;
  std::condition_variable cv_;        // wakes the senders
  std::condition_variable sweep_cv_;  // wakes the sweeper to stop
  std::deque<Waiting> waiting_;  // guarded by mu_
  bool stopping_ = false;        // guarded by mu_
  std::vector<std::thread> senders_;
  std::thread sweeper_;
};

}  // namespace fleetcore::rules
