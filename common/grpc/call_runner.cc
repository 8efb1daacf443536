#include "common/grpc/call_runner.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <atomic>
#include <memory>
#include <exception>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/grpc/status.h"
#include "common/log/log.h"

namespace fleetcore::grpc_util {
namespace {

constexpr absl::string_view kRequestIdHeader = "x-request-id";

std::string Sha256(absl::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md;
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md.data()), len);
}

absl::string_view Metadata(const grpc::ServerContextBase& ctx, absl::string_view key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) {
    return {};
  }
  return absl::string_view(it->second.data(), it->second.size());
}

bool IsSaneRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 128) {
    return false;
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':') {
      return false;
    }
  }
  return true;
}

}  // namespace

AdminAuth::AdminAuth(std::string token) {
  if (!token.empty()) {
    token_digest_ = Sha256(token);
  }
}

absl::Status AdminAuth::Check(const grpc::ServerContextBase& ctx) const {
  if (!enabled()) {
    return absl::OkStatus();
  }
  absl::string_view header = Metadata(ctx, "authorization");
  if (!absl::ConsumePrefix(&header, "Bearer ") && !absl::ConsumePrefix(&header, "bearer ")) {
    return absl::UnauthenticatedError(
        "this API needs the admin token: send metadata \"authorization: Bearer <token>\" "
        "(fleetctl: --admin-token, --admin-token-file or FLEETCORE_ADMIN_TOKEN)");
  }
  // Comparing digests keeps the comparison constant-time whatever the presented length.
  const std::string presented = Sha256(header);
  if (CRYPTO_memcmp(presented.data(), token_digest_.data(), token_digest_.size()) != 0) {
    return absl::UnauthenticatedError("the admin token is not valid");
  }
  return absl::OkStatus();
}

CallRunner::CallRunner(Executor* executor, const AdminAuth* auth)
    : executor_(executor), auth_(auth) {
  unsigned char prefix[4];
  if (RAND_bytes(prefix, sizeof(prefix)) != 1) {
    std::abort();  // no CSPRNG: the platform is broken, not a request
  }
  id_prefix_ = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(prefix), sizeof(prefix)));
}

std::string CallRunner::NewRequestId() {
  return absl::StrCat(id_prefix_, "-", absl::Hex(next_id_.fetch_add(1, std::memory_order_relaxed)));
}

std::optional<CallContext> CallRunner::Begin(grpc::CallbackServerContext* ctx,
                                             grpc::ServerUnaryReactor* reactor) {
  CallContext call;
  const absl::string_view sent_id = Metadata(*ctx, kRequestIdHeader);
  call.request_id = IsSaneRequestId(sent_id) ? std::string(sent_id) : NewRequestId();
  call.peer = ctx->peer();
  ctx->AddInitialMetadata(std::string(kRequestIdHeader), call.request_id);

  if (auth_ != nullptr) {
    if (absl::Status s = auth_->Check(*ctx); !s.ok()) {
      log::Warn("admin call refused", {{"request_id", call.request_id},
                                       {"peer", call.peer},
                                       {"reason", s.message()}});
      reactor->Finish(ToGrpcStatus(s));
      return std::nullopt;
    }
  }
  return call;
}

void CallRunner::End(grpc::ServerUnaryReactor* reactor, const CallContext& call,
                     absl::Status status) {
  if (status.code() == absl::StatusCode::kInternal) {
    log::Error("internal error", {{"request_id", call.request_id}, {"error", status}});
    status = absl::InternalError(absl::StrCat(
        "internal error; the server log has the details under request id ", call.request_id));
  } else if (status.code() == absl::StatusCode::kUnavailable) {
    log::Warn("call failed: dependency unavailable",
              {{"request_id", call.request_id}, {"error", status}});
  }
  reactor->Finish(ToGrpcStatus(status));
}

grpc::ServerUnaryReactor* CallRunner::DispatchAsync(
    grpc::CallbackServerContext* ctx,
    absl::AnyInvocable<void(const CallContext&, Finish) &&> fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::optional<CallContext> call = Begin(ctx, reactor);
  if (!call.has_value()) return reactor;
  // Once: a body that throws after handing `finish` on must not finish the call twice.
  auto finished = std::make_shared<std::atomic<bool>>(false);
  Finish finish = [reactor, call = *call, finished](absl::Status status) {
    if (!finished->exchange(true)) End(reactor, call, std::move(status));
  };
  try {
    std::move(fn)(*call, finish);
  } catch (const std::exception& e) {
    finish(absl::InternalError(absl::StrCat("uncaught exception: ", e.what())));
  }
  return reactor;
}

grpc::ServerUnaryReactor* CallRunner::Dispatch(
    grpc::CallbackServerContext* ctx,
    std::optional<absl::FunctionRef<std::optional<absl::Status>()>> fast,
    absl::AnyInvocable<absl::Status(const CallContext&) &&> body) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::optional<CallContext> started = Begin(ctx, reactor);
  if (!started.has_value()) return reactor;
  CallContext call = *std::move(started);

  if (fast.has_value()) {
    std::optional<absl::Status> answered;
    try {
      answered = (*fast)();
    } catch (const std::exception& e) {
      log::Error("internal error", {{"request_id", call.request_id},
                                    {"error", absl::StrCat("uncaught exception: ", e.what())}});
      answered = absl::InternalError(absl::StrCat(
          "internal error; the server log has the details under request id ", call.request_id));
    }
    if (answered.has_value()) {
      reactor->Finish(ToGrpcStatus(*answered));
      return reactor;
    }
  }

  auto task = [ctx, reactor, call = std::move(call), body = std::move(body)]() mutable {
    if (ctx->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                                   "the call was cancelled or its deadline passed before it ran"));
      return;
    }
    absl::Status status;
    try {
      status = std::move(body)(call);
    } catch (const std::exception& e) {
      // A bug (or a library throwing where we expected a status): this call fails, the
      // service goes on serving the others.
      status = absl::InternalError(absl::StrCat("uncaught exception: ", e.what()));
    }
    End(reactor, call, std::move(status));
  };
  if (!executor_->TrySubmit(std::move(task))) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "the server is overloaded (work queue full); retry with backoff"));
  }
  return reactor;
}

}  // namespace fleetcore::grpc_util
