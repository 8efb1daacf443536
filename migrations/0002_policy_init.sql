-- The policy service's schema: IoT policies and their versions, their attachments to
-- certificates and thing groups, and custom authorizers. Only the policy service reads or
-- writes these tables.
CREATE SCHEMA policy;

CREATE TABLE policy.policies (
  name text COLLATE "C" PRIMARY KEY,
  default_version integer NOT NULL,
  -- Version ids are never reused: the next one to hand out.
  next_version integer NOT NULL,
  -- Bumped on every change of the policy or of its default version (generationId).
  generation bigint NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE policy.policy_versions (
  policy_name text COLLATE "C" NOT NULL REFERENCES policy.policies (name) ON DELETE CASCADE,
  version integer NOT NULL,
  document text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (policy_name, version)
);

CREATE TABLE policy.attachments (
  policy_name text COLLATE "C" NOT NULL REFERENCES policy.policies (name),
  -- A certificate ARN or a thing-group ARN.
  target text COLLATE "C" NOT NULL,
  attached_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (policy_name, target)
);
CREATE INDEX attachments_target_idx ON policy.attachments (target, policy_name);

CREATE TABLE policy.authorizers (
  name text COLLATE "C" PRIMARY KEY,
  function_url text NOT NULL,
  token_key_name text NOT NULL DEFAULT '',
  -- {"keyName": "-----BEGIN PUBLIC KEY-----..."}
  public_keys jsonb NOT NULL DEFAULT '{}',
  active boolean NOT NULL,
  signing_disabled boolean NOT NULL,
  caching_for_http boolean NOT NULL,
  is_default boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
-- At most one default authorizer.
CREATE UNIQUE INDEX authorizers_one_default_idx ON policy.authorizers (is_default) WHERE is_default;
