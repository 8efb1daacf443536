#include "common/broker/broker_publisher.h"

#include <chrono>

#include "common/log/log.h"
#include "fleetcore/gateway/v1/gateway.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace fleetcore::broker {

namespace gw = ::fleetcore::gateway::v1;

struct BrokerPublisher::Impl {
  std::unique_ptr<gw::Broker::Stub> stub;
  std::string token;
  std::string what;
  prometheus::Counter* sent = nullptr;
  prometheus::Counter* failed = nullptr;
  prometheus::Counter* dropped = nullptr;
  int64_t failures_logged_at_s = 0;
};

BrokerPublisher::BrokerPublisher(std::shared_ptr<grpc::Channel> channel, std::string token,
                                 prometheus::Registry* metrics, Options options)
    : impl_(std::make_unique<Impl>()), max_queued_(options.max_queued) {
  impl_->stub = gw::Broker::NewStub(std::move(channel));
  impl_->token = std::move(token);
  impl_->what = std::move(options.what);
  if (metrics != nullptr) {
    auto& family = prometheus::BuildCounter()
                       .Name(options.metric_name)
                       .Help(options.metric_help)
                       .Register(*metrics);
    impl_->sent = &family.Add({{"result", "sent"}});
    impl_->failed = &family.Add({{"result", "failed"}});
    impl_->dropped = &family.Add({{"result", "dropped"}});
  }
  thread_ = std::thread([this] { Run(); });
}

BrokerPublisher::~BrokerPublisher() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BrokerPublisher::Publish(std::string topic, std::string payload) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (queue_.size() >= max_queued_) {
      if (impl_->dropped != nullptr) impl_->dropped->Increment();
      return;
    }
    queue_.emplace_back(std::move(topic), std::move(payload));
  }
  cv_.notify_all();
}

void BrokerPublisher::PublishAll(std::vector<Message> messages) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (queue_.size() + messages.size() > max_queued_) {
      if (impl_->dropped != nullptr) impl_->dropped->Increment(static_cast<double>(messages.size()));
      return;
    }
    for (Message& m : messages) queue_.push_back(std::move(m));
  }
  cv_.notify_all();
}

void BrokerPublisher::Drain(absl::Duration timeout) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, absl::ToChronoMilliseconds(timeout),
               [this] { return queue_.empty() && !sending_; });
}

void BrokerPublisher::Run() {
  constexpr size_t kMaxBatch = 500;
  for (;;) {
    gw::PublishBatchRequest req;
    {
      std::unique_lock<std::mutex> l(mu_);
      sending_ = false;
      cv_.notify_all();
      cv_.wait(l, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      // Everything waiting goes in one call, in order.
      while (!queue_.empty() && static_cast<size_t>(req.messages_size()) < kMaxBatch) {
        gw::PublishRequest* m = req.add_messages();
        m->set_topic(std::move(queue_.front().first));
        m->set_payload(std::move(queue_.front().second));
        m->set_qos(1);
        queue_.pop_front();
      }
      sending_ = true;
    }
    gw::PublishBatchResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    // A gateway that is starting is waited for, within the deadline.
    ctx.set_wait_for_ready(true);
    if (!impl_->token.empty()) ctx.AddMetadata("authorization", "Bearer " + impl_->token);
    grpc::Status s = impl_->stub->PublishBatch(&ctx, req, &resp);
    const int n = req.messages_size();
    if (s.ok()) {
      if (impl_->sent != nullptr) impl_->sent->Increment(n - resp.refused_size());
      if (impl_->failed != nullptr) impl_->failed->Increment(resp.refused_size());
      if (resp.refused_size() > 0) {
        log::Warn("the gateway refused one of the " + impl_->what,
                  {{"topic", req.messages(resp.refused(0).index()).topic()},
                   {"error", resp.refused(0).reason()}});
      }
      continue;
    }
    if (impl_->failed != nullptr) impl_->failed->Increment(n);
    // One warning a minute at most while the gateway is away.
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    if (now - impl_->failures_logged_at_s >= 60) {
      impl_->failures_logged_at_s = now;
      log::Warn("cannot publish " + impl_->what + " through the gateway",
                {{"messages", n}, {"error", s.error_message()}});
    }
  }
}

}  // namespace fleetcore::broker
