-- The CA service's schema: device certificates and their status, registered CA certificates,
-- the registration code, provisioning templates and their versions, fleet-provisioning
-- ownership tokens, and the CRLs of fleetcore's issuing CA. The issuing CA's private key is
-- not here: it lives in a file (see docs/operations.md). Only the CA service reads or writes
-- these tables.
CREATE SCHEMA ca;

CREATE TABLE ca.ca_certificates (
  -- SHA-256 of the DER certificate, hex (AWS's certificate id).
  id text COLLATE "C" PRIMARY KEY,
  pem text NOT NULL,
  -- RFC 2253 subject, to find the CA of a device certificate by its issuer.
  subject text COLLATE "C" NOT NULL,
  status text NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
  auto_registration boolean NOT NULL,
  -- {"templateBody": "...", "roleArn": "...", "templateName": "..."}, or NULL.
  registration_config jsonb,
  certificate_mode text NOT NULL CHECK (certificate_mode IN ('DEFAULT', 'SNI_ONLY')),
  not_before timestamptz NOT NULL,
  not_after timestamptz NOT NULL,
  customer_version integer NOT NULL,
  generation bigint NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX ca_certificates_subject_idx ON ca.ca_certificates (subject);
CREATE INDEX ca_certificates_created_idx ON ca.ca_certificates (created_at, id);

CREATE TABLE ca.certificates (
  id text COLLATE "C" PRIMARY KEY,
  pem text NOT NULL,
  status text NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_TRANSFER',
                                         'REGISTER_INACTIVE', 'PENDING_ACTIVATION')),
  -- The registered CA or fleetcore's issuing CA that signed it; NULL when registered
  -- without a CA.
  ca_certificate_id text COLLATE "C",
  -- Signed by fleetcore's issuing CA (and so listed in its CRL once revoked).
  issued_here boolean NOT NULL,
  serial text NOT NULL,
  subject text NOT NULL,
  certificate_mode text NOT NULL CHECK (certificate_mode IN ('DEFAULT', 'SNI_ONLY')),
  not_before timestamptz NOT NULL,
  not_after timestamptz NOT NULL,
  customer_version integer NOT NULL,
  generation bigint NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  revoked_at timestamptz,
  -- Rotation: it becomes INACTIVE then.
  deactivate_at timestamptz,
  -- Fleet provisioning: deleted then unless activated or attached by RegisterThing.
  claim_expires_at timestamptz
);
CREATE INDEX certificates_created_idx ON ca.certificates (created_at, id);
CREATE INDEX certificates_ca_idx ON ca.certificates (ca_certificate_id, created_at, id);
CREATE INDEX certificates_deactivate_idx ON ca.certificates (deactivate_at)
  WHERE deactivate_at IS NOT NULL;
CREATE INDEX certificates_claim_idx ON ca.certificates (claim_expires_at)
  WHERE claim_expires_at IS NOT NULL;

-- The account's registration code (GetRegistrationCode): one row at most.
CREATE TABLE ca.registration_code (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  code text NOT NULL
);

CREATE TABLE ca.provisioning_templates (
  name text COLLATE "C" PRIMARY KEY,
  description text NOT NULL,
  enabled boolean NOT NULL,
  type text NOT NULL CHECK (type IN ('FLEET_PROVISIONING', 'JITP')),
  provisioning_role_arn text NOT NULL,
  hook_url text NOT NULL DEFAULT '',
  hook_payload_version text NOT NULL DEFAULT '',
  default_version integer NOT NULL,
  -- Version ids are never reused.
  next_version integer NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE ca.provisioning_template_versions (
  template_name text COLLATE "C" NOT NULL
    REFERENCES ca.provisioning_templates (name) ON DELETE CASCADE,
  version integer NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (template_name, version)
);

-- certificateOwnershipToken: only its SHA-256 is kept.
CREATE TABLE ca.ownership_tokens (
  token_hash text COLLATE "C" PRIMARY KEY,
  certificate_id text COLLATE "C" NOT NULL REFERENCES ca.certificates (id) ON DELETE CASCADE,
  claim_certificate_id text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX ownership_tokens_expires_idx ON ca.ownership_tokens (expires_at);

-- Revocations of certificates fleetcore issued, kept after the certificate is deleted and
-- until it would have expired anyway: the CRL lists them.
CREATE TABLE ca.revocations (
  issuer_id text COLLATE "C" NOT NULL,
  serial text COLLATE "C" NOT NULL,
  certificate_id text COLLATE "C" NOT NULL,
  revoked_at timestamptz NOT NULL,
  not_after timestamptz NOT NULL,
  PRIMARY KEY (issuer_id, serial)
);

-- Every CRL of fleetcore's issuing CA; the newest is served.
CREATE TABLE ca.crls (
  number bigint PRIMARY KEY,
  issuer_id text NOT NULL,
  der bytea NOT NULL,
  this_update timestamptz NOT NULL,
  next_update timestamptz NOT NULL
);
