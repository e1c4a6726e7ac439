//! The database flags every subcommand shares (`--database-url`, else the
//! local store in `--data-dir`), connecting with them, the
//! tokio runtime a subcommand runs on, and how a subcommand's output ends.

use std::path::{Path, PathBuf};

use ringtrail::tls::ConnectOptions;
use ringtrail_cluster::LocalStore;

use super::output::eprint_line;
use super::{CliResult, Failure, EXIT_RUNTIME};

/// Where to read from, write to or maintain: `--database-url` (or
/// `DATABASE_URL`) when given, else the local store in `--data-dir` (or
/// `RINGTRAIL_DATA_DIR`, or the default directory). The commands that
/// read a sharded cluster take `--database-url` once per shard
/// ([`resolve_all`](DatabaseArgs::resolve_all)); the others refuse
/// several ([`resolve`](DatabaseArgs::resolve)).
#[derive(clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL: a postgres:// URL or a key=value connection string.
    /// TLS as libpq's sslmode says (disable, prefer, require, verify-ca,
    /// verify-full), with sslrootcert, sslcert and sslkey (docs/tls.md).
    /// Without it, the local store (--data-dir). query, export, trace,
    /// audit-gaps, stats, usage, verify and serve --read-only take it once
    /// per shard of a sharded cluster (shard 0 first) and answer for the
    /// whole cluster.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true,
          action = clap::ArgAction::Append)]
    database_url: Vec<String>,
    /// The local store used without --database-url: a PostgreSQL cluster
    /// in this directory, created on first use and left running, on a
    /// Unix socket in it only (docs/local-store.md). Default:
    /// $XDG_DATA_HOME/ringtrail, else ~/.local/share/ringtrail; as root,
    /// /var/lib/ringtrail (the server runs as the postgres user).
    #[arg(long, env = "RINGTRAIL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// The database a command uses, as [`DatabaseArgs::resolve`] found it.
pub struct Target {
    /// The connection string. It may hold a password: never printed.
    url: String,
    /// The local store it points at, when no URL was given.
    store: Option<LocalStore>,
    /// Its shard's index, when it is one of several `--database-url`s
    /// (for messages: the URL itself is never printed).
    shard: Option<usize>,
}

impl Target {
    /// The connection string (a URL, or for the local store a `key=value`
    /// string naming its socket directory). It may hold a password: do
    /// not print it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The parsed connection settings and their TLS connector
    /// ([`ConnectOptions::parse`], the one reader of a URL); an unparsable
    /// URL, a bad `sslmode` or an unreadable `sslrootcert` is an error at
    /// run time, exit code 1 (the URL itself is not repeated: it may hold
    /// a password; of several, its shard's index is named).
    pub fn options(&self) -> Result<ConnectOptions, Failure> {
        ConnectOptions::parse(&self.url).map_err(|e| {
            let why = match e {
                ringtrail::Error::Config(why) => why,
                other => other.chain(),
            };
            let what = match (self.store.is_some(), self.shard) {
                (true, _) => "the local store's connection string".to_owned(),
                (false, Some(shard)) => format!("--database-url of shard {shard}"),
                (false, None) => "--database-url".to_owned(),
            };
            Failure::new(EXIT_RUNTIME, format!("invalid {what}: {why}"))
        })
    }
}

impl DatabaseArgs {
    /// Whether a database was named (`--database-url` or
    /// `DATABASE_URL`), rather than left to the local store.
    pub fn given(&self) -> bool {
        !self.database_url.is_empty()
    }

    /// The database to use: `--database-url`/`DATABASE_URL` when given;
    /// otherwise the local store in `--data-dir`/`RINGTRAIL_DATA_DIR` (or
    /// [`LocalStore::default_dir`]), opened (created and started when
    /// needed, a line on stderr saying so) with its schema applied. A
    /// store that cannot be opened is one line, exit code 1. Several
    /// `--database-url`s are a usage error (exit code 2): the command
    /// works on one database.
    ///
    /// Safe to call inside a tokio runtime: the blocking work runs on
    /// helper threads.
    pub fn resolve(&self) -> Result<Target, Failure> {
        if self.database_url.len() > 1 {
            return Err(Failure::usage(format!(
                "--database-url is given {} times, but this command works on one database \
                 (only query, export, trace, audit-gaps, stats, usage, verify and \
                 serve --read-only read a sharded cluster)",
                self.database_url.len()
            )));
        }
        if let Some(url) = self.database_url.first() {
            return Ok(Target {
                url: url.clone(),
                store: None,
                shard: None,
            });
        }
        let dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => LocalStore::default_dir()
                .map_err(|e| Failure::runtime("no database: give --database-url", e))?,
        };
        let store = open_store(&dir)?;
        Ok(Target {
            url: store.url(),
            store: Some(store),
            shard: None,
        })
    }

    /// The databases to read: one per `--database-url`, in the order
    /// given (shard 0 first); with none, the local store, as
    /// [`resolve`](Self::resolve) finds it. One URL is exactly
    /// [`resolve`](Self::resolve)'s target.
    pub fn resolve_all(&self) -> Result<Vec<Target>, Failure> {
        if self.database_url.len() <= 1 {
            return Ok(vec![self.resolve()?]);
        }
        Ok(self
            .database_url
            .iter()
            .enumerate()
            .map(|(shard, url)| Target {
                url: url.clone(),
                store: None,
                shard: Some(shard),
            })
            .collect())
    }

    /// The parsed connection settings of the database to use
    /// ([`resolve`](Self::resolve), then [`Target::options`]).
    pub fn config(&self) -> Result<ConnectOptions, Failure> {
        self.resolve()?.options()
    }

    /// The parsed connection settings of every shard
    /// ([`resolve_all`](Self::resolve_all), then [`Target::options`]).
    pub fn configs(&self) -> Result<Vec<ConnectOptions>, Failure> {
        self.resolve_all()?.iter().map(Target::options).collect()
    }

    /// Resolves and connects ([`config`](Self::config), then
    /// [`connect`]).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, Failure> {
        connect(&self.config()?).await
    }
}

/// Connections to every shard of a cluster (or to the one database),
/// for the commands that read a cluster through
/// [`ringtrail::read::cluster`].
pub struct Shards {
    clients: Vec<tokio_postgres::Client>,
}

impl Shards {
    /// Connects to each of `configs` in turn. A failure is exit code 1:
    /// `cannot connect to the database` for one, `cannot connect to
    /// shard N` of several, with the server's reason.
    pub async fn connect(configs: &[ConnectOptions]) -> Result<Shards, Failure> {
        let mut clients = Vec::with_capacity(configs.len());
        for (shard, config) in configs.iter().enumerate() {
            let client = if configs.len() == 1 {
                connect(config).await?
            } else {
                ringtrail::read::connect(config).await.map_err(|e| {
                    Failure::database(&format!("cannot connect to shard {shard}"), e)
                })?
            };
            clients.push(client);
        }
        Ok(Shards { clients })
    }

    /// The connections, shard 0 first.
    pub fn all(&self) -> Vec<&tokio_postgres::Client> {
        self.clients.iter().collect()
    }

    /// The connections, shard 0 first, mutable (for `verify`'s
    /// snapshot transactions).
    pub fn all_mut(&mut self) -> Vec<&mut tokio_postgres::Client> {
        self.clients.iter_mut().collect()
    }

    /// A failed read as exit code 1, `doing: cause`: with one database
    /// the cause as it is (what the command said before clusters), of
    /// several `shard N: cause`.
    pub fn failure(&self, doing: &str, error: ringtrail::read::cluster::ShardError) -> Failure {
        if self.clients.len() == 1 {
            Failure::database(doing, error.error)
        } else {
            Failure::database(doing, error)
        }
    }
}

/// Opens the local store in `dir` and applies the schema, so that every
/// command works on a fresh store. Says on stderr when it created or
/// started the store.
fn open_store(dir: &Path) -> Result<LocalStore, Failure> {
    let doing = || format!("cannot open the local store in {}", dir.display());
    let store = LocalStore::open(dir).map_err(|e| Failure::runtime(&doing(), e))?;
    if store.created() {
        eprint_line(format_args!(
            "created a PostgreSQL store in {} (left running)",
            store.dir().display()
        ));
    } else if store.started() {
        eprint_line(format_args!(
            "started the PostgreSQL store in {} (left running)",
            store.dir().display()
        ));
    }
    let url = store.url();
    // A runtime of its own on a helper thread: the caller may be inside
    // one already, where blocking on another panics.
    std::thread::scope(|s| {
        s.spawn(|| {
            runtime()?.block_on(async {
                let mut client = connect(
                    &ConnectOptions::parse(&url)
                        .map_err(|e| Failure::runtime("the local store's connection string", e))?,
                )
                .await?;
                ringtrail::schema::apply(&mut client)
                    .await
                    .map_err(|e| Failure::runtime("cannot apply the schema to the local store", e))
            })
        })
        .join()
        .unwrap_or_else(|_| Err(Failure::new(EXIT_RUNTIME, "the schema thread panicked")))
    })?;
    Ok(store)
}

/// A current-thread tokio runtime for one subcommand.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime("cannot start a runtime", e))
}

/// Connects; a failure is exit code 1 with the server's reason.
pub async fn connect(config: &ConnectOptions) -> Result<tokio_postgres::Client, Failure> {
    ringtrail::read::connect(config)
        .await
        .map_err(|e| Failure::database("cannot connect to the database", e))
}

/// Ends a subcommand's output: a closed pipe (`| head`) is not an error,
/// any other write failure is.
pub fn finish_output(written: std::io::Result<()>) -> CliResult {
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Box::new(e)),
        _ => Ok(()),
    }
}
