//! Reading a sharded cluster: the real binary against real PostgreSQL
//! databases. Two shards are written through the real pipeline (the
//! layer, the writer, binary COPY, the ledger, the chain), each trace
//! entirely on one shard, the two shards' rows interleaved in time; the
//! same rows, ledger and checkpoints are then copied into a third,
//! single database. Every command that reads a cluster, given both
//! shards' URLs, must answer what it answers for the single database:
//! `query` (all rows, and `--limit`), `export`, `audit-gaps`, `trace`
//! (a trace of either shard), `stats` and `usage` (summed, the cost
//! rounded once). `verify` checks each shard and names the tampered one;
//! a bad second URL and several URLs for a single-database command fail
//! on one line. `serve --read-only` given both shards serves the console
//! of the whole cluster: its API answers what it answers for the single
//! database.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;
use ringtrail_testkit::serve::{curl, Serve};

use std::io::{Read as _, Write as _};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use ringtrail::audit::{Agent, Finish, Identity, Permission, Status, Tool, Trace};
use ringtrail::time::{micros, rfc3339_micros};
use serde_json::Value;

/// Two shards and the single database holding both shards' rows.
struct Cluster {
    shards: [String; 2],
    single: String,
    /// The trace ids written, and the shard of each.
    traces: Vec<(String, usize)>,
    /// Before the first row and after the last.
    from: SystemTime,
    to: SystemTime,
}

impl Cluster {
    /// `ringtrail args… --database-url shard0 --database-url shard1`.
    fn both(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend([
            "--database-url",
            &self.shards[0],
            "--database-url",
            &self.shards[1],
        ]);
        run(&all)
    }

    /// `ringtrail args… --database-url single`.
    fn one(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--database-url", &self.single]);
        run(&all)
    }

    /// The window of every row, as `--since` and `--until`.
    fn window(&self) -> [String; 2] {
        [
            rfc3339_micros(micros(self.from)),
            rfc3339_micros(micros(self.to)),
        ]
    }
}

/// One trace's points and plain rows, on the current dispatcher. Trace
/// `t`: user `u-{t % 3}`, model `m-a` (1 input and 1 output token a
/// call); every fifth has no permission before its tools (a gap); some
/// results give their cost ([`gives_cost`]); every seventh of the others
/// fails.
fn emit_step(trace: &Trace, t: usize, step: usize) {
    let id = trace.trace_id().to_owned();
    match step {
        0 => trace.agent(Agent::new("planner").model("m-a")),
        1 if !t.is_multiple_of(5) => trace.permission(Permission::allow("p-1")),
        1 => tracing::warn!(trace_id = %id, n = t as u64, "no permission asked"),
        2 => trace.tool(
            Tool::model_call("chat", "m-a")
                .usage(1, 1, 0)
                .status(Status::Ok),
        ),
        3 => tracing::info!(trace_id = %id, n = t as u64, "working on it"),
        4 => trace.tool(Tool::execution("search").status(Status::Ok)),
        _ => tracing::error!(n = t as u64, "a row of no trace"),
    }
}

/// Whether trace `t`'s result gives its cost (7 micro-USD): 9 traces of
/// shard 0 (even), 5 of shard 1 (odd), so each shard has an odd number
/// of priced traces.
fn gives_cost(t: usize) -> bool {
    (t.is_multiple_of(4) && t != 0) || t % 8 == 1
}

/// The result of trace `t`.
fn finish(trace: Trace, t: usize) {
    if gives_cost(t) {
        trace.finish(Finish::success().cost_micro_usd(7));
    } else if t % 7 == 3 {
        trace.finish(Finish::failure().error_type("upstream"));
    } else {
        trace.finish(Finish::success());
    }
}

/// Copies `table`'s rows from `from` into `to` (binary COPY).
fn copy_table(from: &str, to: &str, table: &str) {
    let mut data = Vec::new();
    common::client(from)
        .copy_out(&format!(
            "COPY (SELECT * FROM {table}) TO STDOUT (FORMAT binary)"
        ))
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    let mut dst = common::client(to);
    let mut w = dst
        .copy_in(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
        .unwrap();
    w.write_all(&data).unwrap();
    w.finish().unwrap();
}

/// Writes `traces` traces through two pipelines, one per shard: trace
/// `t` on shard `t % 2`, each pair's rows interleaved step by step, so
/// the shards' times interleave; then copies both into the single
/// database.
fn load(traces: usize) -> Cluster {
    let shards = [common::database(), common::database()];
    let single = common::database();
    common::apply_schema(&single, None);
    let from = SystemTime::now() - Duration::from_secs(1);
    let pipelines = [
        common::start(common::builder(&shards[0]).overflow(common::no_drops())),
        common::start(common::builder(&shards[1]).overflow(common::no_drops())),
    ];
    let mut written = Vec::new();
    for pair in (0..traces).step_by(2) {
        let ts: Vec<usize> = (pair..(pair + 2).min(traces)).collect();
        let mut open: Vec<(usize, Trace)> = ts
            .iter()
            .map(|&t| {
                let shard = t % 2;
                let id = format!("trace-{t:03}");
                written.push((id.clone(), shard));
                let trace = tracing::dispatcher::with_default(&pipelines[shard].0, || {
                    Trace::with_id(&id, Identity::user(&format!("u-{}", t % 3)))
                });
                (t, trace)
            })
            .collect();
        for step in 0..6 {
            for (t, trace) in &open {
                tracing::dispatcher::with_default(&pipelines[t % 2].0, || {
                    emit_step(trace, *t, step)
                });
            }
        }
        for (t, trace) in open.drain(..) {
            tracing::dispatcher::with_default(&pipelines[t % 2].0, || finish(trace, t));
        }
    }
    for (dispatch, guard) in pipelines {
        guard.flush().unwrap();
        let stats = guard.stats();
        assert_eq!(
            stats.lost + stats.spooled + stats.dead_lettered,
            0,
            "{stats:?}"
        );
        drop(guard);
        drop(dispatch);
    }
    let to = SystemTime::now() + Duration::from_secs(1);
    for shard in &shards {
        for table in [
            "ringtrail.logs",
            "ringtrail.batches",
            "ringtrail.checkpoints",
        ] {
            copy_table(shard, &single, table);
        }
    }
    Cluster {
        shards,
        single,
        traces: written,
        from,
        to,
    }
}

/// The cluster every read test shares (nothing here writes to it).
fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| load(40))
}

fn rows_in(url: &str) -> i64 {
    common::count(url)
}

#[test]
fn the_load_spreads_traces_and_interleaves_times() {
    let c = cluster();
    let (a, b) = (rows_in(&c.shards[0]), rows_in(&c.shards[1]));
    assert!(a > 100 && b > 100, "{a} {b}");
    assert_eq!(rows_in(&c.single), a + b);
    // No trace on both shards.
    for shard in 0..2 {
        let other = &c.shards[1 - shard];
        for (id, on) in &c.traces {
            if *on == shard {
                let n: i64 = common::client(other)
                    .query_one(
                        "SELECT count(*) FROM ringtrail.logs WHERE trace_id = $1",
                        &[id],
                    )
                    .unwrap()
                    .get(0);
                assert_eq!(n, 0, "{id} is on shard {shard} only");
            }
        }
    }
    // The merged order switches shards many times: times interleave.
    let out = c.both(&["query", "--limit", "0", "--json"]);
    let lines: Vec<Value> = assert_success(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shard_of = |v: &Value| {
        let id = v["trace_id"].as_str().or(v["context"]["trace_id"].as_str());
        id.and_then(|id| c.traces.iter().find(|(t, _)| t == id))
            .map(|(_, s)| *s)
    };
    let switches = lines
        .iter()
        .filter_map(shard_of)
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] != w[1])
        .count();
    assert!(switches > 20, "{switches} switches");
}

#[test]
fn query_merges_every_row_in_time_order_as_one_database_would() {
    let c = cluster();
    for args in [
        &["query", "--limit", "0", "--json"][..],
        &["query", "--limit", "0"][..],
        &["query", "--limit", "0", "--format", "ecs"][..],
        &["query", "--limit", "0", "--level", "warn", "--json"][..],
    ] {
        let merged = assert_success(&c.both(args));
        let single = assert_success(&c.one(args));
        assert_eq!(merged, single, "{args:?}");
    }
    let all = assert_success(&c.both(&["query", "--limit", "0", "--json"]));
    let n = all.lines().count() as i64;
    assert_eq!(
        n,
        rows_in(&c.shards[0]) + rows_in(&c.shards[1]),
        "every row"
    );
    // Sorted by (ts, id).
    let keys: Vec<(String, String)> = all
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["ts"].as_str().unwrap().to_owned(),
                v["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "ordered by ts, id");
}

#[test]
fn query_limit_counts_rows_of_the_whole_cluster() {
    let c = cluster();
    for limit in ["1", "7", "33"] {
        let args = ["query", "--limit", limit, "--json"];
        let merged = assert_success(&c.both(&args));
        assert_eq!(merged.lines().count(), limit.parse::<usize>().unwrap());
        assert_eq!(merged, assert_success(&c.one(&args)), "--limit {limit}");
    }
    // A filter and a limit together.
    let args = ["query", "--limit", "5", "--grep", "working"];
    let merged = assert_success(&c.both(&args));
    assert_eq!(merged.lines().count(), 5);
    assert_eq!(merged, assert_success(&c.one(&args)));
}

#[test]
fn export_merges_as_one_database_would() {
    let c = cluster();
    for format in ["native", "otlp"] {
        let args = ["export", "--format", format];
        let merged = assert_success(&c.both(&args));
        assert_eq!(merged, assert_success(&c.one(&args)), "{format}");
        assert_eq!(
            merged.lines().count() as i64,
            rows_in(&c.shards[0]) + rows_in(&c.shards[1])
        );
    }
    let args = ["export", "--format", "ecs", "--trace-id", "trace-013"];
    let merged = assert_success(&c.both(&args));
    assert!(merged.lines().count() >= 5);
    assert_eq!(merged, assert_success(&c.one(&args)));
}

#[test]
fn audit_gaps_across_the_shards_equal_the_single_database() {
    let c = cluster();
    let [since, until] = c.window();
    for json in [false, true] {
        let mut args = vec![
            "audit-gaps",
            "--since",
            &since,
            "--until",
            &until,
            "--grace",
            "0s",
        ];
        if json {
            args.push("--json");
        }
        let merged = assert_success(&c.both(&args));
        let single = assert_success(&c.one(&args));
        assert_eq!(merged, single, "--json {json}");
        if !json {
            // Every fifth trace lacks its permission: 8 of 40.
            assert!(
                merged.contains("8 incomplete traces of 40 with audit points"),
                "{merged}"
            );
        } else {
            assert_eq!(merged.lines().count(), 8);
        }
    }
}

#[test]
fn trace_is_found_on_either_shard() {
    let c = cluster();
    for id in ["trace-010", "trace-015"] {
        let shard = c.traces.iter().find(|(t, _)| t == id).unwrap().1;
        let merged = assert_success(&c.both(&["trace", id, "--json"]));
        assert_eq!(merged, assert_success(&c.one(&["trace", id, "--json"])));
        let report: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(report["trace_id"], id);
        assert!(report["rows"].as_array().unwrap().len() >= 6, "{merged}");
        // And what its own shard alone says.
        let own = run(&["trace", id, "--json", "--database-url", &c.shards[shard]]);
        assert_eq!(merged, assert_success(&own), "shard {shard}");
        let human = assert_success(&c.both(&["trace", id]));
        assert_eq!(human, assert_success(&c.one(&["trace", id])));
    }
    assert_eq!(
        (c.traces[10].1, c.traces[15].1),
        (0, 1),
        "one trace of each shard"
    );
    let out = c.both(&["trace", "no-such-trace"]);
    assert_one_line_failure(&out, 1, "no trace \"no-such-trace\"");
}

#[test]
fn stats_are_summed() {
    let c = cluster();
    let doc = |out: Output| -> Value { serde_json::from_str(&assert_success(&out)).unwrap() };
    let merged = doc(c.both(&["stats", "--json"]));
    let single = doc(c.one(&["stats", "--json"]));
    for key in [
        "rows",
        "by_level",
        "by_day",
        "oldest",
        "newest",
        "last_hour",
        "dead_letters",
    ] {
        assert_eq!(merged[key], single[key], "{key}");
    }
    let shard = |i: usize| doc(run(&["stats", "--json", "--database-url", &c.shards[i]]));
    let (a, b) = (shard(0), shard(1));
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(n(&merged, "rows"), n(&a, "rows") + n(&b, "rows"));
    assert_eq!(
        n(&merged["sizes"], "logs"),
        n(&a["sizes"], "logs") + n(&b["sizes"], "logs")
    );
    // The human table reads the same figures.
    let human = assert_success(&c.both(&["stats"]));
    assert!(
        human.starts_with(&format!("rows          {}", n(&merged, "rows"))),
        "{human}"
    );
}

#[test]
fn usage_is_summed_and_each_cost_rounded_once() {
    let c = cluster();
    let dir = std::env::temp_dir().join(format!("ringtrail-cluster-usage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prices = dir.join("prices.toml");
    // 1 × 0.25 + 1 × 0.25 = 0.5 micro-USD a call: the half micro-USDs of
    // the shards must be added before rounding, not after.
    std::fs::write(
        &prices,
        "[models.\"m-a\"]\ninput = 0.25\noutput = 0.25\ncached = 0\n",
    )
    .unwrap();
    let prices = prices.to_str().unwrap();
    let [since, until] = c.window();
    for by in ["model", "user", "agent", "day"] {
        for json in [true, false] {
            let mut args = vec![
                "usage", "--since", &since, "--until", &until, "--by", by, "--prices", prices,
            ];
            if json {
                args.push("--json");
            }
            let merged = assert_success(&c.both(&args));
            assert_eq!(merged, assert_success(&c.one(&args)), "--by {by}");
        }
    }
    // Rounded once: the model calls of the traces whose result gives no
    // cost are priced, 0.5 micro-USD each; the others cost what their
    // result says.
    let priced: Vec<usize> = (0..40).filter(|&t| !gives_cost(t)).collect();
    let odd = |shard: usize| priced.iter().filter(|&&t| t % 2 == shard).count() % 2 == 1;
    assert!(
        odd(0) && odd(1),
        "each shard has a half micro-USD left over"
    );
    let given = 7 * (40 - priced.len()) as i64;
    let usage = |urls: &[&str]| -> Value {
        let mut args = vec![
            "usage", "--since", &since, "--until", &until, "--prices", prices, "--json",
        ];
        for url in urls {
            args.extend(["--database-url", url]);
        }
        let out = assert_success(&run(&args));
        serde_json::from_str(out.lines().next().unwrap()).unwrap()
    };
    let group = usage(&[&c.shards[0], &c.shards[1]]);
    assert_eq!(group["group"], "m-a");
    assert_eq!(group["calls"], 80, "two tool points a trace");
    assert_eq!(group["input_tokens"], 40);
    let once = given + priced.len() as i64 / 2;
    assert_eq!(group["cost_micro_usd"], once, "{group}");
    // Each shard alone rounds its own half up: their sum is one more.
    let apart = usage(&[&c.shards[0]])["cost_micro_usd"].as_i64().unwrap()
        + usage(&[&c.shards[1]])["cost_micro_usd"].as_i64().unwrap();
    assert_eq!(apart, once + 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_checks_every_shard_and_names_the_tampered_one() {
    let c = load(8);
    let out = c.both(&["verify"]);
    let text = assert_success(&out);
    assert!(text.ends_with("in 2 chains: clean\n"), "{text}");
    // The summary adds up: what the single database holding both says.
    let single = assert_success(&c.one(&["verify"]));
    assert_eq!(text, single);
    let out = c.both(&["verify", "--json"]);
    assert_eq!((out.status.code(), stdout(&out)), (Some(0), String::new()));

    common::client(&c.shards[1])
        .batch_execute(
            "UPDATE ringtrail.logs SET message = 'rewritten' \
             WHERE id = (SELECT id FROM ringtrail.logs WHERE batch_id IS NOT NULL \
                         ORDER BY ts LIMIT 1)",
        )
        .unwrap();
    let out = c.both(&["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stdout(&out);
    let findings: Vec<&str> = text.lines().filter(|l| l.starts_with("shard ")).collect();
    assert_eq!(findings.len(), 1, "{text}");
    assert!(findings[0].starts_with("shard 1: row_changed "), "{text}");
    assert!(text.ends_with(": 1 finding\n"), "{text}");
    let err = stderr(&out);
    assert_eq!(
        err,
        "ringtrail: verification failed: 1 finding on shard 1\n"
    );
    for url in &c.shards {
        assert!(!text.contains(url.as_str()) && !err.contains(url.as_str()));
    }
    let out = c.both(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let line: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (line["shard"].clone(), line["code"].clone()),
        (1.into(), "row_changed".into())
    );
    assert!(stdout(&out).starts_with(r#"{"shard":1,"code":"row_changed""#));
    // Shard 0 alone is still clean; shard 1 alone, as before clusters.
    assert_success(&run(&["verify", "--database-url", &c.shards[0]]));
    let alone = run(&["verify", "--database-url", &c.shards[1]]);
    assert_eq!(alone.status.code(), Some(3));
    assert!(
        stdout(&alone).starts_with("row_changed "),
        "{}",
        stdout(&alone)
    );
    assert_eq!(
        stderr(&alone),
        "ringtrail: verification failed: 1 finding\n"
    );
    // A checkpoint file for one of two shards is a usage error.
    let out = c.both(&["verify", "--checkpoints", "/nonexistent"]);
    assert_one_line_failure(&out, 2, "once per --database-url");
}

#[test]
fn a_bad_second_url_is_one_line() {
    let c = cluster();
    // Unreachable, with a password that must not be printed.
    let bad = "postgres://ringtrail:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2";
    for command in [
        &["query"][..],
        &["export", "--format", "ecs"][..],
        &["trace", "trace-001"][..],
        &["audit-gaps"][..],
        &["stats"][..],
        &["usage"][..],
        &["verify"][..],
    ] {
        let mut args = command.to_vec();
        args.extend(["--database-url", &c.shards[0], "--database-url", bad]);
        let line = assert_one_line_failure(&run(&args), 1, "cannot connect to shard 1");
        assert!(!line.contains("s3cret"), "{line}");
    }
    let out = run(&[
        "query",
        "--database-url",
        &c.shards[0],
        "--database-url",
        "postgres://u:s3cret-pw@localhost/db?sslmode=bogus",
    ]);
    let line = assert_one_line_failure(&out, 1, "invalid --database-url of shard 1");
    assert!(!line.contains("s3cret"), "{line}");
}

#[test]
fn single_database_commands_refuse_several_urls() {
    let c = cluster();
    for command in [
        &["migrate"][..],
        &["retention", "--keep", "30d"][..],
        &["tail", "-n", "3"][..],
        &["demo", "--events", "10"][..],
        &["serve", "--http", "127.0.0.1:0", "--grpc", "off"][..],
    ] {
        let mut args = command.to_vec();
        args.extend([
            "--database-url",
            &c.shards[0],
            "--database-url",
            &c.shards[1],
        ]);
        assert_one_line_failure(&run(&args), 2, "works on one database");
    }
}

#[test]
fn one_url_or_database_url_reads_as_before() {
    let c = cluster();
    let args = ["query", "--limit", "12", "--json"];
    let flag = assert_success(&c.one(&args));
    let env = assert_success(&run_with_url(&args, &c.single));
    assert_eq!(flag, env);
    assert_eq!(flag.lines().count(), 12);
}

/// `GET origin+path`: 200 and its JSON.
fn get_json(origin: &str, path: &str) -> Value {
    let answer = curl(&[&format!("{origin}{path}")], b"");
    assert_eq!(
        answer.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    serde_json::from_slice(&answer.body).unwrap()
}

#[test]
fn the_read_only_console_reads_the_whole_cluster() {
    let c = cluster();
    let both = Serve::start(
        &c.shards[0],
        &["--read-only", "--database-url", &c.shards[1]],
    );
    let one = Serve::start(&c.single, &["--read-only"]);
    let [since, until] = c.window();
    let window = format!("since={since}&until={until}");
    for path in [
        format!("/api/logs?{window}&limit=1000"),
        format!("/api/logs?{window}&limit=25&level=warn"),
        "/api/traces/trace-010".to_owned(),
        "/api/traces/trace-015".to_owned(),
        format!("/api/gaps?{window}"),
        format!("/api/usage?{window}&by=user"),
        format!("/api/usage?{window}&by=model"),
        format!("/api/overview?{window}"),
    ] {
        assert_eq!(
            get_json(&both.http, &path),
            get_json(&one.http, &path),
            "{path}"
        );
    }
    // Every row, newest first, and keyset paging across the shards.
    let all = get_json(&both.http, &format!("/api/logs?{window}&limit=1000"));
    assert_eq!(
        all["rows"].as_array().unwrap().len() as i64,
        rows_in(&c.shards[0]) + rows_in(&c.shards[1])
    );
    let first = get_json(&both.http, &format!("/api/logs?{window}&limit=30"));
    let next = first["next"].as_str().unwrap();
    let second = get_json(
        &both.http,
        &format!("/api/logs?{window}&limit=30&before={next}"),
    );
    assert_eq!(
        second["rows"].as_array().unwrap()[..],
        all["rows"].as_array().unwrap()[30..60]
    );
    let gaps = get_json(&both.http, &format!("/api/gaps?{window}"));
    assert_eq!(
        (gaps["incomplete"].clone(), gaps["traces"].clone()),
        (8.into(), 40.into())
    );
    let stats = get_json(&both.http, "/api/stats");
    let single = get_json(&one.http, "/api/stats");
    for key in [
        "rows",
        "by_level",
        "by_day",
        "oldest",
        "newest",
        "last_hour_rows",
    ] {
        assert_eq!(stats[key], single[key], "{key}");
    }
    // The pages render from the cluster.
    for page in [
        format!("/?{window}"),
        format!("/logs?{window}"),
        format!("/gaps?{window}"),
        format!("/usage?{window}"),
        "/traces/trace-015".to_owned(),
    ] {
        let answer = curl(&[&format!("{}{page}", both.http)], b"");
        assert_eq!(answer.status, 200, "{page}");
    }
    let page = curl(&[&format!("{}/traces/trace-015", both.http)], b"");
    assert!(String::from_utf8_lossy(&page.body).contains("trace-015"));
    // The live tail follows one database only.
    let answer = curl(&[&format!("{}/api/tail", both.http)], b"");
    assert_eq!(answer.status, 501);
    // verify checks both shards' chains.
    let answer = curl(
        &[
            "-X",
            "POST",
            "-H",
            "Sec-Fetch-Site: same-origin",
            &format!("{}/api/verify", both.http),
        ],
        b"",
    );
    assert_eq!(answer.status, 202);
    let mut state = Value::Null;
    for _ in 0..200 {
        state = get_json(&both.http, "/api/verify");
        if state["state"] != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        (state["state"].clone(), state["chains"].clone()),
        ("clean".into(), 2.into()),
        "{state}"
    );
    assert_eq!(both.stop(), Some(0));
    assert_eq!(one.stop(), Some(0));
}

#[test]
fn serve_writes_to_one_database_only() {
    let c = cluster();
    // Without --read-only, serve writes: one database.
    let out = run(&[
        "serve",
        "--http",
        "127.0.0.1:0",
        "--grpc",
        "off",
        "--database-url",
        &c.shards[0],
        "--database-url",
        &c.shards[1],
    ]);
    assert_one_line_failure(&out, 2, "works on one database");
    // A bad second shard for the read-only console: one line, exit 1.
    let out = run(&[
        "serve",
        "--read-only",
        "--http",
        "127.0.0.1:0",
        "--database-url",
        &c.shards[0],
        "--database-url",
        "postgres://u:s3cret-pw@localhost/db?sslmode=bogus",
    ]);
    let line = assert_one_line_failure(&out, 1, "invalid --database-url of shard 1");
    assert!(!line.contains("s3cret"));
}
