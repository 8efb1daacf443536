// Structured logging for every fleetcore process.
//
// One record per line on stderr: JSON when stderr is not a terminal (containers, CI, log
// shippers), readable text on a terminal; `--log-format` overrides. Every record carries
// the service name; callers add fields such as request_id, client_id or thing.
//
//   log::Info("listening", {{"grpc_address", addr}, {"metrics_address", maddr}});
//   log::Error("query failed", {{"request_id", id}, {"error", status}});
//
// Never pass keys, tokens, passwords or whole certificates as fields.
// Thread safety: all functions are safe to call from any thread after Init().
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include "absl/strings/string_view.h"
#include <variant>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/config/flag_set.h"

namespace fleetcore::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct Options {
  std::string service;
  std::string format = "auto";  // auto | json | text
  std::string level = "info";   // debug | info | warn | error
};

// Registers --log-format and --log-level.
void RegisterFlags(config::FlagSet& flags, Options* options);

// Sets up the process-wide logger. Before Init, records go to stderr as JSON with service
// "fleetcore".
absl::Status Init(const Options& options);

// A key and a value of a log record. Keeps references: use it only as an argument.
class Field {
 public:
  Field(absl::string_view key, absl::string_view value) : key_(key), value_(value) {}
  Field(absl::string_view key, const char* value) : key_(key), value_(absl::string_view(value)) {}
  Field(absl::string_view key, const std::string& value)
      : key_(key), value_(absl::string_view(value)) {}
  Field(absl::string_view key, int value) : key_(key), value_(static_cast<int64_t>(value)) {}
  Field(absl::string_view key, int64_t value) : key_(key), value_(value) {}
  Field(absl::string_view key, uint64_t value)
      : key_(key), value_(static_cast<int64_t>(value)) {}
  Field(absl::string_view key, double value) : key_(key), value_(value) {}
  Field(absl::string_view key, bool value) : key_(key), value_(value) {}
  // The status as "CODE: message".
  Field(absl::string_view key, const absl::Status& status);

  absl::string_view key() const { return key_; }
  const std::variant<absl::string_view, int64_t, double, bool>& value() const { return value_; }

 private:
  absl::string_view key_;
  std::variant<absl::string_view, int64_t, double, bool> value_;
  std::string owned_;  // for the Status form
};

bool Enabled(Level level);
// `fields` may be an initializer list or any contiguous sequence of Fields.
void Write(Level level, absl::string_view message, absl::Span<const Field> fields);

inline void Debug(absl::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kDebug, m, f);
}
inline void Info(absl::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, m, f);
}
inline void Warn(absl::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, m, f);
}
inline void Error(absl::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kError, m, f);
}

// Exposed for tests: one record rendered as a JSON object or a text line (no newline).
std::string RenderJson(Level level, absl::string_view service, absl::string_view timestamp,
                       absl::string_view message, absl::Span<const Field> fields);
std::string RenderText(Level level, absl::string_view service, absl::string_view timestamp,
                       absl::string_view message, absl::Span<const Field> fields);

}  // namespace fleetcore::log
