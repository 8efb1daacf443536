#include "common/testing/pki.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/testing/subprocess.h"
#include "gtest/gtest.h"

namespace fleetcore::testing {
namespace {

absl::Status Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  absl::StatusOr<RunResult> r = Run(args);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("openssl ", args[1], " failed: ", r->err));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestPki> TestPki::Create(const std::string& tag) {
  TestPki pki{absl::StrCat(::testing::TempDir(), "/pki-", tag)};
  (void)Run({"/bin/rm", "-rf", pki.dir});
  (void)Run({"/bin/mkdir", "-p", pki.dir});
  if (absl::Status s = Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                                "/CN=fleetcore test CA", "-keyout", pki.ca_key(), "-out",
                                pki.ca_cert()});
      !s.ok()) {
    return s;
  }
  std::ofstream(pki.dir + "/leaf.cnf") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  return pki;
}

absl::Status TestPki::Issue(const std::string& name) const {
  const std::string csr = dir + "/" + name + ".csr";
  if (absl::Status s = Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                "-nodes", "-subj", "/CN=" + name, "-keyout", key(name), "-out",
                                csr});
      !s.ok()) {
    return s;
  }
  return Openssl({"x509", "-req", "-in", csr, "-CA", ca_cert(), "-CAkey", ca_key(),
                  "-CAcreateserial", "-days", "2", "-extfile", dir + "/leaf.cnf", "-out",
                  cert(name)});
}

}  // namespace fleetcore::testing
