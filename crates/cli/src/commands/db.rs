//! The database flag every subcommand shares, connecting with it, the
//! tokio runtime a subcommand runs on, and how a subcommand's output ends.

use super::{CliResult, Failure, EXIT_RUNTIME};

/// Where to read from or maintain: `--database-url`, or `DATABASE_URL`.
#[derive(clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL: a postgres:// URL or a key=value connection string.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
}

impl DatabaseArgs {
    /// The parsed connection settings; an unparsable URL is an error at
    /// run time, exit code 1 (the URL itself is not repeated: it may hold
    /// a password).
    pub fn config(&self) -> Result<tokio_postgres::Config, Failure> {
        self.database_url
            .parse()
            .map_err(|e: tokio_postgres::Error| {
                Failure::new(
                    EXIT_RUNTIME,
                    format!("invalid --database-url: {}", ringtrail::error::chain(&e)),
                )
            })
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
pub async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, Failure> {
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
