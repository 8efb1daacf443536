// NATS subjects for MQTT topics and filters, so that NATS itself routes shared
// subscriptions among gateway replicas (a queue group per share group and filter).
//
//   SubjectOfTopic("fleetcore.gw.m", "a/b.c")  -> "fleetcore.gw.m.a.b%2Ec"
//   SubjectsOfFilter("fleetcore.gw.m", "a/+/#") -> {"fleetcore.gw.m.a.*",
//                                                   "fleetcore.gw.m.a.*.>"}
//
// Each topic level is one subject token: letters, digits, '_' and '-' as they are, any
// other byte as %XX, an empty level as a lone "%" (no escape looks like it), so that two
// topics never share a subject and no level reads as a NATS wildcard. In filters '+'
// becomes '*' and '#' becomes '>' plus, since MQTT's "a/#" also matches "a", the parent's
// own subject. NATS knows nothing of MQTT's rule that wildcards do not match a first level
// beginning with '$': whoever receives a message checks that.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fleetcore::gateway {

// One token of a subject for `text` (a topic level, a node id): never empty, never a
// wildcard, never a '.'.
std::string SubjectToken(absl::string_view text);
std::string SubjectOfTopic(absl::string_view prefix, absl::string_view topic);
// One subject, or two for a filter ending in '#' below the first level.
std::vector<std::string> SubjectsOfFilter(absl::string_view prefix, absl::string_view filter);
// A NATS queue group name for a share group and its filter: letters and digits only.
std::string QueueOfShare(absl::string_view group, absl::string_view filter);
// A share group and filter as a number (the same hash as QueueOfShare's), for the
// replicas' heartbeats.
uint64_t ShareId(absl::string_view group, absl::string_view filter);

}  // namespace fleetcore::gateway
