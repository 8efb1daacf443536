// An in-memory CaStore with real behaviour, for tests of the cores: transactions work on a
// copy of the state that replaces it on commit; events are recorded on commit only.
#pragma once

#include <map>
#include <mutex>
#include <vector>

#include "services/ca/ca_store.h"

namespace fleetcore::ca {

class FakeCaStore final : public CaStore {
 public:
  absl::Status Transact(absl::FunctionRef<absl::Status(CaTx&)> body) override;
  absl::Status InsertCertificate(const CertificateRecord& cert) override;
  absl::StatusOr<std::optional<CertificateRecord>> GetCertificate(absl::string_view id) override;
  absl::StatusOr<std::vector<CertificateRecord>> ListCertificates(std::optional<std::string> ca_id,
                                                                  std::optional<ListPosition> after,
                                                                  bool ascending,
                                                                  int limit) override;
  absl::StatusOr<std::optional<CaCertificateRecord>> GetCaCertificate(
      absl::string_view id) override;
  absl::StatusOr<std::vector<CaCertificateRecord>> CaCertificatesWithSubject(
      absl::string_view subject) override;
  absl::StatusOr<std::vector<CaCertificateRecord>> ListCaCertificates(
      std::optional<ListPosition> after, bool ascending, int limit) override;
  absl::StatusOr<std::optional<TemplateRecord>> GetTemplate(absl::string_view name) override;
  absl::StatusOr<std::optional<TemplateVersionRecord>> GetTemplateVersion(absl::string_view name,
                                                                          int version) override;
  absl::StatusOr<std::vector<TemplateVersionRecord>> TemplateVersions(
      absl::string_view name) override;
  absl::StatusOr<std::vector<TemplateRecord>> ListTemplates(absl::string_view after,
                                                            int limit) override;
  absl::StatusOr<std::optional<CrlRecord>> LatestCrl() override;

  std::vector<CaEvent> events() const;

  // Makes every call fail with `status` (a database that is down); OK restores it.
  void FailWith(absl::Status status);

  struct State {
    std::map<std::string, CertificateRecord, std::less<>> certificates;
    std::map<std::string, CaCertificateRecord, std::less<>> ca_certificates;
    std::optional<std::string> registration_code;
    std::map<std::string, TemplateRecord, std::less<>> templates;
    std::map<std::pair<std::string, int>, TemplateVersionRecord> versions;
    std::map<std::string, OwnershipToken, std::less<>> tokens;
    std::map<std::pair<std::string, std::string>, Revocation> revocations;
    std::map<int64_t, CrlRecord> crls;
  };

 private:
  mutable std::mutex mu_;
  State state_;
  std::vector<CaEvent> events_;
  absl::Status failure_ = absl::OkStatus();
};

}  // namespace fleetcore::ca
