-- Fleet indexing's configuration (UpdateIndexingConfiguration): whether each index is on.
-- Both start on, as they were before this table. The rows always exist, so that turning
-- AWS_Things off and creating a dynamic group (which needs it) lock the same row.
CREATE TABLE registry.indexing_configuration (
  index_name text COLLATE "C" PRIMARY KEY
    CHECK (index_name IN ('AWS_Things', 'AWS_ThingGroups')),
  -- AWS_Things: OFF or REGISTRY; AWS_ThingGroups: OFF or ON.
  mode text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO registry.indexing_configuration (index_name, mode)
  VALUES ('AWS_Things', 'REGISTRY'), ('AWS_ThingGroups', 'ON');
