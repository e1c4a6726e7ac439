-- Hygiene for a least-privilege setup (docs/roles.md). The roles and
-- their grants are not here: src/schema/roles.sql runs on every apply, so
-- a role made later by a DBA gets its grants at the next `ringtrail
-- migrate`.

-- The ledger row's xid is the inserting transaction's, whatever the INSERT
-- says: `ringtrail tail -f` matches a batch's rows by it (xmin = xid), so
-- a forged value could hide a later batch from a follower (a future xid
-- taken as shown) or break it (one past bigint). One call per batch, never
-- per row.
CREATE FUNCTION ringtrail.batch_xid() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    NEW.xid := pg_current_xact_id();
    RETURN NEW;
END
$$;

CREATE TRIGGER batches_xid BEFORE INSERT ON ringtrail.batches
    FOR EACH ROW EXECUTE FUNCTION ringtrail.batch_xid();

-- A trigger function runs as whoever inserts: resolve names in the
-- catalog only, never in a schema the inserting role can write.
-- (level_name has an SQL-standard body, bound when it was created.)
ALTER FUNCTION ringtrail.notify_batch() SET search_path = pg_catalog, pg_temp;
