-- `ringtrail tail -f` (src/read/follow.rs): which transaction committed
-- each batch, and a wake-up call when one does.
--
-- `xid` is the id of the transaction that inserted the ledger row: the
-- batch's own transaction (the shipper inserts the ledger row after the
-- COPY, before COMMIT), so it equals the `xmin` of every row the batch
-- loaded. The column is added without a default first, so existing
-- ledger rows (batches committed by older versions) read NULL instead of
-- the id of this migration's transaction, and the table is not
-- rewritten; the default then applies to new rows only. The writer does
-- not name the column: nothing changes on the write path.
ALTER TABLE ringtrail.batches ADD COLUMN xid xid8;
ALTER TABLE ringtrail.batches ALTER COLUMN xid SET DEFAULT pg_current_xact_id();

-- The follower's poll: batches at or above its horizon.
CREATE INDEX batches_xid ON ringtrail.batches (xid);

-- One NOTIFY per batch (never per row), sent at COMMIT: a hint that
-- wakes a follower early; followers poll anyway. The payload is the
-- batch's transaction id.
CREATE FUNCTION ringtrail.notify_batch() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ringtrail_batches', coalesce(NEW.xid::text, ''));
    RETURN NULL;
END
$$;

CREATE TRIGGER batches_notify AFTER INSERT ON ringtrail.batches
    FOR EACH ROW EXECUTE FUNCTION ringtrail.notify_batch();
