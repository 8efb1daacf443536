#include "services/gateway/pg_gateway_store.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/db/pg_pool.h"
#include "common/db/pg_rows.h"
#include "common/log/log.h"
#include "common/mqtt/codec.h"
#include "nlohmann/json.hpp"

namespace fleetcore::gateway {
namespace {

constexpr size_t kBatch = 500;

// Unix ms to the microseconds TimestampParam takes; -1 (NULL through NULLIF) when absent.
int64_t MicrosOrNull(const std::optional<int64_t>& ms) { return ms ? *ms * 1000 : -1; }
std::string NullableTimestamp(int n) {
  return db::TimestampFrom(absl::StrCat("NULLIF($", n, "::bigint, -1)"));
}
std::optional<int64_t> MsFromField(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<int64_t>() / 1000;
}

std::string PgArray(const std::vector<uint32_t>& v) {
  return absl::StrCat("{", absl::StrJoin(v, ","), "}");
}
std::vector<uint32_t> ParsePgArray(absl::string_view text) {
  std::vector<uint32_t> out;
  text = absl::StripPrefix(absl::StripSuffix(text, "}"), "{");
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    uint32_t v;
    if (absl::SimpleAtoi(item, &v)) out.push_back(v);
  }
  return out;
}

std::string SubscriptionsJson(const std::vector<StoredSubscription>& subs) {
  nlohmann::json a = nlohmann::json::array();
  for (const StoredSubscription& s : subs) {
    a.push_back({{"filter", s.filter},
                 {"qos", s.options.qos},
                 {"noLocal", s.options.no_local},
                 {"retainAsPublished", s.options.retain_as_published},
                 {"retainHandling", s.options.retain_handling},
                 {"subscriptionId", s.options.subscription_id}});
  }
  return a.dump();
}

std::vector<StoredSubscription> ParseSubscriptions(const std::string& text) {
  std::vector<StoredSubscription> out;
  const nlohmann::json a = nlohmann::json::parse(text, nullptr, false);
  if (!a.is_array()) return out;
  for (const nlohmann::json& j : a) {
    if (!j.is_object() || !j.contains("filter") || !j["filter"].is_string()) continue;
    StoredSubscription s;
    s.filter = j["filter"].get<std::string>();
    s.options.qos = j.value("qos", uint8_t{0});
    s.options.no_local = j.value("noLocal", false);
    s.options.retain_as_published = j.value("retainAsPublished", false);
    s.options.retain_handling = j.value("retainHandling", uint8_t{0});
    s.options.subscription_id = j.value("subscriptionId", uint32_t{0});
    out.push_back(std::move(s));
  }
  return out;
}

// Stored messages that do not decode are skipped and said so, once per read; `key` and
// `value` name the sessions read (none: all of this replica's).
void ReportUndecodable(size_t count, absl::string_view key = {}, absl::string_view value = {}) {
  if (count == 0) return;
  const log::Field fields[] = {{"count", static_cast<int64_t>(count)}, {key, value}};
  log::Write(log::Level::kError, "stored messages that do not decode were skipped",
             absl::MakeConstSpan(fields, key.empty() ? 1 : 2));
}

// The columns ReadSession and ReadMessage read, in their order; a query may add its own
// after them, from kSessionColumnCount.
constexpr int kSessionColumnCount = 9;
const std::string& SessionColumns() {
  static const std::string* columns = new std::string(
      absl::StrCat("SELECT client_id, protocol_version, expiry_interval, ",
                   db::MicrosOf("disconnected_at"), ", subscriptions::text, will_packet, ",
                   db::MicrosOf("will_due"), ", inbound_qos2::text, disconnect_reason"));
  return *columns;
}
const std::string& MessageColumns() {
  static const std::string* columns = new std::string(
      absl::StrCat("SELECT client_id, seq, packet, packet_id, released, subscription_ids::text, ",
                   db::MicrosOf("expires_at"), ", share"));
  return *columns;
}

StoredSession ReadSession(const pqxx::row& r, size_t* undecodable) {
  StoredSession session;
  SessionRecord& rec = session.record;
  rec.client_id = r[0].as<std::string>();
  rec.version = r[1].as<int>() == 5 ? mqtt::Version::kV5 : mqtt::Version::kV311;
  rec.expiry_interval = static_cast<uint32_t>(r[2].as<int64_t>());
  rec.disconnected_at_ms = MsFromField(r[3]);
  rec.subscriptions = ParseSubscriptions(r[4].as<std::string>());
  if (!r[5].is_null() && !r[6].is_null()) {
    absl::StatusOr<DecodedMessage> d = DecodeMessagePacket(pqxx::binarystring(r[5]).str());
    if (d.ok()) {
      Seal(d->message.get());
      rec.will = PendingWill{.message = std::move(d->message), .due_ms = *MsFromField(r[6])};
    } else {
      ++*undecodable;
    }
  }
  for (uint32_t id : ParsePgArray(r[7].as<std::string>())) {
    rec.inbound_qos2.push_back(static_cast<uint16_t>(id));
  }
  rec.disconnect_reason = r[8].as<std::string>();
  return session;
}

std::optional<StoredMessage> ReadMessage(const pqxx::row& r, size_t* undecodable) {
  absl::StatusOr<DecodedMessage> d = DecodeMessagePacket(pqxx::binarystring(r[2]).str());
  if (!d.ok()) {
    ++*undecodable;
    return std::nullopt;
  }
  d->message->expires_at_ms = MsFromField(r[6]);
  Seal(d->message.get());
  return StoredMessage{.seq = r[1].as<int64_t>(),
                       .message = d->message,
                       .qos = d->qos,
                       .retain = d->retain,
                       .subscription_ids = ParsePgArray(r[5].as<std::string>()),
                       .packet_id = static_cast<uint16_t>(r[3].as<int>()),
                       .released = r[4].as<bool>(),
                       .share = r[7].as<std::string>()};
}

}  // namespace

PgGatewayStore::PgGatewayStore(db::PgPool* pool, GatewayMetrics* metrics, size_t max_pending,
                               std::string node)
    : pool_(pool), metrics_(metrics), max_pending_(max_pending), node_(std::move(node)) {
  writer_ = std::thread([this] { Run(); });
}

PgGatewayStore::~PgGatewayStore() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

absl::StatusOr<StoreSnapshot> PgGatewayStore::Load() {
  StoreSnapshot snapshot;
  size_t undecodable = 0;
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    snapshot = StoreSnapshot();
    undecodable = 0;
    for (const pqxx::row& r : tx.exec(absl::StrCat(
             "SELECT topic, packet, ", db::MicrosOf("expires_at"), ", ",
             db::MicrosOf("updated_at"), " FROM gateway.retained_messages"))) {
      absl::StatusOr<DecodedMessage> d = DecodeMessagePacket(pqxx::binarystring(r[1]).str());
      if (!d.ok()) {
        ++undecodable;
        continue;
      }
      d->message->retain = true;
      d->message->expires_at_ms = MsFromField(r[2]);
      d->message->published_at_ms = r[3].as<int64_t>() / 1000;
      Seal(d->message.get());
      snapshot.retained.push_back(std::move(d->message));
    }
    // This replica's sessions only (all of them for a gateway that runs alone).
    snapshot.sessions = ReadSessionsOf(tx, node_, &undecodable);
    return absl::OkStatus();
  }, db::Isolation::kRepeatableRead);
  if (!s.ok()) return s;
  ReportUndecodable(undecodable);
  return snapshot;
}

std::vector<StoredSession> PgGatewayStore::ReadSessionsOf(pqxx::transaction_base& tx,
                                                          const std::string& owner,
                                                          size_t* undecodable) {
  std::vector<StoredSession> sessions;
  std::map<std::string, size_t> index;
  for (const pqxx::row& r :
       tx.exec_params(absl::StrCat(SessionColumns(), " FROM gateway.sessions WHERE owner = $1"),
                      owner)) {
    StoredSession session = ReadSession(r, undecodable);
    index[session.record.client_id] = sessions.size();
    sessions.push_back(std::move(session));
  }
  for (const pqxx::row& r : tx.exec_params(
           absl::StrCat(MessageColumns(),
                        " FROM gateway.session_messages WHERE client_id IN (SELECT client_id "
                        "FROM gateway.sessions WHERE owner = $1) ORDER BY client_id, seq"),
           owner)) {
    auto it = index.find(r[0].as<std::string>());
    if (it == index.end()) continue;
    if (std::optional<StoredMessage> m = ReadMessage(r, undecodable)) {
      sessions[it->second].messages.push_back(*std::move(m));
    }
  }
  return sessions;
}

absl::StatusOr<std::vector<StoredSession>> PgGatewayStore::LoadSessionsOf(
    const std::string& owner) {
  std::vector<StoredSession> sessions;
  size_t undecodable = 0;
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    undecodable = 0;
    sessions = ReadSessionsOf(tx, owner, &undecodable);
    return absl::OkStatus();
  }, db::Isolation::kRepeatableRead);
  if (!s.ok()) return s;
  ReportUndecodable(undecodable, "owner", owner);
  return sessions;
}

absl::StatusOr<std::optional<GatewayStore::OwnedSession>> PgGatewayStore::LoadSession(
    const std::string& client_id) {
  std::optional<OwnedSession> out;
  size_t undecodable = 0;
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    out.reset();
    undecodable = 0;
    pqxx::result rows = tx.exec_params(
        absl::StrCat(SessionColumns(), ", owner FROM gateway.sessions WHERE client_id = $1"),
        client_id);
    if (rows.empty()) return absl::OkStatus();
    out.emplace();
    out->session = ReadSession(rows[0], &undecodable);
    out->owner = rows[0][kSessionColumnCount].as<std::string>();
    for (const pqxx::row& r : tx.exec_params(
             absl::StrCat(MessageColumns(),
                          " FROM gateway.session_messages WHERE client_id = $1 ORDER BY seq"),
             client_id)) {
      if (std::optional<StoredMessage> m = ReadMessage(r, &undecodable)) {
        out->session.messages.push_back(*std::move(m));
      }
    }
    return absl::OkStatus();
  }, db::Isolation::kRepeatableRead);
  if (!s.ok()) return s;
  ReportUndecodable(undecodable, "client_id", client_id);
  return out;
}

absl::StatusOr<int64_t> PgGatewayStore::DeleteExpiredSessionsOf(
    const std::vector<std::string>& live) {
  int64_t deleted = 0;
  absl::Status s = pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    deleted = tx.exec_params(
                    "DELETE FROM gateway.sessions WHERE owner <> ALL($1::text[]) AND "
                    "disconnected_at IS NOT NULL AND expiry_interval < 4294967295 AND "
                    "disconnected_at + expiry_interval * interval '1 second' < now()",
                    db::TextArray(live))
                  .affected_rows();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return deleted;
}

void PgGatewayStore::Submit(Op op) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (queue_.size() >= max_pending_) {
      if (dropped_++ % 10000 == 0) {
        log::Error("gateway store queue full (Postgres down or slow): writes are dropped",
                   {{"pending", static_cast<int64_t>(queue_.size())},
                    {"dropped", static_cast<int64_t>(dropped_)}});
      }
      return;
    }
    queue_.push_back(std::move(op));
    ++submitted_;
  }
  cv_.notify_all();
}

void PgGatewayStore::PutRetained(MessagePtr message) { Submit(RetainedPut{std::move(message)}); }
void PgGatewayStore::DeleteRetained(std::string topic) {
  Submit(RetainedDelete{std::move(topic)});
}
void PgGatewayStore::DeleteExpiredRetained(int64_t now_ms) { Submit(RetainedExpire{now_ms}); }
void PgGatewayStore::PutSession(SessionRecord record) { Submit(SessionPut{std::move(record)}); }
void PgGatewayStore::ClaimSession(StoredSession session) {
  Submit(SessionClaim{std::move(session)});
}
void PgGatewayStore::DeleteSession(std::string client_id) {
  Submit(SessionDelete{std::move(client_id)});
}
void PgGatewayStore::PutMessage(std::string client_id, StoredMessage message) {
  Submit(MessagePut{std::move(client_id), std::move(message)});
}
void PgGatewayStore::DeleteMessage(std::string client_id, int64_t seq) {
  Submit(MessageDelete{std::move(client_id), seq});
}

size_t PgGatewayStore::pending() const {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.size();
}

uint64_t PgGatewayStore::dropped() const {
  std::lock_guard<std::mutex> l(mu_);
  return dropped_;
}

absl::Status PgGatewayStore::Flush(absl::Time deadline) {
  std::unique_lock<std::mutex> l(mu_);
  const uint64_t target = submitted_;
  const auto until = std::chrono::system_clock::from_time_t(0) +
                     std::chrono::microseconds(absl::ToUnixMicros(deadline));
  if (!cv_.wait_until(l, until, [&] { return written_ >= target; })) {
    const uint64_t left = target - written_;
    log::Error("gateway store: writes left unwritten at the deadline",
               {{"unwritten", static_cast<int64_t>(left)}});
    return absl::DeadlineExceededError(
        absl::StrCat(left, " session and retained writes were not written to Postgres in time"));
  }
  return absl::OkStatus();
}

void PgGatewayStore::Run() {
  std::vector<Op> batch;
  absl::Duration backoff = absl::Milliseconds(100);
  bool failing = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      if (batch.empty()) {
        cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_ && queue_.empty()) return;
        while (!queue_.empty() && batch.size() < kBatch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (stopping_ && failing) return;
    }
    if (metrics_ != nullptr) metrics_->SetStorePending(pending() + batch.size());
    absl::Status s = Apply(batch);
    if (s.ok()) {
      if (failing) log::Info("gateway store: writing to Postgres again");
      failing = false;
      backoff = absl::Milliseconds(100);
      {
        std::lock_guard<std::mutex> l(mu_);
        written_ += batch.size();
      }
      cv_.notify_all();
      batch.clear();
      if (metrics_ != nullptr) metrics_->SetStorePending(pending());
      continue;
    }
    // Postgres down or refusing: keep the batch and try it again.
    if (!failing) {
      log::Error("gateway store: cannot write to Postgres; retrying", {{"error", s}});
    }
    failing = true;
    if (metrics_ != nullptr) metrics_->StoreError();
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::microseconds(absl::ToInt64Microseconds(backoff)),
                 [&] { return stopping_; });
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

void PgGatewayStore::PutSessionRow(pqxx::transaction_base& tx, const SessionRecord& r,
                                   bool claim) {
  std::string will;
  int64_t will_due = -1;
  if (r.will.has_value()) {
    const Message& w = *r.will->message;
    will = EncodeMessagePacket(w, w.qos, w.retain);
    will_due = r.will->due_ms * 1000;
  }
  std::vector<uint32_t> qos2(r.inbound_qos2.begin(), r.inbound_qos2.end());
  tx.exec_params(
      absl::StrCat("INSERT INTO gateway.sessions (client_id, protocol_version, "
                   "expiry_interval, disconnected_at, subscriptions, will_packet, will_due, "
                   "inbound_qos2, owner, disconnect_reason, updated_at) VALUES ($1, $2, $3, ",
                   NullableTimestamp(4), ", $5::jsonb, NULLIF($6, ''::bytea), ",
                   NullableTimestamp(7),
                   ", $8::integer[], $9, $10, now()) ON CONFLICT (client_id) DO UPDATE SET "
                   "protocol_version = EXCLUDED.protocol_version, expiry_interval = "
                   "EXCLUDED.expiry_interval, disconnected_at = EXCLUDED.disconnected_at, "
                   "subscriptions = EXCLUDED.subscriptions, will_packet = "
                   "EXCLUDED.will_packet, will_due = EXCLUDED.will_due, inbound_qos2 = "
                   "EXCLUDED.inbound_qos2, owner = EXCLUDED.owner, disconnect_reason = "
                   "EXCLUDED.disconnect_reason, updated_at = now()",
                   claim ? "" : " WHERE gateway.sessions.owner = EXCLUDED.owner"),
      r.client_id, static_cast<int>(r.version), static_cast<int64_t>(r.expiry_interval),
      MicrosOrNull(r.disconnected_at_ms), SubscriptionsJson(r.subscriptions),
      pqxx::binarystring(will), will_due, PgArray(qos2), node_, r.disconnect_reason);
}

void PgGatewayStore::PutMessageRow(pqxx::transaction_base& tx, const std::string& client_id,
                                   const StoredMessage& m) {
  // Only for a session that is stored and this replica's (it may have ended, or moved to
  // another replica, meanwhile).
  tx.exec_params(
      absl::StrCat("INSERT INTO gateway.session_messages (client_id, seq, packet, packet_id, "
                   "released, subscription_ids, expires_at, share) SELECT $1, $2, $3, $4, "
                   "$5, $6::bigint[], ",
                   NullableTimestamp(7), ", $9",
                   " WHERE EXISTS (SELECT 1 FROM gateway.sessions WHERE client_id = $1 AND "
                   "owner = $8) ON CONFLICT (client_id, seq) DO UPDATE SET packet_id = "
                   "EXCLUDED.packet_id, released = EXCLUDED.released"),
      client_id, m.seq, pqxx::binarystring(EncodeMessagePacket(*m.message, m.qos, m.retain)),
      static_cast<int>(m.packet_id), m.released, PgArray(m.subscription_ids),
      MicrosOrNull(m.message->expires_at_ms), node_, m.share);
}

absl::Status PgGatewayStore::Apply(const std::vector<Op>& batch) {
  return pool_->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
    for (const Op& op : batch) {
      std::visit(
          [&](const auto& o) {
            using T = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<T, RetainedPut>) {
              const Message& m = *o.message;
              tx.exec_params(
                  absl::StrCat("INSERT INTO gateway.retained_messages "
                               "(topic, packet, expires_at, updated_at) VALUES ($1, $2, ",
                               NullableTimestamp(3), ", ", db::TimestampParam(4),
                               ") ON CONFLICT (topic) DO UPDATE SET packet = "
                               "EXCLUDED.packet, expires_at = EXCLUDED.expires_at, "
                               "updated_at = EXCLUDED.updated_at"),
                  m.topic, pqxx::binarystring(EncodeMessagePacket(m, m.qos, true)),
                  MicrosOrNull(m.expires_at_ms), m.published_at_ms * 1000);
            } else if constexpr (std::is_same_v<T, RetainedDelete>) {
              tx.exec_params("DELETE FROM gateway.retained_messages WHERE topic = $1", o.topic);
            } else if constexpr (std::is_same_v<T, RetainedExpire>) {
              // By the gateway's clock, which decided they expired (not Postgres's).
              tx.exec_params(absl::StrCat("DELETE FROM gateway.retained_messages WHERE "
                                          "expires_at <= ",
                                          db::TimestampParam(1)),
                             o.now_ms * 1000);
            } else if constexpr (std::is_same_v<T, SessionPut>) {
              // Not over a session another replica has claimed since.
              PutSessionRow(tx, o.record, /*claim=*/false);
            } else if constexpr (std::is_same_v<T, SessionClaim>) {
              // This replica's now, whatever was stored and whoever stored it.
              PutSessionRow(tx, o.session.record, /*claim=*/true);
              tx.exec_params("DELETE FROM gateway.session_messages WHERE client_id = $1",
                             o.session.record.client_id);
              for (const StoredMessage& m : o.session.messages) {
                PutMessageRow(tx, o.session.record.client_id, m);
              }
            } else if constexpr (std::is_same_v<T, SessionDelete>) {
              tx.exec_params("DELETE FROM gateway.sessions WHERE client_id = $1 AND owner = $2",
                             o.client_id, node_);
            } else if constexpr (std::is_same_v<T, MessagePut>) {
              PutMessageRow(tx, o.client_id, o.message);
            } else if constexpr (std::is_same_v<T, MessageDelete>) {
              tx.exec_params(
                  "DELETE FROM gateway.session_messages WHERE client_id = $1 AND seq = $2 AND "
                  "EXISTS (SELECT 1 FROM gateway.sessions WHERE client_id = $1 AND owner = $3)",
                  o.client_id, o.seq, node_);
            }
          },
          op);
    }
    return absl::OkStatus();
  });
}

}  // namespace fleetcore::gateway
