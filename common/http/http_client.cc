#include "common/http/http_client.h"

#include <openssl/ssl.h>

#include <chrono>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"

namespace fleetcore::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::chrono::milliseconds Ms(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

absl::Status FromError(const beast::error_code& ec, absl::string_view step, const Url& url) {
  const std::string where = absl::StrCat(url.tls ? "https://" : "http://", url.host, ":", url.port);
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(absl::StrCat(where, ": timed out during ", step));
  }
  return absl::UnavailableError(absl::StrCat(where, ": ", step, " failed: ", ec.message()));
}

}  // namespace

std::string Response::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::string HostHeader(const Url& url) {
  const std::string host = url.host.find(':') != std::string::npos
                               ? absl::StrCat("[", url.host, "]")  // IPv6
                               : url.host;
  if (url.port == (url.tls ? "443" : "80")) return host;
  return absl::StrCat(host, ":", url.port);
}

absl::StatusOr<Url> ParseUrl(absl::string_view text) {
  Url u;
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "https://")) {
    u.tls = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("URL \"", text, "\" must start with http:// or https://"));
  }
  const size_t slash = rest.find_first_of("/?");
  absl::string_view authority = rest.substr(0, slash);
  u.target = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!u.target.empty() && u.target[0] == '?') u.target = "/" + u.target;
  if (authority.find('@') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("URL \"", text, "\" must not carry credentials; use headers"));
  }
  if (absl::StartsWith(authority, "[")) {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("URL \"", text, "\" has a bad IPv6 host"));
    }
    u.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (absl::ConsumePrefix(&after, ":")) u.port = std::string(after);
  } else if (size_t colon = authority.rfind(':'); colon != absl::string_view::npos) {
    u.host = std::string(authority.substr(0, colon));
    u.port = std::string(authority.substr(colon + 1));
  } else {
    u.host = std::string(authority);
  }
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  if (u.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("URL \"", text, "\" has no host"));
  }
  for (char c : u.port) {
    if (!absl::ascii_isdigit(c)) {
      return absl::InvalidArgumentError(absl::StrCat("URL \"", text, "\" has a bad port"));
    }
  }
  return u;
}

BeastHttpClient::BeastHttpClient(Options options) : options_(std::move(options)) {}

absl::StatusOr<Response> BeastHttpClient::Send(const Request& request) {
  absl::StatusOr<Url> url = ParseUrl(request.url);
  if (!url.ok()) return url.status();

  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(url->target);
  req.version(11);
  req.set(bhttp::field::host, HostHeader(*url));
  req.set(bhttp::field::user_agent, "fleetcore");
  req.set(bhttp::field::connection, "close");
  for (const auto& [k, v] : request.headers) req.set(k, v);
  req.body() = request.body;
  req.prepare_payload();

  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  beast::error_code result;
  std::string failed_step;
  const auto deadline = std::chrono::steady_clock::now() + Ms(request.timeout);

  // One chain of asynchronous steps on a private io_context, each bounded by the stream's
  // expiry, so a silent server cannot hold the caller past the timeout.
  auto fail = [&](const beast::error_code& ec, const char* step) {
    result = ec;
    failed_step = step;
  };
  std::optional<asio::ssl::context> tls_ctx;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::optional<beast::tcp_stream> plain;
  if (url->tls) {
    tls_ctx.emplace(asio::ssl::context::tls_client);
    tls_ctx->set_verify_mode(asio::ssl::verify_peer);
    beast::error_code ec;
    if (options_.ca_file.empty()) {
      tls_ctx->set_default_verify_paths(ec);
    } else {
      tls_ctx->load_verify_file(options_.ca_file, ec);
    }
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot load the HTTPS CA bundle: ", ec.message()));
    }
    tls.emplace(ioc, *tls_ctx);
    SSL_set_tlsext_host_name(tls->native_handle(), url->host.c_str());
    tls->set_verify_callback(asio::ssl::host_name_verification(url->host));
  } else {
    plain.emplace(ioc);
  }
  beast::tcp_stream& lowest = url->tls ? beast::get_lowest_layer(*tls) : *plain;

  auto on_read = [&](beast::error_code ec, size_t) {
    if (ec) fail(ec, "reading the response");
  };
  // The header first, and the declared length checked here: Boost 1.74's response parser
  // notices an oversized Content-Length only when the body arrives in a later read, and
  // accepts the whole body when header and body come in one segment.
  auto on_header = [&](beast::error_code ec, size_t) {
    if (ec) return fail(ec, "reading the response");
    if (parser.content_length().has_value() &&
        *parser.content_length() > options_.max_response_bytes) {
      return fail(bhttp::error::body_limit, "reading the response");
    }
    if (url->tls) {
      bhttp::async_read(*tls, buffer, parser, on_read);
    } else {
      bhttp::async_read(*plain, buffer, parser, on_read);
    }
  };
  auto on_write = [&](beast::error_code ec, size_t) {
    if (ec) return fail(ec, "sending the request");
    lowest.expires_at(deadline);
    if (url->tls) {
      bhttp::async_read_header(*tls, buffer, parser, on_header);
    } else {
      bhttp::async_read_header(*plain, buffer, parser, on_header);
    }
  };
  auto on_handshake = [&](beast::error_code ec) {
    if (ec) return fail(ec, "the TLS handshake");
    lowest.expires_at(deadline);
    bhttp::async_write(*tls, req, on_write);
  };
  auto on_connect = [&](beast::error_code ec, const tcp::endpoint&) {
    if (ec) return fail(ec, "connecting");
    lowest.expires_at(deadline);
    if (url->tls) {
      tls->async_handshake(asio::ssl::stream_base::client, on_handshake);
    } else {
      bhttp::async_write(*plain, req, on_write);
    }
  };
  auto on_resolve = [&](beast::error_code ec, tcp::resolver::results_type endpoints) {
    if (ec) return fail(ec, "resolving the host");
    lowest.expires_at(deadline);
    lowest.async_connect(endpoints, on_connect);
  };
  resolver.async_resolve(url->host, url->port, on_resolve);
  // The resolver has no expiry of its own: bound the whole run as well.
  ioc.run_for(Ms(request.timeout) + std::chrono::milliseconds(50));
  if (!ioc.stopped()) {
    return absl::DeadlineExceededError(absl::StrCat(request.url, ": timed out"));
  }
  if (result) {
    if (result == bhttp::error::body_limit) {
      return absl::ResourceExhaustedError(absl::StrCat(
          request.url, ": response larger than ", options_.max_response_bytes, " bytes"));
    }
    return FromError(result, failed_step, *url);
  }
  Response out;
  const auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = res.body();
  return out;
}

}  // namespace fleetcore::http
