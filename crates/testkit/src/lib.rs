//! Test support for ringtrail's own tests, benches and fuzz targets. Not
//! published.
//!
//! - [`db`] (feature `db`, on by default): a fresh real PostgreSQL database
//!   per test on the throwaway cluster of [`ringtrail_cluster`], a pipeline
//!   on it, and the assertions every delivery test makes.
//! - [`cutter`] (feature `db`): a TCP proxy that cuts a connection right
//!   after a `COMMIT`, for exactly-once fault tests.
//! - [`cli`] (feature `db`): the harness that runs the real `ringtrail`
//!   binary and checks its output and exit codes.
//! - [`copy_decoder`]: an independent reader of binary `COPY` streams,
//!   written from PostgreSQL's format description, not from ringtrail's
//!   encoder.
//! - [`fuzz_checks`]: the fuzz targets' check logic, shared with the corpus
//!   replay under `cargo test`.
//! - [`tls`] (feature `db`): a server with TLS on, its CA, a wrong CA and
//!   a client certificate, for the TLS tests.
//! - `browser` (feature `browser`): a real headless Chromium through
//!   chromedriver, for the console's tests.
//! - `nats` (feature `nats`): a real NATS JetStream cluster of
//!   `nats-server` processes on loopback, nodes killed and restarted.
//! - [`load`]: the SQL that loads a large table of agent traces, for
//!   the benches that read one.
//! - [`rows`]: the one seeded PRNG the tests use, with the text generator
//!   that stresses encoders.
//!
//! The fuzz crate depends on this crate with `default-features = false`,
//! which leaves out everything that needs a database.
//!
//! ```
//! use ringtrail_testkit::copy_decoder::decode;
//! // An empty binary COPY stream: the header, no tuples, the trailer.
//! let mut stream = b"PGCOPY\n\xff\r\n\0".to_vec();
//! stream.extend_from_slice(&[0; 8]);
//! stream.extend_from_slice(&(-1i16).to_be_bytes());
//! assert!(decode(&stream, 19).unwrap().is_empty());
//! ```

#![warn(missing_docs)]

#[cfg(feature = "browser")]
pub mod browser;
#[cfg(feature = "db")]
pub mod cli;
pub mod copy_decoder;
#[cfg(feature = "db")]
pub mod cutter;
#[cfg(feature = "db")]
pub mod db;
pub mod fuzz_checks;
pub mod load;
#[cfg(feature = "nats")]
pub mod nats;
pub mod rows;
#[cfg(feature = "db")]
pub mod serve;
#[cfg(feature = "db")]
pub mod tls;

#[cfg(feature = "db")]
pub use db::*;
#[cfg(feature = "db")]
pub use ringtrail_cluster as cluster;
