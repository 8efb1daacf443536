-- Access keys for AWS Signature Version 4 (MQTT over WebSocket, HTTPS publish), as IAM
-- users' are: a user name, its key id, and its secret, sealed with AES-256-GCM under the
-- policy service's key file (never stored in the clear: it must be usable to check a
-- signature, so it cannot be hashed). IoT policies attach to the user's ARN,
-- arn:aws:iam::{account}:user/{name}, in policy.attachments.
CREATE TABLE policy.access_keys (
  access_key_id text COLLATE "C" PRIMARY KEY,
  user_name text COLLATE "C" NOT NULL,
  -- base64 of nonce (12 bytes) || ciphertext || tag (16 bytes); the key id is the
  -- associated data, so a sealed secret copied to another key's row does not open.
  sealed_secret text NOT NULL,
  active boolean NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX access_keys_user_idx ON policy.access_keys (user_name, access_key_id);
