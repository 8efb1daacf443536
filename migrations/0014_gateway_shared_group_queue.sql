-- A message a shared subscription group queued in an away member's session while no member
-- was connected: the group as its clients write it ("$share/{group}/{filter}"), so that the
-- first member to come takes it, across gateway restarts; '' for the session's own.
ALTER TABLE gateway.session_messages ADD COLUMN share text NOT NULL DEFAULT '';
