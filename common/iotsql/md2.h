// MD2 (RFC 1319), for AWS IoT SQL's md2() only: OpenSSL 3 no longer provides it. MD2 is
// broken as a cryptographic hash; rules use it to match digests other systems make.
//
//   Md2("abc") -> 16 bytes, da853b0d3f88d99b30283a69e6ded6bb in hex
//
// Thread safety: a pure function.
#pragma once

#include <array>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace fleetcore::iotsql {

std::array<uint8_t, 16> Md2(absl::string_view message);

}  // namespace fleetcore::iotsql
