#include "services/gateway/defender_report.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/json/json_text.h"
#include "common/nesting/nesting.h"
#include "nlohmann/json.hpp"

namespace fleetcore::gateway {
namespace {

using json = nlohmann::json;

// The deepest a well-formed report nests: report, metrics, tcp_connections,
// established_connections, connections, a connection (6); two to spare.
constexpr int kMaxNesting = 8;

// A key of the report, in the specification's long and short forms.
struct Key {
  const char* long_name;
  const char* short_name;
};
constexpr Key kHeader{"header", "hed"};
constexpr Key kReportId{"report_id", "rid"};
constexpr Key kVersion{"version", "v"};
constexpr Key kMetrics{"metrics", "met"};
constexpr Key kCustomMetrics{"custom_metrics", "cmet"};
constexpr Key kTcpPorts{"listening_tcp_ports", "tp"};
constexpr Key kUdpPorts{"listening_udp_ports", "up"};
constexpr Key kPorts{"ports", "pts"};
constexpr Key kPort{"port", "pt"};
constexpr Key kInterface{"interface", "if"};
constexpr Key kTotal{"total", "t"};
constexpr Key kNetworkStats{"network_stats", "ns"};
constexpr Key kTcpConnections{"tcp_connections", "tc"};
constexpr Key kEstablished{"established_connections", "ec"};
constexpr Key kConnections{"connections", "cs"};
constexpr Key kRemoteAddr{"remote_addr", "rad"};
constexpr Key kLocalPort{"local_port", "lp"};
constexpr Key kLocalInterface{"local_interface", "li"};
constexpr Key kNetworkCounters[] = {
    {"bytes_in", "bi"}, {"bytes_out", "bo"}, {"packets_in", "pi"}, {"packets_out", "po"}};

// Checks one report, naming the first thing wrong with it by its path in the report
// ("metrics.listening_tcp_ports.ports[1].port"). A CBOR report's strings may not be UTF-8
// (nlohmann reads them unchecked): the messages quote them with JsonText, never dump().
class ReportChecker {
 public:
  // The field of `object` under `key` (either form), or null; `path` gets its name.
  static const json* Find(const json& object, const Key& key, const std::string& at,
                          std::string* path) {
    for (const char* name : {key.long_name, key.short_name}) {
      if (auto it = object.find(name); it != object.end()) {
        *path = at.empty() ? name : absl::StrCat(at, ".", name);
        return &*it;
      }
    }
    return nullptr;
  }

  static bool NonNegativeInteger(const json& v) {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  }

  // Counters and totals: the SDKs print them as numbers of any form (cJSON's doubles).
  static bool NonNegativeNumber(const json& v) {
    return NonNegativeInteger(v) || (v.is_number_float() && v.get<double>() >= 0);
  }

  static bool MajorVersionOne(const json& v) {
    if (!v.is_string()) return false;
    absl::string_view s = v.get_ref<const std::string&>();
    if (!absl::ConsumePrefix(&s, "1.") || s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
  }

  static bool PortNumber(const json& v) {
    return NonNegativeInteger(v) && v.get<uint64_t>() <= 65535;
  }

  // `error` is set to the first problem found.
  std::string error;

  bool Fail(std::string what) {
    if (error.empty()) error = std::move(what);
    return false;
  }

  // An optional object field; `out` is null when absent.
  bool OptionalObject(const json& parent, const Key& key, const std::string& at, const json** out,
                      std::string* path) {
    *out = Find(parent, key, at, path);
    if (*out != nullptr && !(*out)->is_object()) {
      return Fail(absl::StrCat(*path, " must be an object"));
    }
    return true;
  }

  bool OptionalTotal(const json& block, const std::string& at) {
    std::string path;
    const json* total = Find(block, kTotal, at, &path);
    if (total != nullptr && !NonNegativeNumber(*total)) {
      return Fail(absl::StrCat(path, " must be a non-negative number"));
    }
    return true;
  }

  bool OptionalString(const json& parent, const Key& key, const std::string& at) {
    std::string path;
    const json* v = Find(parent, key, at, &path);
    if (v != nullptr && !v->is_string()) return Fail(absl::StrCat(path, " must be a string"));
    return true;
  }

  // An optional array of objects under `key`, each checked by `item` (given its path).
  template <typename Item>
  bool OptionalObjects(const json& parent, const Key& key, const std::string& at, Item item) {
    std::string path;
    const json* list = Find(parent, key, at, &path);
    if (list == nullptr) return true;
    if (!list->is_array()) return Fail(absl::StrCat(path, " must be an array"));
    for (size_t i = 0; i < list->size(); ++i) {
      const json& e = (*list)[i];
      const std::string item_path = absl::StrCat(path, "[", i, "]");
      if (!e.is_object()) return Fail(absl::StrCat(item_path, " must be an object"));
      if (!item(e, item_path)) return false;
    }
    return true;
  }

  // listening_tcp_ports or listening_udp_ports: {ports: [{port, interface}], total}.
  bool ListeningPorts(const json& metrics, const Key& key, const std::string& at) {
    std::string path;
    const json* block = nullptr;
    if (!OptionalObject(metrics, key, at, &block, &path)) return false;
    if (block == nullptr) return true;
    auto port_entry = [this](const json& p, const std::string& item) {
      std::string port_path;
      const json* port = Find(p, kPort, item, &port_path);
      if (port == nullptr) return Fail(absl::StrCat(item, " has no port"));
      if (!PortNumber(*port)) {
        return Fail(absl::StrCat(port_path, " must be an integer from 0 to 65535"));
      }
      return OptionalString(p, kInterface, item);
    };
    return OptionalObjects(*block, kPorts, path, port_entry) && OptionalTotal(*block, path);
  }

  bool NetworkStats(const json& metrics, const std::string& at) {
    std::string path;
    const json* stats = nullptr;
    if (!OptionalObject(metrics, kNetworkStats, at, &stats, &path)) return false;
    if (stats == nullptr) return true;
    for (const Key& key : kNetworkCounters) {
      std::string counter_path;
      const json* v = Find(*stats, key, path, &counter_path);
      if (v != nullptr && !NonNegativeNumber(*v)) {
        return Fail(absl::StrCat(counter_path, " must be a non-negative number"));
      }
    }
    return true;
  }

  // tcp_connections: {established_connections: {connections: [...], total}}.
  bool TcpConnections(const json& metrics, const std::string& at) {
    std::string path;
    const json* tcp = nullptr;
    if (!OptionalObject(metrics, kTcpConnections, at, &tcp, &path)) return false;
    if (tcp == nullptr) return true;
    std::string est_path;
    const json* established = nullptr;
    if (!OptionalObject(*tcp, kEstablished, path, &established, &est_path)) return false;
    if (established == nullptr) return true;
    auto connection = [this](const json& c, const std::string& item) {
      std::string field;
      const json* remote = Find(c, kRemoteAddr, item, &field);
      if (remote == nullptr || !remote->is_string() || remote->get<std::string>().empty()) {
        return Fail(absl::StrCat(item, " needs remote_addr, the remote \"address:port\""));
      }
      const json* local_port = Find(c, kLocalPort, item, &field);
      if (local_port != nullptr && !PortNumber(*local_port)) {
        return Fail(absl::StrCat(field, " must be an integer from 0 to 65535"));
      }
      return OptionalString(c, kLocalInterface, item);
    };
    return OptionalObjects(*established, kConnections, est_path, connection) &&
           OptionalTotal(*established, est_path);
  }

  static bool IpAddress(const json& v) {
    if (!v.is_string()) return false;
    const std::string& s = v.get_ref<const std::string&>();
    // (A CBOR string may hold a NUL, where inet_pton would stop reading.)
    if (s.find('\0') != std::string::npos) return false;
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
  }

  // custom_metrics: {name: [{number | number_list | string_list | ip_list}]}, names as
  // AWS's CreateCustomMetric takes them.
  bool CustomMetrics(const json& report) {
    std::string path;
    const json* custom = nullptr;
    if (!OptionalObject(report, kCustomMetrics, "", &custom, &path)) return false;
    if (custom == nullptr) return true;
    for (const auto& [name, value] : custom->items()) {
      const std::string at = absl::StrCat(path, ".", name);
      const bool name_ok = !name.empty() && name.size() <= 128 && !absl::StartsWith(name, "aws:") &&
                           std::all_of(name.begin(), name.end(), [](char c) {
                             return absl::ascii_isalnum(c) || c == ':' || c == '_' || c == '-';
                           });
      if (!name_ok) {
        return Fail(absl::StrCat(path, " names ", json_text::JsonText(json(name)),
                                 ": a custom metric's name is 1 to 128 of [a-zA-Z0-9:_-] and "
                                 "does not start with aws:"));
      }
      if (!value.is_array() || value.size() != 1 || !value[0].is_object() || value[0].size() != 1) {
        return Fail(absl::StrCat(at,
                                 " must be an array of one object with one of number, "
                                 "number_list, string_list or ip_list"));
      }
      // (Not a structured binding of items(): its element is a reference into a temporary.)
      const auto entry = value[0].begin();
      const std::string& kind = entry.key();
      const json& v = entry.value();
      bool ok = false;
      if (kind == "number") {
        ok = v.is_number();
      } else if (kind == "number_list" || kind == "string_list" || kind == "ip_list") {
        ok = v.is_array();
        for (const json& e : v) {
          ok = ok && (kind == "number_list"   ? e.is_number()
                      : kind == "string_list" ? e.is_string()
                                              : IpAddress(e));
        }
      } else {
        return Fail(absl::StrCat(at, "[0] has ", json_text::JsonText(json(kind)),
                                 ": number, number_list, string_list or ip_list"));
      }
      if (!ok) {
        return Fail(absl::StrCat(at, "[0].", kind, " must be ",
                                 kind == "number"        ? "a number"
                                 : kind == "number_list" ? "an array of numbers"
                                 : kind == "string_list" ? "an array of strings"
                                                         : "an array of IP addresses"));
      }
    }
    return true;
  }

  bool Report(const json& report, std::optional<int64_t>* report_id) {
    std::string path;
    const json* header = Find(report, kHeader, "", &path);
    if (header == nullptr || !header->is_object()) {
      return Fail("the report needs a header object (header or hed) with report_id and version");
    }
    std::string id_path;
    const json* id = Find(*header, kReportId, path, &id_path);
    if (id == nullptr || !NonNegativeInteger(*id) ||
        id->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return Fail(absl::StrCat(path,
                               " needs report_id, a non-negative integer (AWS suggests "
                               "the report's Unix time: each report's is larger)"));
    }
    *report_id = id->get<int64_t>();
    std::string version_path;
    const json* version = Find(*header, kVersion, path, &version_path);
    if (version == nullptr || !MajorVersionOne(*version)) {
      return Fail(absl::StrCat(path,
                               " needs version \"1.0\" (the document's major version "
                               "is 1)"));
    }
    std::string metrics_path;
    const json* metrics = Find(report, kMetrics, "", &metrics_path);
    if (metrics == nullptr || !metrics->is_object()) {
      return Fail("the report needs a metrics object (metrics or met; it may be empty)");
    }
    return ListeningPorts(*metrics, kTcpPorts, metrics_path) &&
           ListeningPorts(*metrics, kUdpPorts, metrics_path) &&
           NetworkStats(*metrics, metrics_path) && TcpConnections(*metrics, metrics_path) &&
           CustomMetrics(report);
  }
};

}  // namespace

DefenderReportCheck CheckDefenderReport(absl::string_view payload, bool cbor) {
  DefenderReportCheck out;
  // A device's deeply nested payload is refused before it is parsed: the parsers and
  // copies recurse once per level.
  json report;
  if (cbor ? nesting::CborNestingWithin(payload, kMaxNesting)
           : nesting::JsonNestingWithin(payload, kMaxNesting)) {
    report = cbor ? json::from_cbor(payload, /*strict=*/true, /*allow_exceptions=*/false)
                  : json::parse(payload, nullptr, /*allow_exceptions=*/false);
  } else {
    report = json::value_t::discarded;
  }
  if (!report.is_object()) {
    out.error_code = "InvalidJson";
    out.error = absl::StrCat("the report is not a ", cbor ? "CBOR map" : "JSON object",
                             " (of at most ", kMaxNesting, " levels)");
    return out;
  }
  ReportChecker checker;
  if (!checker.Report(report, &out.report_id)) {
    out.error_code = "InvalidReport";
    out.error = std::move(checker.error);
  }
  return out;
}

}  // namespace fleetcore::gateway
