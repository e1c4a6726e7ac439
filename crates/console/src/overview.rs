//! What the overview shows, read in a few aggregate queries over one
//! window: rows per level per time bucket, rows committed per bucket
//! (the ledger), drops and lost rows (the writer's drop reports,
//! [`DROPPED_TARGET`](ringtrail::contract::DROPPED_TARGET)), dead letters, and audit traces complete or not, by finding
//! code, per bucket. Every count is exact.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use ringtrail::time::{micros, rfc3339_micros};
use serde_json::{json, Value};
use tokio_postgres::Client;

/// Buckets a window is cut into.
pub const BUCKETS: i64 = 48;

/// The overview of one window.
#[derive(Debug, Default)]
pub struct Overview {
    /// The window's start, Unix microseconds.
    pub since: i64,
    /// Its end (exclusive).
    pub until: i64,
    /// The bucket width, microseconds.
    pub bucket: i64,
    /// Rows per level name per bucket index.
    pub levels: BTreeMap<&'static str, Vec<i64>>,
    /// Rows committed per bucket (by the ledger's `committed_at`).
    pub committed: Vec<i64>,
    /// Dropped rows by reason (`lost` among them).
    pub dropped: BTreeMap<String, i64>,
    /// Dead letters in the window.
    pub dead_letters: i64,
    /// Traces with an audit point, per bucket of their first point.
    pub traces: Vec<i64>,
    /// Incomplete traces per finding code per bucket.
    pub incomplete: BTreeMap<&'static str, Vec<i64>>,
    /// Incomplete traces per bucket of their first point (each once,
    /// whatever its codes).
    pub incomplete_traces: Vec<i64>,
    /// Incomplete traces in all.
    pub incomplete_total: i64,
    /// Traces in all.
    pub traces_total: i64,
}

/// The five level names, most verbose first.
pub const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

fn level_bucket(level: i16) -> &'static str {
    match level {
        ..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        _ => "ERROR",
    }
}

/// Reads the overview of `[since, until)`.
pub async fn read(
    client: &Client,
    since: SystemTime,
    until: SystemTime,
    grace: Duration,
) -> ringtrail::Result<Overview> {
    let (s, u) = (micros(since), micros(until));
    let bucket = ((u - s) / BUCKETS).max(1);
    let n = ((u - s) / bucket + 1) as usize;
    let index = |t: i64| (((t - s) / bucket).clamp(0, n as i64 - 1)) as usize;
    let mut o = Overview {
        since: s,
        until: u,
        bucket,
        committed: vec![0; n],
        traces: vec![0; n],
        incomplete_traces: vec![0; n],
        ..Overview::default()
    };
    for name in LEVELS {
        o.levels.insert(name, vec![0; n]);
    }
    let origin = since;
    let width = format!("{bucket} microseconds");
    // Bucket start as Unix microseconds; the width is a number this
    // process formatted.
    let rows = client
        .query(
            "SELECT (extract(epoch FROM date_bin($3::text::interval, ts, $1)) * 1000000)::bigint, \
                    level, count(*) \
             FROM ringtrail.logs WHERE ts >= $1 AND ts < $2 GROUP BY 1, 2",
            &[&origin, &until, &width],
        )
        .await?;
    for r in rows {
        let (t, level, count): (i64, i16, i64) = (r.get(0), r.get(1), r.get(2));
        if let Some(series) = o.levels.get_mut(level_bucket(level)) {
            series[index(t)] += count;
        }
    }
    let rows = client
        .query(
            "SELECT (extract(epoch FROM date_bin($3::text::interval, committed_at, $1)) * 1000000)::bigint, \
                    sum(rows)::bigint \
             FROM ringtrail.batches WHERE committed_at >= $1 AND committed_at < $2 GROUP BY 1",
            &[&origin, &until, &width],
        )
        .await?;
    for r in rows {
        let (t, count): (i64, i64) = (r.get(0), r.get(1));
        o.committed[index(t)] += count;
    }
    let rows = client
        .query(
            "SELECT coalesce(fields->>'reason', 'unknown'), \
                    coalesce(sum(CASE WHEN jsonb_typeof(fields->'count') = 'number' \
                                      THEN (fields->>'count')::numeric END), 0)::bigint \
             FROM ringtrail.logs WHERE target = $3 AND ts >= $1 AND ts < $2 \
             GROUP BY 1",
            &[&since, &until, &ringtrail::contract::DROPPED_TARGET],
        )
        .await?;
    for r in rows {
        o.dropped.insert(r.get(0), r.get(1));
    }
    o.dead_letters = client
        .query_one(
            "SELECT count(*) FROM ringtrail.dead_letters WHERE failed_at >= $1 AND failed_at < $2",
            &[&since, &until],
        )
        .await?
        .get(0);
    // Traces with an audit point in the window, by their first point.
    let rows = client
        .query(
            "SELECT (extract(epoch FROM date_bin($3::text::interval, first, $1)) * 1000000)::bigint, \
                    count(*) \
             FROM (SELECT trace_id, min(ts) AS first FROM ringtrail.logs \
                   WHERE kind IS NOT NULL AND ts >= $1 AND ts < $2 GROUP BY trace_id) t \
             GROUP BY 1",
            &[&origin, &until, &width],
        )
        .await?;
    for r in rows {
        let (t, count): (i64, i64) = (r.get(0), r.get(1));
        o.traces[index(t)] += count;
        o.traces_total += count;
    }
    let mut gaps = Vec::new();
    ringtrail::read::each_gap(client, since, until, grace, SystemTime::now(), |g| {
        gaps.push(g)
    })
    .await?;
    for gap in &gaps {
        o.incomplete_total += 1;
        o.incomplete_traces[index(gap.first_ts_micros)] += 1;
        let mut seen = Vec::new();
        for f in &gap.findings {
            let code = f.code.as_str();
            if seen.contains(&code) {
                continue;
            }
            seen.push(code);
            o.incomplete.entry(code).or_insert_with(|| vec![0; n])[index(gap.first_ts_micros)] += 1;
        }
    }
    Ok(o)
}

impl Overview {
    /// Adds `other`'s counts to these: the overview of a sharded cluster
    /// from its shards' (read over the same window, so the same buckets;
    /// a trace lives on one shard, so its counts are not doubled).
    pub fn merge(&mut self, other: Overview) {
        fn add(to: &mut Vec<i64>, from: &[i64]) {
            if to.len() < from.len() {
                to.resize(from.len(), 0);
            }
            for (t, f) in to.iter_mut().zip(from) {
                *t += f;
            }
        }
        for (level, series) in other.levels {
            add(self.levels.entry(level).or_default(), &series);
        }
        add(&mut self.committed, &other.committed);
        for (reason, n) in other.dropped {
            *self.dropped.entry(reason).or_default() += n;
        }
        self.dead_letters += other.dead_letters;
        add(&mut self.traces, &other.traces);
        for (code, series) in other.incomplete {
            add(self.incomplete.entry(code).or_default(), &series);
        }
        add(&mut self.incomplete_traces, &other.incomplete_traces);
        self.incomplete_total += other.incomplete_total;
        self.traces_total += other.traces_total;
    }

    /// The bucket starts, as RFC 3339.
    pub fn labels(&self) -> Vec<String> {
        (0..self.committed.len())
            .map(|i| rfc3339_micros(self.since + i as i64 * self.bucket))
            .collect()
    }

    /// The overview as `/api/overview` answers it.
    pub fn to_json(&self) -> Value {
        json!({
            "since": rfc3339_micros(self.since),
            "until": rfc3339_micros(self.until),
            "bucket_micros": self.bucket,
            "buckets": self.labels(),
            "levels": self.levels,
            "committed": self.committed,
            "dropped": self.dropped,
            "dead_letters": self.dead_letters,
            "traces": self.traces,
            "traces_total": self.traces_total,
            "incomplete": self.incomplete,
            "incomplete_traces": self.incomplete_traces,
            "incomplete_total": self.incomplete_total,
        })
    }
}
