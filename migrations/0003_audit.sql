-- Five-point audit traces (src/audit/): the point an event is, as a number.
--
-- `kind` is 1 identity, 2 agent, 3 permission, 4 tool, 5 result
-- (`ringtrail::audit::Point::kind`), NULL for every other event. Adding a
-- nullable column with no default rewrites nothing: existing rows read NULL.
ALTER TABLE ringtrail.logs ADD COLUMN kind smallint;

-- Audit points of one trace, in timeline order, for `ringtrail trace` and
-- `ringtrail audit-gaps`. Partial: plain-log rows (kind IS NULL) never
-- enter it, so plain-log ingest pays nothing for it.
CREATE INDEX logs_audit_trace ON ringtrail.logs (trace_id, ts) WHERE kind IS NOT NULL;

-- The view gains the column, with the point's name beside it.
CREATE OR REPLACE VIEW ringtrail.logs_view AS
SELECT ts, id, ringtrail.level_name(level) AS level, level AS severity_number,
       target, message, fields,
       trace_id, user_id, session_id, task_id, context_id, client_id,
       span_name, file, line, truncated,
       kind,
       CASE kind WHEN 1 THEN 'identity' WHEN 2 THEN 'agent' WHEN 3 THEN 'permission'
                 WHEN 4 THEN 'tool' WHEN 5 THEN 'result' END AS point
FROM ringtrail.logs;
