// fleetctl: the command line for fleetcore's gRPC APIs, with verbs and flags that mirror
// `aws iot` (create-thing --thing-name lamp-1 --attribute-payload '{"attributes":{...}}').
//
//   fleetctl [global options] <command> [--option value ...]
//   fleetctl help | fleetctl <command> help
//
// Global options (anywhere on the line):
//   --endpoint HOST:PORT      the service's address (default: FLEETCORE_<SERVICE>_ENDPOINT,
//                             then FLEETCORE_ENDPOINT, then the local stack's port)
//   --admin-token TOKEN       or FLEETCORE_ADMIN_TOKEN; --admin-token-file or
//                             FLEETCORE_ADMIN_TOKEN_FILE
//   --tls-ca FILE             verify the service's TLS certificate (FLEETCORE_TLS_CA)
//   --timeout DURATION        per call (default 30s)
//   --no-paginate             list commands return one page instead of all of them
//   --query EXPR              print only what the JMESPath EXPR selects, as the AWS CLI
//                             (a.b, a[0], a[*].b, a[].[b, c]: tools/fleetctl/output.h)
//   --output json|text        JSON (the default) or the AWS CLI's tab-separated text
//
// After the command, --generate-cli-skeleton [input|output] prints the request (or the
// answer) with every field, as the AWS CLI does, without calling the service.
//
// `fleetctl --endpoint HOST:PORT health-check` asks the standard gRPC health service and
// exits 0 when the service is SERVING (container and Kubernetes health checks use it).
// Exit status: 0 on success, 1 when the call failed (the gRPC code and message on stderr),
// 2 for a usage error.
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/grpc/client.h"
#include "common/grpc/runtime.h"
#include "common/service/endpoints.h"
#include "fleetcore/ca/v1/ca.grpc.pb.h"
#include "fleetcore/gateway/v1/gateway.grpc.pb.h"
#include "fleetcore/policy/v1/policy.grpc.pb.h"
#include "fleetcore/registry/v1/registry.grpc.pb.h"
#include "fleetcore/rules/v1/rules.grpc.pb.h"
#include "fleetcore/shadow/v1/shadow.grpc.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "tools/fleetctl/cli.h"
#include "tools/fleetctl/output.h"
#include "tools/fleetctl/provision_bulk.h"

namespace fleetcore::fleetctl {
namespace {

namespace gp = google::protobuf;

struct Globals {
  std::string endpoint;
  std::string token;
  std::string tls_ca;
  absl::Duration timeout = absl::Seconds(30);
  std::string query;          // --query; empty: the whole answer
  std::string output = "json";  // --output: json or text
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::vector<ServiceEntry> Services() {
  // Referencing a message's descriptor also makes sure its generated code is linked in.
  return {
      {registry::v1::CreateThingRequest::descriptor()->file()->FindServiceByName("Registry"),
       "registry", service::kRegistryEndpoint},
      {policy::v1::CreatePolicyRequest::descriptor()->file()->FindServiceByName("Policy"), "policy",
       service::kPolicyEndpoint},
      {ca::v1::CreateKeysAndCertificateRequest::descriptor()->file()->FindServiceByName("Ca"), "ca",
       service::kCaEndpoint},
      {gateway::v1::PublishRequest::descriptor()->file()->FindServiceByName("Broker"), "gateway",
       service::kGatewayEndpoint},
      {shadow::v1::GetThingShadowRequest::descriptor()->file()->FindServiceByName("Shadow"),
       "shadow", service::kShadowEndpoint},
      {rules::v1::CreateTopicRuleRequest::descriptor()->file()->FindServiceByName("Rules"),
       "rules", service::kRulesEndpoint},
  };
}

int Usage(const std::vector<Verb>& verbs, std::ostream& out) {
  out << "usage: fleetctl [--endpoint HOST:PORT] [--admin-token T] [--query EXPR] "
         "[--output json|text] <command> [options]\n"
         "       fleetctl <command> help\n"
         "       fleetctl --endpoint HOST:PORT health-check\n\ncommands:\n";
  for (const Verb& v : verbs) {
    out << "  " << v.name << "  (" << v.service->short_name << ")\n";
  }
  out << "  provision-bulk  (ca; many devices from one template, credentials to a folder)\n";
  return &out == &std::cout ? 0 : 2;
}

nlohmann::json ToJson(const gp::Message& msg);

nlohmann::json ScalarToJson(const gp::Message& msg, const gp::Reflection& r,
                            const gp::FieldDescriptor& f, int index) {
  const bool rep = f.is_repeated();
  switch (f.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_INT32:
      return rep ? r.GetRepeatedInt32(msg, &f, index) : r.GetInt32(msg, &f);
    case gp::FieldDescriptor::CPPTYPE_INT64:
      return rep ? r.GetRepeatedInt64(msg, &f, index) : r.GetInt64(msg, &f);
    case gp::FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r.GetRepeatedUInt32(msg, &f, index) : r.GetUInt32(msg, &f);
    case gp::FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r.GetRepeatedUInt64(msg, &f, index) : r.GetUInt64(msg, &f);
    case gp::FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r.GetRepeatedDouble(msg, &f, index) : r.GetDouble(msg, &f);
    case gp::FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r.GetRepeatedFloat(msg, &f, index) : r.GetFloat(msg, &f);
    case gp::FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r.GetRepeatedBool(msg, &f, index) : r.GetBool(msg, &f);
    case gp::FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r.GetRepeatedEnum(msg, &f, index) : r.GetEnum(msg, &f))->name();
    case gp::FieldDescriptor::CPPTYPE_STRING: {
      std::string v = rep ? r.GetRepeatedString(msg, &f, index) : r.GetString(msg, &f);
      if (f.type() == gp::FieldDescriptor::TYPE_BYTES) {
        // A JSON document (a shadow) prints as JSON; other bytes as base64, as the proto
        // JSON mapping and the AWS CLI print blobs.
        nlohmann::json doc = nlohmann::json::parse(v, nullptr, /*allow_exceptions=*/false);
        if (!doc.is_discarded() && (doc.is_object() || doc.is_array())) return doc;
        return absl::Base64Escape(v);
      }
      return v;
    }
    case gp::FieldDescriptor::CPPTYPE_MESSAGE:
      return ToJson(rep ? r.GetRepeatedMessage(msg, &f, index) : r.GetMessage(msg, &f));
  }
  return nullptr;
}

// Like the proto JSON mapping (lowerCamelCase keys, enum names, RFC 3339 timestamps), but
// with 64-bit integers as JSON numbers and lists always present, as `aws iot` prints them.
nlohmann::json ToJson(const gp::Message& msg) {
  const gp::Descriptor& d = *msg.GetDescriptor();
  if (d.full_name() == "google.protobuf.Timestamp") {
    gp::Timestamp ts;
    ts.CopyFrom(msg);
    return gp::util::TimeUtil::ToString(ts);
  }
  const gp::Reflection& r = *msg.GetReflection();
  nlohmann::json out = nlohmann::json::object();
  for (int i = 0; i < d.field_count(); ++i) {
    const gp::FieldDescriptor& f = *d.field(i);
    if (f.is_map()) {
      nlohmann::json m = nlohmann::json::object();
      for (int k = 0; k < r.FieldSize(msg, &f); ++k) {
        const gp::Message& entry = r.GetRepeatedMessage(msg, &f, k);
        const gp::Descriptor& ed = *entry.GetDescriptor();
        nlohmann::json key = ScalarToJson(entry, *entry.GetReflection(), *ed.field(0), 0);
        m[key.is_string() ? key.get<std::string>() : key.dump()] =
            ScalarToJson(entry, *entry.GetReflection(), *ed.field(1), 0);
      }
      out[f.json_name()] = m;
    } else if (f.is_repeated()) {
      nlohmann::json list = nlohmann::json::array();
      for (int k = 0; k < r.FieldSize(msg, &f); ++k) list.push_back(ScalarToJson(msg, r, f, k));
      out[f.json_name()] = list;
    } else if (f.has_presence() ? r.HasField(msg, &f) : true) {
      nlohmann::json v = ScalarToJson(msg, r, f, 0);
      const bool is_default =
          !f.has_presence() &&
          ((v.is_string() && v.get<std::string>().empty()) || (v.is_number() && v == 0) ||
           (v.is_boolean() && !v.get<bool>()) ||
           (f.cpp_type() == gp::FieldDescriptor::CPPTYPE_ENUM && r.GetEnumValue(msg, &f) == 0));
      if (!is_default) out[f.json_name()] = v;
    }
  }
  return out;
}

// One unary call by method path with serialized bytes in and out.
absl::StatusOr<std::string> RawCall(const grpc_util::ServiceChannel& channel,
                                    const std::string& method, const std::string& bytes) {
  grpc::GenericStub stub(channel.channel());
  grpc::Slice slice(bytes);
  grpc::ByteBuffer req(&slice, 1);
  grpc::ByteBuffer resp;
  auto ctx = channel.NewContext();
  std::promise<grpc::Status> done;
  stub.UnaryCall(ctx.get(), method, grpc::StubOptions(), &req, &resp,
                 [&](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status status = done.get_future().get();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

absl::Status Call(const grpc_util::ServiceChannel& channel, const Verb& verb,
                  const gp::Message& request, gp::Message* response) {
  std::string bytes;
  request.SerializeToString(&bytes);
  absl::StatusOr<std::string> out = RawCall(
      channel, absl::StrCat("/", verb.service->service->full_name(), "/", verb.method->name()),
      bytes);
  if (!out.ok()) return out.status();
  if (!response->ParseFromString(*out)) {
    return absl::DataLossError("the service's answer could not be decoded");
  }
  return absl::OkStatus();
}

// grpc.health.v1.Health/Check for the whole server: the request is the empty message and
// the answer's field 1 is the status (1 = SERVING).
int HealthCheck(const Globals& g) {
  if (g.endpoint.empty()) {
    std::cerr << "fleetctl health-check: give --endpoint HOST:PORT\n";
    return 2;
  }
  auto channel = grpc_util::ServiceChannel::Create(
      {.target = g.endpoint, .tls_ca_file = g.tls_ca, .timeout = g.timeout});
  if (!channel.ok()) {
    std::cerr << "fleetctl: " << channel.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::string> out = RawCall(*channel, "/grpc.health.v1.Health/Check", "");
  if (!out.ok()) {
    std::cerr << "fleetctl: health check failed: " << out.status().message() << "\n";
    return 1;
  }
  if (*out != std::string("\x08\x01", 2)) {
    std::cout << "NOT_SERVING\n";
    return 1;
  }
  std::cout << "SERVING\n";
  return 0;
}

int Run(int argc, char** argv) {
  grpc_util::ConfigureRuntime();
  const std::vector<ServiceEntry> services = Services();
  const std::vector<Verb> verbs = AllVerbs(services);
  Globals g;
  g.token = Env("FLEETCORE_ADMIN_TOKEN");
  std::string token_file = Env("FLEETCORE_ADMIN_TOKEN_FILE");
  g.tls_ca = Env("FLEETCORE_TLS_CA");
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto take = [&](const std::string& name, std::string* out) -> bool {
      if (a == name && i + 1 < argc) {
        *out = argv[++i];
        return true;
      }
      if (a.rfind(name + "=", 0) == 0) {
        *out = a.substr(name.size() + 1);
        return true;
      }
      return false;
    };
    std::string timeout;
    if (take("--endpoint", &g.endpoint) || take("--admin-token", &g.token) ||
        take("--admin-token-file", &token_file) || take("--tls-ca", &g.tls_ca) ||
        take("--query", &g.query) || take("--output", &g.output)) {
      continue;
    }
    if (take("--timeout", &timeout)) {
      if (!absl::ParseDuration(timeout, &g.timeout)) {
        std::cerr << "fleetctl: --timeout: expected a duration like 30s\n";
        return 2;
      }
      continue;
    }
    rest.push_back(a);
  }
  if (g.output != "json" && g.output != "text") {
    std::cerr << "fleetctl: --output: json or text, not " << g.output << "\n";
    return 2;
  }
  if (!g.query.empty()) {
    if (absl::Status s = ApplyQuery(nlohmann::json::object(), g.query).status(); !s.ok()) {
      std::cerr << "fleetctl: " << s.message() << "\n";
      return 2;
    }
  }
  if (g.token.empty() && !token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) {
      std::cerr << "fleetctl: cannot read the admin token file " << token_file << "\n";
      return 2;
    }
    std::getline(in, g.token);
  }
  if (!rest.empty() && rest[0] == "health-check") {
    return HealthCheck(g);
  }
  if (!rest.empty() && rest[0] == "provision-bulk") {
    std::vector<std::string> args(rest.begin() + 1, rest.end());
    if (!args.empty() && (args[0] == "help" || args[0] == "--help")) {
      std::cout << ProvisionBulkHelp();
      return 0;
    }
    std::string endpoint = g.endpoint;
    if (endpoint.empty()) endpoint = Env("FLEETCORE_CA_ENDPOINT");
    if (endpoint.empty()) endpoint = Env("FLEETCORE_ENDPOINT");
    if (endpoint.empty()) endpoint = service::kCaEndpoint;
    auto channel = grpc_util::ServiceChannel::Create(
        {.target = endpoint, .tls_ca_file = g.tls_ca, .token = g.token, .timeout = g.timeout});
    if (!channel.ok()) {
      std::cerr << "fleetctl: " << channel.status().message() << "\n";
      return 2;
    }
    return ProvisionBulk(*channel, args);
  }
  if (rest.empty() || rest[0] == "help" || rest[0] == "--help" || rest[0] == "-h") {
    return Usage(verbs, rest.empty() ? std::cerr : std::cout);
  }
  const Verb* verb = nullptr;
  for (const Verb& v : verbs) {
    if (v.name == rest[0]) verb = &v;
  }
  if (verb == nullptr) {
    std::cerr << "fleetctl: unknown command '" << rest[0] << "' (fleetctl help lists them)\n";
    return 2;
  }
  std::vector<std::string> args(rest.begin() + 1, rest.end());
  if (!args.empty() && (args[0] == "help" || args[0] == "--help")) {
    std::cout << VerbHelp(*verb);
    return 0;
  }
  // --generate-cli-skeleton [input|output]: the request (or the answer) with every field,
  // as the AWS CLI prints it, and no call.
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--generate-cli-skeleton") continue;
    const std::string which = i + 1 < args.size() ? args[i + 1] : "input";
    if (which != "input" && which != "output") {
      std::cerr << "fleetctl " << verb->name << ": --generate-cli-skeleton takes input or "
                << "output\n";
      return 2;
    }
    std::cout << Skeleton(which == "input" ? *verb->method->input_type()
                                           : *verb->method->output_type())
                     .dump(4)
              << "\n";
    return 0;
  }

  absl::StatusOr<OutFiles> out_files = TakeOutFiles(&args);
  if (!out_files.ok()) {
    std::cerr << "fleetctl " << verb->name << ": " << out_files.status().message() << "\n";
    return absl::IsInvalidArgument(out_files.status()) ? 2 : 1;
  }
  bool no_paginate = false;
  absl::StatusOr<std::string> json = RequestJson(*verb->method->input_type(), args, &no_paginate);
  if (!json.ok()) {
    std::cerr << "fleetctl " << verb->name << ": " << json.status().message() << "\n";
    return 2;
  }
  gp::DynamicMessageFactory factory;
  std::unique_ptr<gp::Message> request(factory.GetPrototype(verb->method->input_type())->New());
  gp::util::JsonParseOptions parse;
  if (auto s = gp::util::JsonStringToMessage(*json, request.get(), parse); !s.ok()) {
    std::cerr << "fleetctl " << verb->name << ": invalid request: " << s.message() << "\n";
    return 2;
  }

  std::string endpoint = g.endpoint;
  if (endpoint.empty()) {
    endpoint = Env(
        absl::StrCat("FLEETCORE_", absl::AsciiStrToUpper(verb->service->short_name), "_ENDPOINT")
            .c_str());
  }
  if (endpoint.empty()) endpoint = Env("FLEETCORE_ENDPOINT");
  if (endpoint.empty()) endpoint = verb->service->default_endpoint;
  auto channel = grpc_util::ServiceChannel::Create(
      {.target = endpoint, .tls_ca_file = g.tls_ca, .token = g.token, .timeout = g.timeout});
  if (!channel.ok()) {
    std::cerr << "fleetctl: " << channel.status().message() << "\n";
    return 2;
  }

  const gp::Descriptor* out_type = verb->method->output_type();
  std::unique_ptr<gp::Message> response(factory.GetPrototype(out_type)->New());
  // AWS pages with nextToken -> nextToken (registry) or marker -> nextMarker (policies).
  const gp::FieldDescriptor* req_token = verb->method->input_type()->FindFieldByName("next_token");
  const gp::FieldDescriptor* resp_token = out_type->FindFieldByName("next_token");
  if (req_token == nullptr) {
    req_token = verb->method->input_type()->FindFieldByName("marker");
    resp_token = out_type->FindFieldByName("next_marker");
  }
  const bool paginate = req_token != nullptr && resp_token != nullptr && !no_paginate &&
                        request->GetReflection()->GetString(*request, req_token).empty();
  for (int page = 0; page < 100000; ++page) {
    std::unique_ptr<gp::Message> part(factory.GetPrototype(out_type)->New());
    if (absl::Status s = Call(*channel, *verb, *request, part.get()); !s.ok()) {
      std::cerr << "fleetctl: " << verb->name << " failed: " << absl::StatusCodeToString(s.code())
                << ": " << s.message() << "\n";
      return 1;
    }
    response->MergeFrom(*part);
    if (!paginate) break;
    const std::string next = part->GetReflection()->GetString(*part, resp_token);
    if (next.empty()) break;
    request->GetReflection()->SetString(request.get(), req_token, next);
  }
  if (paginate) response->GetReflection()->ClearField(response.get(), resp_token);
  nlohmann::json out = ToJson(*response);
  if (absl::Status s = WriteOutFiles(*out_files, &out); !s.ok()) {
    std::cerr << "fleetctl " << verb->name << ": " << s.message() << "\n";
    return 1;
  }
  if (!g.query.empty()) out = *ApplyQuery(out, g.query);  // checked above
  if (g.output == "text") {
    std::cout << TextOutput(out);
  } else if (!out.empty() || !g.query.empty()) {
    std::cout << out.dump(4) << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace fleetcore::fleetctl

int main(int argc, char** argv) { return fleetcore::fleetctl::Run(argc, argv); }
