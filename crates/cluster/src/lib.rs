//! A self-starting PostgreSQL cluster for tests, benchmarks and the
//! `ringtrail` CLI: throwaway ([`TempCluster`]), or kept in a data directory
//! ([`LocalStore`], the CLI's database when it is given no URL).
//!
//! ringtrail is only useful against a real PostgreSQL, so its tests must not
//! depend on someone having set one up. This module finds the PostgreSQL
//! server binaries installed on the machine ([`find_bindir`]), creates a new
//! cluster in a private temporary directory with `initdb`, starts it on a
//! free loopback port with `pg_ctl`, and removes every trace of it again when
//! it is no longer needed.
//!
//! There are two ways to get a cluster:
//!
//! * [`TempCluster::start`] / [`TempCluster::start_with`] give you an *owned*
//!   cluster. Dropping it stops the server and deletes its files. Use it when
//!   a test needs a server of its own (for example to crash it on purpose).
//! * [`TempCluster::shared`] gives every caller in the process the *same*
//!   cluster, started on first use with `fsync=off` for speed and removed when
//!   the process exits. [`fresh_database`] builds on it: each call returns the
//!   URL of a brand-new empty database, so tests can run in parallel without
//!   seeing each other's rows. When `DATABASE_URL` is set, [`fresh_database`]
//!   creates its databases on that server instead and nothing is started.
//!
//! ```no_run
//! use ringtrail_cluster::{fresh_database, StopMode, TempCluster};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A private server: stopped and deleted when `cluster` goes out of scope.
//! let cluster = TempCluster::start()?;
//! println!("server listening on {}", cluster.admin_url());
//! let url = cluster.create_database("demo")?;
//! println!("connect to {url}");
//!
//! // Simulate a crash and a restart on the same port and data directory.
//! cluster.stop(StopMode::Immediate)?;
//! cluster.start_again()?;
//!
//! // In a test: an empty database of its own on the process-wide server.
//! let test_url = fresh_database()?;
//! println!("this test writes to {test_url}");
//! # Ok(())
//! # }
//! ```
//!
//! # The local store
//!
//! [`LocalStore::open`] is the persistent kind: a cluster in a data
//! directory of its own ([`LocalStore::default_dir`] by default), created
//! on first use, started when not running and left running, listening on
//! a private Unix socket only, with password authentication; see
//! [`LocalStore`] for its layout.
//!
//! # Running as root
//!
//! PostgreSQL refuses to run as root. When the process is root (common in
//! containers and CI), the cluster directory is handed to the `postgres`
//! system user and `initdb`/`pg_ctl` run as that user; otherwise they run as
//! the current user. `sudo` is never used.
//!
//! # Cleanup guarantees
//!
//! * An owned [`TempCluster`] cleans up in `Drop`.
//! * The shared cluster cleans up from a C `atexit` handler, because statics
//!   are never dropped.
//! * Every cluster also has a small watchdog shell process that waits for this
//!   process to disappear and then stops the server and deletes its
//!   directory, so even a `SIGKILL`ed test run leaves nothing behind.
//!
//! No child process ever inherits this process's stdout or stderr: CI often
//! pipes test output through `tee`, which would wait forever for a lingering
//! server that still held the pipe open.
//!
//! # Errors and availability
//!
//! Every fallible call returns this crate's own [`ClusterError`]. The crate
//! works only on Unix; the `ringtrail` library does not depend on it (its
//! tests, benches and the `ringtrail` binary do).

#[cfg(not(unix))]
compile_error!(
    "ringtrail-cluster (a PostgreSQL cluster started from the local server binaries) needs a Unix"
);

mod account;
mod admin;
mod bindir;
mod cluster;
mod error;
mod pg_ctl;
mod shared;
mod store;
mod watchdog;

pub use bindir::find_bindir;
pub use cluster::{ClusterOptions, TempCluster};
pub use error::{ClusterError, Result};
pub use pg_ctl::StopMode;
pub use shared::{durable_database, fresh_database};
pub use store::{LocalStore, ROOT_DEFAULT_DIR, STORE_DATABASE};
