//! # `scaling`: producer threads × lanes
//!
//! How ringtrail scales with the threads that log and the lanes
//! (connections) that load: a sweep over **1, 2, 4, 8 and 16 producer
//! threads** and **1, 2, 4 and 8 lanes**, on default settings otherwise
//! (`Builder::new().postgres(url).lanes(n)`, the default 16,384-slot ring)
//! except the overflow policy, `Block` for two minutes, so that no phase
//! can lose an event to a full ring unless the writer stops.
//!
//! For each lane count, one pipeline; for each thread count, two phases:
//!
//! - **hot path events/s**: the threads emit [`HOT_EVENTS`] events between
//!   them in bursts of 8,192 (half the ring, so it cannot fill even if the
//!   writer does not run; `support::Crew`, as `benches/hot_path.rs` does),
//!   with a `flush()` between bursts, untimed: events ÷ the summed wall
//!   time of the bursts, across all threads. The bench's usual event
//!   (`support::emit`), in an entered `request` span.
//! - **ingest events/s**: on an emptied table, the threads emit
//!   [`INGEST_EVENTS`] events flat out, in one round (a full ring makes them
//!   wait): events ÷ the wall time from the start until `flush()` returned,
//!   when every one is committed (the bench checks the counters).
//! - **dropped**: `Stats::dropped` over both phases; it should be 0.
//!
//! Then the **raw COPY baseline on as many connections as lanes**: the
//! last round's rows, as the server holds them (`COPY (SELECT …) TO STDOUT
//! (FORMAT binary)`), cut into transactions of 8,192 rows, loaded back
//! into the emptied table by `lanes` client connections at once (`BEGIN;
//! COPY … FROM STDIN; COMMIT`, pre-encoded: no capture, no encoding). The
//! median of three. Every ingest figure is also given as a ratio to it.
//!
//! The table is printed as markdown, and the curves are drawn into an SVG
//! (`benches/results/<date>-scaling.svg`, or `RINGTRAIL_SCALING_SVG`).
//!
//! ```text
//! cargo bench --bench scaling      # about 2 minutes on 2 cores
//! cargo test --benches             # smoke run: a few thousand events, no SVG
//! ```
//!
//! The server is a throwaway cluster with PostgreSQL's default, durable
//! settings, or a fresh database on the server at `DATABASE_URL`.

mod support;

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use tracing_subscriber::prelude::*;

/// Producer threads swept.
const THREADS: [usize; 5] = [1, 2, 4, 8, 16];
/// Lanes (connections) swept.
const LANES: [usize; 4] = [1, 2, 4, 8];
/// Events of the hot path phase, all threads together.
const HOT_EVENTS: u64 = 200_000;
/// Events of the ingest phase, all threads together.
const INGEST_EVENTS: u64 = 400_000;
/// Events of either phase in the smoke run.
const SMOKE_EVENTS: u64 = 4_000;
/// Events per hot path burst: half the default ring.
const BURST: u64 = 8_192;
/// Rows per transaction of the raw COPY baseline (ringtrail's default
/// `batch_rows`).
const BATCH_ROWS: usize = 8_192;
/// Rounds of the raw COPY baseline; the median is kept.
const RAW_ROUNDS: usize = 3;

/// One round's figures.
#[derive(Debug, Clone, Copy)]
struct Round {
    threads: usize,
    lanes: usize,
    hot_per_s: f64,
    ingest_per_s: f64,
    raw_per_s: f64,
    dropped: u64,
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (hot_events, ingest_events) = if smoke {
        (SMOKE_EVENTS, SMOKE_EVENTS)
    } else {
        (HOT_EVENTS, INGEST_EVENTS)
    };
    let (_cluster, url) = ringtrail_cluster::durable_database("ringtrail_scaling_bench")
        .expect("a benchmark database (a throwaway cluster, or set DATABASE_URL)");
    let mut admin = Client::connect(&url, NoTls).expect("connect to the benchmark database");
    let lanes_swept: &[usize] = if smoke { &LANES[..2] } else { &LANES };
    let threads_swept: &[usize] = if smoke { &THREADS[..3] } else { &THREADS };
    let mut rounds = Vec::new();
    for &lanes in lanes_swept {
        let (layer, guard) = ringtrail::Builder::new()
            .postgres(url.clone())
            .lanes(lanes)
            .overflow(ringtrail::OverflowPolicy::Block {
                timeout: Duration::from_secs(120),
            })
            .build()
            .expect("a pipeline");
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        let mut these = Vec::new();
        for &threads in threads_swept {
            let before = guard.stats();
            let (hot, ingest) = tracing::dispatcher::with_default(&dispatch, || {
                let span = support::request_span();
                let _entered = span.enter();
                let crew = support::Crew::start(threads - 1, &dispatch, |_, n| support::emit_n(n));
                let mut hot = Duration::ZERO;
                let mut left = hot_events;
                while left > 0 {
                    let n = left.min(BURST);
                    let (helper, own) = support::split(n, threads);
                    hot += crew.round(helper, || support::emit_n(own));
                    guard.flush().expect("flush");
                    left -= n;
                }
                empty(&mut admin);
                let (helper, own) = support::split(ingest_events, threads);
                let began = Instant::now();
                crew.round(helper, || support::emit_n(own));
                guard.flush().expect("flush");
                (hot, began.elapsed())
            });
            let after = guard.stats();
            let dropped = after.dropped - before.dropped;
            let enqueued = after.enqueued - before.enqueued;
            assert_eq!(enqueued + dropped, hot_events + ingest_events, "{after:?}");
            assert!(
                after.written - before.written >= enqueued && after.lost == 0,
                "every enqueued event committed: {after:?}"
            );
            these.push(Round {
                threads,
                lanes,
                hot_per_s: hot_events as f64 / hot.as_secs_f64(),
                ingest_per_s: ingest_events as f64 / ingest.as_secs_f64(),
                raw_per_s: 0.0,
                dropped,
            });
        }
        drop(guard);
        // The last round's rows are in the table: the baseline loads them.
        let raw = raw_copy(&mut admin, &url, lanes);
        for round in &mut these {
            round.raw_per_s = raw;
        }
        rounds.extend(these);
    }
    if smoke {
        assert!(rounds
            .iter()
            .all(|r| r.ingest_per_s > 0.0 && r.raw_per_s > 0.0));
        return;
    }
    print_table(&rounds, hot_events, ingest_events);
    let svg = svg(&rounds);
    let path = std::env::var("RINGTRAIL_SCALING_SVG").unwrap_or_else(|_| {
        let day = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
        format!("benches/results/{day}-scaling.svg")
    });
    std::fs::write(&path, svg).expect("write the SVG");
    println!("\nPlot: {path}");
}

/// Empties ringtrail's tables (and checkpoints, so one round's dirty pages
/// do not land in the next).
fn empty(admin: &mut Client) {
    admin
        .batch_execute(
            "TRUNCATE ringtrail.logs, ringtrail.batches, ringtrail.dead_letters; CHECKPOINT",
        )
        .expect("truncate");
}

/// The rows in `ringtrail.logs`, in binary COPY transactions of
/// [`BATCH_ROWS`] rows, loaded back by `connections` clients at once into
/// the emptied table: rows per second, the median of [`RAW_ROUNDS`].
fn raw_copy(admin: &mut Client, url: &str, connections: usize) -> f64 {
    let mut out = Vec::new();
    admin
        .copy_out("COPY (SELECT * FROM ringtrail.logs) TO STDOUT (FORMAT binary)")
        .expect("copy out")
        .read_to_end(&mut out)
        .expect("read the copy");
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM ringtrail.logs", &[])
        .expect("count the rows")
        .get(0);
    let chunks = Arc::new(support::split_copy(&out, BATCH_ROWS));
    let mut rates: Vec<f64> = (0..RAW_ROUNDS)
        .map(|_| {
            empty(admin);
            let start = Arc::new(Barrier::new(connections + 1));
            let loaders: Vec<_> = (0..connections)
                .map(|c| {
                    let (chunks, start, url) = (chunks.clone(), start.clone(), url.to_owned());
                    std::thread::spawn(move || {
                        let mut client = Client::connect(&url, NoTls).expect("connect");
                        start.wait();
                        for bytes in chunks.iter().skip(c).step_by(connections) {
                            let mut tx = client.transaction().expect("begin");
                            let mut copy = tx
                                .copy_in("COPY ringtrail.logs FROM STDIN (FORMAT binary)")
                                .expect("copy in");
                            copy.write_all(bytes).expect("copy bytes");
                            copy.finish().expect("copy finish");
                            tx.commit().expect("commit");
                        }
                    })
                })
                .collect();
            start.wait();
            let began = Instant::now();
            for loader in loaders {
                loader.join().expect("a loader");
            }
            rows as f64 / began.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn print_table(rounds: &[Round], hot_events: u64, ingest_events: u64) {
    println!(
        "## scaling: producer threads × lanes ({hot_events} events in hot path bursts, then {ingest_events} flat out, per round)\n"
    );
    println!(
        "| lanes | threads | hot path events/s | ingest events/s | raw COPY rows/s, as many connections | ingest ÷ raw COPY | dropped |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in rounds {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.2}× | {} |",
            r.lanes,
            r.threads,
            r.hot_per_s,
            r.ingest_per_s,
            r.raw_per_s,
            r.ingest_per_s / r.raw_per_s,
            r.dropped
        );
    }
}

/// Two line charts side by side, one line per lane count: hot path
/// events/s against threads, and ingest ÷ raw COPY against threads.
fn svg(rounds: &[Round]) -> String {
    let (w, h) = (920.0, 400.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let lanes: Vec<usize> = dedup(rounds.iter().map(|r| r.lanes));
    let series = |value: fn(&Round) -> f64| -> Vec<(String, Vec<(usize, f64)>)> {
        lanes
            .iter()
            .map(|&l| {
                let points = rounds
                    .iter()
                    .filter(|r| r.lanes == l)
                    .map(|r| (r.threads, value(r)))
                    .collect();
                (format!("{l} lane{}", if l == 1 { "" } else { "s" }), points)
            })
            .collect()
    };
    chart(
        &mut s,
        (0.0, 0.0),
        "hot path, million events/s",
        &series(|r| r.hot_per_s / 1e6),
    );
    chart(
        &mut s,
        (w / 2.0, 0.0),
        "ingest ÷ raw COPY on as many connections",
        &series(|r| r.ingest_per_s / r.raw_per_s),
    );
    s.push_str("</svg>\n");
    s
}

fn dedup(values: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut v: Vec<usize> = values.collect();
    v.sort_unstable();
    v.dedup();
    v
}

const COLOURS: [&str; 4] = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49"];

/// One chart at `origin` (460 × 400): x is threads on a log₂ scale, y from
/// zero to the largest value.
fn chart(s: &mut String, origin: (f64, f64), title: &str, series: &[(String, Vec<(usize, f64)>)]) {
    let (ox, oy) = origin;
    let (left, top, width, height) = (ox + 60.0, oy + 40.0, 360.0, 270.0);
    let threads = dedup(series.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)));
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let top_value = nice_ceiling(max);
    let x_of = |t: usize| {
        let i = threads.iter().position(|&x| x == t).unwrap_or(0) as f64;
        left + width * i / (threads.len().max(2) - 1) as f64
    };
    let y_of = |v: f64| top + height * (1.0 - v / top_value);
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"#,
        left + width / 2.0,
        oy + 22.0,
        title
    );
    for k in 0..=4 {
        let v = top_value * k as f64 / 4.0;
        let y = y_of(v);
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            left + width,
            left - 6.0,
            y + 4.0,
            trim(v)
        );
    }
    for &t in &threads {
        let x = x_of(t);
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" text-anchor="middle">{t}</text>"#,
            top + height + 18.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">producer threads</text>"#,
        left + width / 2.0,
        top + height + 36.0
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x_of(t), y_of(v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for &(t, v) in points {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                x_of(t),
                y_of(v)
            );
        }
        // The legend: one row under the axis.
        let (lx, ly) = (left + 90.0 * i as f64, top + height + 62.0);
        let _ = write!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"#,
            lx + 18.0,
            lx + 24.0,
            ly + 4.0
        );
    }
}

/// The smallest of 1, 2, 2.5 or 5 × a power of ten at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

/// A tick label: no trailing zeros.
fn trim(v: f64) -> String {
    let t = format!("{v:.2}");
    t.trim_end_matches('0').trim_end_matches('.').to_owned()
}
