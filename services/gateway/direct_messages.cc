#include "services/gateway/direct_messages.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/mqtt/codec.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"
#include "services/gateway/cluster.h"
#include "services/gateway/gateway_service.h"

namespace fleetcore::gateway {
namespace {

constexpr int kMaxTimeoutSeconds = 60;
constexpr int kDefaultTimeoutSeconds = 10;

// How long a send waits for its PUBACK; zero: it does not.
absl::Duration ConfirmWithin(const v1::SendDirectMessageRequest& r) {
  if (!r.confirmation()) return absl::ZeroDuration();
  return absl::Seconds(r.timeout_seconds() > 0 ? r.timeout_seconds() : kDefaultTimeoutSeconds);
}

}  // namespace

absl::Status CheckApiClientId(absl::string_view client_id) {
  if (client_id.empty() || client_id.size() > 128 || client_id[0] == '$' ||
      !mqtt::ValidUtf8(client_id)) {
    return absl::InvalidArgumentError(
        "clientId must be 1 to 128 characters of UTF-8 that do not start with $");
  }
  return absl::OkStatus();
}

// One send waiting for its PUBACK: answered once, by the PUBACK, the end of the client's
// connection, the timer or Stop.
class DirectMessages::Waiting final : public DeliveryReceipt {
 public:
  Waiting(std::string client_id, Done done, prometheus::Counter* confirmed,
          prometheus::Counter* lost)
      : client_id_(std::move(client_id)),
        done_(std::move(done)),
        confirmed_(confirmed),
        lost_(lost) {}

  void Acknowledged() override { Answer(absl::OkStatus(), confirmed_); }
  // As for no PUBACK in time (AWS's GatewayTimeoutException: not confirmed), but at once.
  void Lost() override {
    Answer(absl::DeadlineExceededError(absl::StrCat(
               "client \"", client_id_,
               "\" disconnected before acknowledging the message, which is dropped, not kept "
               "for its return; send it again once it is connected")),
           lost_);
  }
  // False when it was answered already. The one answer that wins counts itself in `result`
  // (when not null) before the sender hears it, so the sender never sees a stale count.
  bool Answer(const absl::Status& status, prometheus::Counter* result = nullptr) {
    if (answered_.exchange(true)) return false;
    if (result != nullptr) result->Increment();
    Done done = std::move(done_);
    done(status);
    return true;
  }

 private:
  const std::string client_id_;
  std::atomic<bool> answered_{false};
  Done done_;  // moved out by the one Answer that wins
  prometheus::Counter* const confirmed_;
  prometheus::Counter* const lost_;
};

DirectMessages::DirectMessages(Broker* broker, Cluster* cluster, prometheus::Registry* metrics)
    : broker_(broker), cluster_(cluster) {
  if (metrics != nullptr) {
    results_ = &prometheus::BuildCounter()
                    .Name("fleetcore_gateway_direct_messages_total")
                    .Help("Direct messages (SendDirectMessage) by result: sent (QoS 0, queued), "
                          "confirmed (QoS 1, acknowledged), unconfirmed (no PUBACK in time), "
                          "disconnected (the connection ended before the PUBACK), "
                          "not_connected, not_allowed (no iot:Receive), queue_full")
                    .Register(*metrics);
  }
  timer_ = std::thread([this] { Timer(); });
}

DirectMessages::~DirectMessages() {
  Stop();
  timer_.join();
}

bool DirectMessages::Stopping() {
  std::lock_guard<std::mutex> l(mu_);
  return stopping_;
}

prometheus::Counter* DirectMessages::Counter(absl::string_view result) {
  return results_ != nullptr ? &results_->Add({{"result", std::string(result)}}) : nullptr;
}

void DirectMessages::Count(absl::string_view result) {
  if (prometheus::Counter* c = Counter(result)) c->Increment();
}

absl::StatusOr<std::shared_ptr<Message>> DirectMessages::ToMessage(
    const v1::SendDirectMessageRequest& request) {
  if (absl::Status s = CheckApiClientId(request.client_id()); !s.ok()) return s;
  if (!request.topic().empty() && request.topic()[0] == '$') {
    return absl::InvalidArgumentError(absl::StrCat(
        "topic \"", request.topic(), "\": direct messages cannot go to reserved $ topics"));
  }
  if (request.timeout_seconds() < 0 || request.timeout_seconds() > kMaxTimeoutSeconds) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout must be 1 to ", kMaxTimeoutSeconds, " seconds"));
  }
  if (request.confirmation() && broker_->limits().max_qos < 1) {
    return absl::InvalidArgumentError(
        "confirmation needs QoS 1, and this gateway runs with --max-qos 0; send without "
        "confirmation");
  }
  // Checked as a publish is (topic, payload size, properties).
  v1::PublishRequest publish;
  publish.set_topic(request.topic());
  publish.set_payload(request.payload());
  publish.set_qos(request.confirmation() ? 1 : 0);
  publish.set_payload_format(request.payload_format());
  publish.set_content_type(request.content_type());
  publish.set_response_topic(request.response_topic());
  publish.set_correlation_data(request.correlation_data());
  *publish.mutable_user_properties() = request.user_properties();
  return GatewayService::ToMessage(publish, broker_->limits(), broker_->NowMs());
}

void DirectMessages::Send(const v1::SendDirectMessageRequest& request, Done done) {
  absl::StatusOr<std::shared_ptr<Message>> m = ToMessage(request);
  if (!m.ok()) return done(m.status());
  if (Stopping()) return done(absl::UnavailableError("the gateway is stopping"));
  if (cluster_ == nullptr || ConnectedHere(request.client_id())) {
    return Deliver(request.client_id(), *std::move(m), ConfirmWithin(request), std::move(done));
  }
  // Connected to another replica, if any: it delivers, and answers when it has.
  v1::ClusterAdminRequest ask;
  *ask.mutable_direct() = request;
  auto forward = [this, ask = std::move(ask), done]() mutable {
    const std::string client_id = ask.direct().client_id();
    const absl::Duration longer = ConfirmWithin(ask.direct());
    for (const v1::ClusterAdminResponse& r : cluster_->AskReplicas(std::move(ask), longer)) {
      if (!r.found()) continue;
      return done(absl::Status(static_cast<absl::StatusCode>(r.error_code()),
                               r.error_message()));
    }
    Count("not_connected");
    done(absl::NotFoundError(absl::StrCat("client \"", client_id, "\" is not connected")));
  };
  if (!askers_.TrySubmit(std::move(forward))) {
    done(absl::ResourceExhaustedError("too many direct messages on their way; try again later"));
  }
}

bool DirectMessages::ConnectedHere(const std::string& client_id) const {
  std::shared_ptr<Session> s = broker_->Find(client_id);
  return s != nullptr && s->attached();
}

bool DirectMessages::SendHere(const v1::SendDirectMessageRequest& request, Done done) {
  if (!ConnectedHere(request.client_id())) return false;
  absl::StatusOr<std::shared_ptr<Message>> m = ToMessage(request);
  if (!m.ok()) {
    done(m.status());
  } else {
    Deliver(request.client_id(), *std::move(m), ConfirmWithin(request), std::move(done));
  }
  return true;
}

void DirectMessages::Deliver(absl::string_view client_id, std::shared_ptr<Message> message,
                             absl::Duration confirm_within, Done done) {
  const bool confirm = confirm_within > absl::ZeroDuration();
  message->qos = confirm ? 1 : 0;
  message->retain = false;
  std::shared_ptr<Waiting> waiting;
  if (confirm) {
    if (Stopping()) return done(absl::UnavailableError("the gateway is stopping"));
    waiting = std::make_shared<Waiting>(std::string(client_id), std::move(done),
                                        Counter("confirmed"), Counter("disconnected"));
    message->receipt = waiting;
  }
  const std::string topic = message->topic;
  const Session::DeliverResult r = broker_->SendDirect(client_id, std::move(message));
  absl::Status status;
  switch (r) {
    case Session::DeliverResult::kQueued:
      if (!confirm) {
        Count("sent");
        return done(absl::OkStatus());
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        if (!stopping_) {
          const absl::Time due = absl::Now() + confirm_within;
          const bool earliest = deadlines_.empty() || due < deadlines_.top().first;
          deadlines_.emplace(due, waiting);
          if (earliest) cv_.notify_one();
          return;
        }
      }
      status = absl::UnavailableError("the gateway is stopping");
      break;
    case Session::DeliverResult::kNotAllowed:
      Count("not_allowed");
      status = absl::PermissionDeniedError(absl::StrCat(
          "client \"", client_id, "\" may not receive messages on \"", topic,
          "\": its policies do not allow iot:Receive on it"));
      break;
    case Session::DeliverResult::kDroppedFull:
      Count("queue_full");
      status = absl::ResourceExhaustedError(absl::StrCat(
          "client \"", client_id, "\" has as many messages waiting as it may; try again later"));
      break;
    case Session::DeliverResult::kNotQueued:
    case Session::DeliverResult::kExpired:
      Count("not_connected");
      status = absl::NotFoundError(absl::StrCat("client \"", client_id, "\" is not connected"));
      break;
  }
  if (waiting != nullptr) {
    waiting->Answer(status);
  } else {
    done(status);
  }
}

void DirectMessages::Timer() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    if (stopping_) return;
    if (deadlines_.empty()) {
      cv_.wait(l);
      continue;
    }
    const absl::Time due = deadlines_.top().first;
    if (absl::Now() < due) {
      cv_.wait_for(l, absl::ToChronoNanoseconds(due - absl::Now()));
      continue;
    }
    std::shared_ptr<Waiting> w = deadlines_.top().second;
    deadlines_.pop();
    l.unlock();
    w->Answer(absl::DeadlineExceededError(
                  "the client did not acknowledge the message (PUBACK) within the timeout"),
              Counter("unconfirmed"));
    l.lock();
  }
}

void DirectMessages::Stop() {
  std::vector<std::shared_ptr<Waiting>> left;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (; !deadlines_.empty(); deadlines_.pop()) left.push_back(deadlines_.top().second);
  }
  cv_.notify_all();
  for (const std::shared_ptr<Waiting>& w : left) {
    w->Answer(absl::UnavailableError("the gateway is stopping"));
  }
  if (!left.empty()) {
    log::Info("direct messages still waiting for their PUBACK answered: stopping",
              {{"waiting", static_cast<int64_t>(left.size())}});
  }
}

}  // namespace fleetcore::gateway
