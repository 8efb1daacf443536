-- A thing type's mqtt5Configuration.propagatingAttributes (message enrichment), as AWS's
-- API writes them: [{"userPropertyKey": ..., "thingAttribute" | "connectionAttribute": ...}].
ALTER TABLE registry.thing_types ADD COLUMN propagating_attributes jsonb NOT NULL DEFAULT '[]';
