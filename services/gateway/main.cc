// fleetcore-gateway: the MQTT broker (MQTT 3.1.1 and 5 over TCP, TLS and WebSocket, HTTPS
// publish) and fleetcore.gateway.v1.Broker. Reads flags and FLEETCORE_* environment, builds
// the objects, serves until SIGTERM/SIGINT, then drains; SIGHUP reloads the endpoint
// certificate.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/match.h"
#include "common/db/pg_listener.h"
#include "common/grpc/call_runner.h"
#include "common/grpc/client.h"
#include "common/grpc/executor.h"
#include "common/grpc/runtime.h"
#include "common/ids/id_generator.h"
#include "common/log/log.h"
#include "common/service/endpoints.h"
#include "common/service/process.h"
#include "common/service/service_options.h"
#include "common/status/status_macros.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"
#include "services/gateway/broker.h"
#include "services/gateway/cluster.h"
#include "services/gateway/connect_throttle.h"
#include "services/gateway/connections_api.h"
#include "services/gateway/defender_responder.h"
#include "services/gateway/direct_messages.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/gateway_server.h"
#include "services/gateway/gateway_service.h"
#include "services/gateway/grpc_authenticator.h"
#include "services/gateway/jobs_responder.h"
#include "services/gateway/nats_cluster_bus.h"
#include "services/gateway/pg_gateway_store.h"
#include "services/gateway/provisioning_forwarder.h"
#include "services/gateway/retained_api.h"
#include "services/gateway/rules_feeder.h"
#include "services/gateway/shadow_forwarder.h"
#include "services/gateway/sts_api.h"

namespace fleetcore::gateway {
namespace {

// Many connections need many descriptors: take the hard limit.
void RaiseFileLimit() {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
    log::Info("file descriptors", {{"limit", static_cast<int64_t>(r.rlim_cur)}});
  }
}

int Run(int argc, char** argv) {
  grpc_util::BlockShutdownSignals();
  // SIGHUP reloads the endpoint certificate (GatewayServer's maintenance thread takes it)
  // instead of ending the process.
  sigset_t hangup;
  sigemptyset(&hangup);
  sigaddset(&hangup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hangup, nullptr);
  grpc_util::ConfigureRuntime();

  service::CommonOptions common{.service = "gateway"};
  common.server.listen = service::kGatewayEndpoint;
  common.metrics_listen = "127.0.0.1:9104";
  common.db.application_name = "fleetcore-gateway";
  GatewayOptions options{.mqtts_listen = "127.0.0.1:8883"};
  BrokerLimits limits;
  int max_payload = static_cast<int>(limits.max_payload_bytes);
  int max_packet = static_cast<int>(limits.max_packet_bytes);
  int max_topic = static_cast<int>(limits.max_topic_bytes);
  int max_client_id = static_cast<int>(limits.max_client_id_bytes);
  int max_qos = limits.max_qos;
  int max_inflight = limits.max_inflight;
  int max_aliases = limits.max_topic_aliases;
  int max_queued = static_cast<int>(limits.max_queued_messages);
  int max_outbound_kb = static_cast<int>(limits.max_outbound_bytes / 1024);
  std::string endpoint_address;
  int max_connections = 0;
  int max_accepts_per_second = 0;
  int max_connects_per_client_id = 0;
  int max_publish_rate = 0;
  int max_inbound_kb_rate = 0;
  int max_retained = 0;
  int store_max_pending = 1000000;
  absl::Duration drain_timeout = absl::Seconds(10);

  config::FlagSet flags("fleetcore-gateway",
                        "The fleetcore MQTT gateway: an MQTT 3.1.1 and 5 broker over TCP, TLS "
                        "and WebSocket with HTTPS publish, persistent sessions and retained "
                        "messages in Postgres, and the Broker gRPC API.");
  service::RegisterFlags(flags, &common);
  flags.AddString("mqtt-listen", &options.mqtt_listen,
                  "host:port for MQTT over plain TCP (development only; 1883); empty: off.");
  flags.AddString("mqtts-listen", &options.mqtts_listen,
                  "host:port for MQTT over TLS (8883); empty: off.");
  flags.AddString("http-listen", &options.http_listen,
                  "host:port for WebSocket MQTT (ws://host/mqtt) and HTTP publish (POST "
                  "/topics/{topic}) in clear (development only); empty: off.");
  flags.AddString("https-listen", &options.https_listen,
                  "host:port for WebSocket MQTT over TLS (wss://host/mqtt), HTTPS publish, "
                  "and MQTT over TLS for clients that ask for it by ALPN (x-amzn-mqtt-ca, "
                  "mqtt), as AWS's port 443 (AWS: 443 and 8443); empty: off.");
  flags.AddString("endpoint-cert-file", &options.tls.cert_file,
                  "The certificate devices see on the TLS listeners (PEM, with its chain); "
                  "read again when it or the key file changes, or on SIGHUP.");
  flags.AddString("endpoint-key-file", &options.tls.key_file,
                  "Its private key (PEM, mode 0600).");
  flags.AddString("endpoint-address", &endpoint_address,
                  "The host name DescribeEndpoint gives devices (AWS: "
                  "PREFIX-ats.iot.REGION.amazonaws.com); empty: the DNS name in "
                  "--endpoint-cert-file, else this machine's host name.");
  flags.AddString("tls-min-version", &options.tls.min_version,
                  "The oldest TLS version devices may use: 1.2 (as AWS's default security "
                  "policy) or 1.3 (as its TLS13 policies).");
  flags.AddInt("tls-session-cache", &options.tls.session_cache_size,
               "TLS sessions kept for devices' resumption (about 6 KB each with its "
               "client's certificate); 0: stateless tickets (slower to resume).",
               0, 10000000);
  flags.AddInt("io-threads", &options.io_threads,
               "Threads serving connections; 0: one per core.", 0, 256);
  flags.AddInt("max-payload-size", &max_payload,
               "Largest PUBLISH or will payload in bytes (AWS: 131072).", 1, 256 << 20);
  flags.AddInt("max-packet-size", &max_packet,
               "Largest MQTT packet in bytes (AWS: 149504).", 64, 268435455);
  flags.AddInt("max-topic-length", &max_topic, "Longest topic name or filter in bytes (AWS: 256).",
               1, 65535);
  flags.AddInt("max-topic-slashes", &limits.max_topic_slashes,
               "Most '/' in a topic name or filter (AWS: 7).", 0, 65535);
  flags.AddInt("max-filters-per-subscribe", &limits.max_filters_per_subscribe,
               "Topic filters one SUBSCRIBE may carry; the rest are refused (AWS: 8).", 1, 65535);
  flags.AddInt("max-subscriptions-per-connection", &limits.max_subscriptions_per_connection,
               "Subscriptions one session may hold (AWS: 50).", 1, 1000000);
  flags.AddInt("max-client-id-length", &max_client_id,
               "Longest client identifier in bytes (AWS: 128).", 1, 65535);
  flags.AddInt("max-qos", &max_qos,
               "Highest QoS accepted: 2, or 1 to refuse QoS 2 as AWS does.", 1, 2);
  flags.AddBool("retain-available", &limits.retain_available, "Whether retained messages work.");
  flags.AddInt("max-retained-messages", &max_retained,
               "Retained messages the gateway holds (in memory and in Postgres); at the limit "
               "one for a topic that has none is refused (MQTT 5 QoS 1/2: 0x97 quota "
               "exceeded) or delivered without being retained (AWS: 500000 per account). 0: "
               "no limit.",
               0, 2000000000);
  flags.AddDuration("keep-alive-min", &limits.keep_alive_min,
                    "Shorter keep-alives are raised to this (AWS: 30s).");
  flags.AddDuration("keep-alive-max", &limits.keep_alive_max,
                    "Longer keep-alives, and 0, become this (AWS: 1200s); 0s: use the client's "
                    "value as it is.");
  flags.AddDuration("max-session-expiry", &limits.max_session_expiry,
                    "How long a persistent session outlives its connection: MQTT 3.1.1's, and "
                    "the ceiling of MQTT 5's (AWS: 1h).");
  flags.AddInt("max-inflight", &max_inflight,
               "Unacknowledged QoS 1/2 messages per client, each way (AWS: 100).", 1, 65000);
  flags.AddInt("max-topic-aliases", &max_aliases,
               "Topic aliases a client may use (MQTT 5; AWS: 8).", 0, 65535);
  flags.AddInt("max-queued-messages", &max_queued,
               "Messages a session holds beyond its in-flight window; then QoS 0 is dropped "
               "and a connected client that cannot keep up is disconnected.",
               1, 10000000);
  flags.AddInt("max-outbound-kb", &max_outbound_kb,
               "KiB a connection may have waiting for its socket before its queue stops "
               "draining into it.",
               16, 1 << 20);
  flags.AddInt("max-accepts-per-second", &max_accepts_per_second,
               "Connections each listener accepts a second (one second's worth at once); more "
               "wait in the kernel's backlog, none refused, as EMQX's max_conn_rate: a "
               "reconnect storm reaches the CA and policy services at this pace. 0: no limit.",
               0, 10000000);
  flags.AddInt("max-connections", &max_connections,
               "MQTT connections (TCP, TLS, WebSocket) the gateway holds at once; more are "
               "closed at accept, before any TLS work, as Mosquitto's max_connections. 0: no "
               "limit but the process's file descriptors.",
               0, 100000000);
  flags.AddInt("max-connects-per-client-id-per-second", &max_connects_per_client_id,
               "CONNECTs one client id may make a second; one sooner is refused (MQTT 5: "
               "0x9F connection rate exceeded; 3.1.1: server unavailable) before its credentials "
               "are looked at (AWS: 1). 0: no limit.",
               0, 1000);
  flags.AddInt("max-publishes-per-second", &max_publish_rate,
               "PUBLISH packets a connection may send a second; a client over it is read more "
               "slowly, losing nothing (AWS: 100, dropping the excess). 0: no limit.",
               0, 10000000);
  flags.AddInt("max-inbound-kb-per-second", &max_inbound_kb_rate,
               "KiB a connection may send a second; a client over it is read more slowly "
               "(AWS: 512). 0: no limit.",
               0, 1 << 20);
  ProvisioningLimits provisioning_limits;
  flags.AddInt("max-create-keys-and-certificate-per-second",
               &provisioning_limits.create_keys_and_certificate_per_second,
               "Fleet provisioning's CreateKeysAndCertificate requests ($aws/certificates/create/"
               "...) this gateway passes to the CA service a second, from all its devices; "
               "more are rejected with 429 Throttled (AWS: 10 per account). 0: no limit.",
               0, 1000000);
  flags.AddInt("max-create-certificate-from-csr-per-second",
               &provisioning_limits.create_certificate_from_csr_per_second,
               "The same for CreateCertificateFromCsr ($aws/certificates/create-from-csr/...; "
               "AWS: 20). 0: no limit.",
               0, 1000000);
  flags.AddInt("max-register-thing-per-second", &provisioning_limits.register_thing_per_second,
               "The same for RegisterThing ($aws/provisioning-templates/.../provision/...; AWS: "
               "10). 0: no limit.",
               0, 1000000);
  flags.AddDuration("connect-timeout", &limits.connect_timeout,
                    "How long a new connection has for its TLS handshake and CONNECT.");
  flags.AddInt("store-max-pending", &store_max_pending,
               "Session and retained writes queued while Postgres is slow or down; beyond, "
               "writes are dropped (and counted).",
               1000, 100000000);
  flags.AddDuration("drain-timeout", &drain_timeout,
                    "At shutdown, how long clients get to be disconnected and sessions to be "
                    "written.");
  std::string shadow_endpoint = service::kShadowEndpoint;
  std::string peers_ca_file;
  int max_shadow_requests = 20;
  flags.AddString("shadow-endpoint", &shadow_endpoint,
                  "host:port of the shadow service, which answers $aws/things/+/shadow/... "
                  "requests; empty: those topics are plain topics.");
  flags.AddInt("max-shadow-requests-per-second", &max_shadow_requests,
               "Get, update and delete requests one shadow takes a second over MQTT and HTTPS "
               "(list requests: one thing), one second's worth at once; more are rejected with "
               "429 before they reach the shadow service (AWS: 20). 0: no limit.",
               0, 1000000);
  flags.AddString("peers-tls-ca-file", &peers_ca_file,
                  "CA bundle to verify the TLS of the services the gateway calls; empty: "
                  "plaintext.");
  std::string rules_endpoint = service::kRulesEndpoint;
  int rules_queue = 10000;
  flags.AddString("rules-endpoint", &rules_endpoint,
                  "host:port of the rules service, which gets the messages that match an "
                  "enabled topic rule and Basic Ingest ($aws/rules/...); empty: no rules.");
  flags.AddInt("rules-queue", &rules_queue,
               "Messages waiting to be sent to the rules service; beyond, they are dropped "
               "(and counted).",
               100, 10000000);
  std::string ca_endpoint = service::kCaEndpoint;
  std::string policy_endpoint = service::kPolicyEndpoint;
  std::string anonymous_policy_file;
  absl::Duration authorizer_refresh_max = absl::ZeroDuration();
  flags.AddDuration("authorizer-refresh-max", &authorizer_refresh_max,
                    "Ask a custom authorizer again about a connected client at least this "
                    "often, whatever its refreshAfterInSeconds (a refusal disconnects); 0s: "
                    "as the authorizer says.");
  flags.AddString("ca-endpoint", &ca_endpoint,
                  "host:port of the CA service, which says whose a client certificate is "
                  "(ResolvePeer; JITR and JITP happen there).");
  flags.AddString("policy-endpoint", &policy_endpoint,
                  "host:port of the policy service, which gives a client's IoT policies at "
                  "CONNECT (they are then enforced in the gateway).");
  std::string cluster_url;
  std::string cluster_ca_file;
  std::string cluster_node;
  ClusterOptions cluster_options;
  flags.AddSecret("cluster-url", &cluster_url,
                  "NATS server(s) the gateway replicas share (nats://host:4222, or tls://; "
                  "comma-separated; user:password@ allowed): messages, client ids and "
                  "sessions then span every replica. Empty: this gateway serves alone.");
  flags.AddString("cluster-node-id", &cluster_node,
                  "This replica's name among the others, unique and kept across restarts (a "
                  "StatefulSet pod's name): the sessions it holds are stored under it. Empty: "
                  "this machine's host name.");
  flags.AddString("cluster-tls-ca-file", &cluster_ca_file,
                  "CA bundle to verify a tls:// NATS server; empty: the system's.");
  flags.AddDuration("cluster-handover-timeout", &cluster_options.handover_timeout,
                    "How long a client resuming its session on this replica waits for the "
                    "other replicas to hand it over (and the Broker API for their answers).");
  flags.AddString("anonymous-policy-file", &anonymous_policy_file,
                  "An IoT policy document (JSON) for clients that present no certificate; "
                  "empty: such clients are refused. For development only, like Mosquitto's "
                  "allow_anonymous.");
  if (std::optional<int> code = service::ParseFlags(flags, argc, argv, [&]() -> absl::Status {
        FLEETCORE_RETURN_IF_ERROR(service::Validate(common));
        if (options.tls.cert_file.empty() != options.tls.key_file.empty()) {
          return absl::InvalidArgumentError(
              "--endpoint-cert-file and --endpoint-key-file must be given together");
        }
        if ((!options.mqtts_listen.empty() || !options.https_listen.empty()) &&
            options.tls.cert_file.empty()) {
          return absl::InvalidArgumentError(
              "the TLS listeners (--mqtts-listen, --https-listen) need --endpoint-cert-file "
              "and --endpoint-key-file; set them, or turn the listeners off with "
              "--mqtts-listen= --https-listen=");
        }
        if (options.tls.min_version != "1.2" && options.tls.min_version != "1.3") {
          return absl::InvalidArgumentError("--tls-min-version must be 1.2 or 1.3");
        }
        if (options.mqtt_listen.empty() && options.mqtts_listen.empty() &&
            options.http_listen.empty() && options.https_listen.empty()) {
          return absl::InvalidArgumentError("every MQTT listener is off");
        }
        if (max_packet < max_payload) {
          return absl::InvalidArgumentError("--max-packet-size must be at least --max-payload-size");
        }
        if (limits.keep_alive_max != absl::ZeroDuration() &&
            limits.keep_alive_min > limits.keep_alive_max) {
          return absl::InvalidArgumentError("--keep-alive-min must not exceed --keep-alive-max");
        }
        if (limits.max_session_expiry < absl::ZeroDuration()) {
          return absl::InvalidArgumentError("--max-session-expiry must not be negative");
        }
        if (!cluster_url.empty() && cluster_node.empty()) {
          char host[256] = {};
          gethostname(host, sizeof(host) - 1);
          cluster_node = host;
          if (cluster_node.empty()) {
            return absl::InvalidArgumentError("--cluster-url needs a --cluster-node-id");
          }
        }
        if (cluster_options.handover_timeout <= absl::ZeroDuration()) {
          return absl::InvalidArgumentError("--cluster-handover-timeout must be positive");
        }
        return absl::OkStatus();
      })) {
    return *code;
  }
  limits.max_payload_bytes = static_cast<uint32_t>(max_payload);
  limits.max_packet_bytes = static_cast<uint32_t>(max_packet);
  limits.max_topic_bytes = static_cast<uint32_t>(max_topic);
  limits.max_client_id_bytes = static_cast<uint32_t>(max_client_id);
  limits.max_qos = static_cast<uint8_t>(max_qos);
  limits.max_inflight = static_cast<uint16_t>(max_inflight);
  limits.max_topic_aliases = static_cast<uint16_t>(max_aliases);
  limits.max_queued_messages = static_cast<uint32_t>(max_queued);
  limits.max_outbound_bytes = static_cast<size_t>(max_outbound_kb) * 1024;
  limits.max_publishes_per_second = static_cast<uint32_t>(max_publish_rate);
  limits.max_inbound_bytes_per_second = static_cast<uint32_t>(max_inbound_kb_rate) * 1024;
  limits.max_retained_messages = static_cast<uint32_t>(max_retained);

  service::Process process;
  if (std::optional<int> code = service::Start(common, nullptr, &process)) return *code;
  RaiseFileLimit();

  SystemClock clock;
  RandomIdGenerator ids;
  GatewayMetrics metrics(*process.metrics);
  // Sessions are stored under this replica's node id ("" for a gateway alone).
  PgGatewayStore store(process.pool.get(), &metrics, static_cast<size_t>(store_max_pending),
                       cluster_url.empty() ? "" : cluster_node);
  Broker broker(limits, &store, &clock);
  // Among replicas: NATS first, so that nothing published while this one loads is missed.
  std::unique_ptr<NatsClusterBus> bus;
  std::unique_ptr<NatsClusterBus> shared_bus;
  std::unique_ptr<Cluster> cluster;
  if (!cluster_url.empty()) {
    // Two connections: one that does not echo this replica's messages back to it, and one
    // for shared subscriptions' queue groups, whose turn may be this replica's own.
    absl::StatusOr<std::unique_ptr<NatsClusterBus>> connected = NatsClusterBus::Connect(
        {.url = cluster_url, .name = cluster_node, .ca_file = cluster_ca_file, .no_echo = true},
        &metrics);
    if (connected.ok()) {
      bus = *std::move(connected);
      connected = NatsClusterBus::Connect(
          {.url = cluster_url, .name = cluster_node + " shared", .ca_file = cluster_ca_file},
          &metrics);
    }
    if (!connected.ok()) {
      log::Error("cannot start", {{"error", connected.status()}});
      return 1;
    }
    shared_bus = *std::move(connected);
    // A message travels between replicas as its MQTT packet plus the node's id and its own
    // and, passed on for a shared group, the group (128 characters at most) and its filter.
    const int64_t needed =
        int64_t{limits.max_packet_bytes} + int64_t{limits.max_topic_bytes} + 1024;
    if (bus->max_payload() < needed) {
      log::Error("cannot start",
                 {{"error", absl::StrCat("NATS takes messages of at most ", bus->max_payload(),
                                         " bytes (its max_payload), and a message of "
                                         "--max-packet-size (",
                                         limits.max_packet_bytes,
                                         "), with a filter of "
                                         "--max-topic-length (",
                                         limits.max_topic_bytes, "), needs ", needed,
                                         " between replicas: raise "
                                         "max_payload in nats-server's configuration or lower "
                                         "--max-packet-size")}});
      return 1;
    }
    cluster_options.node = cluster_node;
    cluster = std::make_unique<Cluster>(bus.get(), shared_bus.get(), &broker, &store, &metrics,
                                        cluster_options);
    broker.SetCluster(cluster.get());
    if (absl::Status s = cluster->Start(); !s.ok()) {
      log::Error("cannot start", {{"error", s}});
      return 1;
    }
  }
  if (absl::Status s = broker.Load(); !s.ok()) {
    log::Error("cannot start: loading sessions and retained messages", {{"error", s}});
    return 1;
  }
  if (cluster != nullptr) cluster->Ready();
  // The AWS services' request topics: the shadow's go to the shadow service.
  std::unique_ptr<ShadowForwarder> shadow;
  // The services the gateway calls (each call sets its own deadline).
  if (!shadow_endpoint.empty()) {
    std::optional<grpc_util::ServiceChannel> channel =
        service::ConnectPeer("shadow", shadow_endpoint, peers_ca_file, common);
    if (!channel.has_value()) return 1;
    shadow = std::make_unique<ShadowForwarder>(channel->channel(), common.server.admin_token,
                                               &broker, &metrics, max_shadow_requests);
  }
  std::unique_ptr<RulesFeeder> rules;
  if (!rules_endpoint.empty()) {
    std::optional<grpc_util::ServiceChannel> channel =
        service::ConnectPeer("rules", rules_endpoint, peers_ca_file, common);
    if (!channel.has_value()) return 1;
    rules = std::make_unique<RulesFeeder>(
        channel->channel(), common.server.admin_token, process.metrics.get(),
        RulesFeeder::Options{.max_queued = static_cast<size_t>(rules_queue)});
    broker.SetRulesHook([r = rules.get()](const MessagePtr& m) { r->MaybeFeed(m); });
  }
  // Who clients are and what they may do: the CA service resolves certificates, the policy
  // service gives their policies, decided here on every action.
  std::shared_ptr<const policy::PolicyDocument> anonymous;
  if (!anonymous_policy_file.empty()) {
    std::ifstream in(anonymous_policy_file);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<std::shared_ptr<const policy::PolicyDocument>> doc =
        in ? policy::PolicyDocument::Parse(text.str())
           : absl::StatusOr<std::shared_ptr<const policy::PolicyDocument>>(
                 absl::NotFoundError("cannot read it"));
    if (!doc.ok()) {
      log::Error("cannot start: --anonymous-policy-file " + anonymous_policy_file,
                 {{"error", doc.status()}});
      return 1;
    }
    anonymous = *std::move(doc);
    log::Warn("clients without a certificate are admitted under the anonymous policy: "
              "development only",
              {{"anonymous_policy_file", anonymous_policy_file}});
  }
  std::optional<grpc_util::ServiceChannel> ca_channel =
      service::ConnectPeer("ca", ca_endpoint, peers_ca_file, common);
  if (!ca_channel.has_value()) return 1;
  std::optional<grpc_util::ServiceChannel> policy_channel =
      service::ConnectPeer("policy", policy_endpoint, peers_ca_file, common);
  if (!policy_channel.has_value()) return 1;
  GrpcAuthenticator authenticator(
      ca_channel->channel(), policy_channel->channel(), common.server.admin_token,
      aws::Arns(common.region, common.account_id), anonymous,
      [&broker](std::string topic, std::string payload) {
        auto m = std::make_shared<Message>();
        m->topic = std::move(topic);
        m->payload = std::move(payload);
        m->qos = 1;
        broker.Publish(m);
      },
      authorizer_refresh_max, &metrics);
  // The AWS services' request topics: the shadow's to the shadow service, fleet
  // provisioning's to the CA service; AWS IoT Jobs' and Device Defender's answered here.
  ProvisioningForwarder provisioning(ca_channel->channel(), common.server.admin_token, &broker,
                                     provisioning_limits, &clock, &metrics);
  JobsResponder jobs(&broker, &metrics);
  DefenderResponder defender(&broker, &metrics);
  broker.SetServiceHook(
      [s = shadow.get(), p = &provisioning, j = &jobs, d = &defender](const MessagePtr& m) {
        if (s != nullptr) s->MaybeForward(m);
        p->MaybeForward(m);
        j->MaybeAnswer(m);
        d->MaybeAnswer(m);
      });
  // A certificate revoked, deactivated or deleted (here or by any CA replica) ends its
  // connections at once: the CA service announces every change on "fleetcore_ca". A policy
  // change ("fleetcore_policy") has the connections it concerns fetch their policies again:
  // those of one certificate for an attachment to it, all of them otherwise.
  aws::Arns arns(common.region, common.account_id);
  auto listener = db::PgListener::Start(
      common.db.url, {"fleetcore_ca", "fleetcore_policy", "fleetcore_registry", "fleetcore_rules"},
      [&broker, &arns, &authenticator, &rules](absl::string_view channel,
                                               absl::string_view payload) {
        if (channel == "fleetcore_rules") {
          if (rules != nullptr) rules->Refresh();  // the FROM filters may have changed
          return;
        }
        nlohmann::json e = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
        if (!e.is_object()) return;
        if (channel == "fleetcore_registry") {
          // Billing groups are behind no policy.
          if (e.contains("type") && e["type"].is_string() &&
              absl::StartsWith(e["type"].get<std::string>(), "billing_group.")) {
            return;
          }
          // Things, types and groups are behind policy variables and group policies: cached
          // policies go, and the live connections concerned fetch theirs again (those of
          // one thing for a thing's change, all for a type's or group's).
          authenticator.Invalidate("");
          if (e.contains("thing") && e["thing"].is_string()) {
            broker.RefreshAuthorizationOfThing(e["thing"].get<std::string>());
          } else if (e.contains("thingType") || e.contains("thingGroup")) {
            broker.RefreshAuthorization("");
          }
          return;
        }
        if (channel == "fleetcore_policy") {
          if (e.contains("authorizer")) return;  // authorizer changes: next CONNECT
          std::string certificate;
          std::string target;
          if (e.contains("target") && e["target"].is_string()) {
            target = e["target"].get<std::string>();
            if (auto id = arns.ParseResource(target, "cert")) certificate = *id;
          }
          authenticator.Invalidate("");
          // An access key's user: its keys changed (a deactivated or deleted key's
          // connections fail to verify again and end) or its attachments did.
          if (absl::StartsWith(target, "arn:aws:iam::")) {
            const size_t n = broker.RefreshAuthorizationOfPrincipal(target);
            if (e.contains("accessKey") && n > 0) {
              log::Info("access key changed: its user's connections verify again",
                        {{"principal", target}, {"type", e.value("type", "")},
                         {"connections", n}});
            }
            return;
          }
          broker.RefreshAuthorization(certificate);
          return;
        }
        if (!e.contains("certificate") || !e["certificate"].is_string()) return;
        const std::string status = e.value("status", "");
        if (e.value("type", "") == "certificate.status_changed" && status == "ACTIVE") return;
        const std::string id = e["certificate"].get<std::string>();
        authenticator.Invalidate(id);
        if (const size_t n = broker.KickCertificate(id); n > 0) {
          log::Info("disconnected the clients of a certificate that is no longer active",
                    {{"certificate_id", id}, {"status", status}, {"connections", n}});
        }
      },
      [&broker, &authenticator, &rules] {
        if (rules != nullptr) rules->Refresh();
        authenticator.Invalidate("");
        broker.RefreshAuthorization("");
      });
  if (!listener.ok()) {
    log::Error("cannot start", {{"error", listener.status()}});
    return 1;
  }
  ConnectionCount connections(max_connections);
  metrics.SetMaxConnections(max_connections);
  // STS's GetSessionToken, for back ends that hand browsers temporary credentials.
  StsApi sts(policy_channel->channel(), common.server.admin_token, &metrics);
  // The data plane's GetRetainedMessage and ListRetainedMessages, from memory.
  RetainedApi retained_api(&broker);
  // Declared before what answers through its I/O threads (direct messages, the Broker
  // API's askers), so that those finish before it goes.
  std::unique_ptr<GatewayServer> server;
  // SendDirectMessage (HTTP and gRPC); stopped in the drain, before the servers it answers
  // through.
  DirectMessages direct(&broker, cluster.get(), process.metrics.get());
  // The Broker API (gRPC, served from service::Serve below) and the data plane's connection
  // management over HTTP, which answers through it.
  grpc_util::Executor executor(2, /*max_queued=*/1000);
  grpc_util::AdminAuth auth(common.server.admin_token);
  grpc_util::CallRunner calls(&executor, &auth);
  const GatewayServer* gateway_server = nullptr;  // set once the listeners are up
  GatewayService service(
      &broker, &calls,
      [&endpoint_address, &gateway_server]() -> std::string {
        if (!endpoint_address.empty()) return endpoint_address;
        if (gateway_server != nullptr && gateway_server->tls() != nullptr) {
          if (std::string name = gateway_server->tls()->DnsName(); !name.empty()) return name;
        }
        char host[256] = {};
        gethostname(host, sizeof(host) - 1);
        return host;
      },
      cluster.get(), &direct);
  ConnectionsApi connections_api(&service, &direct, &ids, &metrics);
  std::optional<ConnectThrottle> connect_throttle;
  if (max_connects_per_client_id > 0) {
    connect_throttle.emplace(absl::Seconds(1) / max_connects_per_client_id);
  }
  ConnectionContext context{
      .broker = &broker,
      .metrics = &metrics,
      .ids = &ids,
      .http_apis = {shadow.get(), &sts, &retained_api, &connections_api},
      .authenticator = &authenticator,
      .connections = &connections,
      .connect_throttle = connect_throttle.has_value() ? &*connect_throttle : nullptr,
      .max_accepts_per_second = max_accepts_per_second};
  absl::StatusOr<std::unique_ptr<GatewayServer>> started =
      GatewayServer::Start(options, context, [&store] { return store.pending(); });
  if (!started.ok()) {
    log::Error("cannot start", {{"error", started.status()}});
    return 1;
  }
  if (!options.mqtt_listen.empty() || !options.http_listen.empty()) {
    log::Warn("plain-text MQTT listeners are on: development only",
              {{"mqtt_listen", options.mqtt_listen}, {"http_listen", options.http_listen}});
  }

  server = *std::move(started);
  gateway_server = server.get();

  const int code = service::Serve(
      common, {&service}, process,
      {.ports = server->ports(), .drain = [&] {
         direct.Stop();
         const absl::Time deadline = absl::Now() + drain_timeout;
         server->Drain(drain_timeout * 0.8);
         if (absl::Status s = store.Flush(deadline); s.ok()) {
           log::Info("sessions and retained messages written");
         }
       }});
  // Only now, however Serve ended: during the drain the other replicas could still ask for
  // the sessions of the clients that moved to them, and nothing from NATS reaches the
  // service once it is gone.
  // (When Serve ended without its drain.) No request reaches the APIs below once the I/O
  // threads have stopped; what still answers through them finishes before they are freed.
  server->Drain(absl::Seconds(1));
  direct.Stop();
  if (cluster != nullptr) cluster->Stop();
  return code;
}

}  // namespace
}  // namespace fleetcore::gateway

int main(int argc, char** argv) { return fleetcore::gateway::Run(argc, argv); }
