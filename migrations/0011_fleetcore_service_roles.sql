-- Least privilege in the database: one role per service, fleetcore_<service>, that can read
-- and write the tables of its own schema and nothing else (no DDL, no other schema). The
-- migrations keep running as the owner; each service logs in as its role (fleetcore-migrate
-- --service-passwords-dir gives the roles their passwords), so a service cannot touch
-- another's data even by mistake. The roles are NOLOGIN until then.
--
-- Roles belong to the whole Postgres cluster: one that exists (made by an earlier database,
-- or by an operator beforehand) is reused. Creating them needs CREATEROLE.
DO $$
DECLARE
  service text;
  role text;
BEGIN
  FOREACH service IN ARRAY ARRAY['registry', 'policy', 'ca', 'gateway', 'shadow', 'rules'] LOOP
    role := 'fleetcore_' || service;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', role);
      EXCEPTION
        WHEN duplicate_object OR unique_violation THEN
          NULL;  -- another database's migration made it meanwhile
        WHEN insufficient_privilege THEN
          RAISE EXCEPTION 'cannot create role %: give the migrating user CREATEROLE, or '
                          'create the roles fleetcore_registry, fleetcore_policy, fleetcore_ca, '
                          'fleetcore_gateway, fleetcore_shadow and fleetcore_rules (NOLOGIN) '
                          'beforehand', role;
      END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', service, role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
                   service, role);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I',
                   service, role);
    -- Tables and sequences later migrations make (as this same owner) are granted too.
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, '
                   'DELETE ON TABLES TO %I', service, role);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON '
                   'SEQUENCES TO %I', service, role);
  END LOOP;
END
$$;
