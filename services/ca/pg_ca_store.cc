#include "services/ca/pg_ca_store.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/db/pg_batch_writer.h"
#include "common/db/pg_pool.h"
#include "common/db/pg_rows.h"
#include "nlohmann/json.hpp"

namespace fleetcore::ca {
namespace {

using db::FromMicros;
using db::Micros;
using db::MicrosOf;
using db::TimestampParam;
using json = nlohmann::json;

std::string S(absl::string_view v) { return std::string(v); }

std::optional<int64_t> OptMicros(const std::optional<absl::Time>& t) {
  if (!t.has_value()) return std::nullopt;
  return Micros(*t);
}
std::optional<absl::Time> OptTime(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return FromMicros(f.as<int64_t>());
}

const char* LockClause(Lock lock) { return lock == Lock::kUpdate ? " FOR UPDATE" : ""; }

const std::string kCertCols = absl::StrCat(
    "id, pem, status, coalesce(ca_certificate_id, ''), issued_here, serial, subject, "
    "certificate_mode, ",
    MicrosOf("not_before"), ", ", MicrosOf("not_after"), ", customer_version, generation, ",
    MicrosOf("created_at"), ", ", MicrosOf("updated_at"), ", ", MicrosOf("revoked_at"), ", ",
    MicrosOf("deactivate_at"), ", ", MicrosOf("claim_expires_at"));

CertificateRecord CertFromRow(const pqxx::row& r) {
  return {.id = r[0].as<std::string>(),
          .pem = r[1].as<std::string>(),
          .status = ParseStatus(r[2].as<std::string>()).value_or(CertStatus::kInactive),
          .ca_certificate_id = r[3].as<std::string>(),
          .issued_here = r[4].as<bool>(),
          .serial = r[5].as<std::string>(),
          .subject = r[6].as<std::string>(),
          .mode = ParseMode(r[7].as<std::string>()).value_or(CertMode::kDefault),
          .not_before = FromMicros(r[8].as<int64_t>()),
          .not_after = FromMicros(r[9].as<int64_t>()),
          .customer_version = r[10].as<int>(),
          .generation = r[11].as<int64_t>(),
          .created_at = FromMicros(r[12].as<int64_t>()),
          .updated_at = FromMicros(r[13].as<int64_t>()),
          .revoked_at = OptTime(r[14]),
          .deactivate_at = OptTime(r[15]),
          .claim_expires_at = OptTime(r[16])};
}

const std::string kCaCols = absl::StrCat(
    "id, pem, subject, status, auto_registration, registration_config::text, certificate_mode, ",
    MicrosOf("not_before"), ", ", MicrosOf("not_after"), ", customer_version, generation, ",
    MicrosOf("created_at"), ", ", MicrosOf("updated_at"));

std::optional<std::string> ConfigJson(const std::optional<RegistrationConfig>& c) {
  if (!c.has_value()) return std::nullopt;
  json j = json::object();
  if (!c->template_body.empty()) j["templateBody"] = c->template_body;
  if (!c->role_arn.empty()) j["roleArn"] = c->role_arn;
  if (!c->template_name.empty()) j["templateName"] = c->template_name;
  return j.dump();
}

CaCertificateRecord CaFromRow(const pqxx::row& r) {
  CaCertificateRecord ca{.id = r[0].as<std::string>(),
                         .pem = r[1].as<std::string>(),
                         .subject = r[2].as<std::string>(),
                         .active = r[3].as<std::string>() == "ACTIVE",
                         .auto_registration = r[4].as<bool>(),
                         .mode = ParseMode(r[6].as<std::string>()).value_or(CertMode::kDefault),
                         .not_before = FromMicros(r[7].as<int64_t>()),
                         .not_after = FromMicros(r[8].as<int64_t>()),
                         .customer_version = r[9].as<int>(),
                         .generation = r[10].as<int64_t>(),
                         .created_at = FromMicros(r[11].as<int64_t>()),
                         .updated_at = FromMicros(r[12].as<int64_t>())};
  if (!r[5].is_null()) {
    json j = json::parse(r[5].as<std::string>(), nullptr, false);
    RegistrationConfig c;
    auto field = [&](const char* k) {
      return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
    };
    c.template_body = field("templateBody");
    c.role_arn = field("roleArn");
    c.template_name = field("templateName");
    ca.registration_config = c;
  }
  return ca;
}

const std::string kTemplateCols = absl::StrCat(
    "name, description, enabled, type, provisioning_role_arn, hook_url, hook_payload_version, "
    "default_version, next_version, ",
    MicrosOf("created_at"), ", ", MicrosOf("updated_at"));

TemplateRecord TemplateFromRow(const pqxx::row& r) {
  return {
      .name = r[0].as<std::string>(),
      .description = r[1].as<std::string>(),
      .enabled = r[2].as<bool>(),
      .type = ParseTemplateType(r[3].as<std::string>()).value_or(TemplateType::kFleetProvisioning),
      .provisioning_role_arn = r[4].as<std::string>(),
      .hook_url = r[5].as<std::string>(),
      .hook_payload_version = r[6].as<std::string>(),
      .default_version = r[7].as<int>(),
      .next_version = r[8].as<int>(),
      .created_at = FromMicros(r[9].as<int64_t>()),
      .updated_at = FromMicros(r[10].as<int64_t>())};
}

const std::string kVersionCols =
    absl::StrCat("template_name, version, body, ", MicrosOf("created_at"));

TemplateVersionRecord VersionFromRow(const pqxx::row& r) {
  return {.template_name = r[0].as<std::string>(),
          .version = r[1].as<int>(),
          .body = r[2].as<std::string>(),
          .created_at = FromMicros(r[3].as<int64_t>())};
}

const std::string kCrlCols = absl::StrCat("number, issuer_id, encode(der, 'base64'), ",
                                          MicrosOf("this_update"), ", ", MicrosOf("next_update"));

CrlRecord CrlFromRow(const pqxx::row& r) {
  CrlRecord c{.number = r[0].as<int64_t>(),
              .issuer_id = r[1].as<std::string>(),
              .this_update = FromMicros(r[3].as<int64_t>()),
              .next_update = FromMicros(r[4].as<int64_t>())};
  std::string b64 = r[2].as<std::string>();
  b64.erase(std::remove(b64.begin(), b64.end(), '\n'), b64.end());
  absl::Base64Unescape(b64, &c.der);
  return c;
}

const std::string kTokenCols =
    absl::StrCat("token_hash, certificate_id, claim_certificate_id, ", MicrosOf("expires_at"));

OwnershipToken TokenFromRow(const pqxx::row& r) {
  return {.token_hash = r[0].as<std::string>(),
          .certificate_id = r[1].as<std::string>(),
          .claim_certificate_id = r[2].as<std::string>(),
          .expires_at = FromMicros(r[3].as<int64_t>())};
}

Revocation RevocationFromRow(const pqxx::row& r) {
  return {.issuer_id = r[0].as<std::string>(),
          .serial = r[1].as<std::string>(),
          .certificate_id = r[2].as<std::string>(),
          .revoked_at = FromMicros(r[3].as<int64_t>()),
          .not_after = FromMicros(r[4].as<int64_t>())};
}

std::string EventJson(const CaEvent& e) {
  json j{{"type", e.type}};
  if (!e.certificate.empty()) j["certificate"] = e.certificate;
  if (!e.ca_certificate.empty()) j["caCertificate"] = e.ca_certificate;
  if (!e.status.empty()) j["status"] = e.status;
  if (!e.template_name.empty()) j["template"] = e.template_name;
  return j.dump();
}

// Keyset order by (created_at, id) in either direction, after the position whose micros and
// id are parameters $a and $b, when parameter $f is true (every parameter is always used:
// Postgres cannot type one that is not).
std::string KeysetClause(bool ascending, int f, int a, int b) {
  return absl::StrCat("(NOT $", f, "::boolean OR (created_at, id) ", ascending ? ">" : "<", " (",
                      TimestampParam(a), ", $", b, "::text))");
}
std::string KeysetOrder(bool ascending) {
  return ascending ? " ORDER BY created_at, id" : " ORDER BY created_at DESC, id DESC";
}

// The columns a certificate is stored with, in the order both inserts give them.
constexpr char kCertInsertCols[] =
    "id, pem, status, ca_certificate_id, issued_here, serial, subject, certificate_mode, "
    "not_before, not_after, customer_version, generation, created_at, updated_at, "
    "revoked_at, deactivate_at, claim_expires_at";

// Issuing stores a certificate per call: prepared once per connection (PgCaStore::Prepare).
constexpr char kInsertCertificate[] = "ca_insert_certificate";
// The certificates of a batch (db::PgBatchWriter), each stored unless its id is taken;
// returns the positions of those stored (one per id, should a batch hold an id twice).
constexpr char kInsertCertificates[] = "ca_insert_certificates";
std::string InsertCertificatesSql() {
  auto ts = [](const char* c) { return db::TimestampFrom(absl::StrCat("r.", c)); };
  return absl::StrCat(
      "WITH r AS (SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (id text, pem text, "
      "status text, ca_certificate_id text, issued_here boolean, serial text, subject text, "
      "certificate_mode text, not_before bigint, not_after bigint, customer_version integer, "
      "generation bigint, created_at bigint, updated_at bigint, revoked_at bigint, "
      "deactivate_at bigint, claim_expires_at bigint)) WITH ORDINALITY AS r(",
      kCertInsertCols, ", i)), stored AS (INSERT INTO ca.certificates (", kCertInsertCols,
      ") SELECT r.id, r.pem, r.status, NULLIF(r.ca_certificate_id, ''), r.issued_here, "
      "r.serial, r.subject, r.certificate_mode, ",
      ts("not_before"), ", ", ts("not_after"), ", r.customer_version, r.generation, ",
      ts("created_at"), ", ", ts("updated_at"), ", ", ts("revoked_at"), ", ",
      ts("deactivate_at"), ", ", ts("claim_expires_at"),
      " FROM r ON CONFLICT (id) DO NOTHING RETURNING id) "
      "SELECT min(r.i) FROM r JOIN stored ON stored.id = r.id GROUP BY r.id");
}

// One row of ca_insert_certificates; nullopt when a field is not UTF-8 (a registered
// certificate's subject may be anything), which JSON cannot carry.
std::optional<std::string> CertificateRow(const CertificateRecord& c) {
  json row{{"id", c.id},
           {"pem", c.pem},
           {"status", StatusName(c.status)},
           {"ca_certificate_id", c.ca_certificate_id},
           {"issued_here", c.issued_here},
           {"serial", c.serial},
           {"subject", c.subject},
           {"certificate_mode", ModeName(c.mode)},
           {"not_before", Micros(c.not_before)},
           {"not_after", Micros(c.not_after)},
           {"customer_version", c.customer_version},
           {"generation", c.generation},
           {"created_at", Micros(c.created_at)},
           {"updated_at", Micros(c.updated_at)},
           {"revoked_at", nullptr},
           {"deactivate_at", nullptr},
           {"claim_expires_at", nullptr}};
  if (c.revoked_at) row["revoked_at"] = Micros(*c.revoked_at);
  if (c.deactivate_at) row["deactivate_at"] = Micros(*c.deactivate_at);
  if (c.claim_expires_at) row["claim_expires_at"] = Micros(*c.claim_expires_at);
  try {
    return row.dump();
  } catch (const json::type_error&) {
    return std::nullopt;
  }
}

std::string InsertCertificateSql() {
  return absl::StrCat(
      "INSERT INTO ca.certificates (", kCertInsertCols, ") VALUES ($1, $2, $3, "
      "NULLIF($4, ''), $5, $6, $7, $8, ",
      TimestampParam(9), ", ", TimestampParam(10), ", $11, $12, ", TimestampParam(13), ", ",
      TimestampParam(14), ", ", TimestampParam(15), ", ", TimestampParam(16), ", ",
      TimestampParam(17), ")");
}

class PgTx final : public CaTx, private db::TxStatements {
 public:
  explicit PgTx(pqxx::transaction_base& tx) : db::TxStatements(tx) {}

  absl::StatusOr<std::optional<CertificateRecord>> GetCertificate(absl::string_view id,
                                                                  Lock lock) override {
    return One<CertificateRecord>(
        absl::StrCat("SELECT ", kCertCols, " FROM ca.certificates WHERE id = $1", LockClause(lock)),
        CertFromRow, S(id));
  }
  absl::Status InsertCertificate(const CertificateRecord& c) override {
    absl::Status s = ExecPrepared(
        kInsertCertificate, c.id, c.pem, S(StatusName(c.status)), c.ca_certificate_id, c.issued_here, c.serial,
        c.subject, S(ModeName(c.mode)), Micros(c.not_before), Micros(c.not_after),
        c.customer_version, c.generation, Micros(c.created_at), Micros(c.updated_at),
        OptMicros(c.revoked_at), OptMicros(c.deactivate_at), OptMicros(c.claim_expires_at));
    return s;
  }
  absl::Status UpdateCertificate(const CertificateRecord& c) override {
    return Exec(absl::StrCat(
                    "UPDATE ca.certificates SET status = $2, ca_certificate_id = NULLIF($3, ''), "
                    "issued_here = $4, serial = $5, subject = $6, certificate_mode = $7, "
                    "not_before = ",
                    TimestampParam(8), ", not_after = ", TimestampParam(9),
                    ", customer_version = $10, generation = $11, updated_at = ", TimestampParam(12),
                    ", revoked_at = ", TimestampParam(13), ", deactivate_at = ", TimestampParam(14),
                    ", claim_expires_at = ", TimestampParam(15), " WHERE id = $1"),
                c.id, S(StatusName(c.status)), c.ca_certificate_id, c.issued_here, c.serial,
                c.subject, S(ModeName(c.mode)), Micros(c.not_before), Micros(c.not_after),
                c.customer_version, c.generation, Micros(c.updated_at), OptMicros(c.revoked_at),
                OptMicros(c.deactivate_at), OptMicros(c.claim_expires_at));
  }
  absl::Status DeleteCertificate(absl::string_view id) override {
    return Exec("DELETE FROM ca.certificates WHERE id = $1", S(id));
  }
  absl::StatusOr<int64_t> CountCertificatesOfCa(absl::string_view ca_id) override {
    return Count("SELECT count(*) FROM ca.certificates WHERE ca_certificate_id = $1", S(ca_id));
  }
  absl::StatusOr<std::vector<CertificateRecord>> DueForDeactivation(absl::Time now,
                                                                    int limit) override {
    return Rows<CertificateRecord>(
        absl::StrCat("SELECT ", kCertCols, " FROM ca.certificates WHERE deactivate_at <= ",
                     TimestampParam(1), " ORDER BY deactivate_at LIMIT $2 FOR UPDATE SKIP LOCKED"),
        CertFromRow, Micros(now), limit);
  }
  absl::StatusOr<std::vector<CertificateRecord>> ExpiredClaims(absl::Time now, int limit) override {
    return Rows<CertificateRecord>(
        absl::StrCat("SELECT ", kCertCols, " FROM ca.certificates WHERE claim_expires_at <= ",
                     TimestampParam(1), " ORDER BY claim_expires_at LIMIT $2"),
        CertFromRow, Micros(now), limit);
  }

  absl::Status InsertRevocation(const Revocation& r) override {
    return Exec(
        absl::StrCat("INSERT INTO ca.revocations (issuer_id, serial, certificate_id, "
                     "revoked_at, not_after) VALUES ($1, $2, $3, ",
                     TimestampParam(4), ", ", TimestampParam(5), ") ON CONFLICT DO NOTHING"),
        r.issuer_id, r.serial, r.certificate_id, Micros(r.revoked_at), Micros(r.not_after));
  }
  absl::StatusOr<std::vector<Revocation>> Revocations(absl::string_view issuer_id,
                                                      absl::Time now) override {
    return Rows<Revocation>(
        absl::StrCat("SELECT issuer_id, serial, certificate_id, ", MicrosOf("revoked_at"), ", ",
                     MicrosOf("not_after"),
                     " FROM ca.revocations WHERE issuer_id = $1 AND not_after > ",
                     TimestampParam(2), " ORDER BY serial"),
        RevocationFromRow, S(issuer_id), Micros(now));
  }
  absl::Status LockCrl() override {
    return Exec("SELECT pg_advisory_xact_lock(hashtextextended('ca crl', 17))");
  }
  absl::StatusOr<std::optional<CrlRecord>> LatestCrl() override {
    return One<CrlRecord>(
        absl::StrCat("SELECT ", kCrlCols, " FROM ca.crls ORDER BY number DESC LIMIT 1"),
        CrlFromRow);
  }
  absl::Status InsertCrl(const CrlRecord& c) override {
    return Exec(absl::StrCat("INSERT INTO ca.crls (number, issuer_id, der, this_update, "
                             "next_update) VALUES ($1, $2, decode($3, 'base64'), ",
                             TimestampParam(4), ", ", TimestampParam(5), ")"),
                c.number, c.issuer_id, absl::Base64Escape(c.der), Micros(c.this_update),
                Micros(c.next_update));
  }

  absl::StatusOr<std::optional<CaCertificateRecord>> GetCaCertificate(absl::string_view id,
                                                                      Lock lock) override {
    return One<CaCertificateRecord>(
        absl::StrCat("SELECT ", kCaCols, " FROM ca.ca_certificates WHERE id = $1",
                     LockClause(lock)),
        CaFromRow, S(id));
  }
  absl::Status InsertCaCertificate(const CaCertificateRecord& ca) override {
    return Exec(
        absl::StrCat("INSERT INTO ca.ca_certificates (id, pem, subject, status, "
                     "auto_registration, registration_config, certificate_mode, not_before, "
                     "not_after, customer_version, generation, created_at, updated_at) VALUES "
                     "($1, $2, $3, $4, $5, $6::jsonb, $7, ",
                     TimestampParam(8), ", ", TimestampParam(9), ", $10, $11, ", TimestampParam(12),
                     ", ", TimestampParam(13), ")"),
        ca.id, ca.pem, ca.subject, S(ca.active ? "ACTIVE" : "INACTIVE"), ca.auto_registration,
        ConfigJson(ca.registration_config), S(ModeName(ca.mode)), Micros(ca.not_before),
        Micros(ca.not_after), ca.customer_version, ca.generation, Micros(ca.created_at),
        Micros(ca.updated_at));
  }
  absl::Status UpdateCaCertificate(const CaCertificateRecord& ca) override {
    return Exec(absl::StrCat("UPDATE ca.ca_certificates SET status = $2, auto_registration = $3, "
                             "registration_config = $4::jsonb, certificate_mode = $5, "
                             "customer_version = $6, generation = $7, updated_at = ",
                             TimestampParam(8), " WHERE id = $1"),
                ca.id, S(ca.active ? "ACTIVE" : "INACTIVE"), ca.auto_registration,
                ConfigJson(ca.registration_config), S(ModeName(ca.mode)), ca.customer_version,
                ca.generation, Micros(ca.updated_at));
  }
  absl::Status DeleteCaCertificate(absl::string_view id) override {
    return Exec("DELETE FROM ca.ca_certificates WHERE id = $1", S(id));
  }
  absl::StatusOr<int64_t> CountCaCertificatesWithSubject(absl::string_view subject) override {
    return Count("SELECT count(*) FROM ca.ca_certificates WHERE subject = $1", S(subject));
  }
  absl::StatusOr<int64_t> CountCaCertificatesUsingTemplate(absl::string_view name) override {
    return Count(
        "SELECT count(*) FROM ca.ca_certificates WHERE registration_config->>'templateName' = $1",
        S(name));
  }

  absl::StatusOr<std::optional<std::string>> GetRegistrationCode() override {
    return One<std::string>("SELECT code FROM ca.registration_code",
                            [](const pqxx::row& r) { return r[0].as<std::string>(); });
  }
  absl::Status SetRegistrationCode(absl::string_view code) override {
    return Exec(
        "INSERT INTO ca.registration_code (code) VALUES ($1) "
        "ON CONFLICT (singleton) DO UPDATE SET code = EXCLUDED.code",
        S(code));
  }
  absl::Status DeleteRegistrationCode() override {
    return Exec("DELETE FROM ca.registration_code");
  }

  absl::StatusOr<std::optional<TemplateRecord>> GetTemplate(absl::string_view name,
                                                            Lock lock) override {
    return One<TemplateRecord>(
        absl::StrCat("SELECT ", kTemplateCols, " FROM ca.provisioning_templates WHERE name = $1",
                     LockClause(lock)),
        TemplateFromRow, S(name));
  }
  absl::Status InsertTemplate(const TemplateRecord& t) override {
    return Exec(absl::StrCat("INSERT INTO ca.provisioning_templates (name, description, enabled, "
                             "type, provisioning_role_arn, hook_url, hook_payload_version, "
                             "default_version, next_version, created_at, updated_at) VALUES "
                             "($1, $2, $3, $4, $5, $6, $7, $8, $9, ",
                             TimestampParam(10), ", ", TimestampParam(11), ")"),
                t.name, t.description, t.enabled, S(TemplateTypeName(t.type)),
                t.provisioning_role_arn, t.hook_url, t.hook_payload_version, t.default_version,
                t.next_version, Micros(t.created_at), Micros(t.updated_at));
  }
  absl::Status UpdateTemplate(const TemplateRecord& t) override {
    return Exec(absl::StrCat("UPDATE ca.provisioning_templates SET description = $2, "
                             "enabled = $3, provisioning_role_arn = $4, hook_url = $5, "
                             "hook_payload_version = $6, default_version = $7, "
                             "next_version = $8, updated_at = ",
                             TimestampParam(9), " WHERE name = $1"),
                t.name, t.description, t.enabled, t.provisioning_role_arn, t.hook_url,
                t.hook_payload_version, t.default_version, t.next_version, Micros(t.updated_at));
  }
  absl::Status DeleteTemplate(absl::string_view name) override {
    return Exec("DELETE FROM ca.provisioning_templates WHERE name = $1", S(name));
  }
  absl::StatusOr<int64_t> CountTemplates() override {
    return Count("SELECT count(*) FROM ca.provisioning_templates");
  }
  absl::StatusOr<std::vector<TemplateVersionRecord>> TemplateVersions(
      absl::string_view name) override {
    return Rows<TemplateVersionRecord>(absl::StrCat("SELECT ", kVersionCols,
                                                    " FROM ca.provisioning_template_versions "
                                                    "WHERE template_name = $1 ORDER BY version"),
                                       VersionFromRow, S(name));
  }
  absl::Status InsertTemplateVersion(const TemplateVersionRecord& v) override {
    return Exec(absl::StrCat("INSERT INTO ca.provisioning_template_versions (template_name, "
                             "version, body, created_at) VALUES ($1, $2, $3, ",
                             TimestampParam(4), ")"),
                v.template_name, v.version, v.body, Micros(v.created_at));
  }
  absl::Status DeleteTemplateVersion(absl::string_view name, int version) override {
    return Exec(
        "DELETE FROM ca.provisioning_template_versions WHERE template_name = $1 AND version = $2",
        S(name), version);
  }

  absl::Status InsertToken(const OwnershipToken& t) override {
    return Exec(absl::StrCat("INSERT INTO ca.ownership_tokens (token_hash, certificate_id, "
                             "claim_certificate_id, expires_at) VALUES ($1, $2, $3, ",
                             TimestampParam(4), ")"),
                t.token_hash, t.certificate_id, t.claim_certificate_id, Micros(t.expires_at));
  }
  absl::StatusOr<std::optional<OwnershipToken>> GetToken(absl::string_view hash) override {
    return One<OwnershipToken>(
        absl::StrCat("SELECT ", kTokenCols, " FROM ca.ownership_tokens WHERE token_hash = $1"),
        TokenFromRow, S(hash));
  }
  absl::StatusOr<std::optional<OwnershipToken>> TakeToken(absl::string_view hash) override {
    return One<OwnershipToken>(
        absl::StrCat("DELETE FROM ca.ownership_tokens WHERE token_hash = $1 RETURNING ",
                     kTokenCols),
        TokenFromRow, S(hash));
  }
  absl::StatusOr<int64_t> DeleteExpiredTokens(absl::Time now) override {
    return ExecCount(
        absl::StrCat("DELETE FROM ca.ownership_tokens WHERE expires_at <= ", TimestampParam(1)),
        Micros(now));
  }

  void Publish(const CaEvent& e) override { events_.push_back(e); }

  void Finish(bool body_ok) {
    db::TxStatements::Finish();
    if (body_ok) {
      for (const CaEvent& e : events_) db::Notify(tx(), kCaChannel, EventJson(e));
    }
  }

 private:
  template <typename... Params>
  absl::StatusOr<int64_t> Count(const std::string& sql, const Params&... params) {
    return Guard([&]() -> absl::StatusOr<int64_t> {
      return tx().exec_params(sql, params...)[0][0].template as<int64_t>();
    });
  }

  std::vector<CaEvent> events_;
};

}  // namespace

PgCaStore::PgCaStore(db::PgPool* pool, prometheus::Registry* metrics)
    : pool_(pool),
      inserts_(std::make_unique<db::PgBatchWriter>(
          pool, db::PgBatchWriter::Options{.statement = kInsertCertificates,
                                           .name = "ca_certificates"},
          metrics)) {}

PgCaStore::~PgCaStore() = default;

void PgCaStore::Prepare(pqxx::connection_base& c) {
  c.prepare(kInsertCertificate, InsertCertificateSql());
  c.prepare(kInsertCertificates, InsertCertificatesSql());
}

absl::Status PgCaStore::InsertCertificate(const CertificateRecord& cert) {
  // With the certificates issued at the same moment, in one statement and one commit.
  if (std::optional<std::string> row = CertificateRow(cert)) {
    absl::StatusOr<bool> stored = inserts_->Write(*std::move(row));
    if (stored.ok() && *stored) return absl::OkStatus();
    if (!stored.ok() && stored.status().code() == absl::StatusCode::kUnavailable) {
      return stored.status();  // Postgres is away; the batch may or may not have committed
    }
  }
  // Its id is taken, its batch failed on some row, or it cannot travel as JSON: alone, for
  // its own answer.
  return pool_->Query([&](pqxx::transaction_base& t) -> absl::Status {
    PgTx tx(t);
    return tx.InsertCertificate(cert);
  });
}

absl::Status PgCaStore::Transact(absl::FunctionRef<absl::Status(CaTx&)> body) {
  return pool_->Transact([&](pqxx::transaction_base& t) -> absl::Status {
    PgTx tx(t);
    absl::Status s = body(tx);
    tx.Finish(s.ok());
    return s;
  });
}

absl::StatusOr<std::optional<CertificateRecord>> PgCaStore::GetCertificate(absl::string_view id) {
  return db::QueryOne<CertificateRecord>(
      *pool_, absl::StrCat("SELECT ", kCertCols, " FROM ca.certificates WHERE id = $1"),
      CertFromRow, S(id));
}

absl::StatusOr<std::vector<CertificateRecord>> PgCaStore::ListCertificates(
    std::optional<std::string> ca_id, std::optional<ListPosition> after, bool ascending,
    int limit) {
  const std::string sql = absl::StrCat(
      "SELECT ", kCertCols, " FROM ca.certificates WHERE ($1 = '*' OR ca_certificate_id = $1) AND ",
      KeysetClause(ascending, 5, 2, 3), KeysetOrder(ascending), " LIMIT $4");
  return db::QueryRows<CertificateRecord>(
      *pool_, sql, CertFromRow, ca_id.value_or("*"),
      after.has_value() ? Micros(after->created_at) : int64_t{0},
      after.has_value() ? after->id : std::string(), limit, after.has_value());
}

absl::StatusOr<std::optional<CaCertificateRecord>> PgCaStore::GetCaCertificate(
    absl::string_view id) {
  return db::QueryOne<CaCertificateRecord>(
      *pool_, absl::StrCat("SELECT ", kCaCols, " FROM ca.ca_certificates WHERE id = $1"), CaFromRow,
      S(id));
}

absl::StatusOr<std::vector<CaCertificateRecord>> PgCaStore::CaCertificatesWithSubject(
    absl::string_view subject) {
  return db::QueryRows<CaCertificateRecord>(
      *pool_,
      absl::StrCat("SELECT ", kCaCols, " FROM ca.ca_certificates WHERE subject = $1 ORDER BY id"),
      CaFromRow, S(subject));
}

absl::StatusOr<std::vector<CaCertificateRecord>> PgCaStore::ListCaCertificates(
    std::optional<ListPosition> after, bool ascending, int limit) {
  const std::string sql =
      absl::StrCat("SELECT ", kCaCols, " FROM ca.ca_certificates WHERE ",
                   KeysetClause(ascending, 4, 1, 2), KeysetOrder(ascending), " LIMIT $3");
  return db::QueryRows<CaCertificateRecord>(
      *pool_, sql, CaFromRow, after.has_value() ? Micros(after->created_at) : int64_t{0},
      after.has_value() ? after->id : std::string(), limit, after.has_value());
}

absl::StatusOr<std::optional<TemplateRecord>> PgCaStore::GetTemplate(absl::string_view name) {
  return db::QueryOne<TemplateRecord>(
      *pool_,
      absl::StrCat("SELECT ", kTemplateCols, " FROM ca.provisioning_templates WHERE name = $1"),
      TemplateFromRow, S(name));
}

absl::StatusOr<std::optional<TemplateVersionRecord>> PgCaStore::GetTemplateVersion(
    absl::string_view name, int version) {
  return db::QueryOne<TemplateVersionRecord>(
      *pool_,
      absl::StrCat("SELECT ", kVersionCols,
                   " FROM ca.provisioning_template_versions "
                   "WHERE template_name = $1 AND version = $2"),
      VersionFromRow, S(name), version);
}

absl::StatusOr<std::vector<TemplateVersionRecord>> PgCaStore::TemplateVersions(
    absl::string_view name) {
  return db::QueryRows<TemplateVersionRecord>(
      *pool_,
      absl::StrCat("SELECT ", kVersionCols,
                   " FROM ca.provisioning_template_versions "
                   "WHERE template_name = $1 ORDER BY version"),
      VersionFromRow, S(name));
}

absl::StatusOr<std::vector<TemplateRecord>> PgCaStore::ListTemplates(absl::string_view after,
                                                                     int limit) {
  return db::QueryRows<TemplateRecord>(
      *pool_,
      absl::StrCat("SELECT ", kTemplateCols,
                   " FROM ca.provisioning_templates WHERE name > $1 ORDER BY name LIMIT $2"),
      TemplateFromRow, S(after), limit);
}

absl::StatusOr<std::optional<CrlRecord>> PgCaStore::LatestCrl() {
  return db::QueryOne<CrlRecord>(
      *pool_, absl::StrCat("SELECT ", kCrlCols, " FROM ca.crls ORDER BY number DESC LIMIT 1"),
      CrlFromRow);
}

std::optional<CaEvent> PgCaStore::ParseEvent(absl::string_view payload) {
  auto j = json::parse(payload.begin(), payload.end(), nullptr, false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return std::nullopt;
  auto field = [&](const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  return CaEvent{.type = field("type"),
                 .certificate = field("certificate"),
                 .ca_certificate = field("caCertificate"),
                 .status = field("status"),
                 .template_name = field("template")};
}

}  // namespace fleetcore::ca
