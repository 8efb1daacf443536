-- The gateway deletes retained messages whose MQTT 5 expiry has passed (every 10 s while
-- some have expired, and at start-up): by this index, not by a scan of every retained
-- message. Only messages with an expiry are in it.
CREATE INDEX retained_messages_expires_at ON gateway.retained_messages (expires_at)
  WHERE expires_at IS NOT NULL;
