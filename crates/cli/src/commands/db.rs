//! The database flag every subcommand shares, connecting with it, the
//! tokio runtime a subcommand runs on, and how a subcommand's output ends.

use ringtrail::tls::ConnectOptions;

use super::{CliResult, Failure, EXIT_RUNTIME};

/// Where to read from or maintain: `--database-url`, or `DATABASE_URL`.
#[derive(clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL: a postgres:// URL or a key=value connection string.
    /// TLS as libpq's sslmode says (disable, prefer, require, verify-ca,
    /// verify-full), with sslrootcert, sslcert and sslkey (docs/tls.md).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
}

impl DatabaseArgs {
    /// The parsed connection settings and their TLS connector
    /// ([`ConnectOptions::parse`], the one reader of a URL); an unparsable
    /// URL, a bad `sslmode` or an unreadable `sslrootcert` is an error at
    /// run time, exit code 1 (the URL itself is not repeated: it may hold
    /// a password).
    pub fn config(&self) -> Result<ConnectOptions, Failure> {
        ConnectOptions::parse(&self.database_url).map_err(|e| {
            let why = match e {
                ringtrail::Error::Config(why) => why,
                other => other.chain(),
            };
            Failure::new(EXIT_RUNTIME, format!("invalid --database-url: {why}"))
        })
    }

    /// The URL, for a pipeline's [`Builder::postgres`](ringtrail::Builder::postgres).
    pub fn url(&self) -> Result<String, Failure> {
        self.config()?;
        Ok(self.database_url.clone())
    }

    /// Parses the URL and connects ([`config`](Self::config), then
    /// [`connect`]).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, Failure> {
        connect(&self.config()?).await
    }
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
