#include "services/gateway/nats_cluster_bus.h"

#include <nats/nats.h>
#include <openssl/rand.h>

#include <future>
#include <memory>
#include <regex>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "services/gateway/gateway_metrics.h"

namespace fleetcore::gateway {
namespace {

absl::Status Failed(absl::string_view what, natsStatus s) {
  const char* detail = nats_GetLastError(nullptr);
  return absl::UnavailableError(absl::StrCat(what, ": ", natsStatus_GetText(s),
                                             detail != nullptr && *detail != '\0'
                                                 ? absl::StrCat(" (", detail, ")")
                                                 : std::string()));
}

// What a subscription's callback needs; freed by NATS's completion callback, after its
// last message.
struct Delivery {
  ClusterBus::Handler handler;
  std::atomic<bool> active{true};
  std::shared_ptr<std::promise<void>> completed = std::make_shared<std::promise<void>>();
};

void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* d = static_cast<Delivery*>(closure);
  if (d->active.load(std::memory_order_acquire)) {
    const char* reply = natsMsg_GetReply(msg);
    d->handler(BusMessage{
        .subject = natsMsg_GetSubject(msg),
        .data = absl::string_view(natsMsg_GetData(msg),
                                  static_cast<size_t>(natsMsg_GetDataLength(msg))),
        .reply = reply != nullptr ? absl::string_view(reply) : absl::string_view()});
  }
  natsMsg_Destroy(msg);
}

void OnComplete(void* closure) {
  auto* d = static_cast<Delivery*>(closure);
  std::shared_ptr<std::promise<void>> completed = d->completed;
  delete d;
  completed->set_value();
}

// Ends the subscription and waits (a few seconds at most) for a message callback that is
// running to return, so that nothing calls into its owner once it is gone. Never destroyed
// on a NATS delivery thread (the cluster changes subscriptions on its own threads).
class NatsSubscription final : public ClusterBus::Subscription {
 public:
  NatsSubscription(natsSubscription* sub, Delivery* delivery)
      : sub_(sub), delivery_(delivery), completed_(delivery->completed->get_future()) {}
  ~NatsSubscription() override {
    delivery_->active.store(false, std::memory_order_release);
    natsSubscription_Unsubscribe(sub_);  // the completion callback frees delivery_
    natsSubscription_Destroy(sub_);
    completed_.wait_for(std::chrono::seconds(5));
  }

 private:
  natsSubscription* sub_;
  Delivery* delivery_;
  std::future<void> completed_;
};

}  // namespace

struct NatsClusterBus::State {
  GatewayMetrics* metrics = nullptr;
  std::atomic<bool> connected{false};
  // Set before the bus closes its connection: the callbacks that libnats runs for the close
  // (on its thread, possibly after the bus and the metrics are gone) do nothing.
  std::atomic<bool> closing{false};

  void Set(bool now) {
    connected.store(now, std::memory_order_release);
    if (metrics != nullptr) metrics->SetClusterConnected(now);
  }
};

namespace {

// The connection callbacks' closure: a reference to the bus's State of their own, which the
// closed callback (libnats's last for a connection) drops.
using StateRef = std::shared_ptr<NatsClusterBus::State>;

NatsClusterBus::State* Open(void* closure) {
  NatsClusterBus::State* state = static_cast<StateRef*>(closure)->get();
  return state->closing.load(std::memory_order_acquire) ? nullptr : state;
}

void OnDisconnected(natsConnection*, void* closure) {
  NatsClusterBus::State* state = Open(closure);
  if (state == nullptr) return;
  state->Set(false);
  log::Error("cluster: lost the connection to NATS; reconnecting (messages between replicas "
             "wait, up to 64 MiB, and those sent to this replica meanwhile are lost)");
}

void OnReconnected(natsConnection* nc, void* closure) {
  NatsClusterBus::State* state = Open(closure);
  if (state == nullptr) return;
  state->Set(true);
  char url[256] = {};
  natsConnection_GetConnectedUrl(nc, url, sizeof(url));
  log::Info("cluster: connected to NATS again", {{"server", NatsClusterBus::Redact(url)}});
}

void OnError(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
  NatsClusterBus::State* state = Open(closure);
  if (state == nullptr) return;
  if (state->metrics != nullptr) {
    state->metrics->ClusterError(err == NATS_SLOW_CONSUMER ? "slow_consumer" : "nats");
  }
  log::Error("cluster: NATS reports an error", {{"error", natsStatus_GetText(err)}});
}

void OnClosed(natsConnection*, void* closure) { delete static_cast<StateRef*>(closure); }

}  // namespace

std::string NatsClusterBus::Redact(absl::string_view url) {
  // user:password@ or a token@: either is a secret.
  static const std::regex kCredentials(R"(://[^/@,]*@)");
  return std::regex_replace(std::string(url), kCredentials, "://***@");
}

absl::StatusOr<std::unique_ptr<NatsClusterBus>> NatsClusterBus::Connect(
    const NatsOptions& options, GatewayMetrics* metrics) {
  auto bus = std::unique_ptr<NatsClusterBus>(new NatsClusterBus());
  bus->state_->metrics = metrics;
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return Failed("NATS options", s);
  struct Free {
    natsOptions* o;
    ~Free() { natsOptions_Destroy(o); }
  } free_opts{opts};
  if ((s = natsOptions_SetURL(opts, options.url.c_str())) != NATS_OK) {
    return absl::InvalidArgumentError(absl::StrCat("--cluster-url ", Redact(options.url),
                                                   ": ", natsStatus_GetText(s)));
  }
  natsOptions_SetName(opts, options.name.c_str());
  natsOptions_SetTimeout(opts, 5000);
  natsOptions_SetMaxReconnect(opts, -1);
  natsOptions_SetReconnectWait(opts, 500);
  natsOptions_SetReconnectBufSize(opts, 64 << 20);
  natsOptions_SetPingInterval(opts, 2000);
  natsOptions_SetMaxPingsOut(opts, 2);
  // One pool of delivery threads rather than a thread per subscription (one per shared
  // subscription group would be many).
  natsOptions_UseGlobalMessageDelivery(opts, true);
  natsOptions_SetNoEcho(opts, options.no_echo);
  // Once a connection holds it, freed by OnClosed. Freed here when no connection was made.
  auto closure = std::make_unique<StateRef>(bus->state_);
  natsOptions_SetDisconnectedCB(opts, OnDisconnected, closure.get());
  natsOptions_SetReconnectedCB(opts, OnReconnected, closure.get());
  natsOptions_SetErrorHandler(opts, OnError, closure.get());
  natsOptions_SetClosedCB(opts, OnClosed, closure.get());
  if (absl::StrContains(options.url, "tls://") || !options.ca_file.empty()) {
    natsOptions_SetSecure(opts, true);
    if (!options.ca_file.empty() &&
        (s = natsOptions_LoadCATrustedCertificates(opts, options.ca_file.c_str())) != NATS_OK) {
      return Failed(absl::StrCat("--cluster-tls-ca-file ", options.ca_file), s);
    }
  }
  if ((s = natsConnection_Connect(&bus->nc_, opts)) != NATS_OK) {
    // Whether libnats calls OnClosed after a failed connect is not promised: the closure is
    // kept for the process's life (a failed connect ends it) rather than risk a double free.
    static auto* const kAbandoned = new std::vector<std::unique_ptr<StateRef>>;
    kAbandoned->push_back(std::move(closure));
    return Failed(absl::StrCat("cannot connect to NATS at ", Redact(options.url)), s);
  }
  closure.release();  // the connection's now: OnClosed frees it
  unsigned char random[8];
  RAND_bytes(random, sizeof(random));
  bus->inbox_ = absl::StrCat(
      "_INBOX.", absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(random), 8)));
  bus->state_->Set(true);
  return bus;
}

NatsClusterBus::NatsClusterBus() : state_(std::make_shared<State>()) {}

NatsClusterBus::~NatsClusterBus() {
  state_->closing.store(true, std::memory_order_release);
  if (nc_ != nullptr) {
    natsConnection_FlushTimeout(nc_, 1000);
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

int64_t NatsClusterBus::max_payload() const { return natsConnection_GetMaxPayload(nc_); }

absl::Status NatsClusterBus::Publish(absl::string_view subject, absl::string_view data,
                                     absl::string_view reply) {
  const std::string subj(subject);
  natsStatus s;
  if (reply.empty()) {
    s = natsConnection_Publish(nc_, subj.c_str(), data.data(), static_cast<int>(data.size()));
  } else {
    const std::string rep(reply);
    s = natsConnection_PublishRequest(nc_, subj.c_str(), rep.c_str(), data.data(),
                                      static_cast<int>(data.size()));
  }
  if (s != NATS_OK) return Failed("publishing to NATS", s);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ClusterBus::Subscription>> NatsClusterBus::Subscribe(
    const std::string& subject, const std::string& queue, Handler handler) {
  auto* delivery = new Delivery{.handler = std::move(handler)};
  natsSubscription* sub = nullptr;
  natsStatus s =
      queue.empty()
          ? natsConnection_Subscribe(&sub, nc_, subject.c_str(), OnMessage, delivery)
          : natsConnection_QueueSubscribe(&sub, nc_, subject.c_str(), queue.c_str(), OnMessage,
                                          delivery);
  if (s != NATS_OK) {
    delete delivery;
    return Failed(absl::StrCat("subscribing to ", subject), s);
  }
  natsSubscription_SetOnCompleteCB(sub, OnComplete, delivery);
  // A replica that falls behind keeps up to a million messages (or 256 MiB) before NATS
  // drops them (and the error handler counts a slow consumer).
  natsSubscription_SetPendingLimits(sub, 1000000, 256 << 20);
  return std::unique_ptr<Subscription>(new NatsSubscription(sub, delivery));
}

std::string NatsClusterBus::NewInbox() {
  return absl::StrCat(inbox_, ".", inboxes_.fetch_add(1));
}

bool NatsClusterBus::connected() const {
  // Kept by the callbacks: asking libnats would take its connection's lock per message.
  return state_->connected.load(std::memory_order_acquire);
}

}  // namespace fleetcore::gateway
