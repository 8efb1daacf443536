#include "services/shadow/broker_publisher.h"

#include <chrono>

#include "common/log/log.h"
#include "fleetcore/gateway/v1/gateway.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace fleetcore::shadow {

namespace gw = ::fleetcore::gateway::v1;

struct BrokerPublisher::Impl {
  std::unique_ptr<gw::Broker::Stub> stub;
  std::string token;
  prometheus::Counter* sent = nullptr;
  prometheus::Counter* failed = nullptr;
  prometheus::Counter* dropped = nullptr;
  int64_t failures_logged_at_s = 0;
};

BrokerPublisher::BrokerPublisher(std::shared_ptr<grpc::Channel> channel, std::string token,
                                 prometheus::Registry* metrics, size_t max_queued)
    : impl_(std::make_unique<Impl>()), max_queued_(max_queued) {
  impl_->stub = gw::Broker::NewStub(std::move(channel));
  impl_->token = std::move(token);
  if (metrics != nullptr) {
    auto& family = prometheus::BuildCounter()
                       .Name("fleetcore_shadow_messages_total")
                       .Help("MQTT messages (accepted, delta, documents) sent through the "
                             "gateway, by result.")
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

void BrokerPublisher::Drain(absl::Duration timeout) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, absl::ToChronoMilliseconds(timeout),
               [this] { return queue_.empty() && !sending_; });
}

void BrokerPublisher::Run() {
  for (;;) {
    std::pair<std::string, std::string> m;
    {
      std::unique_lock<std::mutex> l(mu_);
      sending_ = false;
      cv_.notify_all();
      cv_.wait(l, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      m = std::move(queue_.front());
      queue_.pop_front();
      sending_ = true;
    }
    gw::PublishRequest req;
    req.set_topic(std::move(m.first));
    req.set_payload(std::move(m.second));
    req.set_qos(1);
    gw::PublishResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!impl_->token.empty()) ctx.AddMetadata("authorization", "Bearer " + impl_->token);
    grpc::Status s = impl_->stub->Publish(&ctx, req, &resp);
    if (s.ok()) {
      if (impl_->sent != nullptr) impl_->sent->Increment();
      continue;
    }
    if (impl_->failed != nullptr) impl_->failed->Increment();
    // One warning a minute at most while the gateway is away.
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    if (now - impl_->failures_logged_at_s >= 60) {
      impl_->failures_logged_at_s = now;
      log::Warn("cannot publish shadow messages through the gateway",
                {{"topic", req.topic()}, {"error", s.error_message()}});
    }
  }
}

}  // namespace fleetcore::shadow
