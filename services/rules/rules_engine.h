// Runs the enabled topic rules on the messages the gateway feeds in. A message is matched
// against the rules' FROM filters (or, on a Basic Ingest topic $aws/rules/{name}/..., goes
// to that rule alone), evaluated, and what a rule selects goes to its actions:
//   republish  through the gateway's Broker API ($$aws/... names a reserved topic);
//   postgres   insert or upsert into a table, of the fleetcore database or another;
//   http       POST to a URL with configured headers, retried with backoff, when an ENABLED
//              topic rule destination covers the URL (destinations.h);
//   s3         PUT an object to an S3-compatible endpoint, signed with SigV4.
// An action that still fails after its retries runs the rule's errorAction with AWS's error
// payload. Messages wait in a bounded queue for the evaluating thread, actions in a second
// bounded queue for a pool of action threads (which also evaluate the rules whose SQL reads
// a shadow, get_thing_shadow(), as that waits for the shadow service): beyond either bound work is dropped and
// counted, so a slow or dead target never holds up the gateway or the other rules' intake.
//
//   RulesEngine engine(&store, {.pool = pool, .gateway = channel, .http = &client});
//   engine.Reload();                  // at start and on every rule or destination change
//   engine.Enqueue(message);          // from Ingest
//
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/aws/sigv4.h"
#include "common/db/pg_pool.h"
#include "common/http/http_client.h"
#include "fleetcore/rules/v1/rules.pb.h"
#include "services/rules/rules_store.h"

namespace grpc {
class Channel;
}
namespace prometheus {
class Registry;
}
namespace fleetcore::iotsql {
class ServiceLookups;
}

namespace fleetcore::rules {

namespace pb = ::fleetcore::rules::v1;

class RulesEngine {
 public:
  struct Options {
    // The fleetcore database: postgres actions without a databaseUrl.
    db::PgPool* pool = nullptr;
    // The gateway's Broker API (republish) and its admin token.
    std::shared_ptr<grpc::Channel> gateway;
    std::string gateway_token;
    // Outbound HTTP(S): http and s3 actions.
    http::HttpClient* http = nullptr;
    // Answers get_thing_shadow() in the rules' SQL and templates; null: such calls fail.
    // A rule that calls it is evaluated on an action thread.
    iotsql::ServiceLookups* lookups = nullptr;
    // May be null.
    prometheus::Registry* metrics = nullptr;
    size_t max_queued_messages = 10000;
    size_t max_queued_actions = 10000;
    int action_workers = 4;
    // Attempts of an http or s3 action before it fails (the first plus retries), and the
    // first backoff (doubling).
    int http_attempts = 3;
    absl::Duration http_backoff = absl::Milliseconds(200);
    // s3 actions: the credentials they sign with, and the region of actions naming none.
    aws::Credentials s3_credentials;
    std::string region = "us-east-1";
  };

  RulesEngine(RulesStore* store, Options options);
  ~RulesEngine();
  RulesEngine(const RulesEngine&) = delete;
  RulesEngine& operator=(const RulesEngine&) = delete;

  // Loads the enabled rules and the destinations again (at start, when a rule or a
  // destination changes, and before answering the gateway's ListRuleFilters).
  absl::Status Reload();
  // The FROM filters of the enabled rules (Basic-Ingest-only rules have none).
  std::vector<std::string> Filters() const;
  // Queues a message; false when the queue is full (it is dropped and counted).
  bool Enqueue(pb::InboundMessage message);
  // Waits until both queues are empty and idle, or `timeout` passed.
  void Drain(absl::Duration timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::rules
