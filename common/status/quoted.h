// A name as an error message quotes it: Quoted("lamp-1") is "\"lamp-1\"".
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fleetcore {

inline std::string Quoted(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

}  // namespace fleetcore
