//! `ringtrail sink`: a sink worker ([`ringtrail::worker::Worker`]). It
//! loads one shard's batches from a NATS JetStream stream into that
//! shard's PostgreSQL, exactly once, until SIGTERM or SIGINT.
//!
//! ```text
//! $ ringtrail sink --nats nats://n1:4222,nats://n2:4222,nats://n3:4222 --stream AUDIT \
//!       --shard 0 --database-url postgres://ringtrail@shard0/audit
//! ringtrail sink: shard 0 of stream AUDIT: loading (migrations applied)
//! ringtrail sink: shard 0: 1204 batches, 9863168 rows loaded, 0 dead-lettered, 0 released, lag 2
//! ```
//!
//! Run several on one shard to share its load (they share its durable
//! consumer); a killed one's batch goes to another after `--ack-wait`.
//! Progress goes to stderr every `--progress-every`, and, built with the
//! library's `metrics` feature, to `ringtrail_sink_*` series.
//!
//! Exit codes: 0 stopped by SIGTERM or SIGINT (after finishing or
//! releasing the batch in hand), 1 cannot start (PostgreSQL or NATS
//! unreachable, a migration failed), 2 invalid arguments. Every failure is
//! one line on stderr.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringtrail::time::parse_duration;
use ringtrail::transport::NatsTarget;
use ringtrail::worker::{Progress, Worker};

use super::output::eprint_line;
use super::{CliResult, Failure};

/// Flags of `ringtrail sink`.
#[derive(clap::Args)]
pub struct SinkArgs {
    /// The NATS servers: comma-separated nats://host:port URLs (any
    /// server of the cluster will do).
    #[arg(
        long,
        value_name = "SERVERS",
        env = "RINGTRAIL_NATS",
        hide_env_values = true
    )]
    nats: String,
    /// The JetStream stream the producers publish to (created when
    /// missing).
    #[arg(long, value_name = "STREAM", default_value = "ringtrail")]
    stream: String,
    /// The shard to load, numbered from 0.
    #[arg(long, value_name = "I")]
    shard: u32,
    /// The shard's PostgreSQL: a postgres:// URL or a key=value
    /// connection string (docs/tls.md). Its migrations are applied.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// How long a batch may go unacknowledged before NATS hands it to
    /// another worker (a killed worker's batches wait this long).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    ack_wait: Duration,
    /// How often progress and lag go to stderr.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    progress_every: Duration,
}

/// Runs `ringtrail sink`.
pub fn run(args: SinkArgs) -> CliResult {
    let target = NatsTarget::new(&args.nats, &args.stream).map_err(Failure::usage)?;
    if args.ack_wait < Duration::from_secs(1) {
        return Err(Box::new(Failure::usage("--ack-wait must be at least 1s")));
    }
    if args.progress_every.is_zero() {
        return Err(Box::new(Failure::usage(
            "--progress-every must be positive",
        )));
    }
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone())?;
    let done = Worker::new(target, args.shard, args.database_url)
        .ack_wait(args.ack_wait)
        .report_every(args.progress_every)
        .run(&stop, |progress| {
            eprint_line(format_args!("ringtrail sink: {}", line(progress)))
        })
        .map_err(|e| Failure::runtime("ringtrail sink cannot start", e))?;
    eprint_line(format_args!("ringtrail sink: stopped: {}", line(&done)));
    Ok(())
}

/// One progress line.
fn line(p: &Progress) -> String {
    let lag = p
        .lag
        .map_or_else(|| "unknown".to_owned(), |l| l.to_string());
    format!(
        "shard {}: {} batches, {} rows loaded, {} dead-lettered, {} redelivered, {} released, {} rejected, {} checkpoints, lag {lag}",
        p.shard, p.batches, p.rows, p.dead_lettered, p.redelivered, p.released, p.rejected, p.checkpoints
    )
}

/// Sets `stop` on SIGTERM or SIGINT, from a thread of its own.
fn watch_signals(stop: Arc<AtomicBool>) -> Result<(), Failure> {
    let runtime = super::db::runtime()?;
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("ringtrail-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let watched = signal(SignalKind::terminate())
                    .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
                let (mut term, mut int) = match watched {
                    Ok(pair) => {
                        let _ = ready_tx.send(Ok(()));
                        pair
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                stop.store(true, Ordering::Relaxed);
            })
        })
        .map_err(|e| Failure::runtime("cannot start the signal thread", e))?;
    match ready.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::runtime("cannot watch SIGTERM", e)),
        Err(_) => Err(Failure::runtime(
            "cannot watch SIGTERM",
            "the signal thread ended",
        )),
    }
}
