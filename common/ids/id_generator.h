// Generates the opaque identifiers fleetcore hands out (thing ids, request ids, ...).
// Code takes an IdGenerator& by constructor so tests can make ids predictable.
//
// Thread safety: implementations must be safe to call from any thread.
#pragma once

#include <string>

namespace fleetcore {

class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  // A new RFC 4122 version-4 UUID in its canonical lower-case form.
  virtual std::string NewUuid() = 0;
};

// UUIDs from OpenSSL's CSPRNG, so they are unguessable as well as unique.
class RandomIdGenerator final : public IdGenerator {
 public:
  std::string NewUuid() override;
};

}  // namespace fleetcore
