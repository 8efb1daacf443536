-- The shadow service's schema: one row per device shadow. Only the shadow service reads or
-- writes it.
--
-- shadow_name is '' for a thing's classic shadow. A deleted shadow keeps its row (present
-- false, its version and deleted_at_s) so a re-creation within 48 hours continues the
-- version, as AWS does; rows deleted longer ago are reused from version 0.
CREATE SCHEMA shadow;

CREATE TABLE shadow.shadows (
  thing_name text COLLATE "C" NOT NULL,
  shadow_name text COLLATE "C" NOT NULL,
  version bigint NOT NULL CHECK (version >= 0),
  state jsonb NOT NULL,
  metadata jsonb NOT NULL,
  present boolean NOT NULL,
  deleted_at_s bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (thing_name, shadow_name)
);
