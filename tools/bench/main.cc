// fleetcore-bench: load generator for fleetcore's benchmarks (docs/benchmarks.md).
//
//   fleetcore-bench registry-seed --endpoint H:P --things 10000
//   fleetcore-bench registry-describe --endpoint H:P --things 10000 --concurrency 16
//       [--rate 5000] --duration 10s
//   fleetcore-bench registry-create --endpoint H:P --concurrency 16 --duration 10s
//   fleetcore-bench ca-keys --endpoint H:P --concurrency 8     CreateKeysAndCertificate
//   fleetcore-bench ca-csr --endpoint H:P --concurrency 8      CreateCertificateFromCsr
//   fleetcore-bench ca-resolve --endpoint H:P [--rate 1000]    ResolvePeer of one known
//                                                               ACTIVE certificate
//   fleetcore-bench mqtt-p2p|mqtt-fanin|mqtt-fanout --port 1883 --clients 10 --qos 1
//       --payload-size 64 [--rate 10000] [--mqtt-version 5] [--tls --cafile F [--cert F
//       --key F]] --duration 10s              MQTT brokers (the gateway, Mosquitto)
//       [--subscriber-port 1884]      subscribers on another gateway replica than publishers
//   fleetcore-bench mqtt-connect --port 8883 --tls --cafile F --clients 8 [--rate 500]
//       [--devices 1000 [--resume]]        reconnects of 1000 devices (resuming TLS sessions)
//   fleetcore-bench mqtt-idle --port 8883 --tls --cafile F --clients 15000 --sources 4
//   (see mqtt_load.h)
//   fleetcore-bench shadow-update --endpoint H:P --things 1000 --concurrency 16 [--rate N]
//       UpdateThingShadow of ~1 KB reported state on distinct shadows
//
// `concurrency` calls stay in flight (16 concurrent callers), as fast as answers come or at
// --rate calls per second (see load.h). Prints one JSON object: calls, errors, calls per
// second, latency p50/p99/p999 in microseconds. Bounded in time; talks to the given endpoint
// only.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/grpc/client.h"
#include "common/grpc/runtime.h"
#include "common/service/endpoints.h"
#include "common/tls/x509.h"
#include "fleetcore/ca/v1/ca.grpc.pb.h"
#include "fleetcore/registry/v1/registry.grpc.pb.h"
#include "fleetcore/shadow/v1/shadow.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "tools/bench/load.h"
#include "tools/bench/mqtt_load.h"

namespace fleetcore::bench {
namespace {

namespace pb = ::fleetcore::registry::v1;
namespace capb = ::fleetcore::ca::v1;
namespace shpb = ::fleetcore::shadow::v1;

struct Options {
  std::string scenario;
  std::string endpoint = service::kRegistryEndpoint;
  std::string token;
  int concurrency = 16;
  int channels = 2;
  int rate = 0;
  int things = 10000;
  absl::Duration duration = absl::Seconds(10);
  absl::Duration warmup = absl::Seconds(2);
  std::string prefix = "bench";
  std::string query = "*";  // registry-search
};

absl::StatusOr<Options> Parse(int argc, char** argv) {
  Options o;
  if (argc < 2) return absl::InvalidArgumentError("give a scenario");
  o.scenario = argv[1];
  if (const char* t = std::getenv("FLEETCORE_ADMIN_TOKEN")) o.token = t;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    std::string v = i + 1 < argc ? argv[i + 1] : "";
    auto need_int = [&](int* out) -> absl::Status {
      if (!absl::SimpleAtoi(v, out) || *out <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(a, ": expected a positive integer"));
      }
      ++i;
      return absl::OkStatus();
    };
    auto need_duration = [&](absl::Duration* out) -> absl::Status {
      if (!absl::ParseDuration(v, out)) {
        return absl::InvalidArgumentError(absl::StrCat(a, ": expected a duration like 10s"));
      }
      ++i;
      return absl::OkStatus();
    };
    absl::Status s;
    if (a == "--endpoint") {
      o.endpoint = v, ++i;
    } else if (a == "--admin-token") {
      o.token = v, ++i;
    } else if (a == "--prefix") {
      o.prefix = v, ++i;
    } else if (a == "--query") {
      o.query = v, ++i;
    } else if (a == "--concurrency") {
      s = need_int(&o.concurrency);
    } else if (a == "--channels") {
      s = need_int(&o.channels);
    } else if (a == "--rate") {  // 0: as fast as answers come
      if (!absl::SimpleAtoi(v, &o.rate) || o.rate < 0) {
        s = absl::InvalidArgumentError("--rate: expected calls per second, or 0 for no limit");
      }
      ++i;
    } else if (a == "--things") {
      s = need_int(&o.things);
    } else if (a == "--duration") {
      s = need_duration(&o.duration);
    } else if (a == "--warmup") {
      s = need_duration(&o.warmup);
    } else {
      s = absl::InvalidArgumentError(absl::StrCat("unknown option ", a));
    }
    if (!s.ok()) return s;
  }
  return o;
}

std::string ThingName(const Options& o, int i) { return absl::StrCat(o.prefix, "-", i); }

// The state of one asynchronous call.
template <typename Req, typename Resp>
struct Call {
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
};

// The CA's scenarios, on `connections` HTTP/2 connections like the registry's.
int RunCa(const Options& o, const LoadOptions& load,
          const std::function<void(grpc::ClientContext*)>& context) {
  std::vector<std::unique_ptr<capb::Ca::Stub>> stubs;
  for (int w = 0; w < std::max(o.channels, 1); ++w) {
    grpc::ChannelArguments args;
    args.SetInt("fleetcore.bench.connection", w);
    stubs.push_back(capb::Ca::NewStub(
        grpc::CreateCustomChannel(o.endpoint, grpc::InsecureChannelCredentials(), args)));
  }
  auto stub = [&](int64_t seq) { return stubs[static_cast<size_t>(seq) % stubs.size()].get(); };
  nlohmann::json r;
  if (o.scenario == "ca-keys") {
    r = RunLoad(load, [&](int64_t seq, std::function<void(bool)> done) {
      auto* c =
          new Call<capb::CreateKeysAndCertificateRequest, capb::CreateKeysAndCertificateResponse>();
      context(&c->ctx);
      c->req.set_set_as_active(true);
      stub(seq)->async()->CreateKeysAndCertificate(&c->ctx, &c->req, &c->resp,
                                                   [c, done = std::move(done)](grpc::Status s) {
                                                     delete c;
                                                     done(s.ok());
                                                   });
    });
  } else if (o.scenario == "ca-csr") {
    // One key and CSR made here; every certificate gets its own serial, so its own id.
    absl::StatusOr<tls::PrivateKey> key = tls::PrivateKey::Generate(tls::KeyType::kEcP256);
    absl::StatusOr<std::string> csr =
        key.ok() ? tls::CreateCsrPem(*key, {{{"CN", "bench-device"}}}) : key.status();
    if (!csr.ok()) {
      std::cerr << "fleetcore-bench: " << csr.status().message() << "\n";
      return 1;
    }
    r = RunLoad(load, [&](int64_t seq, std::function<void(bool)> done) {
      auto* c =
          new Call<capb::CreateCertificateFromCsrRequest, capb::CreateCertificateFromCsrResponse>();
      context(&c->ctx);
      c->req.set_certificate_signing_request(*csr);
      c->req.set_set_as_active(true);
      stub(seq)->async()->CreateCertificateFromCsr(&c->ctx, &c->req, &c->resp,
                                                   [c, done = std::move(done)](grpc::Status s) {
                                                     delete c;
                                                     done(s.ok());
                                                   });
    });
  } else if (o.scenario == "ca-resolve") {
    // A device certificate to present, as the gateway would on a device's connect.
    grpc::ClientContext ctx;
    context(&ctx);
    capb::CreateKeysAndCertificateRequest req;
    req.set_set_as_active(true);
    capb::CreateKeysAndCertificateResponse resp;
    grpc::Status s = stubs[0]->CreateKeysAndCertificate(&ctx, req, &resp);
    absl::StatusOr<tls::Certificate> cert =
        s.ok() ? tls::Certificate::ParsePem(resp.certificate_pem())
               : absl::StatusOr<tls::Certificate>(absl::UnavailableError(s.error_message()));
    if (!cert.ok()) {
      std::cerr << "fleetcore-bench: cannot make a certificate: " << cert.status().message()
                << "\n";
      return 1;
    }
    const std::string der = cert->Der();
    r = RunLoad(load, [&](int64_t seq, std::function<void(bool)> done) {
      auto* c = new Call<capb::ResolvePeerRequest, capb::ResolvePeerResponse>();
      context(&c->ctx);
      c->req.add_chain_der(der);
      stub(seq)->async()->ResolvePeer(&c->ctx, &c->req, &c->resp,
                                      [c, done = std::move(done)](grpc::Status s) {
                                        const bool ok = s.ok() && c->resp.result() == capb::ALLOWED;
                                        delete c;
                                        done(ok);
                                      });
    });
  } else {
    std::cerr << "fleetcore-bench: unknown scenario " << o.scenario << "\n";
    return 2;
  }
  r["scenario"] = o.scenario;
  std::cout << r.dump() << "\n";
  return 0;
}

absl::StatusOr<MqttOptions> ParseMqtt(int argc, char** argv) {
  MqttOptions o;
  o.scenario = argv[1];
  if (o.scenario == "mqtt-connect") o.sources = 16;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tls" || a == "--resume") {
      (a == "--tls" ? o.tls : o.resume) = true;
      continue;
    }
    if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(a, ": needs a value"));
    const std::string v = argv[++i];
    auto number = [&](int* out, int min) -> absl::Status {
      if (!absl::SimpleAtoi(v, out) || *out < min) {
        return absl::InvalidArgumentError(absl::StrCat(a, ": expected an integer >= ", min));
      }
      return absl::OkStatus();
    };
    absl::Status s;
    if (a == "--host") {
      o.host = v;
    } else if (a == "--port") {
      s = number(&o.port, 1);
    } else if (a == "--subscriber-port") {
      s = number(&o.subscriber_port, 1);
    } else if (a == "--mqtt-version") {
      s = number(&o.version, 4);
    } else if (a == "--clients") {
      s = number(&o.clients, 1);
    } else if (a == "--qos") {
      s = number(&o.qos, 0);
    } else if (a == "--payload-size") {
      s = number(&o.payload_size, 16);
    } else if (a == "--rate") {
      if (!absl::SimpleAtod(v, &o.rate) || o.rate < 0) {
        s = absl::InvalidArgumentError("--rate: expected a rate per second, or 0 for no limit");
      }
    } else if (a == "--window") {
      s = number(&o.window, 1);
    } else if (a == "--sources") {
      s = number(&o.sources, 1);
    } else if (a == "--devices") {
      s = number(&o.devices, 1);
    } else if (a == "--duration" || a == "--warmup") {
      if (!absl::ParseDuration(v, a == "--duration" ? &o.duration : &o.warmup)) {
        s = absl::InvalidArgumentError(absl::StrCat(a, ": expected a duration like 10s"));
      }
    } else if (a == "--cafile") {
      o.cafile = v;
    } else if (a == "--cert") {
      o.cert = v;
    } else if (a == "--key") {
      o.key = v;
    } else if (a == "--prefix") {
      o.prefix = v;
    } else {
      s = absl::InvalidArgumentError(absl::StrCat("unknown option ", a));
    }
    if (!s.ok()) return s;
  }
  return o;
}

int RunMqttScenario(int argc, char** argv) {
  absl::StatusOr<MqttOptions> o = ParseMqtt(argc, argv);
  if (!o.ok()) {
    std::cerr << "fleetcore-bench: " << o.status().message() << "\n";
    return 2;
  }
  // Many connections need many descriptors: up to the hard limit.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  absl::StatusOr<nlohmann::json> r = RunMqtt(*o);
  if (!r.ok()) {
    std::cerr << "fleetcore-bench: " << r.status().message() << "\n";
    return 1;
  }
  std::cout << r->dump() << "\n";
  return 0;
}

int Run(int argc, char** argv) {
  if (argc >= 2 && absl::StartsWith(argv[1], "mqtt-")) return RunMqttScenario(argc, argv);
  grpc_util::ConfigureRuntime();
  absl::StatusOr<Options> o = Parse(argc, argv);
  if (!o.ok()) {
    std::cerr
        << "fleetcore-bench: " << o.status().message()
        << "\nscenarios: registry-seed, registry-describe, registry-create, registry-search "
           "(--query), ca-keys, ca-csr, ca-resolve, shadow-update, mqtt-p2p, mqtt-fanin, "
           "mqtt-fanout, mqtt-connect, mqtt-idle\n";
    return 2;
  }
  auto channel = grpc_util::ServiceChannel::Create({.target = o->endpoint, .token = o->token});
  if (!channel.ok()) {
    std::cerr << "fleetcore-bench: " << channel.status().message() << "\n";
    return 2;
  }
  // Several HTTP/2 connections, as several clients would open; calls spread over them.
  const int connections =
      std::max(o->channels, o->scenario == "registry-seed" ? o->concurrency : 1);
  std::vector<std::unique_ptr<pb::Registry::Stub>> stubs;
  for (int w = 0; w < connections; ++w) {
    grpc::ChannelArguments args;
    args.SetInt("fleetcore.bench.connection", w);  // distinct args: distinct connections
    stubs.push_back(pb::Registry::NewStub(
        grpc::CreateCustomChannel(o->endpoint, grpc::InsecureChannelCredentials(), args)));
  }
  auto stub = [&](int64_t seq) { return stubs[static_cast<size_t>(seq % connections)].get(); };
  const LoadOptions load{.concurrency = o->concurrency,
                         .rate = static_cast<double>(o->rate),
                         .duration = o->duration,
                         .warmup = o->warmup};
  auto context = [&](grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!o->token.empty()) ctx->AddMetadata("authorization", "Bearer " + o->token);
  };

  if (o->scenario == "registry-seed") {
    std::atomic<int> next{0}, failed{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < o->concurrency; ++w) {
      threads.emplace_back([&, w] {
        for (int i = next++; i < o->things; i = next++) {
          grpc::ClientContext ctx;
          context(&ctx);
          pb::CreateThingRequest req;
          req.set_thing_name(ThingName(*o, i));
          (*req.mutable_attribute_payload()->mutable_attributes())["seq"] = std::to_string(i);
          pb::CreateThingResponse resp;
          if (!stubs[static_cast<size_t>(w)]->CreateThing(&ctx, req, &resp).ok()) ++failed;
        }
      });
    }
    for (auto& t : threads) t.join();
    std::cout << nlohmann::json{{"scenario", "registry-seed"},
                                {"things", o->things},
                                {"errors", failed.load()}}
                     .dump()
              << "\n";
    return failed > 0 ? 1 : 0;
  }
  if (o->scenario == "registry-describe") {
    nlohmann::json r = RunLoad(load, [&](int64_t seq, std::function<void(bool)> done) {
      auto* c = new Call<pb::DescribeThingRequest, pb::DescribeThingResponse>();
      context(&c->ctx);
      c->req.set_thing_name(ThingName(*o, static_cast<int>((seq * 7919) % o->things)));
      stub(seq)->async()->DescribeThing(&c->ctx, &c->req, &c->resp,
                                        [c, done = std::move(done)](grpc::Status s) {
                                          delete c;
                                          done(s.ok());
                                        });
    });
    r["scenario"] = o->scenario;
    std::cout << r.dump() << "\n";
    return 0;
  }
  if (o->scenario == "registry-create") {
    const std::string run = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    nlohmann::json r = RunLoad(load, [&](int64_t seq, std::function<void(bool)> done) {
      auto* c = new Call<pb::CreateThingRequest, pb::CreateThingResponse>();
      context(&c->ctx);
      c->req.set_thing_name(absl::StrCat(o->prefix, "-new-", run, "-", seq));
      stub(seq)->async()->CreateThing(&c->ctx, &c->req, &c->resp,
                                      [c, done = std::move(done)](grpc::Status s) {
                                        delete c;
                                        done(s.ok());
                                      });
    });
    r["scenario"] = o->scenario;
    std::cout << r.dump() << "\n";
    return 0;
  }
  if (o->scenario == "registry-search") {
    nlohmann::json r = RunLoad(load, [&](int64_t seq, std::function<void(bool)> done) {
      auto* c = new Call<pb::SearchIndexRequest, pb::SearchIndexResponse>();
      context(&c->ctx);
      c->req.set_query_string(o->query);
      stub(seq)->async()->SearchIndex(&c->ctx, &c->req, &c->resp,
                                      [c, done = std::move(done)](grpc::Status s) {
                                        delete c;
                                        done(s.ok());
                                      });
    });
    r["scenario"] = o->scenario;
    r["query"] = o->query;
    std::cout << r.dump() << "\n";
    return 0;
  }
  if (absl::StartsWith(o->scenario, "ca-")) return RunCa(*o, load, context);
  if (o->scenario == "shadow-update") {
    // Reported state of about 1 KB on --things distinct shadows, as devices report.
    std::vector<std::unique_ptr<shpb::Shadow::Stub>> shadow_stubs;
    for (int w = 0; w < connections; ++w) {
      grpc::ChannelArguments args;
      args.SetInt("fleetcore.bench.connection", w);
      shadow_stubs.push_back(shpb::Shadow::NewStub(
          grpc::CreateCustomChannel(o->endpoint, grpc::InsecureChannelCredentials(), args)));
    }
    const std::string blob(900, 'x');
    nlohmann::json r = RunLoad(load, [&](int64_t seq, std::function<void(bool)> done) {
      auto* c = new Call<shpb::UpdateThingShadowRequest, shpb::UpdateThingShadowResponse>();
      context(&c->ctx);
      c->req.set_thing_name(ThingName(*o, static_cast<int>(seq % o->things)));
      c->req.set_payload(
          nlohmann::json{{"state", {{"reported", {{"seq", seq}, {"temp", 20.5}, {"blob", blob}}}}}}
              .dump());
      shadow_stubs[static_cast<size_t>(seq % connections)]->async()->UpdateThingShadow(
          &c->ctx, &c->req, &c->resp, [c, done = std::move(done)](grpc::Status s) {
            delete c;
            done(s.ok());
          });
    });
    r["scenario"] = o->scenario;
    std::cout << r.dump() << "\n";
    return 0;
  }
  std::cerr << "fleetcore-bench: unknown scenario " << o->scenario << "\n";
  return 2;
}

}  // namespace
}  // namespace fleetcore::bench

int main(int argc, char** argv) { return fleetcore::bench::Run(argc, argv); }
