-- Redaction (src/redact/): how many values or spans of text the writer
-- replaced in the row before storing it. A constant default adds the
-- column without rewriting the table; existing rows read 0.
ALTER TABLE ringtrail.logs ADD COLUMN redacted smallint NOT NULL DEFAULT 0;

CREATE OR REPLACE VIEW ringtrail.logs_view AS
SELECT ts, id, ringtrail.level_name(level) AS level, level AS severity_number,
       target, message, fields,
       trace_id, user_id, session_id, task_id, context_id, client_id,
       span_name, file, line, truncated,
       kind,
       CASE kind WHEN 1 THEN 'identity' WHEN 2 THEN 'agent' WHEN 3 THEN 'permission'
                 WHEN 4 THEN 'tool' WHEN 5 THEN 'result' END AS point,
       redacted
FROM ringtrail.logs;
