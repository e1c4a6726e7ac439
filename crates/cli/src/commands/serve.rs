//! `ringtrail serve`: the OTLP receiver ([`ringtrail_otlp`]) in front of a
//! ringtrail pipeline, and the web console ([`ringtrail_console`]) on the
//! same HTTP listener, in the foreground until SIGINT or SIGTERM. With
//! `--read-only`, the console alone: no pipeline, no OTLP endpoint, and a
//! role that can only `SELECT` is enough.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ringtrail::time::parse_duration;
use ringtrail::transport::NatsTarget;
use ringtrail::{Checkpoints, Jsonl, Spool};
use ringtrail_otlp::{Config, Server, Token};

use super::output::eprint_line;
use super::{CliResult, Failure, EXIT_RUNTIME, EXIT_USAGE};

/// Flags of `ringtrail serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    db: super::db::DatabaseArgs,
    /// OTLP/HTTP: POST /v1/logs and /v1/traces (protobuf or JSON, gzip),
    /// GET /healthz. Port 0 picks a free port (printed on stderr);
    /// `off` listens for no HTTP.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4318", value_parser = parse_listen)]
    http: Listen,
    /// OTLP/gRPC: LogsService/Export and TraceService/Export (gzip).
    /// `off` listens for no gRPC.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4317", value_parser = parse_listen)]
    grpc: Listen,
    /// The largest request body, in bytes, as sent and again after
    /// decompression (413, gRPC RESOURCE_EXHAUSTED).
    #[arg(long, value_name = "BYTES", default_value_t = ringtrail_otlp::DEFAULT_MAX_BODY)]
    max_body: usize,
    /// Every request must carry `Authorization: Bearer TOKEN` (gRPC
    /// metadata `authorization`). Required to listen on an address that
    /// is not loopback.
    #[arg(long, env = "RINGTRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Serve HTTPS and gRPC over TLS with this PEM certificate chain.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Records in the ring.
    #[arg(long, default_value_t = 65_536)]
    capacity: usize,
    /// Requests served at once; more are answered 429 (gRPC UNAVAILABLE).
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_requests: usize,
    /// Decoded request bytes held at once; past them requests are
    /// answered 429 (gRPC UNAVAILABLE).
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    max_inflight_bytes: usize,
    /// Spool batches PostgreSQL cannot take to this directory, and
    /// replay them when it is back.
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Also write every row as a JSON line to this file, beside
    /// PostgreSQL.
    #[arg(long, value_name = "PATH")]
    jsonl: Option<PathBuf>,
    /// The schema of the --jsonl lines: ecs, ocsf, otlp or native.
    #[arg(long, default_value = "ecs", requires = "jsonl")]
    format: ringtrail::Format,
    /// Append the signed checkpoints of the batches' hash chain to this
    /// file, for `ringtrail verify --checkpoints`.
    #[arg(long, value_name = "FILE")]
    checkpoints: Option<PathBuf>,
    /// The signing key file for --checkpoints (made when missing).
    #[arg(long, value_name = "FILE", requires = "checkpoints")]
    checkpoint_key: Option<PathBuf>,
    /// Prices for the console's /usage page: TOML, USD per million
    /// tokens per model (docs/usage.md), as `ringtrail usage --prices`.
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Scale-out: publish the batches to this NATS cluster's JetStream
    /// stream (comma-separated nats://host:port URLs) instead of writing
    /// PostgreSQL; `ringtrail sink` workers load the shards. The console
    /// then reads the databases given with --database-url, if any.
    #[arg(long, value_name = "SERVERS", conflicts_with = "read_only")]
    nats: Option<String>,
    /// The JetStream stream of --nats (created when missing).
    #[arg(
        long,
        value_name = "STREAM",
        default_value = "ringtrail",
        requires = "nats"
    )]
    stream: String,
    /// Database shards the batches are spread over, with --nats: a
    /// trace's rows all go to one shard.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "nats",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    shards: u32,
    /// Serve the console only: no OTLP endpoints, no gRPC listener, no
    /// writer and no migrations, so a role that can only SELECT
    /// (`ringtrail_reader`) is enough. With --database-url once per shard,
    /// the console reads the whole sharded cluster.
    #[arg(long)]
    read_only: bool,
    /// How long SIGINT or SIGTERM may take: requests in flight finish,
    /// the ring is flushed, and whatever is not committed by then is
    /// spooled (with --spool-dir) or counted lost.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    shutdown_timeout: Duration,
}

/// A listen address, or none.
#[derive(Clone, Copy)]
pub struct Listen(Option<SocketAddr>);

fn parse_listen(text: &str) -> Result<Listen, String> {
    if text == "off" {
        return Ok(Listen(None));
    }
    text.parse()
        .map(|a| Listen(Some(a)))
        .map_err(|_| format!("expected IP:PORT or off, got {text:?}"))
}

pub fn run(args: ServeArgs) -> CliResult {
    let token = args.token.as_deref().and_then(Token::new);
    for (flag, addr) in [("--http", args.http.0), ("--grpc", args.grpc.0)] {
        if let Some(addr) = addr {
            if !addr.ip().is_loopback() && token.is_none() {
                return Err(Box::new(Failure::new(
                    EXIT_USAGE,
                    format!("{flag} {addr} is not a loopback address: set --token (or RINGTRAIL_TOKEN) to listen there"),
                )));
            }
        }
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            ringtrail_otlp::server_config(cert, key)
                .map_err(|why| Failure::new(EXIT_RUNTIME, why))?,
        ),
        _ => None,
    };
    // The price file is checked before any database is opened, as
    // `ringtrail usage` does.
    let prices = match &args.prices {
        Some(path) => ringtrail::read::usage::Prices::load(path).map_err(Failure::usage)?,
        None => ringtrail::read::usage::Prices::default(),
    };
    let nats = match &args.nats {
        Some(servers) => Some(NatsTarget::new(servers, &args.stream).map_err(Failure::usage)?),
        None => None,
    };
    // The read-only console, and the console of a pipeline that
    // publishes to NATS, read a sharded cluster: --database-url once per
    // shard, shard 0 first. With --nats and no URL there is no console
    // (the pipeline writes no database); otherwise the writer writes to
    // one database, which its console reads.
    let targets = match (args.read_only, &nats) {
        (true, _) => args.db.resolve_all()?,
        (false, Some(_)) if !args.db.given() => Vec::new(),
        (false, Some(_)) => args.db.resolve_all()?,
        (false, None) => vec![args.db.resolve()?],
    };
    let console = match targets.split_first() {
        Some((first, others)) => {
            let mut console = ringtrail_console::Config::new(first.options()?);
            for shard in others {
                console.other_shards.push(shard.options()?);
            }
            console.prices = prices;
            console.token = args.token.clone().filter(|t| !t.is_empty());
            console.tls = tls.is_some();
            Some(ringtrail_console::router(console))
        }
        None => None,
    };
    let has_console = console.is_some();
    let target = targets.first();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = Config {
        http: args.http.0,
        grpc: if args.read_only { None } else { args.grpc.0 },
        max_body: args.max_body,
        token,
        tls,
        max_requests: args.max_requests,
        max_inflight_bytes: args.max_inflight_bytes,
        routes: console,
        ..Config::default()
    };
    if args.read_only {
        return read_only(config, scheme, args.shutdown_timeout);
    }
    let mut builder = ringtrail::Builder::new()
        .capacity(args.capacity)
        .service_name("ringtrail-serve");
    builder = match (&nats, &target) {
        (Some(nats), _) => builder
            .nats(nats.servers().join(","), nats.stream())
            .shards(args.shards),
        (None, Some(target)) => builder.postgres(target.url()),
        (None, None) => unreachable!("a target without --nats"),
    };
    if let Some(dir) = &args.spool_dir {
        builder = builder.spool(Spool::dir(dir));
    }
    if let Some(path) = &args.jsonl {
        builder = builder.jsonl(Jsonl::file(path, args.format));
    }
    if let Some(path) = &args.checkpoints {
        let mut checkpoints = Checkpoints::file(path);
        if let Some(key) = &args.checkpoint_key {
            checkpoints = checkpoints.key(key);
        }
        builder = builder.checkpoints(checkpoints);
    }
    let (_layer, guard) = builder.build()?;
    let runtime = serve_runtime()?;
    let deadline = args.shutdown_timeout;
    let served = runtime.block_on(async {
        let server = Server::start(config, guard.ingest())
            .await
            .map_err(|why| Failure::new(EXIT_RUNTIME, why))?;
        if let Some(addr) = server.http_addr() {
            eprint_line(format_args!(
                "ringtrail: OTLP/HTTP listening on {scheme}://{addr}"
            ));
            if has_console {
                eprint_line(format_args!("ringtrail: console on {scheme}://{addr}/"));
            }
        }
        if let Some(addr) = server.grpc_addr() {
            eprint_line(format_args!("ringtrail: OTLP/gRPC listening on {addr}"));
        }
        if let Some(nats) = &nats {
            eprint_line(format_args!(
                "ringtrail: publishing to NATS stream {} over {} shard(s)",
                nats.stream(),
                args.shards
            ));
        }
        wait_for_signal().await?;
        eprint_line("ringtrail: stopping: finishing requests in flight, then flushing");
        server.stop(deadline / 2).await;
        Ok::<(), Failure>(())
    });
    drop(runtime);
    served?;
    let stats = guard.shutdown(deadline / 2)?;
    eprint_line(format_args!(
        "ringtrail: stopped: {} rows written, {} spooled, {} lost",
        stats.written, stats.spooled, stats.lost
    ));
    Ok(())
}

/// `--read-only`: the console alone, until SIGINT or SIGTERM.
fn read_only(config: Config, scheme: &str, deadline: Duration) -> CliResult {
    let runtime = serve_runtime()?;
    runtime.block_on(async {
        let server = Server::start_read_only(config)
            .await
            .map_err(|why| Failure::new(EXIT_RUNTIME, why))?;
        if let Some(addr) = server.http_addr() {
            eprint_line(format_args!(
                "ringtrail: console (read-only) on {scheme}://{addr}/"
            ));
        }
        wait_for_signal().await?;
        eprint_line("ringtrail: stopping");
        server.stop(deadline).await;
        Ok::<(), Failure>(())
    })?;
    Ok(())
}

fn serve_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ringtrail-serve")
        .build()
        .map_err(|e| Failure::runtime("cannot start a runtime", e))
}

/// Returns on SIGINT or SIGTERM.
async fn wait_for_signal() -> Result<(), Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| Failure::runtime("cannot watch SIGTERM", e))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| Failure::runtime("cannot watch SIGINT", e))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
