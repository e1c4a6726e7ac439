-- The two NOLOGIN roles and their grants (docs/roles.md), run by
-- schema::apply after the migrations, every time: idempotent, and a role
-- a DBA makes later gets its grants at the next apply. A migrating role
-- without CREATEROLE skips making them (a NOTICE says so) and grants to
-- those that exist.
--
-- ringtrail_writer: what the pipeline needs with Builder::migrate(false):
-- INSERT on the tables it writes, SELECT on the ledger (has this batch
-- committed?) and on the migrations (is the schema there?). No UPDATE,
-- DELETE or TRUNCATE anywhere: a compromised application cannot rewrite
-- its own audit trail.
-- ringtrail_reader: SELECT only (query, tail, trace, export, verify, the
-- console).
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['ringtrail_writer', 'ringtrail_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION
                WHEN insufficient_privilege THEN
                    RAISE NOTICE 'ringtrail: role % not made (no CREATEROLE); a DBA can run CREATE ROLE % NOLOGIN, then ringtrail migrate', r, r;
                -- Roles are the cluster's: a migration of another database
                -- made it meanwhile (the advisory lock is per database).
                WHEN unique_violation OR duplicate_object THEN
                    NULL;
            END;
        END IF;
    END LOOP;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ringtrail_writer') THEN
        GRANT USAGE ON SCHEMA ringtrail TO ringtrail_writer;
        REVOKE ALL ON ALL TABLES IN SCHEMA ringtrail FROM ringtrail_writer;
        GRANT INSERT ON ringtrail.logs, ringtrail.batches, ringtrail.dead_letters,
                        ringtrail.checkpoints TO ringtrail_writer;
        GRANT SELECT ON ringtrail.batches, ringtrail.schema_migrations TO ringtrail_writer;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ringtrail_reader') THEN
        GRANT USAGE ON SCHEMA ringtrail TO ringtrail_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA ringtrail TO ringtrail_reader;
    END IF;
END
$$;
