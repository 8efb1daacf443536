#include "services/gateway/gateway_metrics.h"

#include <map>
#include <string>
#include <utility>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/gateway/broker.h"
#include "services/gateway/io_thread.h"

namespace fleetcore::gateway {

const char* ListenerName(ListenerKind kind) {
  switch (kind) {
    case ListenerKind::kMqtt: return "mqtt";
    case ListenerKind::kMqtts: return "mqtts";
    case ListenerKind::kWs: return "ws";
    case ListenerKind::kWss: return "wss";
  }
  return "unknown";
}

const std::vector<double>& GatewayMetrics::LatencyBounds() {
  static const std::vector<double> bounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                             0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                             0.5,     1,      2.5,     5,      10};
  return bounds;
}

struct GatewayMetrics::Impl {
  explicit Impl(prometheus::Registry& r)
      : connections(prometheus::BuildGauge()
                        .Name("fleetcore_gateway_connections")
                        .Help("Open MQTT connections, by listener and protocol version.")
                        .Register(r)),
        connects(prometheus::BuildCounter()
                     .Name("fleetcore_gateway_connects_total")
                     .Help("CONNECT attempts by listener and result (accepted or the refusal).")
                     .Register(r)),
        disconnects(prometheus::BuildCounter()
                        .Name("fleetcore_gateway_disconnects_total")
                        .Help("Ended connections by AWS lifecycle disconnectReason.")
                        .Register(r)),
        protocol_errors(prometheus::BuildCounter()
                            .Name("fleetcore_gateway_protocol_errors_total")
                            .Help("Packets refused, by MQTT 5 reason.")
                            .Register(r)),
        throttled(prometheus::BuildCounter()
                      .Name("fleetcore_gateway_throttled_total")
                      .Help("Pauses over a rate limit: in reading a connection "
                            "(--max-publishes-per-second, --max-inbound-kb-per-second) or in "
                            "accepting connections (--max-accepts-per-second).")
                      .Register(r)),
        received(prometheus::BuildCounter()
                     .Name("fleetcore_gateway_messages_received_total")
                     .Help("PUBLISH packets received from clients, by QoS.")
                     .Register(r)),
        sent(prometheus::BuildCounter()
                 .Name("fleetcore_gateway_messages_sent_total")
                 .Help("PUBLISH packets sent to clients, by QoS.")
                 .Register(r)),
        bytes(prometheus::BuildCounter()
                  .Name("fleetcore_gateway_bytes_total")
                  .Help("Bytes read from and written to clients, by direction.")
                  .Register(r)),
        dropped(prometheus::BuildCounter()
                    .Name("fleetcore_gateway_dropped_messages_total")
                    .Help("Deliveries dropped, by reason.")
                    .Register(r)),
        enriched(prometheus::BuildCounter()
                     .Name("fleetcore_gateway_enriched_messages_total")
                     .Help("Messages published by a thing whose type's propagating attributes "
                           "the gateway added as MQTT 5 user properties.")
                     .Register(r)
                     .Add({})),
        unrouted(prometheus::BuildCounter()
                     .Name("fleetcore_gateway_unrouted_messages_total")
                     .Help("Messages published here that matched no subscription here "
                           "(with replicas, another replica's may have).")
                     .Register(r)
                     .Add({})),
        routed(prometheus::BuildCounter()
                   .Name("fleetcore_gateway_routed_messages_total")
                   .Help("Deliveries queued for sessions.")
                   .Register(r)
                   .Add({})),
        sessions_expired(prometheus::BuildCounter()
                             .Name("fleetcore_gateway_sessions_expired_total")
                             .Help("Persistent sessions ended by their expiry.")
                             .Register(r)
                             .Add({})),
        wills(prometheus::BuildCounter()
                  .Name("fleetcore_gateway_wills_published_total")
                  .Help("Will messages published.")
                  .Register(r)
                  .Add({})),
        retained_refused(prometheus::BuildCounter()
                             .Name("fleetcore_gateway_retained_refused_total")
                             .Help("Retained messages not kept, --max-retained-messages being "
                                   "held: refused (MQTT 5 QoS 1/2) or delivered unretained.")
                             .Register(r)
                             .Add({})),
        shared_queue_moved(prometheus::BuildCounter()
                               .Name("fleetcore_gateway_shared_queue_moved_total")
                               .Help("Messages a shared subscription group queued while no "
                                     "member was connected, in an away member's session, "
                                     "given to another member: one that came first, or the "
                                     "next in turn when the session holding them ended.")
                               .Register(r)
                               .Add({})),
        http_publish(prometheus::BuildCounter()
                         .Name("fleetcore_gateway_http_publishes_total")
                         .Help("HTTPS publish requests by result.")
                         .Register(r)),
        denied(prometheus::BuildCounter()
                   .Name("fleetcore_gateway_authorization_denied_total")
                   .Help("Client actions the IoT policies refused, by action (iot:Connect, "
                         "iot:Publish, ...); iot:Receive refusals are dropped_messages_total.")
                   .Register(r)),
        tls_handshakes(prometheus::BuildCounter()
                           .Name("fleetcore_gateway_tls_handshakes_total")
                           .Help("TLS handshakes on the MQTT listeners by listener and result: "
                                 "full, resumed (a device's kept session), or failed.")
                           .Register(r)),
        identity_cache(prometheus::BuildCounter()
                           .Name("fleetcore_gateway_identity_cache_lookups_total")
                           .Help("What a certificate's CONNECT found kept: the CA's answer "
                                 "(cache=certificate) and the policies (cache=policies), by "
                                 "result: hit, shared (the certificate's answer for a new "
                                 "client id) or miss (asked the service).")
                           .Register(r)),
        shadow_requests(prometheus::BuildCounter()
                            .Name("fleetcore_gateway_shadow_requests_total")
                            .Help("Shadow get/update/delete/list requests of devices and "
                                  "apps (MQTT, HTTPS), by operation and result (accepted, "
                                  "rejected, or throttled: over the shadow's rate limit).")
                            .Register(r)),
        provisioning_requests(
            prometheus::BuildCounter()
                .Name("fleetcore_gateway_provisioning_requests_total")
                .Help("Fleet provisioning requests of devices ($aws/certificates/create..., "
                      "$aws/provisioning-templates/.../provision), by operation (AWS's API name) "
                      "and result (accepted, rejected, or throttled: over the gateway's rate "
                      "limit).")
                .Register(r)),
        jobs_requests(prometheus::BuildCounter()
                          .Name("fleetcore_gateway_jobs_requests_total")
                          .Help("AWS IoT Jobs requests of devices, answered with no job pending, "
                                "by operation and result (accepted or rejected).")
                          .Register(r)),
        defender_reports(prometheus::BuildCounter()
                             .Name("fleetcore_gateway_defender_reports_total")
                             .Help("Device Defender metrics reports of devices, by format (json "
                                   "or cbor) and result (accepted or rejected).")
                             .Register(r)),
        sts_requests(prometheus::BuildCounter()
                         .Name("fleetcore_gateway_sts_requests_total")
                         .Help("STS requests (GetSessionToken, GetCallerIdentity) on the HTTP "
                               "listeners, by action and result (ok or STS's error code).")
                         .Register(r)),
        sessions(prometheus::BuildGauge()
                     .Name("fleetcore_gateway_sessions")
                     .Help("Sessions held, connected or not.")
                     .Register(r)
                     .Add({})),
        retained(prometheus::BuildGauge()
                     .Name("fleetcore_gateway_retained_messages")
                     .Help("Retained messages held.")
                     .Register(r)
                     .Add({})),
        queued(prometheus::BuildGauge()
                   .Name("fleetcore_gateway_queued_messages")
                   .Help("Messages waiting in sessions for their clients (sampled).")
                   .Register(r)
                   .Add({})),
        inflight(prometheus::BuildGauge()
                     .Name("fleetcore_gateway_inflight_messages")
                     .Help("QoS 1/2 messages sent and not yet acknowledged (sampled).")
                     .Register(r)
                     .Add({})),
        max_connections(prometheus::BuildGauge()
                            .Name("fleetcore_gateway_max_connections")
                            .Help("--max-connections: the connections the gateway holds at "
                                  "most (0: no limit).")
                            .Register(r)
                            .Add({})),
        certificate_reloads(prometheus::BuildCounter()
                                .Name("fleetcore_gateway_endpoint_certificate_reloads_total")
                                .Help("Reloads of the endpoint's TLS certificate and key after "
                                      "their files changed or SIGHUP, by result.")
                                .Register(r)),
        certificate_expiry(
            prometheus::BuildGauge()
                .Name("fleetcore_gateway_endpoint_certificate_expiry_timestamp_seconds")
                .Help("When the endpoint's TLS certificate in use expires (notAfter), Unix "
                      "seconds.")
                .Register(r)
                .Add({})),
        store_pending(prometheus::BuildGauge()
                          .Name("fleetcore_gateway_store_pending_writes")
                          .Help("Session and retained writes waiting for Postgres.")
                          .Register(r)
                          .Add({})),
        store_errors(prometheus::BuildCounter()
                         .Name("fleetcore_gateway_store_errors_total")
                         .Help("Failed batches of writes to Postgres (retried).")
                         .Register(r)
                         .Add({})),
        cluster_connected(prometheus::BuildGauge()
                              .Name("fleetcore_gateway_cluster_connected")
                              .Help("1 while the gateway is connected to the NATS its replicas "
                                    "share (--cluster-url); 0 otherwise.")
                              .Register(r)
                              .Add({})),
        cluster_replicas(prometheus::BuildGauge()
                             .Name("fleetcore_gateway_cluster_replicas")
                             .Help("Gateway replicas heard from in the last seconds, this one "
                                   "included.")
                             .Register(r)
                             .Add({})),
        cluster_shared_groups(prometheus::BuildGauge()
                                  .Name("fleetcore_gateway_cluster_shared_groups")
                                  .Help("Shared subscription groups with a member connected "
                                        "here, and on the other replicas.")
                                  .Register(r)),
        cluster_messages(prometheus::BuildCounter()
                             .Name("fleetcore_gateway_cluster_messages_total")
                             .Help("Messages sent to and received from the other replicas.")
                             .Register(r)),
        cluster_handovers(prometheus::BuildCounter()
                              .Name("fleetcore_gateway_cluster_handovers_total")
                              .Help("Sessions a resuming client asked the other replicas for, "
                                    "by result.")
                              .Register(r)),
        cluster_takeovers(prometheus::BuildCounter()
                              .Name("fleetcore_gateway_cluster_takeovers_total")
                              .Help("Sessions here ended because their client id connected to "
                                    "another replica.")
                              .Register(r)
                              .Add({})),
        cluster_adopted(prometheus::BuildCounter()
                            .Name("fleetcore_gateway_cluster_sessions_adopted_total")
                            .Help("Sessions of replicas that left or went silent, taken over "
                                  "here.")
                            .Register(r)
                            .Add({})),
        cluster_shared_turns(prometheus::BuildCounter()
                                 .Name("fleetcore_gateway_cluster_shared_turns_total")
                                 .Help("Shared subscription messages NATS or another replica "
                                       "gave this replica, or that waited here for a member, "
                                       "by what became of them: here (a member here has it), "
                                       "passed (on to a replica with a member connected, "
                                       "those here all away), dropped (no member here could "
                                       "take it).")
                                 .Register(r)),
        cluster_errors(prometheus::BuildCounter()
                           .Name("fleetcore_gateway_cluster_errors_total")
                           .Help("Trouble between replicas, by kind.")
                           .Register(r)),
        latency(prometheus::BuildHistogram()
                    .Name("fleetcore_gateway_delivery_latency_seconds")
                    .Help("From a PUBLISH's arrival to its encoding for a subscriber.")
                    .Register(r)
                    .Add({}, prometheus::Histogram::BucketBoundaries(LatencyBounds()))) {
    for (int q = 0; q < 3; ++q) {
      received_qos[q] = &received.Add({{"qos", std::to_string(q)}});
      sent_qos[q] = &sent.Add({{"qos", std::to_string(q)}});
    }
    bytes_in = &bytes.Add({{"direction", "in"}});
    bytes_out = &bytes.Add({{"direction", "out"}});
    for (const char* reason : {"queue_full", "expired", "too_large_for_client"}) {
      dropped.Add({{"reason", reason}});
    }
    for (const char* limit : {"publishes", "bytes"}) throttled.Add({{"limit", limit}});
    for (const char* result : {"ok", "failed"}) certificate_reloads.Add({{"result", result}});
    cluster_out = &cluster_messages.Add({{"direction", "out"}});
    cluster_in = &cluster_messages.Add({{"direction", "in"}});
    shared_groups_here = &cluster_shared_groups.Add({{"where", "here"}});
    shared_groups_elsewhere = &cluster_shared_groups.Add({{"where", "elsewhere"}});
    shared_here = &cluster_shared_turns.Add({{"result", "here"}});
    shared_passed = &cluster_shared_turns.Add({{"result", "passed"}});
    shared_dropped = &cluster_shared_turns.Add({{"result", "dropped"}});
  }

  prometheus::Family<prometheus::Gauge>& connections;
  prometheus::Family<prometheus::Counter>& connects;
  prometheus::Family<prometheus::Counter>& disconnects;
  prometheus::Family<prometheus::Counter>& protocol_errors;
  prometheus::Family<prometheus::Counter>& throttled;
  prometheus::Family<prometheus::Counter>& received;
  prometheus::Family<prometheus::Counter>& sent;
  prometheus::Family<prometheus::Counter>& bytes;
  prometheus::Family<prometheus::Counter>& dropped;
  prometheus::Counter& enriched;
  prometheus::Counter& unrouted;
  prometheus::Counter& routed;
  prometheus::Counter& sessions_expired;
  prometheus::Counter& wills;
  prometheus::Counter& retained_refused;
  prometheus::Counter& shared_queue_moved;
  prometheus::Family<prometheus::Counter>& http_publish;
  prometheus::Family<prometheus::Counter>& denied;
  prometheus::Family<prometheus::Counter>& tls_handshakes;
  prometheus::Family<prometheus::Counter>& identity_cache;
  prometheus::Family<prometheus::Counter>& shadow_requests;
  prometheus::Family<prometheus::Counter>& provisioning_requests;
  prometheus::Family<prometheus::Counter>& jobs_requests;
  prometheus::Family<prometheus::Counter>& defender_reports;
  prometheus::Family<prometheus::Counter>& sts_requests;
  prometheus::Gauge& sessions;
  prometheus::Gauge& retained;
  prometheus::Gauge& queued;
  prometheus::Gauge& inflight;
  prometheus::Gauge& max_connections;
  prometheus::Family<prometheus::Counter>& certificate_reloads;
  prometheus::Gauge& certificate_expiry;
  prometheus::Gauge& store_pending;
  prometheus::Counter& store_errors;
  prometheus::Gauge& cluster_connected;
  prometheus::Gauge& cluster_replicas;
  prometheus::Family<prometheus::Gauge>& cluster_shared_groups;
  prometheus::Gauge* shared_groups_here = nullptr;
  prometheus::Gauge* shared_groups_elsewhere = nullptr;
  prometheus::Family<prometheus::Counter>& cluster_messages;
  prometheus::Family<prometheus::Counter>& cluster_handovers;
  prometheus::Counter& cluster_takeovers;
  prometheus::Counter& cluster_adopted;
  prometheus::Family<prometheus::Counter>& cluster_shared_turns;
  prometheus::Counter* shared_here = nullptr;
  prometheus::Counter* shared_passed = nullptr;
  prometheus::Counter* shared_dropped = nullptr;
  prometheus::Family<prometheus::Counter>& cluster_errors;
  prometheus::Counter* cluster_out = nullptr;
  prometheus::Counter* cluster_in = nullptr;
  prometheus::Histogram& latency;
  prometheus::Counter* received_qos[3];
  prometheus::Counter* sent_qos[3];
  prometheus::Counter* bytes_in;
  prometheus::Counter* bytes_out;

  // The broker's counters are monotonic; these remember what was added already.
  absl::Mutex mu;
  uint64_t seen_not_allowed = 0;
  uint64_t seen_queue_full = 0, seen_expired = 0, seen_routed = 0, seen_unrouted = 0,
           seen_sessions_expired = 0, seen_wills = 0, seen_retained_refused = 0,
           seen_shared_queue_moved = 0;
};

GatewayMetrics::GatewayMetrics(prometheus::Registry& registry)
    : impl_(std::make_unique<Impl>(registry)) {}
GatewayMetrics::~GatewayMetrics() = default;

namespace {

const char* VersionLabel(mqtt::Version v) { return v == mqtt::Version::kV5 ? "5" : "3.1.1"; }

}  // namespace

void GatewayMetrics::ConnectionOpened(ListenerKind listener, mqtt::Version version) {
  impl_->connections.Add({{"listener", ListenerName(listener)}, {"protocol", VersionLabel(version)}})
      .Increment();
}

void GatewayMetrics::ConnectionClosed(ListenerKind listener, mqtt::Version version,
                                      absl::string_view reason) {
  impl_->connections.Add({{"listener", ListenerName(listener)}, {"protocol", VersionLabel(version)}})
      .Decrement();
  impl_->disconnects.Add({{"reason", std::string(reason)}}).Increment();
}

void GatewayMetrics::Connect(ListenerKind listener, absl::string_view result) {
  impl_->connects.Add({{"listener", ListenerName(listener)}, {"result", std::string(result)}})
      .Increment();
}

void GatewayMetrics::ProtocolError(absl::string_view reason) {
  impl_->protocol_errors.Add({{"reason", std::string(reason)}}).Increment();
}

void GatewayMetrics::Throttled(absl::string_view limit) {
  impl_->throttled.Add({{"limit", std::string(limit)}}).Increment();
}

void GatewayMetrics::TlsHandshake(ListenerKind listener, absl::string_view result) {
  impl_->tls_handshakes.Add({{"listener", ListenerName(listener)}, {"result", std::string(result)}})
      .Increment();
}

void GatewayMetrics::IdentityCache(absl::string_view cache, absl::string_view result) {
  impl_->identity_cache.Add({{"cache", std::string(cache)}, {"result", std::string(result)}})
      .Increment();
}

void GatewayMetrics::Denied(absl::string_view action) {
  impl_->denied.Add({{"action", std::string(action)}}).Increment();
}

void GatewayMetrics::ProvisioningRequest(absl::string_view operation, absl::string_view result) {
  impl_->provisioning_requests
      .Add({{"operation", std::string(operation)}, {"result", std::string(result)}})
      .Increment();
}

void GatewayMetrics::JobsRequest(absl::string_view operation, bool accepted) {
  impl_->jobs_requests
      .Add({{"operation", std::string(operation)}, {"result", accepted ? "accepted" : "rejected"}})
      .Increment();
}

void GatewayMetrics::DefenderReport(absl::string_view format, bool accepted) {
  impl_->defender_reports
      .Add({{"format", std::string(format)}, {"result", accepted ? "accepted" : "rejected"}})
      .Increment();
}

void GatewayMetrics::StsRequest(absl::string_view action, absl::string_view result) {
  impl_->sts_requests.Add({{"action", std::string(action)}, {"result", std::string(result)}})
      .Increment();
}

void GatewayMetrics::ShadowRequest(absl::string_view operation, bool accepted) {
  impl_->shadow_requests
      .Add({{"operation", std::string(operation)}, {"result", accepted ? "accepted" : "rejected"}})
      .Increment();
}

void GatewayMetrics::ShadowThrottled(absl::string_view operation) {
  impl_->shadow_requests.Add({{"operation", std::string(operation)}, {"result", "throttled"}})
      .Increment();
}

void GatewayMetrics::HttpPublish(absl::string_view result) {
  impl_->http_publish.Add({{"result", std::string(result)}}).Increment();
}

void GatewayMetrics::AddThreadStats(ThreadStats& s) {
  for (int q = 0; q < 3; ++q) {
    if (s.received[q] > 0) impl_->received_qos[q]->Increment(static_cast<double>(s.received[q]));
    if (s.sent[q] > 0) impl_->sent_qos[q]->Increment(static_cast<double>(s.sent[q]));
    s.received[q] = s.sent[q] = 0;
  }
  if (s.bytes_received > 0) impl_->bytes_in->Increment(static_cast<double>(s.bytes_received));
  if (s.bytes_sent > 0) impl_->bytes_out->Increment(static_cast<double>(s.bytes_sent));
  if (s.dropped_too_large > 0) {
    impl_->dropped.Add({{"reason", "too_large_for_client"}})
        .Increment(static_cast<double>(s.dropped_too_large));
  }
  if (s.dropped_expired > 0) {
    impl_->dropped.Add({{"reason", "expired"}}).Increment(static_cast<double>(s.dropped_expired));
  }
  if (s.enriched > 0) impl_->enriched.Increment(static_cast<double>(s.enriched));
  s.bytes_received = s.bytes_sent = s.dropped_too_large = s.dropped_expired = s.enriched = 0;
  bool any = false;
  for (double b : s.latency_buckets) any |= b > 0;
  if (any) {
    impl_->latency.ObserveMultiple(s.latency_buckets, s.latency_sum);
    std::fill(s.latency_buckets.begin(), s.latency_buckets.end(), 0);
    s.latency_sum = 0;
  }
}

void GatewayMetrics::UpdateBroker(const BrokerCounters& c, size_t sessions, size_t retained) {
  absl::MutexLock l(&impl_->mu);
  auto add = [](prometheus::Counter& counter, uint64_t now, uint64_t& seen) {
    if (now > seen) counter.Increment(static_cast<double>(now - seen));
    seen = now;
  };
  add(impl_->dropped.Add({{"reason", "queue_full"}}),
      c.dropped_queue_full.load(std::memory_order_relaxed), impl_->seen_queue_full);
  add(impl_->dropped.Add({{"reason", "expired"}}), c.dropped_expired.load(std::memory_order_relaxed),
      impl_->seen_expired);
  add(impl_->dropped.Add({{"reason", "not_authorized"}}),
      c.dropped_not_allowed.load(std::memory_order_relaxed), impl_->seen_not_allowed);
  add(impl_->routed, c.routed.load(std::memory_order_relaxed), impl_->seen_routed);
  add(impl_->unrouted, c.no_subscriber.load(std::memory_order_relaxed), impl_->seen_unrouted);
  add(impl_->sessions_expired, c.sessions_expired.load(std::memory_order_relaxed),
      impl_->seen_sessions_expired);
  add(impl_->wills, c.wills_published.load(std::memory_order_relaxed), impl_->seen_wills);
  add(impl_->retained_refused, c.retained_refused.load(std::memory_order_relaxed),
      impl_->seen_retained_refused);
  add(impl_->shared_queue_moved, c.shared_queue_moved.load(std::memory_order_relaxed),
      impl_->seen_shared_queue_moved);
  impl_->sessions.Set(static_cast<double>(sessions));
  impl_->retained.Set(static_cast<double>(retained));
}

void GatewayMetrics::SetSessionQueues(size_t queued, size_t inflight) {
  impl_->queued.Set(static_cast<double>(queued));
  impl_->inflight.Set(static_cast<double>(inflight));
}

void GatewayMetrics::EndpointCertificateReload(absl::string_view result) {
  impl_->certificate_reloads.Add({{"result", std::string(result)}}).Increment();
}

void GatewayMetrics::SetEndpointCertificateExpiry(absl::Time not_after) {
  impl_->certificate_expiry.Set(absl::ToDoubleSeconds(not_after - absl::UnixEpoch()));
}

void GatewayMetrics::SetMaxConnections(int64_t max) {
  impl_->max_connections.Set(static_cast<double>(max));
}

void GatewayMetrics::SetStorePending(size_t pending) {
  impl_->store_pending.Set(static_cast<double>(pending));
}

void GatewayMetrics::StoreError() { impl_->store_errors.Increment(); }

void GatewayMetrics::SetClusterConnected(bool connected) {
  impl_->cluster_connected.Set(connected ? 1 : 0);
}

void GatewayMetrics::SetClusterReplicas(size_t replicas) {
  impl_->cluster_replicas.Set(static_cast<double>(replicas));
}

void GatewayMetrics::SetClusterSharedGroups(size_t here, size_t elsewhere) {
  impl_->shared_groups_here->Set(static_cast<double>(here));
  impl_->shared_groups_elsewhere->Set(static_cast<double>(elsewhere));
}

void GatewayMetrics::ClusterMessages(bool out, uint64_t n) {
  (out ? impl_->cluster_out : impl_->cluster_in)->Increment(static_cast<double>(n));
}

void GatewayMetrics::ClusterHandover(absl::string_view result) {
  impl_->cluster_handovers.Add({{"result", std::string(result)}}).Increment();
}

void GatewayMetrics::ClusterTakeover() { impl_->cluster_takeovers.Increment(); }

void GatewayMetrics::ClusterAdopted(int64_t sessions) {
  impl_->cluster_adopted.Increment(static_cast<double>(sessions));
}

void GatewayMetrics::ClusterSharedTurn(SharedTurnResult result) {
  switch (result) {
    case SharedTurnResult::kHere:
      return impl_->shared_here->Increment();
    case SharedTurnResult::kPassed:
      return impl_->shared_passed->Increment();
    case SharedTurnResult::kDropped:
      return impl_->shared_dropped->Increment();
  }
}

void GatewayMetrics::ClusterError(absl::string_view kind) {
  impl_->cluster_errors.Add({{"kind", std::string(kind)}}).Increment();
}

}  // namespace fleetcore::gateway
