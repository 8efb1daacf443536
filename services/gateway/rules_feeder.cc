#include "services/gateway/rules_feeder.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "common/log/log.h"
#include "common/log/throttle.h"
#include "common/mqtt/topic_tree.h"
#include "fleetcore/rules/v1/rules.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace fleetcore::gateway {

namespace rpb = ::fleetcore::rules::v1;

namespace {

constexpr auto kRefreshEvery = std::chrono::seconds(60);
constexpr auto kRetryEvery = std::chrono::seconds(2);

// The rules' principal() of a certificate is its id, not its ARN.
std::string RulesPrincipal(const std::string& principal) {
  const size_t cert = principal.find(":cert/");
  if (absl::StartsWith(principal, "arn:") && cert != std::string::npos) {
    return principal.substr(cert + 6);
  }
  return principal;
}

}  // namespace

struct RulesFeeder::Impl {
  std::unique_ptr<rpb::Rules::Stub> rules;
  std::string token;
  Options options;

  // The filters as a trie, replaced whole on every refresh; null until the first answer.
  std::mutex filters_mu;
  std::shared_ptr<const mqtt::TopicTree> filters;
  std::atomic<bool> any_filter{false};
  log::Throttle full_log{absl::Seconds(10)};
  bool fetch_failing = false;  // sender thread only: log a failure once, not every retry

  std::mutex mu;
  std::condition_variable cv;
  std::deque<MessagePtr> queue;
  bool refresh = true;
  bool stopping = false;
  std::thread sender;

  prometheus::Family<prometheus::Counter>* results = nullptr;
  prometheus::Gauge* filter_count = nullptr;
  prometheus::Gauge* depth = nullptr;

  void Count(const char* result, double n = 1) {
    if (results != nullptr && n > 0) results->Add({{"result", result}}).Increment(n);
  }

  bool Matches(absl::string_view topic) {
    if (absl::StartsWith(topic, "$aws/rules/")) return true;
    if (!any_filter.load(std::memory_order_relaxed)) return false;
    std::shared_ptr<const mqtt::TopicTree> tree;
    {
      std::lock_guard<std::mutex> l(filters_mu);
      tree = filters;
    }
    bool hit = false;
    tree->Match(topic, [&hit](uint64_t, const mqtt::SubscriptionOptions&) { hit = true; });
    return hit;
  }

  grpc::Status Fetch() {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!token.empty()) c.AddMetadata("authorization", "Bearer " + token);
    rpb::ListRuleFiltersResponse resp;
    grpc::Status s = rules->ListRuleFilters(&c, rpb::ListRuleFiltersRequest{}, &resp);
    if (!s.ok()) return s;
    auto tree = std::make_shared<mqtt::TopicTree>();
    uint64_t i = 0;
    for (const std::string& f : resp.filters()) tree->Subscribe(f, "", ++i, {});
    {
      std::lock_guard<std::mutex> l(filters_mu);
      filters = std::move(tree);
    }
    any_filter.store(i > 0);
    if (filter_count != nullptr) filter_count->Set(static_cast<double>(i));
    return s;
  }

  void Send(std::vector<MessagePtr>& batch) {
    rpb::IngestRequest req;
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    for (const MessagePtr& m : batch) {
      rpb::InboundMessage* in = req.add_messages();
      in->set_topic(m->topic);
      in->set_payload(m->payload);
      if (m->publisher != nullptr) {
        in->set_client_id(m->publisher->client_id);
        in->set_principal(RulesPrincipal(m->publisher->principal));
        in->set_source_ip(m->publisher->source_ip);
      }
      in->set_timestamp_ms(m->published_at_ms != 0 ? m->published_at_ms : now_ms);
      rpb::MessageProperties* props = in->mutable_properties();
      if (m->payload_format_indicator) props->set_utf8_payload(*m->payload_format_indicator == 1);
      if (m->content_type) props->set_content_type(*m->content_type);
      if (m->response_topic) props->set_response_topic(*m->response_topic);
      if (m->correlation_data) props->set_correlation_data(*m->correlation_data);
      for (const mqtt::UserProperty& p : m->user_properties) {
        rpb::MqttUserProperty* out = props->add_user_properties();
        out->set_key(p.key);
        out->set_value(p.value);
      }
    }
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!token.empty()) c.AddMetadata("authorization", "Bearer " + token);
    rpb::IngestResponse resp;
    grpc::Status s = rules->Ingest(&c, req, &resp);
    if (s.ok()) {
      Count("sent", resp.queued());
      Count("dropped", resp.dropped());
    } else {
      Count("dropped", static_cast<double>(batch.size()));
      log::Warn("messages for the rules dropped: the rules service did not take them",
                {{"messages", batch.size()}, {"error", s.error_message()}});
    }
    batch.clear();
  }

  void Run() {
    std::vector<MessagePtr> batch;
    auto next_refresh = std::chrono::steady_clock::now();
    for (;;) {
      bool do_refresh = false;
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait_until(l, next_refresh, [this] { return stopping || refresh || !queue.empty(); });
        if (stopping) return;
        do_refresh = refresh || std::chrono::steady_clock::now() >= next_refresh;
        refresh = false;
        while (!queue.empty() && batch.size() < options.max_batch) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        if (depth != nullptr) depth->Set(static_cast<double>(queue.size()));
      }
      if (do_refresh) {
        grpc::Status s = Fetch();
        next_refresh = std::chrono::steady_clock::now() + (s.ok() ? kRefreshEvery : kRetryEvery);
        if (!s.ok() && !fetch_failing) {
          log::Warn("rule filters not fetched; retrying every 2 s",
                    {{"error", s.error_message()}, {"code", static_cast<int>(s.error_code())}});
        } else if (s.ok() && fetch_failing) {
          log::Info("rule filters fetched");
        }
        fetch_failing = !s.ok();
      }
      if (!batch.empty()) Send(batch);
    }
  }
};

RulesFeeder::RulesFeeder(std::shared_ptr<grpc::Channel> channel, std::string token,
                         prometheus::Registry* metrics, Options options)
    : impl_(std::make_unique<Impl>()) {
  impl_->rules = rpb::Rules::NewStub(std::move(channel));
  impl_->token = std::move(token);
  impl_->options = options;
  if (metrics != nullptr) {
    impl_->results = &prometheus::BuildCounter()
                          .Name("fleetcore_gateway_rules_messages_total")
                          .Help("Messages for the rules engine, by result: sent (queued by the "
                                "rules service) or dropped (a full queue here or there, or the "
                                "rules service unreachable).")
                          .Register(*metrics);
    impl_->filter_count = &prometheus::BuildGauge()
                               .Name("fleetcore_gateway_rule_filters")
                               .Help("Distinct FROM filters of the enabled topic rules.")
                               .Register(*metrics)
                               .Add({});
    impl_->depth = &prometheus::BuildGauge()
                        .Name("fleetcore_gateway_rules_queue_depth")
                        .Help("Messages waiting to be sent to the rules service.")
                        .Register(*metrics)
                        .Add({});
  }
  impl_->sender = std::thread([this] { impl_->Run(); });
}

RulesFeeder::~RulesFeeder() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->sender.join();
}

void RulesFeeder::MaybeFeed(const MessagePtr& message) {
  if (!impl_->Matches(message->topic)) return;
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    if (impl_->queue.size() >= impl_->options.max_queued) {
      impl_->Count("dropped");
      if (uint64_t n = 0; impl_->full_log.Allow(&n)) {
        log::Warn("messages for the rules dropped: the queue to the rules service is full",
                  {{"dropped", n}, {"queue", impl_->options.max_queued}});
      }
      return;
    }
    impl_->queue.push_back(message);
  }
  impl_->cv.notify_one();
}

void RulesFeeder::Refresh() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->refresh = true;
  }
  impl_->cv.notify_one();
}

}  // namespace fleetcore::gateway
