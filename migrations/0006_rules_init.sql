-- The rules service's schema: topic rules, each with AWS's rule payload (SQL, actions, error
-- action) as JSON. Only the rules service reads or writes it.
CREATE SCHEMA rules;

CREATE TABLE rules.topic_rules (
  name text COLLATE "C" PRIMARY KEY,
  payload jsonb NOT NULL,
  -- The SQL's FROM filter: ListTopicRules by topic, and the gateway's ingest filters.
  topic_pattern text NOT NULL,
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX topic_rules_topic_idx ON rules.topic_rules (topic_pattern, name);
