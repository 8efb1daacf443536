// Gateway replicas: several gateways behind one load balancer serve one fleet, each holding
// its own connections, and exchange what they must through NATS (docs/architecture.md,
// "Gateway replicas"):
//
//   - Messages. Every message published on a replica goes once to the others (subject
//     <prefix>.m.<topic levels>), which route it to their subscribers; a retained one is
//     kept in every replica's memory (its own replica stores it). A shared subscription
//     group is a NATS queue group on its filter, so each message reaches one member of the
//     group in the whole cluster; a replica given a turn while its members are all away
//     passes it to one with a member connected (their heartbeats say which), and so does
//     one whose away members' sessions hold what the group queued while no member was
//     connected anywhere.
//   - Client ids. A connect announces its client id; a replica that holds the client id
//     ends that connection (0x8E, session taken over) and the session there.
//   - Sessions. A client resuming a session (clean start 0) on a replica that does not hold
//     it asks the others; the one that does hands it over, in-flight and queued messages
//     and all, ends its connection there, and for a few seconds forwards what still
//     reaches the session, which the new replica dedupes by message id, so nothing is lost
//     or given twice. A session no live replica holds is taken from Postgres (one left by
//     a replica that is gone). Each stored session names its replica (the owner column).
//   - Administration. DescribeConnection, DeleteConnection, ListConnections and a publish
//     to one client are asked of every replica.
//   - Liveness. Each replica says it is there every second; one silent for three seconds is
//     gone. The first live replica by node id then takes over the sessions stored under the
//     gone one (or one that said it leaves), so they are fed while their clients are away,
//     and deletes the expired sessions of gone replicas.
//
//   Cluster cluster(&bus, &broker, &store, &metrics, {.node = "gateway-0"});
//   broker.SetCluster(&cluster);
//   FLEETCORE_RETURN_IF_ERROR(cluster.Start());   // before broker.Load()
//   FLEETCORE_RETURN_IF_ERROR(broker.Load());
//   cluster.Ready();
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fleetcore/gateway/v1/cluster.pb.h"
#include "services/gateway/broker.h"
#include "services/gateway/cluster_bus.h"
#include "services/gateway/gateway_store.h"

namespace fleetcore::gateway {

class GatewayMetrics;

struct ClusterOptions {
  // This replica's id, unique among the live ones (a pod's name).
  std::string node;
  // Every subject starts with it: replicas with another prefix form another cluster.
  std::string prefix = "fleetcore.gw";
  absl::Duration heartbeat = absl::Seconds(1);
  // A replica not heard from for this long is gone.
  absl::Duration node_timeout = absl::Seconds(3);
  // A heartbeat names at most this many shared groups with a member connected here (8
  // bytes each): it must never be too large for NATS.
  size_t heartbeat_shares = 16384;
  // What a shared group queued here while no member was connected anywhere goes, once a
  // member is connected on another replica, to that replica: this many messages a group
  // a heartbeat (AWS gives a group's queue to a member at 20 a second).
  size_t shared_queue_per_heartbeat = 100;
  // How long a resuming client's connect waits for the replicas' answers.
  absl::Duration handover_timeout = absl::Seconds(2);
  // How long a session that moved away forwards what still reaches it.
  absl::Duration forward_for = absl::Seconds(5);
  // How often the first replica deletes the expired sessions of gone replicas.
  absl::Duration orphan_sweep = absl::Minutes(1);
};

class Cluster final : public BrokerCluster {
 public:
  // None is owned; all outlive the cluster. `metrics` may be null. `bus` carries everything
  // but the shared subscriptions' queue groups, which are on `shared_bus`: `bus` does not
  // echo what it publishes (each replica routed its own messages already), a queue group
  // must (this replica's turn may be its own).
  Cluster(ClusterBus* bus, ClusterBus* shared_bus, Broker* broker, GatewayStore* store,
          GatewayMetrics* metrics, ClusterOptions options);
  ~Cluster() override;

  // Subscribes, and listens for one heartbeat and a half so that the first resuming client
  // is asked about at every replica. Messages that come meanwhile wait for Ready.
  // FAILED_PRECONDITION when a live replica already uses this node id.
  absl::Status Start();
  // The broker has loaded its state: what came since Start is routed now, later messages
  // at once.
  void Ready();
  // Tells the others this replica leaves, and stops. Idempotent.
  void Stop();

  // BrokerCluster.
  uint64_t NewMessageId() override;
  void Published(const MessagePtr& message) override;
  void SharedGroupChanged(const std::string& group, const std::string& filter) override;
  void Connected(const std::string& client_id) override;

  // A client resumes a session this replica does not hold: asks the others for it and,
  // when none has it, Postgres for one a gone replica left; adopts it here if found.
  // `done` runs (on a cluster thread) once the session is here or known to be nowhere.
  void FetchSession(const std::string& client_id, std::function<void()> done) override;
  bool SharesAcrossReplicas() const override {
    return bus_->connected() && shared_bus_->connected();
  }
  bool PassSharedMessage(const MessagePtr& message, const std::string& group,
                         const std::string& filter) override;

  // The Broker API's calls about connections held elsewhere: asks every other live
  // replica, and returns the answers that came within the handover timeout (plus `longer`,
  // for a call answered once something happens there: a direct message's PUBACK). A call
  // about one client id returns at the first answer that found it, so a replica that is
  // slow to answer (or dead, and not yet known to be) holds up no call about the others'
  // clients; ListConnections waits for every answer.
  std::vector<v1::ClusterAdminResponse> AskReplicas(v1::ClusterAdminRequest request,
                                                    absl::Duration longer = absl::ZeroDuration());
  // How this replica answers such a call (the gateway service's, from memory): at once,
  // or later (any thread, once) through `reply`.
  using AdminHandler = std::function<v1::ClusterAdminResponse(const v1::ClusterAdminRequest&)>;
  using Reply = std::function<void(v1::ClusterAdminResponse)>;
  using AsyncAdminHandler = std::function<void(const v1::ClusterAdminRequest&, Reply reply)>;
  void SetAdminHandler(AdminHandler handler);
  void SetAsyncAdminHandler(AsyncAdminHandler handler);

  // The live replicas, this one included, sorted.
  std::vector<std::string> LiveNodes() const;
  // The other live replicas with a member of a shared group connected, as their last
  // heartbeat said, sorted.
  std::vector<std::string> ReplicasConnectedTo(const std::string& group,
                                               const std::string& filter) const;
  // How many shared groups have a member connected on another replica.
  size_t SharedGroupsElsewhere() const;
  const std::string& node() const { return options_.node; }

  // The encoded forms, for tests.
  static std::string EncodeSession(const StoredSession& session);
  static absl::StatusOr<StoredSession> DecodeSession(const v1::ClusterSession& proto);

 private:
  struct Fetch;
  struct Ask;
  // Runs `fn` now, or after Ready when not ready yet.
  void WhenReady(std::function<void()> fn);
  void OnMessage(const BusMessage& m, bool shared, const std::string& group,
                 const std::string& filter);
  void OnHeartbeat(const BusMessage& m);
  void OnClaim(const BusMessage& m);
  void OnHandoverRequest(const BusMessage& m);
  void OnForward(const BusMessage& m);
  // A shared group's turn, given here by NATS (`passed` false) or passed on by another
  // replica (true).
  void TakeSharedTurn(const MessagePtr& message, const std::string& group,
                      const std::string& filter, bool passed);
  void OnSharedTurn(const BusMessage& m);
  // Sends a shared group's message to replica `to`, where a member takes it.
  void PassSharedTurn(const Message& message, const std::string& group, const std::string& filter,
                      const std::string& to);
  // Passes what the shared groups `away` (their members here all away, as the heartbeat
  // found them) queued in those members' sessions to replicas with a member connected (on
  // the worker, after each heartbeat; TakeSharedQueueOf checks the members again).
  void PassSharedQueues(const std::vector<std::pair<std::string, std::string>>& away);
  // The heartbeat: this replica is there, and its shared groups with a member connected
  // (`shares`, up to heartbeat_shares of them). Sets the shared-group gauges.
  v1::ClusterHeartbeat Heartbeat(const std::vector<std::pair<std::string, std::string>>& shares);
  // One of ReplicasConnectedTo, each in turn ("" for none).
  std::string NextReplicaConnectedTo(const std::string& group, const std::string& filter);
  void OnAdmin(const BusMessage& m);
  // Answers to this replica's handover requests (FetchSession) and admin calls
  // (AskReplicas), each on its own reply subject.
  void OnReply(const BusMessage& m);
  void OnAdminReply(const BusMessage& m);
  void FinishFetch(const std::shared_ptr<Fetch>& fetch, absl::string_view result);
  void FromStore(const std::shared_ptr<Fetch>& fetch);
  bool AdoptFrom(const v1::ClusterSession& proto);
  // A replica left or went silent: the first live one takes over its stored sessions.
  void PeerGone(const std::string& node);
  void AdoptSessionsOf(const std::string& node);
  void ReconcileShared(const std::string& group, const std::string& filter);
  void Tick();
  void Work(std::function<void()> task);
  absl::StatusOr<MessagePtr> Decode(const v1::ClusterMessage& proto) const;
  v1::ClusterMessage Encode(const Message& m) const;
  std::vector<std::string> OtherLiveNodes() const;
  void Send(const std::string& subject, const google::protobuf::MessageLite& message,
            const std::string& reply = "");

  ClusterBus* const bus_;
  ClusterBus* const shared_bus_;
  Broker* const broker_;
  GatewayStore* const store_;
  GatewayMetrics* const metrics_;
  const ClusterOptions options_;
  const uint32_t tag_;
  const std::string inbox_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> next_request_{1};
  std::atomic<uint64_t> shared_turns_passed_{0};  // picks the replica a turn is passed to
  bool shares_capped_ = false;  // the last heartbeat left groups out (the ticker's own)

  std::mutex ready_mu_;
  bool ready_ = false;
  std::vector<std::function<void()>> before_ready_;

  mutable std::mutex mu_;
  struct Peer {
    absl::Time heard;  // last
    // Its shared groups with a connected member (ShareId).
    absl::flat_hash_set<uint64_t> connected_shares;
  };
  std::map<std::string, Peer> peers_;  // the other live replicas
  bool duplicate_node_ = false;
  std::map<uint64_t, std::shared_ptr<Fetch>> fetches_;
  // Client ids that connected to another replica lately, which one and when: their
  // sessions there are theirs, whatever a gone replica's rows say (the claim may not be in
  // Postgres yet).
  struct Claimed {
    std::string node;
    absl::Time at;
  };
  std::map<std::string, Claimed> claimed_;
  std::map<uint64_t, std::shared_ptr<Ask>> asks_;
  // Messages forwarded for sessions not adopted yet (their handover answer is on its way).
  struct Forwarded {
    absl::Time until;
    MessagePtr message;
    uint8_t qos;
    bool retain;
    std::vector<uint32_t> subscription_ids;
  };
  std::mutex forwards_mu_;  // also held across adopting a session and giving it these
  std::map<std::string, std::vector<Forwarded>> forwards_;
  AsyncAdminHandler admin_handler_;  // under mu_

  std::mutex shared_mu_;  // serializes ReconcileShared
  std::map<std::pair<std::string, std::string>,
           std::vector<std::unique_ptr<ClusterBus::Subscription>>>
      shared_subs_;

  std::vector<std::unique_ptr<ClusterBus::Subscription>> subs_;

  std::mutex work_mu_;
  std::condition_variable work_cv_;  // the worker waits for work
  std::condition_variable tick_cv_;  // the ticker waits for its next tick (or the stop)
  std::deque<std::function<void()>> work_;
  bool stopping_ = false;
  std::thread worker_;
  std::thread ticker_;
  std::atomic<bool> stopped_{false};
};

}  // namespace fleetcore::gateway
