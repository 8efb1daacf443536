// libFuzzer target: any bytes as a stream of MQTT packets, for both versions. Decoding must
// never crash, hang or read out of bounds; a packet that decodes must encode again, and
// decoding that encoding must give the same packet.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/mqtt/codec.h"

namespace {

void Check(absl::string_view data, fleetcore::mqtt::Version version) {
  using namespace fleetcore::mqtt;
  while (!data.empty()) {
    FrameHeader h;
    if (ParseFrameHeader(data, 1 << 20, &h) != FrameStatus::kComplete) return;
    Packet p;
    DecodeError e;
    const absl::string_view body = data.substr(h.header_size, h.remaining_length);
    if (Decode(h.first_byte, body, version, &p, &e)) {
      const Version v = std::holds_alternative<Connect>(p) ? std::get<Connect>(p).version : version;
      std::string again;
      Encode(p, v, &again);
      FrameHeader h2;
      if (ParseFrameHeader(again, 1 << 21, &h2) != FrameStatus::kComplete) std::abort();
      Packet q;
      if (!Decode(h2.first_byte, absl::string_view(again).substr(h2.header_size), v, &q, &e)) {
        std::abort();  // what we encode, we must decode
      }
      if (!(p == q)) std::abort();
    }
    data.remove_prefix(h.total_size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  Check(input, fleetcore::mqtt::Version::kV311);
  Check(input, fleetcore::mqtt::Version::kV5);
  return 0;
}
