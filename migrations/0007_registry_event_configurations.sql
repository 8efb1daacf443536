-- AWS IoT's event configurations (UpdateEventConfigurations): which kinds of registry
-- events (THING, THING_GROUP, ...) the registry publishes on $aws/events/.... A kind
-- without a row is off, as on AWS.
CREATE TABLE registry.event_configurations (
  event_type text PRIMARY KEY,
  enabled boolean NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
