// ParseClientHello on ClientHellos made by OpenSSL itself (with and without ALPN, whole and
// cut short) and on bytes that are not TLS.
#include "services/gateway/client_hello.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::gateway {
namespace {

using ::testing::ElementsAre;

// The first bytes an OpenSSL client sends, offering `alpn` (wire format) when not empty.
std::string OpenSslClientHello(const std::string& alpn, const char* sni) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                         SSL_CTX_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  if (!alpn.empty()) {
    SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(alpn.data()),
                        static_cast<unsigned>(alpn.size()));
  }
  SSL_set_tlsext_host_name(ssl.get(), sni);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), in, out);
  SSL_set_connect_state(ssl.get());
  SSL_do_handshake(ssl.get());  // wants to read the answer: the hello is written
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  return std::string(data, static_cast<size_t>(n));
}

TEST(ClientHello, FindsTheAlpnProtocols) {
  const std::string hello =
      OpenSslClientHello(std::string("\x0ex-amzn-mqtt-ca\x08http/1.1", 24), "iot.example.com");
  ClientHello h = ParseClientHello(hello);
  ASSERT_EQ(h.status, ClientHello::kParsed);
  EXPECT_THAT(h.alpn, ElementsAre("x-amzn-mqtt-ca", "http/1.1"));
  EXPECT_TRUE(OffersMqtt(h));

  h = ParseClientHello(OpenSslClientHello(std::string("\x04mqtt", 5), "localhost"));
  EXPECT_THAT(h.alpn, ElementsAre("mqtt"));
  EXPECT_TRUE(OffersMqtt(h));
}

TEST(ClientHello, WithoutMqttItIsHttps) {
  ClientHello h = ParseClientHello(OpenSslClientHello("", "localhost"));
  EXPECT_EQ(h.status, ClientHello::kParsed);
  EXPECT_TRUE(h.alpn.empty());
  EXPECT_FALSE(OffersMqtt(h));
  h = ParseClientHello(OpenSslClientHello(std::string("\x08http/1.1\x02h2", 12), "localhost"));
  EXPECT_THAT(h.alpn, ElementsAre("http/1.1", "h2"));
  EXPECT_FALSE(OffersMqtt(h));
}

TEST(ClientHello, ShortInputAsksForMoreEverywhere) {
  const std::string hello =
      OpenSslClientHello(std::string("\x0ex-amzn-mqtt-ca", 15), "iot.example.com");
  for (size_t n = 0; n < hello.size(); ++n) {
    EXPECT_EQ(ParseClientHello(hello.substr(0, n)).status, ClientHello::kIncomplete) << n;
  }
}

TEST(ClientHello, OtherBytesAreNotTls) {
  EXPECT_EQ(ParseClientHello("GET / HTTP/1.1\r\n").status, ClientHello::kNotTls);
  EXPECT_EQ(ParseClientHello(std::string("\x10\x0c\x00\x04MQTT", 8)).status,
            ClientHello::kNotTls);
  // A handshake record that is not a ClientHello.
  EXPECT_EQ(ParseClientHello(std::string("\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9)).status,
            ClientHello::kNotTls);
  EXPECT_FALSE(OffersMqtt(ParseClientHello("garbage")));
}

}  // namespace
}  // namespace fleetcore::gateway
