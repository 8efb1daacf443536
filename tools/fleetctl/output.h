// The AWS CLI's --query and --output text, so that scripts written for `aws iot` work with
// fleetctl unchanged:
//
//   CODE=$(fleetctl get-registration-code --query registrationCode --output text)
//   fleetctl list-certificates --query 'certificates[].certificateId' --output text
//
// --query takes the JMESPath that such scripts use: identifiers (a "quoted-name" too),
// ".field", "[N]" (negative counts from the end), "[*]" (each element) and "[]" (each
// element, nested lists flattened one level), and multiselect lists "[a, b]" and hashes
// "{x: a, y: b}" where a name may stand (`things[].[thingName, version]`); after a
// projection the rest applies to each element and what is null is left out. Anything else
// (filters, pipes, functions) is refused, naming the part.
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fleetcore::fleetctl {

// `query` applied to `doc`; null where it names nothing. INVALID_ARGUMENT for JMESPath
// beyond the subset above.
absl::StatusOr<nlohmann::json> ApplyQuery(const nlohmann::json& doc, absl::string_view query);

// The AWS CLI's --output text: a scalar as is (true/false as True/False, null as None); a
// list of scalars on one line, tab-separated; an object's scalar values in the order of
// their keys on one line, then each of its lists and objects with the upper-cased field
// name leading its lines (`aws iot list-things --output text` prints THINGS lines); a
// list of objects one line each, in the columns of all their scalar keys. Ends with a
// newline unless empty.
std::string TextOutput(const nlohmann::json& value);

}  // namespace fleetcore::fleetctl
