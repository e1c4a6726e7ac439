-- Range partitions on ts (src/read/partitions.rs creates them ahead of
-- time), a DEFAULT partition as a parachute, and the retention log.
--
-- The plain table becomes the first partition, not a copy: it is renamed
-- to ringtrail.logs_legacy and ATTACHed with bounds FROM (MINVALUE) TO
-- (tomorrow, 00:00 UTC). Attaching scans it once to check the bound (no
-- row is rewritten, no index rebuilt: the parent's indexes are matched to
-- its own). The few rows dated tomorrow or later (a clock ahead) move to
-- the DEFAULT partition first. An empty table (a new install) is simply
-- dropped. Everything runs in migrate::apply's transaction, so either all
-- of it happens or none of it.
--
-- Ingest speed rules still hold: no volatile default, no trigger, no
-- primary key (one would have to include ts). Citus rules (docs/scaling.md):
-- no foreign key from logs to anything, every column of a future unique key
-- NOT NULL, nothing here a coordinator would refuse.

ALTER TABLE ringtrail.logs RENAME TO logs_legacy;
-- A partition's index is named after the parent's index and the
-- partition: logs_audit_trace_legacy, logs_audit_trace_default,
-- logs_audit_trace_p20261203 (partitions::ensure does the same).
ALTER INDEX ringtrail.logs_ts_brin RENAME TO logs_ts_brin_legacy;
ALTER INDEX ringtrail.logs_audit_trace RENAME TO logs_audit_trace_legacy;
-- The view follows the renamed table; it is recreated on the new one.
DROP VIEW ringtrail.logs_view;

-- The same columns in the same order: the writer's binary COPY names
-- them (LOG_COLUMNS), and old spool segments COPY a prefix of them.
CREATE TABLE ringtrail.logs (
    ts          timestamptz NOT NULL,
    id          uuid        NOT NULL,
    level       smallint    NOT NULL,
    target      text        NOT NULL,
    message     text        NOT NULL,
    fields      jsonb       NOT NULL,
    trace_id    text,
    user_id     text,
    session_id  text,
    task_id     text,
    context_id  text,
    client_id   text,
    span_name   text,
    file        text,
    line        integer,
    truncated   boolean     NOT NULL,
    kind        smallint,
    redacted    smallint    NOT NULL DEFAULT 0
) PARTITION BY RANGE (ts);

-- Defined on the parent, so every partition (made here, by
-- partitions::ensure, or by hand and attached) gets them.
CREATE INDEX logs_ts_brin ON ringtrail.logs USING brin (ts);
CREATE INDEX logs_audit_trace ON ringtrail.logs (trace_id, ts) WHERE kind IS NOT NULL;

-- Any row lands: a timestamp no partition covers goes here, so a COPY never
-- fails for want of a partition. Never dropped by retention. Made with its
-- indexes named, then attached (which adopts them).
CREATE TABLE ringtrail.logs_default (LIKE ringtrail.logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE INDEX logs_ts_brin_default ON ringtrail.logs_default USING brin (ts);
CREATE INDEX logs_audit_trace_default ON ringtrail.logs_default (trace_id, ts) WHERE kind IS NOT NULL;
ALTER TABLE ringtrail.logs ATTACH PARTITION ringtrail.logs_default DEFAULT;

DO $$
DECLARE
    bound timestamptz := (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ringtrail.logs_legacy) THEN
        DROP TABLE ringtrail.logs_legacy;
    ELSE
        WITH moved AS (
            DELETE FROM ringtrail.logs_legacy WHERE ts >= bound RETURNING *
        )
        INSERT INTO ringtrail.logs_default SELECT * FROM moved;
        EXECUTE format(
            'ALTER TABLE ringtrail.logs ATTACH PARTITION ringtrail.logs_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
            to_char(bound AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    END IF;
END $$;

CREATE VIEW ringtrail.logs_view AS
SELECT ts, id, ringtrail.level_name(level) AS level, level AS severity_number,
       target, message, fields,
       trace_id, user_id, session_id, task_id, context_id, client_id,
       span_name, file, line, truncated,
       kind,
       CASE kind WHEN 1 THEN 'identity' WHEN 2 THEN 'agent' WHEN 3 THEN 'permission'
                 WHEN 4 THEN 'tool' WHEN 5 THEN 'result' END AS point,
       redacted
FROM ringtrail.logs;

-- One row per partition retention dropped, written in the transaction
-- that drops it (src/read/retention.rs). range_from is NULL for a
-- partition bounded below by MINVALUE. No identity or serial column: the
-- table stays trivially movable (a Citus reference or local table).
CREATE TABLE ringtrail.retention_log (
    partition   text        NOT NULL,
    rows        bigint      NOT NULL,
    range_from  timestamptz,
    range_to    timestamptz NOT NULL,
    dropped_at  timestamptz NOT NULL DEFAULT now(),
    dropped_by  text        NOT NULL
);
