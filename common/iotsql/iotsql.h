// AWS IoT SQL (reference §6): parse and check a rule's statement once, then evaluate it
// against each message. Pure: no I/O; the message's context (topic, client id, principal,
// time) comes in with it.
//
//   FLEETCORE_ASSIGN_OR_RETURN(Statement st, Statement::Parse(sql, SqlVersion::k2016_03_23));
//   if (!TopicMatches(st.from(), topic)) skip;
//   Result r = st.Evaluate(payload, {.topic = topic, .client_id = "lamp-1", ...});
//   if (r.selected) publish(r.output)
//
// Values follow AWS's types: Int, Decimal, Boolean, String, Array, Object, Null and
// Undefined, with AWS's conversions (a numeric string compares as a number; "true"/"false"
// as booleans in AND/OR/NOT) and Undefined propagating through operators and dropped from
// objects. Parse errors say where ("line 1, column 34: expected FROM or WHERE, found '>'").
//
// get_thing_shadow() and get_registry_data() read other services: the caller answers them
// through the context's ServiceLookups (the rules service asks the shadow service and the
// registry), and a statement that calls one says so (calls_services()) so that it can be
// evaluated where blocking is fine.
//
// Thread safety: a Statement is immutable; Evaluate may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fleetcore::iotsql {

enum class SqlVersion { k2015_10_08, k2016_03_23 };
// "2015-10-08" or "2016-03-23"; INVALID_ARGUMENT otherwise.
absl::StatusOr<SqlVersion> ParseSqlVersion(absl::string_view s);

// A value: JSON, or Undefined (nullopt).
using Value = std::optional<nlohmann::json>;

// The lookups of the functions that read other services. Called on Evaluate's thread, and
// may block.
class ServiceLookups {
 public:
  virtual ~ServiceLookups() = default;
  // get_thing_shadow(): the document GetThingShadow answers for `thing`'s shadow `shadow`
  // ("" for the classic shadow). An error LookupFoundNothing accepts makes the call
  // Undefined; any other fails the evaluation (Result::failure).
  virtual absl::StatusOr<nlohmann::json> GetThingShadow(absl::string_view thing,
                                                        absl::string_view shadow) = 0;
  // get_registry_data(): the answer of the registry's `api` ("DescribeThing" or
  // "ListThingGroupsForThing") for `thing`, as AWS writes it. Errors as above.
  virtual absl::StatusOr<nlohmann::json> GetRegistryData(absl::string_view api,
                                                         absl::string_view thing) = 0;
};

// Whether a lookup's error only says there is nothing to read: NOT_FOUND (no such shadow or
// thing) or INVALID_ARGUMENT (not a thing or shadow name). The call is then Undefined, not a
// failure of the evaluation.
bool LookupFoundNothing(const absl::Status& status);

struct MessageContext {
  std::string topic;
  std::string client_id;  // empty: "n/a"
  std::string principal;
  std::string source_ip;  // sourceip(); empty: Undefined
  int64_t timestamp_ms = 0;
  // The MQTT 5 PUBLISH properties, for get_mqtt_property() and get_user_properties().
  std::optional<bool> utf8_payload;  // Payload Format Indicator: true for UTF8_DATA
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;  // the bytes (the functions give base64)
  std::vector<std::pair<std::string, std::string>> user_properties;
  // Answers get_thing_shadow() and get_registry_data(); null: calling them fails the
  // evaluation.
  ServiceLookups* lookups = nullptr;
};

// A function that reads another service could not get its answer.
struct LookupFailure {
  std::string function;  // "get_thing_shadow", "get_registry_data"
  std::string resource;  // what it asked for: "lamp-1", "lamp-1/shadow/name/config"
  absl::Status status;

  // `status` with the call named: "get_thing_shadow(lamp-1): the shadow service: ...".
  absl::Status NamedStatus() const;
};

struct Result {
  bool selected = false;  // WHERE held (or there is none)
  // The SET clause's variables (a JSON object; null without SET), for the rule's
  // substitution templates.
  nlohmann::json variables;
  // The output: a JSON object (or, with VALUE, any value); raw bytes when the statement
  // is SELECT * on a payload that is not JSON.
  std::string output;
  // Set when a lookup failed (a missing shadow is not a failure: it is Undefined): the
  // statement was not evaluated to the end, selected is false and output empty.
  std::optional<LookupFailure> failure;
};

struct Expr;

// A message's payload, parsed once for every statement and template that reads it.
class Payload {
 public:
  explicit Payload(std::string bytes);
  const std::string& bytes() const { return bytes_; }
  // The payload as JSON; null when it is not JSON, or nests more than 256 levels (then it is
  // evaluated as binary, as AWS does for non-JSON payloads).
  const nlohmann::json* json() const { return json_.is_discarded() ? nullptr : &json_; }

 private:
  std::string bytes_;
  nlohmann::json json_;
};

class Statement {
 public:
  static absl::StatusOr<Statement> Parse(absl::string_view sql,
                                         SqlVersion version = SqlVersion::k2016_03_23);

  // The FROM topic filter ("" when the statement has none).
  const std::string& from() const { return from_; }
  SqlVersion version() const { return version_; }
  // Whether it calls a function that reads another service (get_thing_shadow,
  // get_registry_data).
  bool calls_services() const { return calls_services_; }

  Result Evaluate(const Payload& payload, const MessageContext& context) const;
  Result Evaluate(absl::string_view payload, const MessageContext& context) const {
    return Evaluate(Payload(std::string(payload)), context);
  }

  // Template::Parse, then Render: for one use.
  static absl::StatusOr<std::string> Substitute(absl::string_view template_text,
                                                absl::string_view payload,
                                                const MessageContext& context,
                                                SqlVersion version = SqlVersion::k2016_03_23,
                                                const nlohmann::json* variables = nullptr);

  struct Item {
    std::shared_ptr<const Expr> expr;  // null for *
    std::vector<std::string> alias;    // dotted alias path; empty: derived from the expr
  };

 private:
  SqlVersion version_ = SqlVersion::k2016_03_23;
  std::vector<std::pair<std::string, std::shared_ptr<const Expr>>> sets_;  // SET, in order
  bool value_ = false;  // SELECT VALUE expr
  std::vector<Item> items_;
  std::string from_;
  std::shared_ptr<const Expr> where_;
  bool calls_services_ = false;
};

// A substitution template ("alerts/${topic(2)}/${upper(unit)}"), parsed once: its ${...}
// expressions are evaluated against each message, with the statement's SET `variables`
// (Result::variables) when given: ${@name}. Immutable; Render may be called concurrently.
class Template {
 public:
  // INVALID_ARGUMENT saying what is wrong in which ${...}.
  static absl::StatusOr<Template> Parse(absl::string_view text,
                                        SqlVersion version = SqlVersion::k2016_03_23);

  // The text with every ${...} replaced by its value (nothing for Undefined). A failed
  // lookup (get_thing_shadow, get_registry_data) is an error naming it.
  absl::StatusOr<std::string> Render(const Payload& payload, const MessageContext& context,
                                     const nlohmann::json* variables = nullptr) const;

 private:
  SqlVersion version_ = SqlVersion::k2016_03_23;
  std::vector<std::string> text_;                  // the literal pieces, one more than exprs_
  std::vector<std::shared_ptr<const Expr>> exprs_;  // the ${...}, in order
};

// Whether MQTT topic `topic` matches `filter` (+ one level, # the rest).
bool TopicMatches(absl::string_view filter, absl::string_view topic);

}  // namespace fleetcore::iotsql
