-- Billing groups: flat groups of things for cost allocation. A thing is in at most one,
-- so its billing group is a column of the thing; deleting the group leaves its things in
-- none.
CREATE TABLE registry.billing_groups (
  name text COLLATE "C" PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  description text NOT NULL DEFAULT '',
  version bigint NOT NULL CHECK (version >= 1),
  created_at timestamptz NOT NULL
);

ALTER TABLE registry.things
  ADD COLUMN billing_group text COLLATE "C"
    REFERENCES registry.billing_groups (name) ON DELETE SET NULL;
-- Serves ListThingsInBillingGroup, and the foreign key's SET NULL on delete.
CREATE INDEX things_billing_group_idx ON registry.things (billing_group, name)
  WHERE billing_group IS NOT NULL;
