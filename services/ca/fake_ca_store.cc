#include "services/ca/fake_ca_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace fleetcore::ca {
namespace {

using State = FakeCaStore::State;

template <typename T>
std::optional<T> Find(const std::map<std::string, T, std::less<>>& m, absl::string_view key) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

// Records ordered by (created_at, id), one page after `after`.
template <typename T>
std::vector<T> ByCreation(std::vector<T> items, const std::optional<ListPosition>& after,
                          bool ascending, int limit) {
  auto less = [](const T& a, const T& b) {
    return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
  };
  std::sort(items.begin(), items.end(), less);
  if (!ascending) std::reverse(items.begin(), items.end());
  std::vector<T> out;
  for (T& item : items) {
    if (after.has_value()) {
      const bool past =
          ascending ? std::tie(item.created_at, item.id) > std::tie(after->created_at, after->id)
                    : std::tie(item.created_at, item.id) < std::tie(after->created_at, after->id);
      if (!past) continue;
    }
    if (static_cast<int>(out.size()) >= limit) break;
    out.push_back(std::move(item));
  }
  return out;
}

std::vector<TemplateVersionRecord> VersionsOf(const State& s, absl::string_view name) {
  std::vector<TemplateVersionRecord> out;
  for (const auto& [key, v] : s.versions) {
    if (key.first == name) out.push_back(v);
  }
  return out;
}

class FakeTx final : public CaTx {
 public:
  explicit FakeTx(State* s) : s_(s) {}

  absl::StatusOr<std::optional<CertificateRecord>> GetCertificate(absl::string_view id,
                                                                  Lock) override {
    return Find(s_->certificates, id);
  }
  absl::Status InsertCertificate(const CertificateRecord& c) override {
    if (!s_->certificates.emplace(c.id, c).second) {
      return absl::AlreadyExistsError("certificate exists");
    }
    return absl::OkStatus();
  }
  absl::Status UpdateCertificate(const CertificateRecord& c) override {
    CertificateRecord& stored = s_->certificates.at(c.id);
    const std::string pem = stored.pem;
    const absl::Time created = stored.created_at;
    stored = c;
    stored.pem = pem;
    stored.created_at = created;
    return absl::OkStatus();
  }
  absl::Status DeleteCertificate(absl::string_view id) override {
    s_->certificates.erase(std::string(id));
    for (auto it = s_->tokens.begin(); it != s_->tokens.end();) {
      it = it->second.certificate_id == id ? s_->tokens.erase(it) : std::next(it);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountCertificatesOfCa(absl::string_view ca_id) override {
    return std::count_if(s_->certificates.begin(), s_->certificates.end(),
                         [&](const auto& kv) { return kv.second.ca_certificate_id == ca_id; });
  }
  absl::StatusOr<std::vector<CertificateRecord>> DueForDeactivation(absl::Time now,
                                                                    int limit) override {
    std::vector<CertificateRecord> out;
    for (const auto& [id, c] : s_->certificates) {
      if (c.deactivate_at.has_value() && *c.deactivate_at <= now &&
          static_cast<int>(out.size()) < limit) {
        out.push_back(c);
      }
    }
    return out;
  }
  absl::StatusOr<std::vector<CertificateRecord>> ExpiredClaims(absl::Time now, int limit) override {
    std::vector<CertificateRecord> out;
    for (const auto& [id, c] : s_->certificates) {
      if (c.claim_expires_at.has_value() && *c.claim_expires_at <= now &&
          static_cast<int>(out.size()) < limit) {
        out.push_back(c);
      }
    }
    return out;
  }
  absl::Status InsertRevocation(const Revocation& r) override {
    s_->revocations.emplace(std::make_pair(r.issuer_id, r.serial), r);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<Revocation>> Revocations(absl::string_view issuer_id,
                                                      absl::Time now) override {
    std::vector<Revocation> out;
    for (const auto& [key, r] : s_->revocations) {
      if (r.issuer_id == issuer_id && r.not_after > now) out.push_back(r);
    }
    return out;
  }
  absl::Status LockCrl() override { return absl::OkStatus(); }
  absl::StatusOr<std::optional<CrlRecord>> LatestCrl() override {
    if (s_->crls.empty()) return std::optional<CrlRecord>();
    return std::optional<CrlRecord>(s_->crls.rbegin()->second);
  }
  absl::Status InsertCrl(const CrlRecord& crl) override {
    if (!s_->crls.emplace(crl.number, crl).second) return absl::AlreadyExistsError("crl exists");
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<CaCertificateRecord>> GetCaCertificate(absl::string_view id,
                                                                      Lock) override {
    return Find(s_->ca_certificates, id);
  }
  absl::Status InsertCaCertificate(const CaCertificateRecord& ca) override {
    if (!s_->ca_certificates.emplace(ca.id, ca).second) {
      return absl::AlreadyExistsError("CA certificate exists");
    }
    return absl::OkStatus();
  }
  absl::Status UpdateCaCertificate(const CaCertificateRecord& ca) override {
    CaCertificateRecord& stored = s_->ca_certificates.at(ca.id);
    const std::string pem = stored.pem;
    const absl::Time created = stored.created_at;
    stored = ca;
    stored.pem = pem;
    stored.created_at = created;
    return absl::OkStatus();
  }
  absl::Status DeleteCaCertificate(absl::string_view id) override {
    s_->ca_certificates.erase(std::string(id));
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountCaCertificatesWithSubject(absl::string_view subject) override {
    return std::count_if(s_->ca_certificates.begin(), s_->ca_certificates.end(),
                         [&](const auto& kv) { return kv.second.subject == subject; });
  }
  absl::StatusOr<int64_t> CountCaCertificatesUsingTemplate(absl::string_view name) override {
    return std::count_if(s_->ca_certificates.begin(), s_->ca_certificates.end(),
                         [&](const auto& kv) {
                           return kv.second.registration_config.has_value() &&
                                  kv.second.registration_config->template_name == name;
                         });
  }

  absl::StatusOr<std::optional<std::string>> GetRegistrationCode() override {
    return s_->registration_code;
  }
  absl::Status SetRegistrationCode(absl::string_view code) override {
    s_->registration_code = std::string(code);
    return absl::OkStatus();
  }
  absl::Status DeleteRegistrationCode() override {
    s_->registration_code.reset();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<TemplateRecord>> GetTemplate(absl::string_view name, Lock) override {
    return Find(s_->templates, name);
  }
  absl::Status InsertTemplate(const TemplateRecord& t) override {
    if (!s_->templates.emplace(t.name, t).second) return absl::AlreadyExistsError("exists");
    return absl::OkStatus();
  }
  absl::Status UpdateTemplate(const TemplateRecord& t) override {
    s_->templates[t.name] = t;
    return absl::OkStatus();
  }
  absl::Status DeleteTemplate(absl::string_view name) override {
    s_->templates.erase(std::string(name));
    for (auto it = s_->versions.begin(); it != s_->versions.end();) {
      it = it->first.first == name ? s_->versions.erase(it) : std::next(it);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountTemplates() override {
    return static_cast<int64_t>(s_->templates.size());
  }
  absl::StatusOr<std::vector<TemplateVersionRecord>> TemplateVersions(
      absl::string_view name) override {
    return VersionsOf(*s_, name);
  }
  absl::Status InsertTemplateVersion(const TemplateVersionRecord& v) override {
    s_->versions[{v.template_name, v.version}] = v;
    return absl::OkStatus();
  }
  absl::Status DeleteTemplateVersion(absl::string_view name, int version) override {
    s_->versions.erase({std::string(name), version});
    return absl::OkStatus();
  }

  absl::Status InsertToken(const OwnershipToken& t) override {
    if (!s_->tokens.emplace(t.token_hash, t).second) return absl::AlreadyExistsError("exists");
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<OwnershipToken>> GetToken(absl::string_view hash) override {
    return Find(s_->tokens, hash);
  }
  absl::StatusOr<std::optional<OwnershipToken>> TakeToken(absl::string_view hash) override {
    std::optional<OwnershipToken> t = Find(s_->tokens, hash);
    if (t.has_value()) s_->tokens.erase(std::string(hash));
    return t;
  }
  absl::StatusOr<int64_t> DeleteExpiredTokens(absl::Time now) override {
    int64_t n = 0;
    for (auto it = s_->tokens.begin(); it != s_->tokens.end();) {
      if (it->second.expires_at <= now) {
        it = s_->tokens.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }

  void Publish(const CaEvent& e) override { events.push_back(e); }

  std::vector<CaEvent> events;

 private:
  State* s_;
};

}  // namespace

void FakeCaStore::FailWith(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  failure_ = std::move(status);
}

absl::Status FakeCaStore::InsertCertificate(const CertificateRecord& cert) {
  return Transact([&](CaTx& tx) { return tx.InsertCertificate(cert); });
}

absl::Status FakeCaStore::Transact(absl::FunctionRef<absl::Status(CaTx&)> body) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  State working = state_;
  FakeTx tx(&working);
  absl::Status s = body(tx);
  if (s.ok()) {
    state_ = std::move(working);
    events_.insert(events_.end(), tx.events.begin(), tx.events.end());
  }
  return s;
}

absl::StatusOr<std::optional<CertificateRecord>> FakeCaStore::GetCertificate(absl::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  return Find(state_.certificates, id);
}

absl::StatusOr<std::vector<CertificateRecord>> FakeCaStore::ListCertificates(
    std::optional<std::string> ca_id, std::optional<ListPosition> after, bool ascending,
    int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  std::vector<CertificateRecord> all;
  for (const auto& [id, c] : state_.certificates) {
    if (!ca_id.has_value() || c.ca_certificate_id == *ca_id) all.push_back(c);
  }
  return ByCreation(std::move(all), after, ascending, limit);
}

absl::StatusOr<std::optional<CaCertificateRecord>> FakeCaStore::GetCaCertificate(
    absl::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  return Find(state_.ca_certificates, id);
}

absl::StatusOr<std::vector<CaCertificateRecord>> FakeCaStore::CaCertificatesWithSubject(
    absl::string_view subject) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  std::vector<CaCertificateRecord> out;
  for (const auto& [id, ca] : state_.ca_certificates) {
    if (ca.subject == subject) out.push_back(ca);
  }
  return out;
}

absl::StatusOr<std::vector<CaCertificateRecord>> FakeCaStore::ListCaCertificates(
    std::optional<ListPosition> after, bool ascending, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  std::vector<CaCertificateRecord> all;
  for (const auto& [id, ca] : state_.ca_certificates) all.push_back(ca);
  return ByCreation(std::move(all), after, ascending, limit);
}

absl::StatusOr<std::optional<TemplateRecord>> FakeCaStore::GetTemplate(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  return Find(state_.templates, name);
}

absl::StatusOr<std::optional<TemplateVersionRecord>> FakeCaStore::GetTemplateVersion(
    absl::string_view name, int version) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  auto it = state_.versions.find({std::string(name), version});
  if (it == state_.versions.end()) return std::optional<TemplateVersionRecord>();
  return std::optional<TemplateVersionRecord>(it->second);
}

absl::StatusOr<std::vector<TemplateVersionRecord>> FakeCaStore::TemplateVersions(
    absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  return VersionsOf(state_, name);
}

absl::StatusOr<std::vector<TemplateRecord>> FakeCaStore::ListTemplates(absl::string_view after,
                                                                       int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  std::vector<TemplateRecord> out;
  for (auto it = state_.templates.upper_bound(after);
       it != state_.templates.end() && static_cast<int>(out.size()) < limit; ++it) {
    out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<std::optional<CrlRecord>> FakeCaStore::LatestCrl() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return failure_;
  if (state_.crls.empty()) return std::optional<CrlRecord>();
  return std::optional<CrlRecord>(state_.crls.rbegin()->second);
}

std::vector<CaEvent> FakeCaStore::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

}  // namespace fleetcore::ca
