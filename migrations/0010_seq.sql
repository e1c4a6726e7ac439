-- Each row's sequence number on the thread that emitted it (1 for a
-- thread's first event, then one more per event; `Row::seq`). Stored time
-- has microsecond precision, and the writer gives ids in the order it
-- drains slots (the audit reserve first), so within one microsecond only
-- `seq` keeps one thread's events in the order they happened: the read
-- side orders by `ts, seq, id`. Rows written before this migration, and
-- rows no thread emitted (drop reports), hold 0. A constant default
-- rewrites nothing.
ALTER TABLE ringtrail.logs ADD COLUMN seq bigint NOT NULL DEFAULT 0;
