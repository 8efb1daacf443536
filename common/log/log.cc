#include "common/log/log.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace fleetcore::log {
namespace {

struct State {
  std::string service = "fleetcore";
  bool json = true;
  std::shared_ptr<spdlog::logger> logger;
};

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
std::mutex g_init_mu;
// Replaced whole by Init(); readers take a shared_ptr copy.
std::shared_ptr<const State> g_state;

std::shared_ptr<const State> CurrentState() {
  std::shared_ptr<const State> s = std::atomic_load(&g_state);
  if (s != nullptr) {
    return s;
  }
  std::lock_guard<std::mutex> lock(g_init_mu);
  s = std::atomic_load(&g_state);
  if (s == nullptr) {
    auto fresh = std::make_shared<State>();
    fresh->logger = std::make_shared<spdlog::logger>(
        "fleetcore", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    fresh->logger->set_pattern("%v");
    fresh->logger->set_level(spdlog::level::trace);
    s = fresh;
    std::atomic_store(&g_state, s);
  }
  return s;
}

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void AppendValue(std::string* out, const Field& f, bool json) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, absl::string_view>) {
          const bool quote = json || v.empty() || v.find_first_of(" \"=\t\n") != v.npos;
          if (quote) {
            AppendJsonString(out, v);
          } else {
            out->append(v.data(), v.size());
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          out->append(v ? "true" : "false");
        } else {
          absl::StrAppend(out, v);
        }
      },
      f.value());
}

std::string Timestamp() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
}

}  // namespace

Field::Field(absl::string_view key, const absl::Status& status) : key_(key) {
  owned_ = status.ToString();
  value_ = absl::string_view(owned_);
}

void RegisterFlags(config::FlagSet& flags, Options* options) {
  flags.AddChoice("log-format", &options->format,
                  "Log format: JSON lines, text, or auto (JSON unless stderr is a terminal).",
                  {"auto", "json", "text"});
  flags.AddChoice("log-level", &options->level, "Least severe level logged.",
                  {"debug", "info", "warn", "error"});
}

absl::Status Init(const Options& options) {
  auto state = std::make_shared<State>();
  state->service = options.service.empty() ? "fleetcore" : options.service;
  if (options.format == "json") {
    state->json = true;
  } else if (options.format == "text") {
    state->json = false;
  } else if (options.format == "auto") {
    state->json = isatty(STDERR_FILENO) == 0;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log format must be auto, json or text, got \"", options.format, "\""));
  }
  Level level;
  if (options.level == "debug") {
    level = Level::kDebug;
  } else if (options.level == "info") {
    level = Level::kInfo;
  } else if (options.level == "warn") {
    level = Level::kWarn;
  } else if (options.level == "error") {
    level = Level::kError;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "log level must be debug, info, warn or error, got \"", options.level, "\""));
  }
  spdlog::sink_ptr sink;
  if (state->json) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  }
  state->logger = std::make_shared<spdlog::logger>(state->service, std::move(sink));
  state->logger->set_pattern("%v");
  // Level filtering happens in Write(); the spdlog logger passes everything through.
  state->logger->set_level(spdlog::level::trace);
  state->logger->flush_on(spdlog::level::trace);
  std::lock_guard<std::mutex> lock(g_init_mu);
  std::atomic_store(&g_state, std::shared_ptr<const State>(std::move(state)));
  g_min_level.store(static_cast<int>(level));
  return absl::OkStatus();
}

bool Enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(); }

std::string RenderJson(Level level, absl::string_view service, absl::string_view timestamp,
                       absl::string_view message, absl::Span<const Field> fields) {
  std::string out;
  out.reserve(128 + message.size());
  out.append("{\"ts\":");
  AppendJsonString(&out, timestamp);
  out.append(",\"level\":\"");
  out.append(LevelName(level));
  out.append("\",\"service\":");
  AppendJsonString(&out, service);
  out.append(",\"msg\":");
  AppendJsonString(&out, message);
  for (const Field& f : fields) {
    out.push_back(',');
    AppendJsonString(&out, f.key());
    out.push_back(':');
    AppendValue(&out, f, /*json=*/true);
  }
  out.push_back('}');
  return out;
}

std::string RenderText(Level level, absl::string_view service, absl::string_view timestamp,
                       absl::string_view message, absl::Span<const Field> fields) {
  std::string out = absl::StrFormat("%s %-5s %s: %s", timestamp, LevelName(level), service,
                                    message);
  for (const Field& f : fields) {
    absl::StrAppend(&out, " ", f.key(), "=");
    AppendValue(&out, f, /*json=*/false);
  }
  return out;
}

void Write(Level level, absl::string_view message, absl::Span<const Field> fields) {
  if (!Enabled(level)) {
    return;
  }
  std::shared_ptr<const State> state = CurrentState();
  const std::string ts = Timestamp();
  const std::string line = state->json ? RenderJson(level, state->service, ts, message, fields)
                                       : RenderText(level, state->service, ts, message, fields);
  spdlog::level::level_enum spd = spdlog::level::info;
  switch (level) {
    case Level::kDebug:
      spd = spdlog::level::debug;
      break;
    case Level::kInfo:
      spd = spdlog::level::info;
      break;
    case Level::kWarn:
      spd = spdlog::level::warn;
      break;
    case Level::kError:
      spd = spdlog::level::err;
      break;
  }
  state->logger->log(spd, line);
}

}  // namespace fleetcore::log
