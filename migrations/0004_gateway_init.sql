-- The gateway's schema: what must survive a gateway restart. Retained messages, and the
-- persistent sessions (MQTT 3.1.1 clean session 0, MQTT 5 session expiry) with their
-- subscriptions, pending will and the QoS 1/2 messages held for their clients. The gateway
-- writes these behind its I/O (batched, in order) and reads them once at start-up; only the
-- gateway reads or writes them.
CREATE SCHEMA gateway;

-- Messages are stored as the MQTT 5 PUBLISH packet (fleetcore's codec), properties and
-- all; expiry is kept apart as an absolute time, since a packet holds only an interval.
CREATE TABLE gateway.retained_messages (
  topic text COLLATE "C" PRIMARY KEY,
  packet bytea NOT NULL,
  expires_at timestamptz,
  updated_at timestamptz NOT NULL
);

CREATE TABLE gateway.sessions (
  client_id text COLLATE "C" PRIMARY KEY,
  protocol_version smallint NOT NULL CHECK (protocol_version IN (4, 5)),
  -- Seconds the session outlives its connection; 4294967295: forever.
  expiry_interval bigint NOT NULL CHECK (expiry_interval > 0),
  -- NULL while a connection is attached.
  disconnected_at timestamptz,
  -- [{"filter": "a/+", "qos": 1, "noLocal": false, "retainAsPublished": false,
  --   "retainHandling": 0, "subscriptionId": 0}, ...]
  subscriptions jsonb NOT NULL,
  -- A will waiting for its delay: the PUBLISH packet and when it is due.
  will_packet bytea,
  will_due timestamptz,
  -- QoS 2 packet identifiers received from the client and not yet released.
  inbound_qos2 integer[] NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL
);

CREATE TABLE gateway.session_messages (
  client_id text COLLATE "C" NOT NULL REFERENCES gateway.sessions ON DELETE CASCADE,
  -- Order within the session.
  seq bigint NOT NULL,
  -- The PUBLISH as it goes to the client, with its QoS and RETAIN flag; packet_id 0 until
  -- it was sent.
  packet bytea NOT NULL,
  packet_id integer NOT NULL DEFAULT 0,
  subscription_ids bigint[] NOT NULL DEFAULT '{}',
  -- QoS 2: PUBREC received, PUBREL sent.
  released boolean NOT NULL DEFAULT false,
  expires_at timestamptz,
  PRIMARY KEY (client_id, seq)
);
