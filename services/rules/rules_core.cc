#include "services/rules/rules_core.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/db/pg_pool.h"
#include "common/iotsql/iotsql.h"
#include "common/pagination/page_token.h"
#include "common/status/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "services/rules/destinations.h"
#include "services/rules/republish_headers.h"

namespace fleetcore::rules {
namespace {

namespace gp = google::protobuf;

constexpr int kMaxActions = 10;
constexpr size_t kMaxPayloadBytes = 128 * 1024;

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// Every ${...} of a template must parse, in the rule's SQL version (its value comes from
// each message).
absl::Status CheckTemplate(absl::string_view where, absl::string_view text,
                           iotsql::SqlVersion version) {
  absl::StatusOr<iotsql::Template> t = iotsql::Template::Parse(text, version);
  if (!t.ok()) return Invalid(where, t.status().message());
  return absl::OkStatus();
}

// A republish action's MQTT 5 headers: templates, and the values they must give when they
// have no ${...} to substitute.
absl::Status CheckHeaders(const std::string& where, const pb::RepublishHeaders& h,
                          iotsql::SqlVersion version) {
  for (const auto& [name, value] : RepublishHeaderFields(h)) {
    FLEETCORE_RETURN_IF_ERROR(CheckTemplate(absl::StrCat(where, ".", name), *value, version));
    if (value->empty() || absl::StrContains(*value, "${")) continue;
    gateway::v1::PublishRequest scratch;
    if (absl::Status s = SetRepublishHeader(name, *value, &scratch); !s.ok()) {
      return Invalid(absl::StrCat(where, ".", name), s.message());
    }
  }
  for (int i = 0; i < h.user_properties_size(); ++i) {
    const std::string at = absl::StrCat(where, ".userProperties[", i, "]");
    if (h.user_properties(i).key().empty()) return Invalid(absl::StrCat(at, ".key"), "is required");
    FLEETCORE_RETURN_IF_ERROR(
        CheckTemplate(absl::StrCat(at, ".key"), h.user_properties(i).key(), version));
    FLEETCORE_RETURN_IF_ERROR(
        CheckTemplate(absl::StrCat(at, ".value"), h.user_properties(i).value(), version));
  }
  return absl::OkStatus();
}

absl::Status CheckAction(absl::string_view where, const pb::Action& a, iotsql::SqlVersion version) {
  const int set = a.has_republish() + a.has_postgres() + a.has_http() + a.has_s3();
  if (set != 1) {
    return Invalid(where, "needs exactly one of republish, postgres, http or s3");
  }
  if (a.has_republish()) {
    const pb::RepublishAction& r = a.republish();
    if (r.topic().empty()) return Invalid(absl::StrCat(where, ".republish.topic"), "is required");
    if (r.qos() < 0 || r.qos() > 1) {
      return Invalid(absl::StrCat(where, ".republish.qos"), "is 0 or 1");
    }
    FLEETCORE_RETURN_IF_ERROR(
        CheckTemplate(absl::StrCat(where, ".republish.topic"), r.topic(), version));
    // A literal topic is checked now; a templated one when it is rendered.
    if (absl::StartsWith(r.topic(), "$$") &&
        !RepublishTopicAllowed(absl::string_view(r.topic()).substr(1))) {
      return Invalid(absl::StrCat(where, ".republish.topic"),
                     "AWS IoT Jobs' topics ($aws/things/{thing}/jobs/...) are not allowed");
    }
    return CheckHeaders(absl::StrCat(where, ".republish.headers"), r.headers(), version);
  }
  if (a.has_postgres()) {
    const pb::PostgresAction& p = a.postgres();
    auto identifier = [](absl::string_view s) {
      if (s.empty() || s.size() > 63) return false;
      for (char c : s) {
        if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) {
          return false;
        }
      }
      return true;
    };
    if (!identifier(p.table_name())) {
      return Invalid(absl::StrCat(where, ".postgres.tableName"),
                     "is required: schema.table or table, of letters, digits and _");
    }
    // fleetcore's own schemas are its services' alone: a rule must not write into them
    // (the rules service's role could write its own, the destinations among them).
    if (const size_t dot = p.table_name().find('.');
        p.database_url().empty() && dot != std::string::npos) {
      const std::string schema = absl::AsciiStrToLower(p.table_name().substr(0, dot));
      for (const char* own : {"registry", "policy", "ca", "gateway", "shadow", "rules",
                              "fleetcore_migrate", "pg_catalog", "information_schema"}) {
        if (schema == own) {
          return Invalid(absl::StrCat(where, ".postgres.tableName"),
                         absl::StrCat("\"", schema,
                                      "\" is a schema of fleetcore's own: write to a table "
                                      "of yours (in public or a schema you made)"));
        }
      }
    }
    if (!p.payload_column().empty() && !identifier(p.payload_column())) {
      return Invalid(absl::StrCat(where, ".postgres.payloadColumn"), "is not a column name");
    }
    if (!p.database_url().empty()) {
      // The rule is readable by every operator: the password stays with the rules service.
      if (db::RedactUrl(p.database_url()) != p.database_url()) {
        return Invalid(absl::StrCat(where, ".postgres.databaseUrl"),
                       "must not carry a password: give it to the rules service in a libpq "
                       "password file (PGPASSFILE)");
      }
      if (!absl::StartsWith(p.database_url(), "postgresql://") &&
          !absl::StartsWith(p.database_url(), "postgres://") &&
          !absl::StrContains(p.database_url(), "=")) {
        return Invalid(absl::StrCat(where, ".postgres.databaseUrl"),
                       "is a postgresql:// URL or a libpq keyword string (host=... dbname=...)");
      }
    }
    if (p.key_column().empty() != p.key_value().empty()) {
      return Invalid(absl::StrCat(where, ".postgres"), "keyColumn and keyValue go together");
    }
    if (!p.key_column().empty() && !identifier(p.key_column())) {
      return Invalid(absl::StrCat(where, ".postgres.keyColumn"), "is not a column name");
    }
    if (p.range_key_column().empty() != p.range_key_value().empty()) {
      return Invalid(absl::StrCat(where, ".postgres"),
                     "rangeKeyColumn and rangeKeyValue go together");
    }
    if (!p.range_key_column().empty()) {
      if (p.key_column().empty()) {
        return Invalid(absl::StrCat(where, ".postgres.rangeKeyColumn"), "needs keyColumn");
      }
      if (!identifier(p.range_key_column())) {
        return Invalid(absl::StrCat(where, ".postgres.rangeKeyColumn"), "is not a column name");
      }
      if (absl::Status s = CheckTemplate(absl::StrCat(where, ".postgres.rangeKeyValue"),
                                         p.range_key_value(), version);
          !s.ok()) {
        return s;
      }
    }
    return CheckTemplate(absl::StrCat(where, ".postgres.keyValue"), p.key_value(), version);
  }
  if (a.has_http()) {
    const pb::HttpAction& h = a.http();
    if (!absl::StartsWith(h.url(), "https://") && !absl::StartsWith(h.url(), "http://")) {
      return Invalid(absl::StrCat(where, ".http.url"), "must be an http:// or https:// URL");
    }
    if (h.url().size() > 2048) return Invalid(absl::StrCat(where, ".http.url"), "is over 2 KB");
    if (h.headers_size() > 100) return Invalid(absl::StrCat(where, ".http.headers"), "at most 100");
    for (int i = 0; i < h.headers_size(); ++i) {
      const std::string& key = h.headers(i).key();
      if (key.empty() || key.size() > 256) {
        return Invalid(absl::StrCat(where, ".http.headers[", i, "].key"), "is 1 to 256 bytes");
      }
    }
    if (h.timeout_ms() < 0 || h.timeout_ms() > 60000) {
      return Invalid(absl::StrCat(where, ".http.timeoutMs"), "is 0 (3000) to 60000");
    }
    FLEETCORE_RETURN_IF_ERROR(CheckTemplate(absl::StrCat(where, ".http.url"), h.url(), version));
    if (h.has_auth()) {
      const std::string at = absl::StrCat(where, ".http.auth");
      if (!h.auth().has_sigv4()) return Invalid(at, "sigv4 is the one method");
      if (h.auth().sigv4().signing_region().empty()) {
        return Invalid(absl::StrCat(at, ".sigv4.signingRegion"), "is required");
      }
      if (h.auth().sigv4().service_name().empty()) {
        return Invalid(absl::StrCat(at, ".sigv4.serviceName"), "is required");
      }
    }
    const std::string confirmation = absl::StrCat(where, ".http.confirmationUrl");
    if (h.confirmation_url().empty()) {
      if (absl::StrContains(h.url(), "${")) {
        return Invalid(confirmation,
                       "is required when url has a substitution template (the destination "
                       "its URLs are sent under)");
      }
      return absl::OkStatus();
    }
    if (absl::StrContains(h.confirmation_url(), "${")) {
      // Then every URL it can take needs an ENABLED destination of its own, as on AWS.
      return CheckTemplate(confirmation, h.confirmation_url(), version);
    }
    FLEETCORE_RETURN_IF_ERROR(ValidateConfirmationUrl(confirmation, h.confirmation_url()));
    if (!DestinationCovers(h.confirmation_url(), h.url())) {
      return Invalid(confirmation, "must be a prefix of url (ending where a path segment does)");
    }
    return absl::OkStatus();
  }
  const pb::S3Action& s = a.s3();
  if (s.bucket_name().empty()) return Invalid(absl::StrCat(where, ".s3.bucketName"), "is required");
  if (s.key().empty()) return Invalid(absl::StrCat(where, ".s3.key"), "is required");
  for (char c : s.bucket_name()) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return Invalid(absl::StrCat(where, ".s3.bucketName"),
                     "is lower-case letters, digits, - and . (S3's rule)");
    }
  }
  if (!s.endpoint().empty() && !absl::StartsWith(s.endpoint(), "https://") &&
      !absl::StartsWith(s.endpoint(), "http://")) {
    return Invalid(absl::StrCat(where, ".s3.endpoint"), "must be an http:// or https:// URL");
  }
  return CheckTemplate(absl::StrCat(where, ".s3.key"), s.key(), version);
}

absl::StatusOr<pb::TopicRulePayload> FromJson(const std::string& text) {
  pb::TopicRulePayload p;
  if (!gp::util::JsonStringToMessage(text, &p).ok()) {
    return absl::InternalError("a stored rule could not be read");
  }
  return p;
}

}  // namespace

absl::Status RulesCore::ValidateName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError("ruleName: 1 to 128 characters of a-z, A-Z, 0-9 and _");
  }
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ruleName \"", name, "\": only a-z, A-Z, 0-9 and _ (AWS's ^[a-zA-Z0-9_]+$)"));
    }
  }
  return absl::OkStatus();
}

absl::Status RulesCore::Validate(const pb::TopicRulePayload& payload, std::string* topic_pattern) {
  // AWS's limit on a rule's payload (SQL, actions and all), as JSON.
  if (std::string json; !gp::util::MessageToJsonString(payload, &json).ok() ||
                        json.size() > kMaxPayloadBytes) {
    return Invalid("topicRulePayload", "is over 128 KB (AWS's limit for a rule)");
  }
  absl::StatusOr<iotsql::SqlVersion> version =
      iotsql::ParseSqlVersion(payload.aws_iot_sql_version());
  if (!version.ok()) return version.status();
  if (payload.sql().empty()) return Invalid("sql", "is required");
  absl::StatusOr<iotsql::Statement> st = iotsql::Statement::Parse(payload.sql(), *version);
  if (!st.ok()) return Invalid("sql", st.status().message());
  // Without FROM a rule gets Basic Ingest messages only ($aws/rules/{name}/...), as on AWS.
  if (payload.actions_size() == 0) return Invalid("actions", "at least one action is required");
  if (payload.actions_size() > kMaxActions) return Invalid("actions", "at most 10 actions");
  for (int i = 0; i < payload.actions_size(); ++i) {
    if (absl::Status s =
            CheckAction(absl::StrCat("actions[", i, "]"), payload.actions(i), *version);
        !s.ok()) {
      return s;
    }
  }
  if (payload.has_error_action()) {
    if (absl::Status s = CheckAction("errorAction", payload.error_action(), *version);
        !s.ok()) {
      return s;
    }
  }
  *topic_pattern = st->from();
  return absl::OkStatus();
}

absl::Status RulesCore::Create(const std::string& name, const pb::TopicRulePayload& payload) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  StoredRule r{.name = name, .disabled = payload.rule_disabled(), .created_at = clock_->Now()};
  if (absl::Status s = Validate(payload, &r.topic_pattern); !s.ok()) return s;
  (void)gp::util::MessageToJsonString(payload, &r.payload_json);
  FLEETCORE_RETURN_IF_ERROR(store_->Insert(r));
  if (destinations_ != nullptr) destinations_->EnsureFor(payload);
  return absl::OkStatus();
}

absl::Status RulesCore::Replace(const std::string& name, const pb::TopicRulePayload& payload) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  StoredRule r{.name = name, .disabled = payload.rule_disabled()};
  if (absl::Status s = Validate(payload, &r.topic_pattern); !s.ok()) return s;
  (void)gp::util::MessageToJsonString(payload, &r.payload_json);
  FLEETCORE_RETURN_IF_ERROR(store_->Update(r));
  if (destinations_ != nullptr) destinations_->EnsureFor(payload);
  return absl::OkStatus();
}

absl::StatusOr<pb::GetTopicRuleResponse> RulesCore::Get(const std::string& name) {
  absl::StatusOr<std::optional<StoredRule>> r = store_->Get(name);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return absl::NotFoundError(absl::StrCat("no topic rule named ", name));
  absl::StatusOr<pb::TopicRulePayload> p = FromJson((*r)->payload_json);
  if (!p.ok()) return p.status();
  pb::GetTopicRuleResponse out;
  out.set_rule_arn(
      absl::StrCat("arn:aws:iot:", arns_->region(), ":", arns_->account_id(), ":rule/", name));
  pb::TopicRule* rule = out.mutable_rule();
  rule->set_rule_name(name);
  rule->set_sql(p->sql());
  rule->set_description(p->description());
  *rule->mutable_actions() = p->actions();
  if (p->has_error_action()) *rule->mutable_error_action() = p->error_action();
  rule->set_rule_disabled((*r)->disabled);
  rule->set_aws_iot_sql_version(p->aws_iot_sql_version().empty() ? "2016-03-23"
                                                                 : p->aws_iot_sql_version());
  *rule->mutable_created_at() =
      gp::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos((*r)->created_at));
  return out;
}

absl::StatusOr<pb::ListTopicRulesResponse> RulesCore::List(const pb::ListTopicRulesRequest& req) {
  absl::StatusOr<int> limit = pagination::ResolveMaxResults(req.max_results(), 50, 250);
  if (!limit.ok()) return limit.status();
  const std::string query =
      absl::StrCat("rules:", req.topic(), ":", req.has_rule_disabled() ? req.rule_disabled() : -1);
  absl::StatusOr<std::string> after = pagination::DecodePageToken(req.next_token(), query);
  if (!after.ok()) return after.status();
  absl::StatusOr<std::vector<StoredRule>> rows = store_->List(
      *after, req.topic().empty() ? std::nullopt : std::optional<std::string>(req.topic()),
      req.has_rule_disabled() ? std::optional<bool>(req.rule_disabled()) : std::nullopt,
      *limit + 1);
  if (!rows.ok()) return rows.status();
  pb::ListTopicRulesResponse out;
  for (size_t i = 0; i < rows->size() && i < static_cast<size_t>(*limit); ++i) {
    const StoredRule& r = (*rows)[i];
    pb::TopicRuleListItem* item = out.add_rules();
    item->set_rule_name(r.name);
    item->set_rule_arn(
        absl::StrCat("arn:aws:iot:", arns_->region(), ":", arns_->account_id(), ":rule/", r.name));
    item->set_topic_pattern(r.topic_pattern);
    item->set_rule_disabled(r.disabled);
    *item->mutable_created_at() =
        gp::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(r.created_at));
  }
  if (rows->size() > static_cast<size_t>(*limit)) {
    out.set_next_token(pagination::EncodePageToken((*rows)[*limit - 1].name, query));
  }
  return out;
}

absl::Status RulesCore::Delete(const std::string& name) {
  absl::StatusOr<bool> existed = store_->Delete(name);
  if (!existed.ok()) return existed.status();
  if (!*existed) return absl::NotFoundError(absl::StrCat("no topic rule named ", name));
  return absl::OkStatus();
}

absl::Status RulesCore::SetDisabled(const std::string& name, bool disabled) {
  absl::StatusOr<std::optional<StoredRule>> r = store_->Get(name);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return absl::NotFoundError(absl::StrCat("no topic rule named ", name));
  StoredRule rule = **r;
  absl::StatusOr<pb::TopicRulePayload> p = FromJson(rule.payload_json);
  if (!p.ok()) return p.status();
  p->set_rule_disabled(disabled);
  rule.disabled = disabled;
  rule.payload_json.clear();
  (void)gp::util::MessageToJsonString(*p, &rule.payload_json);
  return store_->Update(rule);
}

bool RepublishTopicAllowed(absl::string_view topic) {
  constexpr absl::string_view kThings = "$aws/things/";
  if (!absl::StartsWith(topic, kThings)) return true;
  absl::string_view rest = topic.substr(kThings.size());
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) return true;
  rest = rest.substr(slash + 1);
  return !(rest == "jobs" || absl::StartsWith(rest, "jobs/"));
}

void AddProperties(const pb::MessageProperties& p, iotsql::MessageContext* c) {
  if (p.has_utf8_payload()) c->utf8_payload = p.utf8_payload();
  if (p.has_content_type()) c->content_type = p.content_type();
  if (p.has_response_topic()) c->response_topic = p.response_topic();
  if (p.has_correlation_data()) c->correlation_data = p.correlation_data();
  for (const pb::MqttUserProperty& u : p.user_properties()) {
    c->user_properties.emplace_back(u.key(), u.value());
  }
}

absl::StatusOr<pb::EvaluateRuleResponse> RulesCore::Evaluate(const pb::EvaluateRuleRequest& req) {
  absl::StatusOr<iotsql::SqlVersion> version = iotsql::ParseSqlVersion(req.aws_iot_sql_version());
  if (!version.ok()) return version.status();
  absl::StatusOr<iotsql::Statement> st = iotsql::Statement::Parse(req.sql(), *version);
  if (!st.ok()) return Invalid("sql", st.status().message());
  iotsql::MessageContext context{.topic = req.topic(),
                                 .client_id = req.client_id(),
                                 .principal = req.principal(),
                                 .source_ip = req.source_ip(),
                                 .timestamp_ms = absl::ToUnixMillis(clock_->Now()),
                                 .lookups = lookups_};
  AddProperties(req.properties(), &context);
  iotsql::Result r = st->Evaluate(req.payload(), context);
  if (r.failure.has_value()) return r.failure->NamedStatus();
  pb::EvaluateRuleResponse out;
  out.set_selected(r.selected);
  out.set_output(std::move(r.output));
  return out;
}

}  // namespace fleetcore::rules
