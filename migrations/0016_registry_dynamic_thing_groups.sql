-- Dynamic thing groups: a group with a fleet-indexing query (over AWS_Things) has the things
-- the query matches as its members, worked out when asked; none are stored in
-- thing_group_members. A static group has no query.
ALTER TABLE registry.thing_groups
  ADD COLUMN query_string text,
  ADD COLUMN query_version text NOT NULL DEFAULT '';
CREATE INDEX thing_groups_dynamic_idx ON registry.thing_groups (name)
  WHERE query_string IS NOT NULL;
