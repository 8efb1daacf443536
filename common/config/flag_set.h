// Command-line flags and FLEETCORE_* environment variables for a service's configuration.
//
// Each option is registered once with a target variable whose current value is the default.
// Parse() reads the command line, then the environment: a flag given on the command line
// wins over the environment, which wins over the default. Option "db-pool-size" is set by
// `--db-pool-size=8`, `--db-pool-size 8` or FLEETCORE_DB_POOL_SIZE=8.
//
//   RegistryConfig cfg;
//   FlagSet flags("fleetcore-registry", "The thing registry service.");
//   flags.AddString("db-url", &cfg.db_url, "Postgres connection URL");
//   flags.AddInt("db-pool-size", &cfg.pool_size, "Postgres connections", 1, 512);
//   FLEETCORE_RETURN_IF_ERROR(flags.Parse(argc, argv, ProcessEnvironment()));
//
// Every parse error is InvalidArgument and names the flag or variable, the value and what
// was expected. `--help` and `--check-config` are always known; the caller acts on them.
// Not thread-safe; used once, in main, before any thread starts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fleetcore::config {

using Environment = std::map<std::string, std::string, std::less<>>;

// The process's FLEETCORE_* environment variables.
Environment ProcessEnvironment();

class FlagSet {
 public:
  FlagSet(std::string program, std::string summary);
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  void AddString(std::string name, std::string* target, std::string help);
  void AddInt(std::string name, int* target, std::string help, int min, int max);
  void AddBool(std::string name, bool* target, std::string help);
  // Values like "30s", "5m", "250ms", "1h30m".
  void AddDuration(std::string name, absl::Duration* target, std::string help);
  // One of `choices`.
  void AddChoice(std::string name, std::string* target, std::string help,
                 std::vector<std::string> choices);
  // A secret (token, passphrase): never shown by Describe(). Can also be read from a file
  // given by --NAME-file or FLEETCORE_NAME_FILE (one trailing newline is dropped), which is
  // how Docker and Kubernetes secrets arrive.
  void AddSecret(std::string name, std::string* target, std::string help);

  absl::Status Parse(int argc, const char* const argv[], const Environment& env);

  bool help_requested() const { return help_; }
  bool check_config_requested() const { return check_config_; }

  // The --help text: every option with its environment variable, default and help.
  std::string Usage() const;
  // The effective configuration as "name=value" lines; secrets appear as "(set)".
  std::string Describe() const;

 private:
  enum class Kind { kString, kInt, kBool, kDuration, kChoice, kSecret };
  struct Option {
    std::string name;
    std::string env;
    Kind kind;
    void* target;
    std::string help;
    std::string default_text;
    int min = 0;
    int max = 0;
    std::vector<std::string> choices;
  };

  void Add(Option option);
  const Option* Find(absl::string_view name) const;
  absl::Status Set(const Option& option, absl::string_view value, absl::string_view source);
  std::string ValueText(const Option& option) const;

  std::string program_;
  std::string summary_;
  std::vector<Option> options_;
  bool help_ = false;
  bool check_config_ = false;
};

// Converts "db-pool-size" to "FLEETCORE_DB_POOL_SIZE".
std::string EnvName(absl::string_view flag_name);

// The whole content of a file named by the configuration (a certificate, a secret), or
// INVALID_ARGUMENT "cannot read <what> "<path>"".
absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what);

}  // namespace fleetcore::config
