#include "services/registry/caching_registry_store.h"

#include "absl/hash/hash.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace fleetcore::registry {
namespace {

// Forwards every operation and remembers the things named by the published events.
class RecordingTx final : public RegistryTx {
 public:
  explicit RecordingTx(RegistryTx& inner) : inner_(inner) {}

  absl::StatusOr<std::optional<Thing>> GetThing(absl::string_view n, Lock l) override {
    return inner_.GetThing(n, l);
  }
  absl::Status InsertThing(const Thing& t) override { return inner_.InsertThing(t); }
  absl::Status UpdateThing(const Thing& t) override { return inner_.UpdateThing(t); }
  absl::Status DeleteThing(absl::string_view n) override { return inner_.DeleteThing(n); }
  absl::StatusOr<int64_t> CountThingsOfType(absl::string_view t) override {
    return inner_.CountThingsOfType(t);
  }
  absl::StatusOr<std::optional<ThingType>> GetThingType(absl::string_view n, Lock l) override {
    return inner_.GetThingType(n, l);
  }
  absl::Status InsertThingType(const ThingType& t) override { return inner_.InsertThingType(t); }
  absl::Status UpdateThingType(const ThingType& t) override { return inner_.UpdateThingType(t); }
  absl::Status DeleteThingType(absl::string_view n) override { return inner_.DeleteThingType(n); }
  absl::StatusOr<std::optional<ThingGroup>> GetGroup(absl::string_view n, Lock l) override {
    return inner_.GetGroup(n, l);
  }
  absl::Status InsertGroup(const ThingGroup& g) override { return inner_.InsertGroup(g); }
  absl::Status UpdateGroup(const ThingGroup& g) override { return inner_.UpdateGroup(g); }
  absl::Status DeleteGroup(absl::string_view n) override { return inner_.DeleteGroup(n); }
  absl::StatusOr<int64_t> CountChildGroups(absl::string_view n) override {
    return inner_.CountChildGroups(n);
  }
  absl::StatusOr<int64_t> CountDynamicGroups() override { return inner_.CountDynamicGroups(); }
  absl::Status LockCount(absl::string_view w) override { return inner_.LockCount(w); }
  absl::StatusOr<std::vector<ThingGroup>> GroupsOfThing(absl::string_view t) override {
    return inner_.GroupsOfThing(t);
  }
  absl::Status AddMember(absl::string_view g, absl::string_view t) override {
    return inner_.AddMember(g, t);
  }
  absl::Status RemoveMember(absl::string_view g, absl::string_view t) override {
    return inner_.RemoveMember(g, t);
  }
  absl::StatusOr<std::optional<BillingGroup>> GetBillingGroup(absl::string_view n,
                                                              Lock l) override {
    return inner_.GetBillingGroup(n, l);
  }
  absl::Status InsertBillingGroup(const BillingGroup& g) override {
    return inner_.InsertBillingGroup(g);
  }
  absl::Status UpdateBillingGroup(const BillingGroup& g) override {
    return inner_.UpdateBillingGroup(g);
  }
  absl::Status DeleteBillingGroup(absl::string_view n) override {
    return inner_.DeleteBillingGroup(n);
  }
  absl::StatusOr<int64_t> CountBillingGroups() override { return inner_.CountBillingGroups(); }
  absl::Status SetThingBillingGroup(absl::string_view t, absl::string_view g) override {
    return inner_.SetThingBillingGroup(t, g);
  }
  absl::StatusOr<std::vector<PrincipalAttachment>> AttachmentsOfThing(
      absl::string_view t) override {
    return inner_.AttachmentsOfThing(t);
  }
  absl::StatusOr<std::vector<PrincipalAttachment>> AttachmentsOfPrincipal(
      absl::string_view p) override {
    return inner_.AttachmentsOfPrincipal(p);
  }
  absl::Status LockPrincipal(absl::string_view p) override { return inner_.LockPrincipal(p); }
  absl::Status PutAttachment(const PrincipalAttachment& a) override {
    return inner_.PutAttachment(a);
  }
  absl::Status DeleteAttachment(absl::string_view t, absl::string_view p) override {
    return inner_.DeleteAttachment(t, p);
  }
  absl::Status PutEventConfiguration(absl::string_view type, bool enabled,
                                     absl::Time now) override {
    return inner_.PutEventConfiguration(type, enabled, now);
  }
  absl::StatusOr<IndexingConfiguration> GetIndexingConfiguration(Lock l) override {
    return inner_.GetIndexingConfiguration(l);
  }
  absl::Status PutIndexingMode(absl::string_view index, absl::string_view mode,
                               absl::Time now) override {
    return inner_.PutIndexingMode(index, mode, now);
  }
  void Publish(const RegistryEvent& e) override {
    published.push_back(e);
    inner_.Publish(e);
  }

  std::vector<RegistryEvent> published;

 private:
  RegistryTx& inner_;
};

}  // namespace

CachingRegistryStore::CachingRegistryStore(RegistryStore* backend, size_t capacity,
                                           prometheus::Registry* metrics)
    : backend_(backend), shard_capacity_(std::max<size_t>(1, capacity / kShards)) {
  if (metrics != nullptr) {
    auto& lookups = prometheus::BuildCounter()
                        .Name("fleetcore_registry_thing_cache_lookups_total")
                        .Help("DescribeThing lookups of the in-memory thing cache, by result.")
                        .Register(*metrics);
    hits_ = &lookups.Add({{"result", "hit"}});
    misses_ = &lookups.Add({{"result", "miss"}});
    entries_ = &prometheus::BuildGauge()
                    .Name("fleetcore_registry_thing_cache_entries")
                    .Help("Things held in the in-memory cache.")
                    .Register(*metrics)
                    .Add({});
  }
}

void CachingRegistryStore::Count(bool hit) {
  if (hits_ != nullptr) (hit ? hits_ : misses_)->Increment();
}

size_t CachingRegistryStore::size() {
  size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.things.size();
  }
  return n;
}

CachingRegistryStore::Shard& CachingRegistryStore::ShardOf(absl::string_view name) {
  return shards_[absl::Hash<absl::string_view>()(name) % kShards];
}

std::optional<Thing> CachingRegistryStore::Peek(absl::string_view name) {
  Shard& s = ShardOf(name);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.things.find(name);
  if (it == s.things.end()) return std::nullopt;  // GetThing follows and counts the miss
  Count(true);
  return it->second;
}

void CachingRegistryStore::Invalidate(absl::string_view thing) {
  Shard& s = ShardOf(thing);
  std::lock_guard<std::mutex> lock(s.mu);
  ++s.epoch;
  if (s.things.erase(thing) > 0 && entries_ != nullptr) entries_->Decrement();
}

bool CachingRegistryStore::ChangesGroups(const RegistryEvent& e) {
  return e.type == "thing_group.created" || e.type == "thing_group.updated" ||
         e.type == "thing_group.deleted";
}

bool CachingRegistryStore::ChangesAllThings(const RegistryEvent& e) {
  return e.type == kBillingGroupDeleted;
}

void CachingRegistryStore::InvalidateGroups() {
  std::lock_guard<std::mutex> lock(groups_mu_);
  ++groups_epoch_;
  dynamic_groups_.reset();
}

absl::StatusOr<std::vector<ThingGroup>> CachingRegistryStore::DynamicGroups() {
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(groups_mu_);
    if (dynamic_groups_.has_value()) return *dynamic_groups_;
    epoch = groups_epoch_;
  }
  absl::StatusOr<std::vector<ThingGroup>> read = backend_->DynamicGroups();
  if (read.ok()) {
    std::lock_guard<std::mutex> lock(groups_mu_);
    if (groups_epoch_ == epoch) dynamic_groups_ = *read;  // no invalidation raced the read
  }
  return read;
}

void CachingRegistryStore::InvalidateAll() {
  InvalidateGroups();
  for (Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    ++s.epoch;
    if (entries_ != nullptr) entries_->Decrement(static_cast<double>(s.things.size()));
    s.things.clear();
    s.order.clear();
  }
}

absl::Status CachingRegistryStore::Transact(absl::FunctionRef<absl::Status(RegistryTx&)> body) {
  std::vector<RegistryEvent> published;
  absl::Status s = backend_->Transact([&](RegistryTx& tx) -> absl::Status {
    RecordingTx recording(tx);
    absl::Status inner = body(recording);
    published = std::move(recording.published);  // the last attempt's, if it was retried
    return inner;
  });
  // Also after a failure: the commit's outcome may be unknown (connection lost).
  for (const RegistryEvent& e : published) Forget(e);
  return s;
}

void CachingRegistryStore::Forget(const RegistryEvent& e) {
  if (ChangesAllThings(e)) {
    InvalidateAll();
    return;
  }
  if (!e.thing.empty()) Invalidate(e.thing);
  if (ChangesGroups(e)) InvalidateGroups();
}

absl::StatusOr<std::optional<Thing>> CachingRegistryStore::GetThing(absl::string_view name) {
  Shard& s = ShardOf(name);
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto it = s.things.find(name); it != s.things.end()) {
      Count(true);
      return std::optional<Thing>(it->second);
    }
    epoch = s.epoch;
  }
  Count(false);
  absl::StatusOr<std::optional<Thing>> read = backend_->GetThing(name);
  if (read.ok() && read->has_value()) {
    std::lock_guard<std::mutex> lock(s.mu);
    const size_t before = s.things.size();
    if (s.epoch == epoch && s.things.try_emplace(std::string(name), **read).second) {
      s.order.emplace_back(name);
      while (s.things.size() > shard_capacity_ && !s.order.empty()) {
        s.things.erase(s.order.front());
        s.order.pop_front();
      }
      if (entries_ != nullptr) {
        entries_->Increment(static_cast<double>(s.things.size()) - static_cast<double>(before));
      }
      // Invalidated names stay in `order`; rebuild it before churn makes it grow unbounded.
      if (s.order.size() > 2 * shard_capacity_) {
        s.order.clear();
        for (const auto& [key, _] : s.things) s.order.push_back(key);
      }
    }
  }
  return read;
}

}  // namespace fleetcore::registry
