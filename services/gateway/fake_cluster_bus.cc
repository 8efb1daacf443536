#include "services/gateway/fake_cluster_bus.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fleetcore::gateway {
namespace {

// Waits for a handler of the subscription that is running (on another thread) to return.
class FakeSubscription final : public ClusterBus::Subscription {
 public:
  FakeSubscription(std::recursive_mutex* mu, std::shared_ptr<FakeBusServer::Sub> sub)
      : mu_(mu), sub_(std::move(sub)) {}
  ~FakeSubscription() override {
    std::lock_guard<std::recursive_mutex> l(*mu_);
    sub_->active = false;
  }

 private:
  std::recursive_mutex* mu_;
  std::shared_ptr<FakeBusServer::Sub> sub_;
};

}  // namespace

FakeBusServer::FakeBusServer() : thread_([this] { Run(); }) {}

FakeBusServer::~FakeBusServer() {
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  thread_.join();
}

bool FakeBusServer::Matches(absl::string_view pattern, absl::string_view subject) {
  std::vector<absl::string_view> p = absl::StrSplit(pattern, '.');
  std::vector<absl::string_view> s = absl::StrSplit(subject, '.');
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return s.size() > i;
    if (i >= s.size()) return false;
    if (p[i] != "*" && p[i] != s[i]) return false;
  }
  return p.size() == s.size();
}

void FakeBusServer::Settle() {
  std::unique_lock<std::mutex> l(queue_mu_);
  const uint64_t target = published_;
  queue_cv_.wait(l, [&] { return delivered_ >= target; });
}

void FakeBusServer::Hold(bool held) {
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    held_ = held;
  }
  queue_cv_.notify_all();
}

size_t FakeBusServer::pending() {
  std::lock_guard<std::mutex> l(queue_mu_);
  return queue_.size();
}

size_t FakeBusServer::queue_subscriptions(const std::string& subject) {
  std::lock_guard<std::recursive_mutex> l(subs_mu_);
  return static_cast<size_t>(std::count_if(subs_.begin(), subs_.end(), [&](const auto& s) {
    return s->active && !s->queue.empty() && s->subject == subject;
  }));
}

void FakeBusServer::Run() {
  for (;;) {
    Pending p;
    {
      std::unique_lock<std::mutex> l(queue_mu_);
      queue_cv_.wait(l, [&] { return stopping_ || (!held_ && !queue_.empty()); });
      if (stopping_) return;
      p = std::move(queue_.front());
      queue_.pop_front();
    }
    {
      std::lock_guard<std::recursive_mutex> l(subs_mu_);
      std::erase_if(subs_, [](const std::shared_ptr<Sub>& s) { return !s->active; });
      std::vector<std::shared_ptr<Sub>> plain;
      std::map<std::string, std::vector<std::shared_ptr<Sub>>> queues;
      for (const std::shared_ptr<Sub>& s : subs_) {
        if (!Matches(s->subject, p.subject)) continue;
        if (p.no_echo && s->owner == p.from) continue;
        if (s->queue.empty()) {
          plain.push_back(s);
        } else {
          queues[s->queue].push_back(s);
        }
      }
      for (auto& [name, members] : queues) {
        plain.push_back(members[turns_[name]++ % members.size()]);
      }
      const BusMessage m{.subject = p.subject, .data = p.data, .reply = p.reply};
      for (const std::shared_ptr<Sub>& s : plain) {
        if (s->active) s->handler(m);
      }
    }
    {
      std::lock_guard<std::mutex> l(queue_mu_);
      ++delivered_;
    }
    queue_cv_.notify_all();
  }
}

FakeClusterBus::~FakeClusterBus() {
  std::lock_guard<std::recursive_mutex> l(server_->subs_mu_);
  for (const auto& s : server_->subs_) {
    if (s->owner == this) s->active = false;
  }
}

absl::Status FakeClusterBus::Publish(absl::string_view subject, absl::string_view data,
                                     absl::string_view reply) {
  if (cut_) return absl::OkStatus();  // lost on the way, as NATS's at-most-once
  {
    std::lock_guard<std::mutex> l(server_->queue_mu_);
    server_->queue_.push_back(FakeBusServer::Pending{
        this, no_echo_, std::string(subject), std::string(data), std::string(reply)});
    ++server_->published_;
  }
  server_->queue_cv_.notify_all();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ClusterBus::Subscription>> FakeClusterBus::Subscribe(
    const std::string& subject, const std::string& queue, Handler handler) {
  auto sub = std::make_shared<FakeBusServer::Sub>();
  sub->owner = this;
  sub->subject = subject;
  sub->queue = queue;
  // Nothing reaches a cut bus.
  sub->handler = [this, handler = std::move(handler)](const BusMessage& m) {
    if (!cut_) handler(m);
  };
  std::lock_guard<std::recursive_mutex> l(server_->subs_mu_);
  server_->subs_.push_back(sub);
  return std::unique_ptr<Subscription>(new FakeSubscription(&server_->subs_mu_, sub));
}

std::string FakeClusterBus::NewInbox() {
  return absl::StrCat("_INBOX.", reinterpret_cast<uintptr_t>(this), ".", inboxes_++);
}

bool FakeClusterBus::connected() const { return !cut_; }

void FakeClusterBus::Cut(bool cut) { cut_ = cut; }

}  // namespace fleetcore::gateway
