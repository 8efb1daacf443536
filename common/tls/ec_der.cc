#include "common/tls/ec_der.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <cstring>

namespace fleetcore::tls::internal {
namespace {

void AppendLength(std::string* out, size_t n) {
  if (n < 0x80) {
    out->push_back(static_cast<char>(n));
  } else if (n < 0x100) {
    out->push_back(static_cast<char>(0x81));
    out->push_back(static_cast<char>(n));
  } else {
    out->push_back(static_cast<char>(0x82));
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n & 0xff));
  }
}

std::string Tlv(unsigned char tag, const std::string& content) {
  std::string out(1, static_cast<char>(tag));
  AppendLength(&out, content.size());
  out += content;
  return out;
}

std::string OidDer(int nid) {
  const ASN1_OBJECT* obj = OBJ_nid2obj(nid);
  unsigned char* der = nullptr;
  const int len = i2d_ASN1_OBJECT(obj, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len > 0 ? len : 0));
  OPENSSL_free(der);
  return out;
}

std::string AlgorithmDer(int curve_nid) {
  return Tlv(0x30, OidDer(NID_X9_62_id_ecPublicKey) + OidDer(curve_nid));
}

}  // namespace

std::optional<EcPublic> GetEcPublic(EVP_PKEY* key) {
  if (key == nullptr || !EVP_PKEY_is_a(key, "EC")) return std::nullopt;
  char group[64] = {0};
  size_t group_len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &group_len) != 1) {
    return std::nullopt;
  }
  EcPublic out;
  out.curve_nid = OBJ_sn2nid(group);
  if (out.curve_nid == NID_undef) out.curve_nid = EC_curve_nist2nid(group);
  if (out.curve_nid == NID_undef) return std::nullopt;
  unsigned char point[256];
  size_t point_len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point),
                                      &point_len) != 1 ||
      point_len == 0 || point[0] != 0x04) {
    return std::nullopt;
  }
  out.point.assign(reinterpret_cast<char*>(point), point_len);
  return out;
}

std::string EcSpkiDer(const EcPublic& pub) {
  return Tlv(0x30, AlgorithmDer(pub.curve_nid) + Tlv(0x03, std::string(1, '\0') + pub.point));
}

std::optional<std::string> EcPkcs8Der(EVP_PKEY* key, const EcPublic& pub) {
  BIGNUM* d = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 || d == nullptr) {
    return std::nullopt;
  }
  const size_t field = (pub.point.size() - 1) / 2;  // the coordinate size in bytes
  std::string scalar(field, '\0');
  const bool ok = BN_bn2binpad(d, reinterpret_cast<unsigned char*>(scalar.data()),
                               static_cast<int>(field)) == static_cast<int>(field);
  BN_clear_free(d);
  if (!ok) {
    OPENSSL_cleanse(scalar.data(), scalar.size());
    return std::nullopt;
  }
  std::string ec_private = Tlv(0x30, std::string("\x02\x01\x01", 3) + Tlv(0x04, scalar) +
                                         Tlv(0xa1, Tlv(0x03, std::string(1, '\0') + pub.point)));
  std::string out = Tlv(
      0x30, std::string("\x02\x01\x00", 3) + AlgorithmDer(pub.curve_nid) + Tlv(0x04, ec_private));
  OPENSSL_cleanse(scalar.data(), scalar.size());
  OPENSSL_cleanse(ec_private.data(), ec_private.size());
  return out;
}

bool SetEcSubjectKey(X509* cert, const EcPublic& pub) {
  X509_PUBKEY* pk = X509_get_X509_PUBKEY(cert);
  if (pk == nullptr) return false;
  unsigned char* point = static_cast<unsigned char*>(OPENSSL_malloc(pub.point.size()));
  if (point == nullptr) return false;
  std::memcpy(point, pub.point.data(), pub.point.size());
  ASN1_OBJECT* curve = OBJ_nid2obj(pub.curve_nid);
  if (X509_PUBKEY_set0_param(pk, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT, curve, point,
                             static_cast<int>(pub.point.size())) != 1) {
    OPENSSL_free(point);
    return false;
  }
  return true;
}

}  // namespace fleetcore::tls::internal
