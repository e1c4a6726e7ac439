//! ringtrail's OTLP receiver: OpenTelemetry logs and spans, over
//! OTLP/HTTP (protobuf or JSON, gzip) and OTLP/gRPC, into a running
//! ringtrail pipeline through [`ringtrail::Ingest`]. `ringtrail serve` is
//! this crate behind a command line.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (_layer, guard) = ringtrail::Builder::new()
//!     .postgres("postgres://postgres@127.0.0.1/app")
//!     .build()?;
//! let config = ringtrail_otlp::Config {
//!     http: Some("127.0.0.1:4318".parse()?),
//!     grpc: Some("127.0.0.1:4317".parse()?),
//!     ..ringtrail_otlp::Config::default()
//! };
//! let server = ringtrail_otlp::Server::start(config, guard.ingest()).await?;
//! eprintln!("OTLP/HTTP on {:?}", server.http_addr());
//! tokio::signal::ctrl_c().await?;
//! server.stop(std::time::Duration::from_secs(10)).await;
//! guard.shutdown(std::time::Duration::from_secs(10))?;
//! # Ok(())
//! # }
//! ```
//!
//! * [`map`]: OTLP to rows, and the GenAI / MCP / OpenLLMetry audit points.
//! * `http`, `grpc`: the two transports; `receiver`: the admission bounds
//!   and the all-or-nothing push both share; `wire`: bodies and their
//!   limits; `auth`: the bearer token; `tls`: the certificate.
//!
//! **Resource bounds.** At most [`Config::max_requests`] requests are
//! served at once and at most [`Config::max_inflight_bytes`] of decoded
//! request data is held; past either, a request is answered 429 (gRPC
//! `UNAVAILABLE`) at once, without reading more of it. A body is read up
//! to [`Config::max_body`] bytes, and inflated up to the same bound. So
//! the receiver's memory stays within about `max_inflight_bytes` plus the
//! ring, whatever the load.

pub mod map;

mod auth;
mod grpc;
mod http;
mod receiver;
mod tls;
mod wire;

pub use auth::Token;
pub use http::RETRY_AFTER_SECS;
pub use tls::server_config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The receiver's settings.
#[derive(Clone)]
pub struct Config {
    /// Where OTLP/HTTP listens (`None`: not at all).
    pub http: Option<SocketAddr>,
    /// Where OTLP/gRPC listens (`None`: not at all).
    pub grpc: Option<SocketAddr>,
    /// The largest body taken, as sent and decompressed.
    pub max_body: usize,
    /// The bearer token every request needs, if any.
    pub token: Option<Token>,
    /// TLS for both listeners, if any ([`server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Requests served at once.
    pub max_requests: usize,
    /// Decoded request bytes held at once.
    pub max_inflight_bytes: usize,
    /// How long a request waits for room in the ring before it is
    /// answered 429.
    pub push_wait: Duration,
    /// More routes served on the HTTP listener beside OTLP's (the web
    /// console). They must set no fallback; OTLP's paths win, and
    /// unknown paths still answer 404. They do their own access checks.
    pub routes: Option<axum::Router>,
}

/// The default `--max-body`: 20 MiB.
pub const DEFAULT_MAX_BODY: usize = 20 << 20;

impl Default for Config {
    fn default() -> Config {
        Config {
            http: Some(SocketAddr::from(([127, 0, 0, 1], 4318))),
            grpc: Some(SocketAddr::from(([127, 0, 0, 1], 4317))),
            max_body: DEFAULT_MAX_BODY,
            token: None,
            tls: None,
            max_requests: 64,
            max_inflight_bytes: 256 << 20,
            push_wait: Duration::from_millis(200),
            routes: None,
        }
    }
}

/// A running receiver.
pub struct Server {
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds the listeners and starts serving on the current tokio
    /// runtime. Fails when an address cannot be bound.
    pub async fn start(config: Config, ingest: ringtrail::Ingest) -> Result<Server, String> {
        Server::start_with(config, Some(ingest)).await
    }

    /// Serves [`Config::routes`] alone on the HTTP listener, with a
    /// `/healthz` that answers 200: no OTLP endpoint, no gRPC listener
    /// (`ringtrail serve --read-only`).
    pub async fn start_read_only(config: Config) -> Result<Server, String> {
        Server::start_with(config, None).await
    }

    async fn start_with(
        config: Config,
        ingest: Option<ringtrail::Ingest>,
    ) -> Result<Server, String> {
        let receiver = ingest.map(|ingest| {
            Arc::new(receiver::Receiver::new(
                ingest,
                config.max_requests,
                config.max_inflight_bytes,
                config.push_wait,
            ))
        });
        let (stop, stopped) = watch::channel(false);
        let mut server = Server {
            http_addr: None,
            grpc_addr: None,
            stop,
            loops: Vec::new(),
        };
        if let Some(addr) = config.http {
            let listener = bind(addr, "--http").await?;
            server.http_addr = listener.local_addr().ok();
            let router = match &receiver {
                Some(receiver) => http::router(Arc::new(http::HttpState {
                    receiver: Arc::clone(receiver),
                    token: config.token.clone(),
                    max_body: config.max_body,
                })),
                None => http::read_only_router(),
            };
            let router = match config.routes.clone() {
                Some(routes) => router.merge(routes),
                None => router,
            };
            server.loops.push(tokio::spawn(serve(
                listener,
                router,
                config.tls.clone(),
                stopped.clone(),
            )));
        }
        if let (Some(addr), Some(receiver)) = (config.grpc, &receiver) {
            let listener = bind(addr, "--grpc").await?;
            server.grpc_addr = listener.local_addr().ok();
            let router = grpc::router(Arc::clone(receiver), config.token.clone(), config.max_body);
            server.loops.push(tokio::spawn(serve(
                listener,
                router,
                config.tls.clone(),
                stopped,
            )));
        }
        Ok(server)
    }

    /// The OTLP/HTTP listener's address (its port chosen when 0 was
    /// asked for).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The OTLP/gRPC listener's address.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// Stops accepting, lets the requests in flight finish (up to
    /// `deadline`), and returns.
    pub async fn stop(self, deadline: Duration) {
        let _ = self.stop.send(true);
        let all = futures_join(self.loops);
        let _ = tokio::time::timeout(deadline, all).await;
    }
}

async fn futures_join(loops: Vec<JoinHandle<()>>) {
    for handle in loops {
        let _ = handle.await;
    }
}

async fn bind(addr: SocketAddr, flag: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({flag}): {e}"))
}

/// Accepts connections until told to stop, then waits for the open ones
/// to finish their requests.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let service = hyper_util::service::TowerToHyperService::new(router);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                // Out of descriptors, say: wait a moment, keep serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = service.clone();
        let builder = auto::Builder::new(TokioExecutor::new());
        match &acceptor {
            None => {
                let conn = builder
                    .serve_connection(TokioIo::new(tcp), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    // A failed handshake ends this connection only.
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(tls), service)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The time now, in Unix nanoseconds.
pub(crate) fn now_unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
