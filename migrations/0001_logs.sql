-- ringtrail.logs: one row per tracing event, loaded by binary COPY.
--
-- Ingest speed rules (see ARCHITECTURE.md):
--   * no volatile defaults and no BEFORE INSERT triggers: either would turn
--     COPY's batched multi-insert back into row-at-a-time inserts;
--   * ids and timestamps come from the client (UUIDv7 from the writer);
--   * one BRIN index on ts, which costs almost nothing to maintain on
--     append-mostly, time-ordered data. No primary key: ids are unique by
--     construction, and a btree would halve COPY throughput.

CREATE TABLE ringtrail.logs (
    ts          timestamptz NOT NULL,
    id          uuid        NOT NULL,
    level       smallint    NOT NULL,  -- OpenTelemetry severity: TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17
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
    truncated   boolean     NOT NULL   -- true when message, a value or fields were cut to fit the record
);

CREATE INDEX logs_ts_brin ON ringtrail.logs USING brin (ts);

-- The severity number as the name `tracing` uses.
CREATE FUNCTION ringtrail.level_name(level smallint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN level >= 17 THEN 'ERROR'
        WHEN level >= 13 THEN 'WARN'
        WHEN level >= 9  THEN 'INFO'
        WHEN level >= 5  THEN 'DEBUG'
        ELSE 'TRACE'
    END;

-- ringtrail.logs with the level as text, for people reading rows by hand.
CREATE VIEW ringtrail.logs_view AS
SELECT ts, id, ringtrail.level_name(level) AS level, level AS severity_number,
       target, message, fields,
       trace_id, user_id, session_id, task_id, context_id, client_id,
       span_name, file, line, truncated
FROM ringtrail.logs;
