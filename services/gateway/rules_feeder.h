// The rules engine's feed: every published message whose topic matches the FROM filter of
// some enabled topic rule, and every Basic Ingest message ($aws/rules/{rule}/...), is sent
// to the rules service's Ingest, with the publisher's client id and principal. The filters
// come from the rules service (ListRuleFilters) at start, whenever a rule changes (the
// fleetcore_rules NOTIFY: Refresh) and every minute.
//
// A publisher never waits: MaybeFeed matches the topic against a trie of the filters and
// queues the message; one sender thread sends batches. When the rules service is slow or
// down and the queue is full, messages are dropped and counted
// (fleetcore_gateway_rules_messages_total{result="dropped"}).
//
// Thread safety: MaybeFeed and Refresh may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "services/gateway/message.h"

namespace grpc {
class Channel;
}
namespace prometheus {
class Registry;
}

namespace fleetcore::gateway {

class RulesFeeder {
 public:
  struct Options {
    size_t max_queued = 10000;
    size_t max_batch = 500;
  };
  // `channel` reaches the rules service; `token` is its admin token; `metrics` may be null.
  RulesFeeder(std::shared_ptr<grpc::Channel> channel, std::string token,
              prometheus::Registry* metrics, Options options);
  ~RulesFeeder();

  // Queues `message` for the rules when its topic is Basic Ingest or matches a filter.
  void MaybeFeed(const MessagePtr& message);
  // Fetches the filters again (soon, on the sender thread).
  void Refresh();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetcore::gateway
