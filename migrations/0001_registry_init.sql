-- The registry service's schema: things, thing types, static thing groups and thing
-- principals. Only the registry service reads or writes these tables.
--
-- Names use COLLATE "C" so that ORDER BY and keyset pagination (name > $last) compare bytes,
-- whatever the cluster's locale.
CREATE SCHEMA registry;

CREATE TABLE registry.thing_types (
  name text COLLATE "C" PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  description text NOT NULL DEFAULT '',
  searchable_attributes jsonb NOT NULL DEFAULT '[]',
  deprecated boolean NOT NULL DEFAULT false,
  deprecated_at timestamptz,
  created_at timestamptz NOT NULL
);

CREATE TABLE registry.things (
  name text COLLATE "C" PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  thing_type text COLLATE "C" REFERENCES registry.thing_types (name),
  attributes jsonb NOT NULL DEFAULT '{}',
  version bigint NOT NULL CHECK (version >= 1),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX things_type_idx ON registry.things (thing_type, name);
-- Serves ListThings' exact attribute filter (attributes @> '{"k":"v"}').
CREATE INDEX things_attributes_idx ON registry.things USING gin (attributes jsonb_path_ops);

CREATE TABLE registry.thing_groups (
  name text COLLATE "C" PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  -- Fixed at creation; a group cannot be deleted while it has children.
  parent text COLLATE "C" REFERENCES registry.thing_groups (name),
  -- The top of the hierarchy (the group itself for a root): a thing may belong to at most
  -- one group of a hierarchy.
  root text COLLATE "C" NOT NULL,
  depth integer NOT NULL CHECK (depth BETWEEN 1 AND 7),
  description text NOT NULL DEFAULT '',
  attributes jsonb NOT NULL DEFAULT '{}',
  version bigint NOT NULL CHECK (version >= 1),
  created_at timestamptz NOT NULL
);
CREATE INDEX thing_groups_parent_idx ON registry.thing_groups (parent, name);

CREATE TABLE registry.thing_group_members (
  group_name text COLLATE "C" NOT NULL REFERENCES registry.thing_groups (name) ON DELETE CASCADE,
  thing_name text COLLATE "C" NOT NULL REFERENCES registry.things (name) ON DELETE CASCADE,
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_name, thing_name)
);
CREATE INDEX thing_group_members_thing_idx ON registry.thing_group_members (thing_name, group_name);

CREATE TABLE registry.thing_principals (
  thing_name text COLLATE "C" NOT NULL REFERENCES registry.things (name),
  principal text COLLATE "C" NOT NULL,
  exclusive boolean NOT NULL,
  attached_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (thing_name, principal)
);
CREATE INDEX thing_principals_principal_idx ON registry.thing_principals (principal, thing_name);
