//! A large table, fast: the SQL that loads agent traces into
//! `ringtrail.logs` as the writer would have written them, for the
//! benches that read a large table (`usage`, `console`).
//!
//! Each trace has six audit points (identity with the user, agent with
//! its name and a model among three, permission, a model call with token
//! counts, a tool execution, a result that gives `cost.micro_usd` for one
//! trace in three) and nine plain rows, interleaved in time order.

/// Rows per trace: six audit points and nine plain rows.
pub const ROWS_PER_TRACE: u64 = 15;

/// The load: trace `t` (id: the MD5 of `t`) starts at `t × 500 ms` after
/// a base chosen so that the last one starts ten minutes ago; its points
/// are 10 ms apart, its plain rows 7 ms apart around them.
pub fn audit_table_sql(traces: u64) -> String {
    format!(
        "SET synchronous_commit = off;
         INSERT INTO ringtrail.logs
             (ts, id, level, target, message, fields, trace_id, user_id, truncated, kind)
         SELECT ts, gen_random_uuid(), 9, target, message, fields, trace_id, user_id, false, kind
         FROM (
             SELECT now() - {span_ms} * interval '1 ms' + t * interval '500 ms' + k * interval '10 ms' AS ts,
                    'ringtrail::audit' AS target,
                    (ARRAY['identity', 'agent', 'permission', 'tool', 'tool', 'result'])[k] AS message,
                    CASE k
                      WHEN 1 THEN jsonb_build_object('audit.point', 'identity', 'auth.method', 'oauth')
                      WHEN 2 THEN jsonb_build_object('audit.point', 'agent', 'agent.id', 'agent-' || t % 5,
                                                     'agent.name', 'Agent ' || t % 5,
                                                     'gen_ai.request.model', {model},
                                                     'gen_ai.provider.name', 'openai')
                      WHEN 3 THEN jsonb_build_object('audit.point', 'permission', 'decision', 'allow',
                                                     'policy.id', 'p-7', 'gen_ai.tool.name', 'search')
                      WHEN 4 THEN jsonb_build_object('audit.point', 'tool', 'gen_ai.operation.name', 'chat',
                                                     'gen_ai.request.model', {model}, 'status', 'ok',
                                                     'gen_ai.usage.input_tokens', 500 + t % 1000,
                                                     'gen_ai.usage.output_tokens', 50 + t % 200,
                                                     'gen_ai.usage.cached_tokens', (t % 4) * 100)
                      WHEN 5 THEN jsonb_build_object('audit.point', 'tool', 'gen_ai.tool.name', 'search',
                                                     'status', 'ok', 'duration_ns', 1200000)
                      ELSE jsonb_build_object('audit.point', 'result', 'outcome', 'success')
                           || CASE WHEN t % 3 = 0 THEN jsonb_build_object('cost.micro_usd', 1000 + t % 7)
                                   ELSE '{{}}'::jsonb END
                    END AS fields,
                    md5(t::text) AS trace_id,
                    CASE WHEN k = 1 THEN 'u-' || t % 1000 END AS user_id,
                    (ARRAY[1, 2, 3, 4, 4, 5])[k]::smallint AS kind
             FROM generate_series(1, {traces}) t, generate_series(1, 6) k
             UNION ALL
             SELECT now() - {span_ms} * interval '1 ms' + t * interval '500 ms' + j * interval '7 ms',
                    'my_app::handler',
                    'request step ' || j,
                    jsonb_build_object('method', 'POST', 'path', '/v1/orders', 'items', j),
                    CASE WHEN j = 0 THEN NULL ELSE md5(t::text) END,
                    'u-' || t % 1000,
                    NULL::smallint
             FROM generate_series(1, {traces}) t, generate_series(0, 8) j
             ORDER BY 1
         ) rows;",
        model = "(ARRAY['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4'])[1 + t % 3]",
        span_ms = traces * 500 + 600_000,
    )
}
