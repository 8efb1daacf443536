-- Gateway replicas (docs/architecture.md, "Gateway replicas"): each stored session is one
-- replica's, named here by its node id ('' for a gateway that runs alone). A replica loads
-- only its own sessions at start, writes only its own, and takes one over, rows and all,
-- when its client resumes the session there.
ALTER TABLE gateway.sessions ADD COLUMN owner text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX sessions_owner_idx ON gateway.sessions (owner);
