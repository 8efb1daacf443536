#include "tools/fleetctl/provision_bulk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "fleetcore/ca/v1/ca.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"

namespace fleetcore::fleetctl {
namespace {

namespace pb = ::fleetcore::ca::v1;

struct Options {
  std::string template_name;
  int count = 0;
  int start = 1;
  int concurrency = 8;
  std::string out_dir;
  nlohmann::json parameters = nlohmann::json::object();
};

bool WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return false;
  const bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  return close(fd) == 0 && ok;
}

std::string Parse(const std::vector<std::string>& args, Options* o) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    if (size_t eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::StrCat(flag, " needs a value");
    }
    if (flag == "--template-name") {
      o->template_name = value;
    } else if (flag == "--out-dir") {
      o->out_dir = value;
    } else if (flag == "--count" || flag == "--start" || flag == "--concurrency") {
      int n = 0;
      if (!absl::SimpleAtoi(value, &n) || n < (flag == "--start" ? 0 : 1)) {
        return absl::StrCat(flag, " takes a positive number, not '", value, "'");
      }
      (flag == "--count" ? o->count : flag == "--start" ? o->start : o->concurrency) = n;
    } else if (flag == "--parameters") {
      o->parameters = nlohmann::json::parse(value, nullptr, false);
      if (!o->parameters.is_object()) return "--parameters takes a JSON object of strings";
      for (const auto& [k, v] : o->parameters.items()) {
        if (!v.is_string()) return absl::StrCat("--parameters: ", k, " is not a string");
      }
    } else {
      return absl::StrCat("unknown option ", flag, " (fleetctl provision-bulk help)");
    }
  }
  if (o->template_name.empty() || o->count == 0 || o->out_dir.empty()) {
    return "--template-name, --count and --out-dir are required";
  }
  if (o->count > 1000000) return "--count is at most 1000000";
  o->concurrency = std::min(o->concurrency, 64);
  return "";
}

}  // namespace

const char* ProvisionBulkHelp() {
  return "fleetctl provision-bulk --template-name T --count N --out-dir DIR\n"
         "    [--parameters '{\"SerialNumber\": \"sn-{i}\"}'] [--start 1] [--concurrency 8]\n\n"
         "Provisions N devices with the template T (ProvisionDevice), {i} in a parameter\n"
         "value being the device's number, and writes each device's certificate and keys to\n"
         "DIR/<thing name>/ (private key mode 0600) plus DIR/manifest.jsonl.\n";
}

int ProvisionBulk(const grpc_util::ServiceChannel& channel, const std::vector<std::string>& args) {
  Options o;
  if (std::string err = Parse(args, &o); !err.empty()) {
    std::cerr << "fleetctl provision-bulk: " << err << "\n";
    return 2;
  }
  if (mkdir(o.out_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    std::cerr << "fleetctl provision-bulk: cannot create " << o.out_dir << ": "
              << std::strerror(errno) << "\n";
    return 2;
  }
  auto stub = pb::Ca::NewStub(channel.channel());
  std::atomic<int> next{0}, done{0}, failed{0};
  std::mutex out_mu;
  std::string first_error;
  const bool tty = isatty(STDERR_FILENO) != 0;
  std::ofstream manifest(o.out_dir + "/manifest.jsonl", std::ios::app);

  auto worker = [&] {
    for (int k = next++; k < o.count; k = next++) {
      const int number = o.start + k;
      pb::ProvisionDeviceRequest req;
      req.set_template_name(o.template_name);
      for (const auto& [key, v] : o.parameters.items()) {
        (*req.mutable_parameters())[key] =
            absl::StrReplaceAll(v.get<std::string>(), {{"{i}", absl::StrCat(number)}});
      }
      pb::ProvisionDeviceResponse resp;
      auto ctx = channel.NewContext();
      grpc::Status s = stub->ProvisionDevice(ctx.get(), req, &resp);
      std::string error;
      if (!s.ok()) {
        error = absl::StrCat("device ", number, ": ", s.error_message());
      } else {
        const std::string name =
            resp.thing_name().empty() ? resp.certificate_id() : resp.thing_name();
        const std::string dir = o.out_dir + "/" + name;
        if (mkdir(dir.c_str(), 0700) != 0 ||
            !WriteFile(dir + "/certificate.pem.crt", resp.certificate_pem(), 0644) ||
            !WriteFile(dir + "/private.pem.key", resp.key_pair().private_key(), 0600) ||
            !WriteFile(dir + "/public.pem.key", resp.key_pair().public_key(), 0644)) {
          error = absl::StrCat("device ", number, ": provisioned as ", name,
                               " but its files could not be written to ", dir, ": ",
                               std::strerror(errno));
        } else {
          std::lock_guard<std::mutex> lock(out_mu);
          manifest << nlohmann::json({{"number", number},
                                      {"thingName", resp.thing_name()},
                                      {"certificateId", resp.certificate_id()},
                                      {"certificateArn", resp.certificate_arn()},
                                      {"dir", dir}})
                          .dump()
                   << "\n";
        }
      }
      std::lock_guard<std::mutex> lock(out_mu);
      ++done;
      if (!error.empty()) {
        ++failed;
        if (first_error.empty()) first_error = error;
        if (!tty) std::cerr << "fleetctl provision-bulk: " << error << "\n";
      }
      if (tty) {
        std::cerr << "\rprovision-bulk: " << done << "/" << o.count << " done, " << failed
                  << " failed" << std::flush;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < o.concurrency; ++i) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  if (tty) std::cerr << "\n";
  if (!first_error.empty() && tty) std::cerr << "first failure: " << first_error << "\n";
  std::cout << nlohmann::json({{"provisioned", done - failed},
                               {"failed", failed.load()},
                               {"outDir", o.out_dir}})
                   .dump(4)
            << "\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace fleetcore::fleetctl
