#include "services/gateway/client_hello.h"

#include <cstdint>

namespace fleetcore::gateway {
namespace {

// A cursor over bytes that fails (rather than reads past the end) on short input.
class Reader {
 public:
  explicit Reader(absl::string_view d) : d_(d) {}
  bool U8(uint32_t* v) { return N(1, v); }
  bool U16(uint32_t* v) { return N(2, v); }
  bool U24(uint32_t* v) { return N(3, v); }
  bool Skip(size_t n) {
    if (d_.size() < n) return false;
    d_.remove_prefix(n);
    return true;
  }
  bool Bytes(size_t n, absl::string_view* out) {
    if (d_.size() < n) return false;
    *out = d_.substr(0, n);
    d_.remove_prefix(n);
    return true;
  }

 private:
  bool N(size_t n, uint32_t* v) {
    if (d_.size() < n) return false;
    *v = 0;
    for (size_t i = 0; i < n; ++i) *v = (*v << 8) | static_cast<uint8_t>(d_[i]);
    d_.remove_prefix(n);
    return true;
  }
  absl::string_view d_;
};

constexpr uint32_t kHandshake = 22;
constexpr uint32_t kClientHelloType = 1;
constexpr uint32_t kAlpnExtension = 16;

}  // namespace

ClientHello ParseClientHello(absl::string_view data) {
  ClientHello out;
  Reader record(data);
  uint32_t type = 0, version = 0, length = 0;
  if (!record.U8(&type)) return out;
  if (type != kHandshake) return {ClientHello::kNotTls, {}};
  if (!record.U16(&version) || !record.U16(&length)) return out;
  if ((version >> 8) != 3 || length == 0 || length > 16384) return {ClientHello::kNotTls, {}};
  absl::string_view body;
  // A ClientHello fits one record in practice (it may be longer than one, with huge
  // key shares: then the first record's part has the extensions or says "incomplete").
  if (!record.Bytes(length, &body)) return out;
  Reader hello(body);
  uint32_t hs_type = 0, hs_length = 0;
  if (!hello.U8(&hs_type) || hs_type != kClientHelloType || !hello.U24(&hs_length)) {
    return {ClientHello::kNotTls, {}};
  }
  uint32_t n = 0;
  // client_version, random, session_id, cipher_suites, compression_methods
  if (!hello.Skip(2 + 32) || !hello.U8(&n) || !hello.Skip(n) || !hello.U16(&n) ||
      !hello.Skip(n) || !hello.U8(&n) || !hello.Skip(n)) {
    return {hs_length + 4 > body.size() ? ClientHello::kIncomplete : ClientHello::kNotTls, {}};
  }
  out.status = ClientHello::kParsed;
  uint32_t extensions_length = 0;
  if (!hello.U16(&extensions_length)) return out;  // no extensions at all
  absl::string_view extensions;
  if (!hello.Bytes(extensions_length, &extensions)) {
    out.status = hs_length + 4 > body.size() ? ClientHello::kIncomplete : ClientHello::kNotTls;
    return out;
  }
  Reader ext(extensions);
  uint32_t ext_type = 0, ext_length = 0;
  while (ext.U16(&ext_type) && ext.U16(&ext_length)) {
    absl::string_view value;
    if (!ext.Bytes(ext_length, &value)) break;
    if (ext_type != kAlpnExtension) continue;
    Reader list(value);
    uint32_t list_length = 0;
    absl::string_view names;
    if (!list.U16(&list_length) || !list.Bytes(list_length, &names)) break;
    Reader name_reader(names);
    uint32_t name_length = 0;
    absl::string_view name;
    while (name_reader.U8(&name_length) && name_reader.Bytes(name_length, &name)) {
      out.alpn.emplace_back(name);
    }
    break;
  }
  return out;
}

bool OffersMqtt(const ClientHello& hello) {
  for (const std::string& p : hello.alpn) {
    if (p == "x-amzn-mqtt-ca" || p == "mqtt") return true;
  }
  return false;
}

}  // namespace fleetcore::gateway
