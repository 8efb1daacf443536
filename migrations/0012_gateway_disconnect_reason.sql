-- Why a stored session's last connection ended (GetConnection's disconnectReason), kept
-- across gateway restarts: '' while a connection is attached, and for sessions stored
-- before this migration.
ALTER TABLE gateway.sessions ADD COLUMN disconnect_reason text NOT NULL DEFAULT '';
