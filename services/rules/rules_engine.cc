#include "services/rules/rules_engine.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/iotsql/iotsql.h"
#include "common/json/json_text.h"
#include "common/log/log.h"
#include "common/log/throttle.h"
#include "common/net/percent.h"
#include "common/status/status_macros.h"
#include "fleetcore/gateway/v1/gateway.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "pqxx/pqxx"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/rules/destinations.h"
#include "services/rules/republish_headers.h"
#include "services/rules/rules_core.h"

namespace fleetcore::rules {

namespace gw = ::fleetcore::gateway::v1;
using json = nlohmann::json;

namespace {

constexpr absl::string_view kBasicIngest = "$aws/rules/";

struct CompiledRule {
  std::string name;
  pb::TopicRulePayload payload;
  std::unique_ptr<iotsql::Statement> statement;
  iotsql::SqlVersion version = iotsql::SqlVersion::k2016_03_23;
  // This rule's counters (null without metrics), looked up once at load.
  prometheus::Counter* matched = nullptr;
  prometheus::Counter* fired = nullptr;

  // The actions' substitution template `text`, parsed on its first use (every one parsed
  // at the rule's creation already).
  absl::StatusOr<std::shared_ptr<const iotsql::Template>> TemplateFor(
      absl::string_view text) const {
    std::lock_guard<std::mutex> l(templates_mu);
    if (auto it = templates.find(text); it != templates.end()) return it->second;
    absl::StatusOr<iotsql::Template> t = iotsql::Template::Parse(text, version);
    if (!t.ok()) return t.status();
    auto parsed = std::make_shared<const iotsql::Template>(*std::move(t));
    templates.emplace(std::string(text), parsed);
    return parsed;
  }
  mutable std::mutex templates_mu;
  mutable absl::flat_hash_map<std::string, std::shared_ptr<const iotsql::Template>> templates;
};
using RulePtr = std::shared_ptr<const CompiledRule>;

// "schema"."table": each part quoted (validation allows letters, digits, _ and dots only).
std::string QuoteName(absl::string_view name) {
  std::string out;
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    absl::StrAppend(&out, out.empty() ? "" : ".", "\"", part, "\"");
  }
  return out;
}

struct Failure {
  std::string action;
  std::string resource;
  std::string message;
};

// A message from the gateway, its payload parsed once for every rule and template (the
// payload is in `payload`, not in `message`).
struct Inbound {
  pb::InboundMessage message;
  iotsql::Payload payload;
};

// One rule's run on one message: its actions run in parallel on the action threads, and
// the last one to finish runs the errorAction when any failed.
struct Invocation {
  RulePtr rule;
  std::shared_ptr<const Inbound> in;
  iotsql::MessageContext context;
  std::string output;
  json variables;  // the SQL's SET clause, for the actions' templates (${@name})
  std::mutex mu;
  std::vector<Failure> failures;
  int pending = 0;
};

// An action to run, or (action null) the SQL of a rule that reads other services
// (get_thing_shadow, get_registry_data), evaluated here rather than on the evaluating thread, which it would
// hold up while the other service answers.
struct ActionJob {
  std::shared_ptr<Invocation> invocation;
  const pb::Action* action = nullptr;  // owned by invocation->rule; null: evaluate
  bool is_error_action = false;
  std::string output;  // the error payload for an errorAction; else invocation->output
};

const char* ActionType(const pb::Action& a) {
  if (a.has_republish()) return "republish";
  if (a.has_postgres()) return "postgres";
  if (a.has_http()) return "http";
  return "s3";
}

// AWS's failedAction names in the error payload.
const char* AwsActionName(const pb::Action& a) {
  if (a.has_republish()) return "RepublishAction";
  if (a.has_postgres()) return "PostgresAction";
  if (a.has_http()) return "HttpAction";
  return "S3Action";
}

}  // namespace

struct RulesEngine::Impl {
  RulesStore* store;
  Options options;
  std::unique_ptr<gw::Broker::Stub> gateway;

  mutable std::mutex rules_mu;
  std::vector<RulePtr> rules;  // enabled only
  // The confirmation URLs of the ENABLED destinations: what http actions may send to.
  std::vector<std::string> destinations;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<pb::InboundMessage> messages;
  std::deque<ActionJob> jobs;
  bool stopping = false;
  int busy = 0;  // threads working on a message or job
  std::thread evaluator;
  std::vector<std::thread> action_threads;

  // postgres actions with a databaseUrl: one small pool per URL.
  std::mutex pools_mu;
  std::map<std::string, std::unique_ptr<db::PgPool>> pools;

  log::Throttle messages_full_log{absl::Seconds(10)};
  log::Throttle actions_full_log{absl::Seconds(10)};
  // A dead target fails every message: one line per second, with the count.
  log::Throttle failure_log{absl::Seconds(1)};

  prometheus::Family<prometheus::Counter>* matched = nullptr;
  prometheus::Family<prometheus::Counter>* fired = nullptr;
  prometheus::Family<prometheus::Counter>* actions = nullptr;
  prometheus::Family<prometheus::Counter>* dropped = nullptr;
  prometheus::Family<prometheus::Gauge>* depth = nullptr;
  prometheus::Family<prometheus::Gauge>* destination_count = nullptr;
  prometheus::Histogram* evaluation = nullptr;

  void CountDropped(const char* what) {
    if (dropped != nullptr) dropped->Add({{"queue", what}}).Increment();
  }
  void SetDepthLocked() {
    if (depth == nullptr) return;
    depth->Add({{"queue", "messages"}}).Set(static_cast<double>(messages.size()));
    depth->Add({{"queue", "actions"}}).Set(static_cast<double>(jobs.size()));
  }

  // ---- actions --------------------------------------------------------------------------

  absl::StatusOr<std::string> Template(absl::string_view text, const Invocation& inv) {
    absl::StatusOr<std::shared_ptr<const iotsql::Template>> t = inv.rule->TemplateFor(text);
    if (!t.ok()) return t.status();
    return (*t)->Render(inv.in->payload, inv.context,
                        inv.variables.is_null() ? nullptr : &inv.variables);
  }

  absl::Status Republish(const pb::RepublishAction& a, const std::string& output,
                         const Invocation& inv, std::string* resource) {
    absl::StatusOr<std::string> topic = Template(a.topic(), inv);
    if (!topic.ok()) return topic.status();
    // $$aws/... names a reserved $aws topic, as on AWS.
    if (absl::StartsWith(*topic, "$$")) topic->erase(0, 1);
    *resource = *topic;
    if (!RepublishTopicAllowed(*topic)) {
      return absl::InvalidArgumentError(
          "AWS IoT Jobs' topics ($aws/things/{thing}/jobs/...) are not allowed");
    }
    if (gateway == nullptr) return absl::FailedPreconditionError("no gateway to publish to");
    gw::PublishBatchRequest req;
    gw::PublishRequest* m = req.add_messages();
    m->set_topic(*topic);
    m->set_payload(output);
    m->set_qos(a.qos());
    if (a.has_headers()) {
      FLEETCORE_RETURN_IF_ERROR(ApplyRepublishHeaders(
          a.headers(), [&](const std::string& text) { return Template(text, inv); }, m));
    }
    gw::PublishBatchResponse resp;
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!options.gateway_token.empty()) {
      c.AddMetadata("authorization", "Bearer " + options.gateway_token);
    }
    grpc::Status s = gateway->PublishBatch(&c, req, &resp);
    if (!s.ok()) return absl::UnavailableError("the gateway: " + s.error_message());
    if (resp.refused_size() > 0) return absl::InvalidArgumentError(resp.refused(0).reason());
    return absl::OkStatus();
  }

  absl::StatusOr<db::PgPool*> PoolFor(const std::string& url) {
    if (url.empty()) {
      if (options.pool == nullptr) return absl::FailedPreconditionError("no database");
      return options.pool;
    }
    std::lock_guard<std::mutex> l(pools_mu);
    auto it = pools.find(url);
    if (it != pools.end()) return it->second.get();
    absl::StatusOr<std::unique_ptr<db::PgPool>> p =
        db::PgPool::Create({.url = url,
                            .pool_size = 2,
                            .connect_timeout = absl::Seconds(3),
                            .statement_timeout = absl::Seconds(10),
                            .application_name = "fleetcore-rules-action"},
                           nullptr);
    if (!p.ok()) return p.status();  // tried again on the next message
    return pools.emplace(url, *std::move(p)).first->second.get();
  }

  absl::Status Postgres(const pb::PostgresAction& a, const std::string& output,
                        const Invocation& inv, std::string* resource) {
    *resource = a.table_name();
    if (json::parse(output, nullptr, false).is_discarded()) {
      return absl::InvalidArgumentError("the rule's output is not JSON");
    }
    const std::string column =
        QuoteName(a.payload_column().empty() ? "payload" : a.payload_column());
    // The key columns and their values ($2, $3), then the upsert on them.
    std::vector<std::string> keys;
    std::vector<std::string> values;
    for (const auto& [col, tmpl] : {std::pair(&a.key_column(), &a.key_value()),
                                    std::pair(&a.range_key_column(), &a.range_key_value())}) {
      if (col->empty()) continue;
      absl::StatusOr<std::string> v = Template(*tmpl, inv);
      if (!v.ok()) return v.status();
      keys.push_back(QuoteName(*col));
      values.push_back(*std::move(v));
    }
    std::string sql = absl::StrCat("INSERT INTO ", QuoteName(a.table_name()), " (", column);
    for (const std::string& k : keys) absl::StrAppend(&sql, ", ", k);
    absl::StrAppend(&sql, ") VALUES ($1::jsonb");
    for (size_t i = 0; i < keys.size(); ++i) absl::StrAppend(&sql, ", $", i + 2);
    absl::StrAppend(&sql, ")");
    if (!keys.empty()) {
      absl::StrAppend(&sql, " ON CONFLICT (", absl::StrJoin(keys, ", "), ") DO UPDATE SET ", column,
                      " = EXCLUDED.", column);
    }
    absl::StatusOr<db::PgPool*> pool = PoolFor(a.database_url());
    if (!pool.ok()) return pool.status();
    return (*pool)->Transact([&](pqxx::transaction_base& tx) -> absl::Status {
      if (values.empty()) {
        tx.exec_params(sql, output);
      } else if (values.size() == 1) {
        tx.exec_params(sql, output, values[0]);
      } else {
        tx.exec_params(sql, output, values[0], values[1]);
      }
      return absl::OkStatus();
    });
  }

  // Whether an ENABLED destination covers `url`.
  bool Admitted(absl::string_view url) const {
    std::lock_guard<std::mutex> l(rules_mu);
    for (const std::string& d : destinations) {
      if (DestinationCovers(d, url)) return true;
    }
    return false;
  }

  // Sends `request` up to http_attempts times: again after a transport error, a 429 or a
  // 5xx, backing off; any other status ends it.
  absl::Status SendWithRetries(const http::Request& request) {
    if (options.http == nullptr) return absl::FailedPreconditionError("no HTTP client");
    absl::Duration backoff = options.http_backoff;
    absl::Status last;
    int attempt = 1;
    for (;; ++attempt) {
      absl::StatusOr<http::Response> r = options.http->Send(request);
      if (r.ok() && r->status >= 200 && r->status < 300) return absl::OkStatus();
      // Worth trying again: the target unreachable, busy (429) or failing (5xx); any other
      // answer says the request itself is wrong.
      const bool retry = !r.ok() || r->status == 429 || r->status >= 500;
      if (!r.ok()) {
        last = r.status();
      } else {
        const std::string what = absl::StrCat("HTTP ", r->status, ": ", r->body.substr(0, 200));
        last = retry ? absl::UnavailableError(what) : absl::FailedPreconditionError(what);
      }
      if (!retry || attempt >= options.http_attempts) break;
      {
        std::unique_lock<std::mutex> l(mu);
        if (cv.wait_for(l, absl::ToChronoMilliseconds(backoff), [this] { return stopping; })) {
          break;
        }
      }
      backoff *= 2;
    }
    return absl::Status(last.code(), absl::StrCat(last.message(), " (after ", attempt,
                                                  attempt == 1 ? " attempt)" : " attempts)"));
  }

  absl::Status Http(const pb::HttpAction& a, const std::string& output, const Invocation& inv,
                    std::string* resource) {
    absl::StatusOr<std::string> url = Template(a.url(), inv);
    if (!url.ok()) return url.status();
    *resource = *url;
    if (!Admitted(*url)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no ENABLED topic rule destination covers ", *url,
          ": its confirmation request must be answered (ConfirmTopicRuleDestination) or the "
          "destination enabled"));
    }
    http::Request req{.method = "POST",
                      .url = *url,
                      .body = output,
                      .timeout = absl::Milliseconds(a.timeout_ms() > 0 ? a.timeout_ms() : 3000)};
    bool content_type = false;
    for (const pb::HttpHeader& h : a.headers()) {
      absl::StatusOr<std::string> value = Template(h.value(), inv);
      if (!value.ok()) return value.status();
      content_type = content_type || absl::EqualsIgnoreCase(h.key(), "content-type");
      req.headers.emplace_back(h.key(), *std::move(value));
    }
    if (!content_type) req.headers.emplace_back("content-type", "application/json");
    if (a.has_auth() && a.auth().has_sigv4()) {
      FLEETCORE_RETURN_IF_ERROR(SignHttp(a.auth().sigv4(), &req));
    }
    return SendWithRetries(req);
  }

  // AWS Signature V4 over the request as sent: its headers, the query, the body's hash
  // (x-amz-content-sha256), and the session token when there is one.
  absl::Status SignHttp(const pb::SigV4Authorization& auth, http::Request* req) {
    const aws::Credentials& credentials = options.s3_credentials;
    if (credentials.access_key_id.empty()) {
      return absl::FailedPreconditionError(
          "the rules service has no AWS credentials to sign with (--s3-access-key-id, "
          "--s3-secret-access-key)");
    }
    absl::StatusOr<http::Url> parsed = http::ParseUrl(req->url);
    if (!parsed.ok()) return parsed.status();
    const absl::string_view target = parsed->target;
    const size_t q = target.find('?');
    aws::SigV4Request to_sign{.method = req->method, .host = http::HostHeader(*parsed)};
    if (!net::PercentDecode(target.substr(0, q), /*plus_is_space=*/false, &to_sign.path)) {
      return absl::InvalidArgumentError("the URL's path has a malformed %-escape");
    }
    const absl::string_view query = q == absl::string_view::npos ? "" : target.substr(q + 1);
    if (!net::DecodeQuery(query, /*plus_is_space=*/false, &to_sign.query)) {
      return absl::InvalidArgumentError("the URL's query has a malformed %-escape");
    }
    to_sign.payload_hash = aws::Sha256Hex(req->body);
    req->headers.emplace_back("x-amz-content-sha256", to_sign.payload_hash);
    if (!credentials.session_token.empty()) {
      req->headers.emplace_back("x-amz-security-token", credentials.session_token);
    }
    for (const auto& [name, value] : req->headers) {
      to_sign.headers.emplace_back(absl::AsciiStrToLower(name), value);
    }
    aws::SigV4Result sig =
        aws::SignV4(to_sign, credentials,
                    {.region = auth.signing_region(), .service = auth.service_name(),
                     .time = absl::Now()});
    req->headers.emplace_back("x-amz-date", sig.amz_date);
    req->headers.emplace_back("authorization", sig.authorization);
    return absl::OkStatus();
  }

  // PUT {endpoint}/{bucket}/{key} (path style, for S3-compatible stores) or, without an
  // endpoint, https://{bucket}.s3.{region}.amazonaws.com/{key}; signed with SigV4.
  absl::Status S3(const pb::S3Action& a, const std::string& output, const Invocation& inv,
                  std::string* resource) {
    absl::StatusOr<std::string> key = Template(a.key(), inv);
    if (!key.ok()) return key.status();
    if (key->empty()) return absl::InvalidArgumentError("the object key is empty");
    *resource = absl::StrCat(a.bucket_name(), "/", *key);
    if (options.s3_credentials.access_key_id.empty()) {
      return absl::FailedPreconditionError(
          "the rules service has no S3 credentials (--s3-access-key-id, "
          "--s3-secret-access-key)");
    }
    const std::string region = a.region().empty() ? options.region : a.region();
    std::string base;
    std::string path;
    if (a.endpoint().empty()) {
      base = absl::StrCat("https://", a.bucket_name(), ".s3.", region, ".amazonaws.com");
      path = absl::StrCat("/", *key);
    } else {
      base = std::string(absl::StripSuffix(a.endpoint(), "/"));
      path = absl::StrCat("/", a.bucket_name(), "/", *key);
    }
    const std::string url = absl::StrCat(base, aws::UriEncode(path, /*keep_slash=*/true));
    absl::StatusOr<http::Url> parsed = http::ParseUrl(url);
    if (!parsed.ok()) return parsed.status();
    const std::string content_type =
        a.content_type().empty() ? "application/json" : a.content_type();
    const std::string hash = aws::Sha256Hex(output);
    aws::SigV4Result sig = aws::SignV4(
        {.method = "PUT",
         .host = http::HostHeader(*parsed),
         .path = path,
         .headers = {{"content-type", content_type}, {"x-amz-content-sha256", hash}},
         .payload_hash = hash},
        options.s3_credentials, {.region = region, .service = "s3", .time = absl::Now()});
    http::Request req{.method = "PUT",
                      .url = url,
                      .headers = {{"content-type", content_type},
                                  {"x-amz-content-sha256", hash},
                                  {"x-amz-date", sig.amz_date},
                                  {"authorization", sig.authorization}},
                      .body = output,
                      .timeout = absl::Seconds(10)};
    if (!options.s3_credentials.session_token.empty()) {
      req.headers.emplace_back("x-amz-security-token", options.s3_credentials.session_token);
    }
    return SendWithRetries(req);
  }

  absl::Status Run(const pb::Action& a, const std::string& output, const Invocation& inv,
                   std::string* resource) {
    if (a.has_republish()) return Republish(a.republish(), output, inv, resource);
    if (a.has_postgres()) return Postgres(a.postgres(), output, inv, resource);
    if (a.has_http()) return Http(a.http(), output, inv, resource);
    return S3(a.s3(), output, inv, resource);
  }

  // ---- the two stages -------------------------------------------------------------------

  // Queues one job per action of a rule that selected the message. Called with mu held.
  void QueueActionsLocked(const std::shared_ptr<Invocation>& inv) {
    const auto& list = inv->rule->payload.actions();
    if (jobs.size() + list.size() > options.max_queued_actions) {
      CountDropped("actions");
      if (uint64_t n = 0; actions_full_log.Allow(&n)) {
        log::Warn("rule actions dropped: the action queue is full",
                  {{"rule", inv->rule->name}, {"topic", inv->in->message.topic()}, {"dropped", n}});
      }
      return;
    }
    inv->pending = list.size();
    for (const pb::Action& a : list) jobs.push_back(ActionJob{inv, &a});
    SetDepthLocked();
  }

  // Queues the evaluation of a rule that reads other services. Called with mu held.
  void QueueEvaluationLocked(std::shared_ptr<Invocation> inv) {
    if (jobs.size() + 1 > options.max_queued_actions) {
      CountDropped("actions");
      if (uint64_t n = 0; actions_full_log.Allow(&n)) {
        log::Warn("rule dropped: the action queue is full",
                  {{"rule", inv->rule->name}, {"topic", inv->in->message.topic()}, {"dropped", n}});
      }
      return;
    }
    jobs.push_back(ActionJob{std::move(inv), nullptr});
    SetDepthLocked();
  }

  iotsql::Result RunSql(const CompiledRule& rule, const Inbound& in,
                        const iotsql::MessageContext& context) {
    const auto start = std::chrono::steady_clock::now();
    iotsql::Result r = rule.statement->Evaluate(in.payload, context);
    if (evaluation != nullptr) {
      evaluation->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (r.selected && rule.fired != nullptr) rule.fired->Increment();
    return r;
  }

  // A rule whose FROM matched `m`: evaluated now, its invocation going to `selected` when
  // it selects the message, or, when it reads other services, left to an action thread
  // (`deferred`).
  void Match(const RulePtr& rule, const std::shared_ptr<const Inbound>& in, absl::string_view topic,
             std::vector<std::shared_ptr<Invocation>>* selected,
             std::vector<std::shared_ptr<Invocation>>* deferred) {
    if (rule->matched != nullptr) rule->matched->Increment();
    const pb::InboundMessage& m = in->message;
    iotsql::MessageContext context{.topic = std::string(topic),
                                   .client_id = m.client_id(),
                                   .principal = m.principal(),
                                   .source_ip = m.source_ip(),
                                   .timestamp_ms = m.timestamp_ms(),
                                   .lookups = options.lookups};
    AddProperties(m.properties(), &context);
    iotsql::Result r;
    if (!rule->statement->calls_services()) {
      r = RunSql(*rule, *in, context);
      if (!r.selected) return;
    }
    auto inv = std::make_shared<Invocation>();
    inv->rule = rule;
    inv->in = in;
    inv->context = std::move(context);
    if (rule->statement->calls_services()) {
      deferred->push_back(std::move(inv));
      return;
    }
    inv->output = std::move(r.output);
    inv->variables = std::move(r.variables);
    selected->push_back(std::move(inv));
  }

  // On an action thread: the SQL of a rule that reads other services, then its actions.
  void EvaluateDeferred(const std::shared_ptr<Invocation>& inv) {
    iotsql::Result r = RunSql(*inv->rule, *inv->in, inv->context);
    if (r.failure.has_value()) {
      const iotsql::LookupFailure& f = *r.failure;
      if (uint64_t n = 0; failure_log.Allow(&n)) {
        log::Warn("rule not run: its SQL could not read what it names",
                  {{"rule", inv->rule->name},
                   {"function", f.function},
                   {"resource", f.resource},
                   {"error", f.status},
                   {"failures", n}});
      }
      RunErrorAction(inv, {Failure{.action = f.function,
                                   .resource = f.resource,
                                   .message = std::string(f.status.message())}});
      return;
    }
    if (!r.selected) return;
    inv->output = std::move(r.output);
    inv->variables = std::move(r.variables);
    {
      std::lock_guard<std::mutex> l(mu);
      QueueActionsLocked(inv);
    }
    cv.notify_all();
  }

  void EvaluatorLoop() {
    std::vector<std::shared_ptr<Invocation>> selected;
    std::vector<std::shared_ptr<Invocation>> deferred;
    for (;;) {
      pb::InboundMessage m;
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [this] { return stopping || !messages.empty(); });
        if (stopping) return;
        m = std::move(messages.front());
        messages.pop_front();
        ++busy;
        SetDepthLocked();
      }
      std::vector<RulePtr> current;
      {
        std::lock_guard<std::mutex> l(rules_mu);
        current = rules;
      }
      std::string bytes = std::move(*m.mutable_payload());
      m.clear_payload();
      auto in =
          std::make_shared<const Inbound>(Inbound{std::move(m), iotsql::Payload(std::move(bytes))});
      const std::string& topic_name = in->message.topic();
      selected.clear();
      deferred.clear();
      if (absl::StartsWith(topic_name, kBasicIngest)) {
        // Basic Ingest: to the named rule only, which sees the topic without the prefix.
        absl::string_view rest = absl::string_view(topic_name).substr(kBasicIngest.size());
        const size_t slash = rest.find('/');
        const absl::string_view name = rest.substr(0, slash);
        const absl::string_view topic =
            slash == absl::string_view::npos ? "" : rest.substr(slash + 1);
        for (const RulePtr& r : current) {
          if (r->name == name) Match(r, in, topic, &selected, &deferred);
        }
      } else {
        for (const RulePtr& r : current) {
          if (!r->statement->from().empty() &&
              iotsql::TopicMatches(r->statement->from(), topic_name)) {
            Match(r, in, topic_name, &selected, &deferred);
          }
        }
      }
      {
        std::lock_guard<std::mutex> l(mu);
        for (const auto& inv : selected) QueueActionsLocked(inv);
        for (auto& inv : deferred) QueueEvaluationLocked(std::move(inv));
        --busy;
      }
      cv.notify_all();
    }
  }

  void ActionLoop() {
    for (;;) {
      ActionJob job;
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [this] { return stopping || !jobs.empty(); });
        if (stopping) return;
        job = std::move(jobs.front());
        jobs.pop_front();
        ++busy;
        SetDepthLocked();
      }
      RunJob(job);
      {
        std::lock_guard<std::mutex> l(mu);
        --busy;
      }
      cv.notify_all();
    }
  }

  void RunJob(const ActionJob& job) {
    if (job.action == nullptr) {
      EvaluateDeferred(job.invocation);
      return;
    }
    Invocation& inv = *job.invocation;
    const pb::Action& a = *job.action;
    Failure f{.action = AwsActionName(a)};
    absl::Status s = Run(a, job.is_error_action ? job.output : inv.output, inv, &f.resource);
    if (actions != nullptr) {
      actions
          ->Add({{"action", ActionType(a)},
                 {"result", s.ok() ? "ok" : "failed"},
                 {"error_action", job.is_error_action ? "true" : "false"}})
          .Increment();
    }
    if (!s.ok()) {
      if (uint64_t n = 0; failure_log.Allow(&n)) {
        log::Warn(job.is_error_action ? "rule error action failed" : "rule action failed",
                  {{"rule", inv.rule->name},
                   {"action", f.action},
                   {"resource", f.resource},
                   {"error", s},
                   {"failures", n}});
      }
    }
    if (job.is_error_action) return;
    if (!s.ok()) f.message = std::string(s.message());
    std::vector<Failure> failures;
    {
      std::lock_guard<std::mutex> l(inv.mu);
      if (!s.ok()) inv.failures.push_back(std::move(f));
      if (--inv.pending > 0 || inv.failures.empty()) return;
      failures = std::move(inv.failures);
    }
    RunErrorAction(job.invocation, failures);
  }

  // The rule's errorAction, if it has one, with AWS's error payload: one per invocation,
  // naming every failed action (or the SQL function that failed).
  void RunErrorAction(const std::shared_ptr<Invocation>& invocation,
                      const std::vector<Failure>& failures) {
    const Invocation& inv = *invocation;
    if (!inv.rule->payload.has_error_action()) return;
    json doc{
        {"ruleName", inv.rule->name},
        {"topic", inv.in->message.topic()},
        {"cloudwatchTraceId", ""},
        {"clientId", inv.in->message.client_id().empty() ? "n/a" : inv.in->message.client_id()},
        {"base64OriginalPayload", absl::Base64Escape(inv.in->payload.bytes())},
        {"failures", json::array()}};
    for (const Failure& x : failures) {
      doc["failures"].push_back({{"failedAction", x.action},
                                 {"failedResource", x.resource},
                                 {"errorMessage", x.message}});
    }
    // Run here, on this action thread: it is one more action of the same invocation.
    RunJob(ActionJob{invocation, &inv.rule->payload.error_action(), true,
                     json_text::JsonText(doc)});
  }
};

RulesEngine::RulesEngine(RulesStore* store, Options options) : impl_(std::make_unique<Impl>()) {
  impl_->store = store;
  impl_->options = std::move(options);
  if (impl_->options.gateway != nullptr) {
    impl_->gateway = gw::Broker::NewStub(impl_->options.gateway);
  }
  if (prometheus::Registry* r = impl_->options.metrics; r != nullptr) {
    impl_->matched = &prometheus::BuildCounter()
                          .Name("fleetcore_rules_matched_messages_total")
                          .Help("Messages whose topic matched a rule's FROM filter, by rule.")
                          .Register(*r);
    impl_->fired = &prometheus::BuildCounter()
                        .Name("fleetcore_rules_fired_total")
                        .Help(
                            "Messages a rule selected (WHERE held) and sent to its actions, "
                            "by rule.")
                        .Register(*r);
    impl_->actions = &prometheus::BuildCounter()
                          .Name("fleetcore_rules_actions_total")
                          .Help(
                              "Rule actions run, by action type, result (after retries) and "
                              "whether it was an errorAction.")
                          .Register(*r);
    impl_->dropped = &prometheus::BuildCounter()
                          .Name("fleetcore_rules_dropped_total")
                          .Help(
                              "Messages (queue=messages) or a rule's actions (queue=actions) "
                              "dropped because the queue was full.")
                          .Register(*r);
    impl_->depth = &prometheus::BuildGauge()
                        .Name("fleetcore_rules_queue_depth")
                        .Help("Messages waiting for evaluation and actions waiting to run.")
                        .Register(*r);
    impl_->destination_count = &prometheus::BuildGauge()
                                    .Name("fleetcore_rules_destinations")
                                    .Help("Topic rule destinations by status.")
                                    .Register(*r);
    impl_->evaluation =
        &prometheus::BuildHistogram()
             .Name("fleetcore_rules_evaluation_seconds")
             .Help("Time to evaluate one rule's SQL on one message.")
             .Register(*r)
             .Add({}, prometheus::Histogram::BucketBoundaries{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5,
                                                              5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2});
  }
  impl_->evaluator = std::thread([this] { impl_->EvaluatorLoop(); });
  for (int i = 0; i < std::max(1, impl_->options.action_workers); ++i) {
    impl_->action_threads.emplace_back([this] { impl_->ActionLoop(); });
  }
}

RulesEngine::~RulesEngine() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->evaluator.join();
  for (std::thread& t : impl_->action_threads) t.join();
}

absl::Status RulesEngine::Reload() {
  constexpr int kPage = 500;
  std::vector<RulePtr> loaded;
  std::string after;
  for (;;) {
    absl::StatusOr<std::vector<StoredRule>> page =
        impl_->store->List(after, std::nullopt, /*disabled=*/false, kPage);
    if (!page.ok()) return page.status();
    for (const StoredRule& r : *page) {
      auto c = std::make_shared<CompiledRule>();
      c->name = r.name;
      absl::Status s;
      if (!google::protobuf::util::JsonStringToMessage(r.payload_json, &c->payload).ok()) {
        s = absl::DataLossError("the stored rule cannot be read");
      } else if (absl::StatusOr<iotsql::SqlVersion> v =
                     iotsql::ParseSqlVersion(c->payload.aws_iot_sql_version());
                 !v.ok()) {
        s = v.status();
      } else if (absl::StatusOr<iotsql::Statement> st =
                     iotsql::Statement::Parse(c->payload.sql(), *v);
                 !st.ok()) {
        s = st.status();
      } else {
        c->version = *v;
        c->statement = std::make_unique<iotsql::Statement>(*std::move(st));
        if (impl_->matched != nullptr) c->matched = &impl_->matched->Add({{"rule", r.name}});
        if (impl_->fired != nullptr) c->fired = &impl_->fired->Add({{"rule", r.name}});
      }
      if (!s.ok()) {
        // Validated at creation, so only a hand-edited row gets here.
        log::Error("topic rule skipped", {{"rule", r.name}, {"error", s}});
        continue;
      }
      loaded.push_back(std::move(c));
    }
    if (page->size() < kPage) break;
    after = page->back().name;
  }
  std::vector<std::string> enabled;
  std::map<std::string, int> by_status = {
      {"IN_PROGRESS", 0}, {"ENABLED", 0}, {"DISABLED", 0}, {"ERROR", 0}};
  absl::StatusOr<std::vector<StoredDestination>> destinations = AllDestinations(impl_->store);
  if (!destinations.ok()) return destinations.status();
  for (const StoredDestination& d : *destinations) {
    ++by_status[d.status];
    if (d.status == "ENABLED") enabled.push_back(d.confirmation_url);
  }
  if (impl_->destination_count != nullptr) {
    for (const auto& [status, n] : by_status) {
      impl_->destination_count->Add({{"status", status}}).Set(n);
    }
  }
  std::lock_guard<std::mutex> l(impl_->rules_mu);
  if (loaded.size() != impl_->rules.size()) {
    log::Info("topic rules loaded", {{"enabled", loaded.size()}});
  }
  impl_->rules = std::move(loaded);
  impl_->destinations = std::move(enabled);
  return absl::OkStatus();
}

std::vector<std::string> RulesEngine::Filters() const {
  std::lock_guard<std::mutex> l(impl_->rules_mu);
  std::vector<std::string> out;
  for (const RulePtr& r : impl_->rules) {
    if (!r->statement->from().empty()) out.push_back(r->statement->from());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool RulesEngine::Enqueue(pb::InboundMessage message) {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    if (impl_->messages.size() >= impl_->options.max_queued_messages) {
      impl_->CountDropped("messages");
      if (uint64_t n = 0; impl_->messages_full_log.Allow(&n)) {
        log::Warn("messages dropped: the rules queue is full (slow actions?)",
                  {{"dropped", n}, {"queue", impl_->options.max_queued_messages}});
      }
      return false;
    }
    impl_->messages.push_back(std::move(message));
    impl_->SetDepthLocked();
  }
  impl_->cv.notify_all();
  return true;
}

void RulesEngine::Drain(absl::Duration timeout) {
  std::unique_lock<std::mutex> l(impl_->mu);
  impl_->cv.wait_for(l, absl::ToChronoMilliseconds(timeout), [this] {
    return impl_->messages.empty() && impl_->jobs.empty() && impl_->busy == 0;
  });
}

}  // namespace fleetcore::rules
