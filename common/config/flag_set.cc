#include "common/config/flag_set.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

extern char** environ;

namespace fleetcore::config {
namespace {

constexpr absl::string_view kEnvPrefix = "FLEETCORE_";

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, absl::string_view source) {
  absl::StatusOr<std::string> content = ReadFile(path, "secret file");
  if (!content.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", content.status().message()));
  }
  std::string value = *std::move(content);
  if (absl::EndsWith(value, "\n")) {
    value.pop_back();
    if (absl::EndsWith(value, "\r")) {
      value.pop_back();
    }
  }
  return value;
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, " \"", path, "\""));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view entry(*e);
    if (!absl::StartsWith(entry, kEnvPrefix)) {
      continue;
    }
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) {
      continue;
    }
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::string EnvName(absl::string_view flag_name) {
  return absl::StrCat(kEnvPrefix,
                      absl::AsciiStrToUpper(absl::StrReplaceAll(flag_name, {{"-", "_"}})));
}

FlagSet::FlagSet(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void FlagSet::Add(Option option) {
  option.env = EnvName(option.name);
  option.default_text = ValueText(option);
  options_.push_back(std::move(option));
}

void FlagSet::AddString(std::string name, std::string* target, std::string help) {
  Add({.name = std::move(name), .kind = Kind::kString, .target = target, .help = std::move(help)});
}

void FlagSet::AddInt(std::string name, int* target, std::string help, int min, int max) {
  Add({.name = std::move(name),
       .kind = Kind::kInt,
       .target = target,
       .help = std::move(help),
       .min = min,
       .max = max});
}

void FlagSet::AddBool(std::string name, bool* target, std::string help) {
  Add({.name = std::move(name), .kind = Kind::kBool, .target = target, .help = std::move(help)});
}

void FlagSet::AddDuration(std::string name, absl::Duration* target, std::string help) {
  Add({.name = std::move(name),
       .kind = Kind::kDuration,
       .target = target,
       .help = std::move(help)});
}

void FlagSet::AddChoice(std::string name, std::string* target, std::string help,
                        std::vector<std::string> choices) {
  Add({.name = std::move(name),
       .kind = Kind::kChoice,
       .target = target,
       .help = std::move(help),
       .choices = std::move(choices)});
}

void FlagSet::AddSecret(std::string name, std::string* target, std::string help) {
  Add({.name = std::move(name), .kind = Kind::kSecret, .target = target, .help = std::move(help)});
}

const FlagSet::Option* FlagSet::Find(absl::string_view name) const {
  for (const Option& o : options_) {
    if (o.name == name) {
      return &o;
    }
  }
  return nullptr;
}

absl::Status FlagSet::Set(const Option& o, absl::string_view value, absl::string_view source) {
  switch (o.kind) {
    case Kind::kString:
    case Kind::kSecret:
      *static_cast<std::string*>(o.target) = std::string(value);
      return absl::OkStatus();
    case Kind::kInt: {
      int v = 0;
      if (!absl::SimpleAtoi(value, &v) || v < o.min || v > o.max) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": expected an integer from ",
                                                       o.min, " to ", o.max, ", got \"",
                                                       value, "\""));
      }
      *static_cast<int*>(o.target) = v;
      return absl::OkStatus();
    }
    case Kind::kBool: {
      bool v = false;
      if (!absl::SimpleAtob(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": expected true or false, got \"", value, "\""));
      }
      *static_cast<bool*>(o.target) = v;
      return absl::OkStatus();
    }
    case Kind::kDuration: {
      absl::Duration d;
      // ParseDuration requires a unit on everything but "0".
      if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ": expected a duration like 30s, 5m or 250ms, got \"", value, "\""));
      }
      *static_cast<absl::Duration*>(o.target) = d;
      return absl::OkStatus();
    }
    case Kind::kChoice: {
      for (const std::string& c : o.choices) {
        if (c == value) {
          *static_cast<std::string*>(o.target) = std::string(value);
          return absl::OkStatus();
        }
      }
      return absl::InvalidArgumentError(absl::StrCat(source, ": expected one of ",
                                                     absl::StrJoin(o.choices, ", "), ", got \"",
                                                     value, "\""));
    }
  }
  return absl::InternalError("unknown option kind");
}

absl::Status FlagSet::Parse(int argc, const char* const argv[], const Environment& env) {
  // The command line first; remember what it set so the environment does not override it.
  std::vector<std::string> set_on_command_line;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg(argv[i]);
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      continue;
    }
    if (arg == "--check-config") {
      check_config_ = true;
      continue;
    }
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument \"", arg, "\": options are --name=value (see --help)"));
    }
    absl::string_view name = arg;
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    bool from_file = false;
    const Option* o = Find(name);
    if (o == nullptr && absl::EndsWith(name, "-file")) {
      o = Find(name.substr(0, name.size() - 5));
      from_file = o != nullptr && o->kind == Kind::kSecret;
      if (!from_file) {
        o = nullptr;
      }
    }
    if (o == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option --", name, " (see --help for the options)"));
    }
    if (!has_value) {
      if (o->kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
    }
    const std::string source = absl::StrCat("--", name);
    if (from_file) {
      auto secret = ReadSecretFile(std::string(value), source);
      if (!secret.ok()) {
        return secret.status();
      }
      *static_cast<std::string*>(o->target) = *secret;
    } else if (absl::Status s = Set(*o, value, source); !s.ok()) {
      return s;
    }
    set_on_command_line.push_back(o->name);
  }

  for (const Option& o : options_) {
    if (std::find(set_on_command_line.begin(), set_on_command_line.end(), o.name) !=
        set_on_command_line.end()) {
      continue;
    }
    if (auto it = env.find(o.env); it != env.end()) {
      if (absl::Status s = Set(o, it->second, o.env); !s.ok()) {
        return s;
      }
      continue;
    }
    if (o.kind == Kind::kSecret) {
      const std::string file_env = absl::StrCat(o.env, "_FILE");
      if (auto it = env.find(file_env); it != env.end()) {
        auto secret = ReadSecretFile(it->second, file_env);
        if (!secret.ok()) {
          return secret.status();
        }
        *static_cast<std::string*>(o.target) = *secret;
      }
    }
  }
  return absl::OkStatus();
}

std::string FlagSet::ValueText(const Option& o) const {
  switch (o.kind) {
    case Kind::kString:
    case Kind::kChoice:
      return *static_cast<const std::string*>(o.target);
    case Kind::kSecret:
      return static_cast<const std::string*>(o.target)->empty() ? "(unset)" : "(set)";
    case Kind::kInt:
      return absl::StrCat(*static_cast<const int*>(o.target));
    case Kind::kBool:
      return *static_cast<const bool*>(o.target) ? "true" : "false";
    case Kind::kDuration:
      return absl::FormatDuration(*static_cast<const absl::Duration*>(o.target));
  }
  return "";
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("Usage: ", program_, " [options]\n\n", summary_,
                                 "\n\nEach option can also be set by its environment variable; "
                                 "a command-line flag wins.\n\n");
  for (const Option& o : options_) {
    absl::StrAppend(&out, "  --", o.name, "  (", o.env, ")\n      ", o.help);
    if (o.kind == Kind::kChoice) {
      absl::StrAppend(&out, " One of: ", absl::StrJoin(o.choices, ", "), ".");
    }
    if (o.kind == Kind::kSecret) {
      absl::StrAppend(&out, " Also --", o.name, "-file / ", o.env, "_FILE.");
    } else if (!o.default_text.empty()) {
      absl::StrAppend(&out, " Default: ", o.default_text, ".");
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out,
                  "  --check-config\n      Validate the configuration, print it and exit.\n"
                  "  --help\n      Print this help and exit.\n");
  return out;
}

std::string FlagSet::Describe() const {
  std::string out;
  for (const Option& o : options_) {
    absl::StrAppend(&out, o.name, "=", ValueText(o), "\n");
  }
  return out;
}

}  // namespace fleetcore::config
