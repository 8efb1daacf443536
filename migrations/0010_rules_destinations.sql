-- Topic rule destinations, as AWS IoT's: an http action sends only to a URL that starts
-- with the confirmation URL of an ENABLED destination, and a destination is enabled by
-- whoever receives its confirmation request (the token in it). Only the token's SHA-256 is
-- kept: it is a credential until it is used.
CREATE TABLE rules.destinations (
  id uuid PRIMARY KEY,
  confirmation_url text COLLATE "C" NOT NULL UNIQUE,
  -- IN_PROGRESS, ENABLED, DISABLED or ERROR.
  status text NOT NULL,
  status_reason text NOT NULL DEFAULT '',
  -- Set while IN_PROGRESS: SHA-256 (hex) of the confirmation token last sent.
  token_sha256 text UNIQUE,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

-- Rules made before destinations existed keep working: each http action's URL without
-- substitution templates (query and fragment left off) becomes an ENABLED destination, as
-- its rule's author chose it.
INSERT INTO rules.destinations (id, confirmation_url, status, status_reason, created_at,
                                updated_at)
SELECT gen_random_uuid(), u, 'ENABLED', 'enabled by migration 0010 for an existing rule',
       now(), now()
FROM (
  SELECT DISTINCT split_part(split_part(a #>> '{http,url}', '#', 1), '?', 1) AS u
  FROM rules.topic_rules r,
       LATERAL (SELECT jsonb_array_elements(COALESCE(r.payload -> 'actions', '[]'::jsonb))
                UNION ALL SELECT r.payload -> 'errorAction') AS x(a)
  WHERE a #>> '{http,url}' IS NOT NULL
) urls
WHERE u <> '' AND position('${' IN u) = 0;
