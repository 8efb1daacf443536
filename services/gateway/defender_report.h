// AWS IoT Device Defender's device-side metrics report (the document its agents publish
// to $aws/things/{thing}/defender/metrics/{json|cbor}), checked against AWS's specification:
//   {"header": {"report_id": N, "version": "1.0"},
//    "metrics": {"listening_tcp_ports": {"ports": [{"port": P, "interface": I}], "total": T},
//                "listening_udp_ports": {...the same...},
//                "network_stats": {"bytes_in", "bytes_out", "packets_in", "packets_out"},
//                "tcp_connections": {"established_connections": {
//                    "connections": [{"remote_addr": "A:P", "local_port", "local_interface"}],
//                    "total": T}}},
//    "custom_metrics": {name: [{"number" | "number_list" | "string_list" | "ip_list": V}]}}
// with every key also in its short form ("hed", "rid", "v", "met", "tp", "up", "pts", "pt",
// "if", "t", "ns", "bi", "bo", "pi", "po", "tc", "ec", "cs", "rad", "lp", "li", "cmet"), as
// FreeRTOS's defender library writes them. The header and metrics are required (metrics may
// be empty); every metric is optional; keys the specification does not name are ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace fleetcore::gateway {

// What a metrics report is: its header's report_id when it has one, and what is wrong with
// it (empty: nothing; a sentence a device's developer can act on otherwise, naming the
// field by its path: "metrics.listening_tcp_ports.ports[1].port must be ...").
struct DefenderReportCheck {
  std::optional<int64_t> report_id;
  std::string error_code;  // "InvalidJson" (not a JSON object or CBOR map) or "InvalidReport"
  std::string error;
};
DefenderReportCheck CheckDefenderReport(absl::string_view payload, bool cbor);

}  // namespace fleetcore::gateway
