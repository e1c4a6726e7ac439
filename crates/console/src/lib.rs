//! ringtrail's web console: audit traces, their gaps, the logs, AI usage
//! and cost, and the chain's state, as pages and as a JSON API, served by
//! `ringtrail serve` on its `--http` listener (alone with `--read-only`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let database: ringtrail::tls::ConnectOptions = "postgres://ringtrail_reader@db/app".parse()?;
//! let app = ringtrail_console::router(ringtrail_console::Config::new(database));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! | path | what |
//! |---|---|
//! | `/` | the overview of a window (`since`, `until`): rows per level, ingest, drops and dead letters, traces complete or not by finding code, the chain |
//! | `/logs` | search with the CLI's filter names (`since`, `until`, `level`, `target`, `trace_id`, `user`, `session`, `grep`, `field=key=value`), paged (`before`), and a live mode |
//! | `/traces/{trace_id}` | one trace's timeline, its audit points and findings |
//! | `/gaps` | the incomplete traces (`since`, `until`, `code`) |
//! | `/usage` | tokens, calls and cost (`since`, `until`, `by` = `model`, `user`, `agent`, `day`) |
//! | `/api/…` | the JSON behind each: `logs`, `traces/{id}`, `gaps`, `usage`, `stats`, `overview`, `verify`, and `tail` (Server-Sent Events) |
//!
//! With [`Config::other_shards`], the console reads a sharded cluster
//! (`ringtrail serve --read-only` given `--database-url` once per shard):
//! every page answers for the whole cluster through
//! [`ringtrail::read::cluster`], and a failure names its shard.
//!
//! Modules: [`html`] (the one escaping layer every page goes through),
//! [`auth`] (token, cookie, same-origin), [`params`] (query strings as the
//! CLI's filters), [`db`] (read-only connections), [`overview`], `api`,
//! `tail` and `pages`.
//!
//! **Security.** Logged text is attacker-controlled, so every value is
//! escaped ([`html`]), every response carries a `Content-Security-Policy`
//! with `default-src 'self'` and no inline script, every asset is in the
//! binary, and every query is a read-only transaction with a statement
//! timeout ([`db`]).

pub mod auth;
pub mod db;
pub mod html;
pub mod overview;
pub mod params;

mod api;
mod assets;
mod pages;
mod tail;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ringtrail::read::usage::Prices;
use ringtrail::tls::ConnectOptions;

/// The `Content-Security-Policy` of every console response: only this
/// origin's own scripts, styles and images, no inline script, no frames,
/// forms posting only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's settings.
pub struct Config {
    /// Where to read (a role that can `SELECT` is enough): the database,
    /// or shard 0 of a sharded cluster.
    pub database: ConnectOptions,
    /// The other shards of a sharded cluster (shard 1, 2, …), read beside
    /// `database` through [`ringtrail::read::cluster`]: logs merged by
    /// time, a trace from its shard, gaps merged, the overview, statistics
    /// and usage summed, every shard verified. Empty (the default) for one
    /// database. The live tail reads one database only, and is refused
    /// when there are several.
    pub other_shards: Vec<ConnectOptions>,
    /// The token pages and the API need, if any (`--token`).
    pub token: Option<String>,
    /// Whether the listener is TLS (the login cookie is then `Secure`).
    pub tls: bool,
    /// Connections the console holds at most (live tails hold one each,
    /// besides).
    pub connections: usize,
    /// How long one query may run.
    pub statement_timeout: Duration,
    /// Prices for `/usage` (`ringtrail serve --prices`).
    pub prices: Prices,
    /// How long a trace without a result counts as in flight, as
    /// `ringtrail audit-gaps --grace`.
    pub grace: Duration,
    /// Live tails open at once, at most.
    pub max_tails: usize,
}

impl Config {
    /// The defaults, reading from `database`.
    pub fn new(database: ConnectOptions) -> Config {
        Config {
            database,
            other_shards: Vec::new(),
            token: None,
            tls: false,
            connections: 8,
            statement_timeout: db::STATEMENT_TIMEOUT,
            prices: Prices::default(),
            grace: Duration::from_secs(300),
            max_tails: 32,
        }
    }
}

/// The last `verify` this console ran.
#[derive(Debug, Clone)]
pub(crate) enum VerifyState {
    /// Never run since the server started.
    Never,
    /// Running, since then.
    Running(SystemTime),
    /// Done: when it finished, its summary, or why it failed.
    Done(SystemTime, Result<ringtrail::read::VerifySummary, String>),
}

/// What every handler shares.
pub(crate) struct Console {
    /// Shard 0's pool (the one database's): the live tail's.
    pub db: Arc<db::Db>,
    /// Every shard's pool, shard 0 first (`db` among them).
    pub shards: Vec<Arc<db::Db>>,
    pub auth: auth::Auth,
    pub prices: Prices,
    pub grace: Duration,
    pub verify: Mutex<VerifyState>,
    pub tails: Arc<tokio::sync::Semaphore>,
}

pub(crate) type Shared = Arc<Console>;

/// The console's routes, ready to merge into a listener's router (they
/// set no fallback) or to serve alone.
pub fn router(config: Config) -> Router {
    let pool = |options| db::Db::new(options, config.connections, config.statement_timeout);
    let db = pool(config.database);
    let mut shards = vec![Arc::clone(&db)];
    shards.extend(config.other_shards.into_iter().map(pool));
    let state: Shared = Arc::new(Console {
        db,
        shards,
        auth: auth::Auth::new(config.token.as_deref(), config.tls),
        prices: config.prices,
        grace: config.grace,
        verify: Mutex::new(VerifyState::Never),
        tails: Arc::new(tokio::sync::Semaphore::new(config.max_tails.max(1))),
    });
    Router::new()
        .route("/", get(pages::overview))
        .route("/logs", get(pages::logs))
        .route("/traces/{trace_id}", get(pages::trace))
        .route("/gaps", get(pages::gaps))
        .route("/usage", get(pages::usage))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/api/logs", get(api::logs))
        .route("/api/traces/{trace_id}", get(api::trace))
        .route("/api/gaps", get(api::gaps))
        .route("/api/usage", get(api::usage))
        .route("/api/stats", get(api::stats))
        .route("/api/overview", get(api::overview))
        .route("/api/verify", get(api::verify_state).post(api::verify_run))
        .route("/api/tail", get(tail::tail))
        .route("/assets/{name}", get(assets::asset))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .with_state(state)
}

/// Every console request: the access rules ([`auth`]), then the security
/// headers on whatever answers.
async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/");
    // The login form and the assets are open (the `Host` and origin
    // rules still hold): the form is how a token is given.
    let open = path == "/login" || path.starts_with("/assets/");
    let checked = state.auth.check(request.method(), request.headers());
    let mut response = match checked {
        Ok(()) => next.run(request).await,
        Err(auth::Refusal::Unauthenticated) if open => next.run(request).await,
        Err(auth::Refusal::Unauthenticated) if api => api::error(
            StatusCode::UNAUTHORIZED,
            "a token is required: Authorization: Bearer <token>",
        ),
        Err(auth::Refusal::Unauthenticated) => {
            let next = request
                .uri()
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned());
            pages::login_page(StatusCode::UNAUTHORIZED, &next, None)
        }
        Err(auth::Refusal::ForeignHost) => refused(
            api,
            "this console answers only to an IP address or localhost without --token",
        ),
        Err(auth::Refusal::CrossSite) => refused(api, "cross-site request refused"),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn refused(api: bool, why: &'static str) -> Response {
    if api {
        api::error(StatusCode::FORBIDDEN, why)
    } else {
        (StatusCode::FORBIDDEN, why).into_response()
    }
}
