//! The schema and its upkeep: the migrations ([`apply`], the SQL files in
//! `migrations/` compiled into the binary and applied in order), the range
//! [`partitions`] of `ringtrail.logs` created ahead of time, and
//! [`retention`], which drops whole partitions older than a cutoff. The
//! shipper's first lane runs the upkeep about hourly; `ringtrail migrate`
//! and `ringtrail retention` run it by hand.
//!
//! Applying is idempotent and safe when several processes start at once:
//! everything runs in one transaction that first takes a transaction-level
//! advisory lock, so a second process waits, then finds the migrations
//! recorded in `ringtrail.schema_migrations` and skips them.
//!
//! [`Builder::build`](crate::Builder::build) applies them by default
//! (`.migrate(false)` turns that off, for a role without DDL rights:
//! see `docs/roles.md`). Every apply also makes the roles
//! `ringtrail_writer` and `ringtrail_reader` and keeps their grants
//! current ([`ROLES`]), and refuses a schema `ringtrail` another role made
//! first. To apply them yourself, from any tokio context:
//!
//! ```no_run
//! # async fn run() -> Result<(), ringtrail::Error> {
//! use ringtrail::tls::ConnectOptions;
//! // The URL's sslmode and sslrootcert apply (docs/tls.md).
//! let url = "postgres://owner@db.internal/app?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem";
//! let mut client = ringtrail::read::connect(&ConnectOptions::parse(url)?).await?;
//! let applied = ringtrail::schema::apply(&mut client).await?;
//! println!("applied {applied:?}");
//! # Ok(()) }
//! ```

pub mod partitions;
pub mod retention;

use crate::{Error, Result};

/// One migration: a version name and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// File name without `.sql`, e.g. `0001_logs`. Applied in this order.
    pub version: &'static str,
    /// The SQL text, run as one batch.
    pub sql: &'static str,
}

/// `Migration`s from their version names: each name is spelled once, as
/// the file `migrations/<name>.sql`.
macro_rules! migrations {
    ($($version:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            sql: include_str!(concat!("../../migrations/", $version, ".sql")),
        }),*]
    };
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = migrations![
    "0001_logs",
    "0002_delivery",
    "0003_audit",
    "0004_redaction",
    "0005_partitions",
    "0006_follow",
    "0007_chain",
    "0008_dead_letter_sealed",
    "0009_hardening",
    "0010_seq",
];

/// The roles `ringtrail_writer` and `ringtrail_reader` and their grants
/// (`docs/roles.md`), run after the migrations by every [`apply`].
pub const ROLES: &str = include_str!("roles.sql");

/// The advisory-lock key that serializes concurrent migrators
/// (the bytes of "ringtrai" as a big-endian i64).
const LOCK_KEY: i64 = 0x7269_6e67_7472_6169;

/// Applies every migration not yet recorded, and returns the versions it
/// applied (empty when the schema was already current).
pub async fn apply(client: &mut tokio_postgres::Client) -> Result<Vec<&'static str>> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS ringtrail;
         CREATE TABLE IF NOT EXISTS ringtrail.schema_migrations (
             version    text PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await?;
    check_owner(&tx).await?;
    let done: Vec<String> = tx
        .query("SELECT version FROM ringtrail.schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        if done.iter().any(|v| v == migration.version) {
            continue;
        }
        tx.batch_execute(migration.sql)
            .await
            .map_err(|e| Error::Migration {
                version: migration.version,
                source: Box::new(Error::Postgres(e)),
            })?;
        tx.execute(
            "INSERT INTO ringtrail.schema_migrations (version) VALUES ($1)",
            &[&migration.version],
        )
        .await?;
        applied.push(migration.version);
    }
    tx.batch_execute(ROLES).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Refuses a schema `ringtrail` that another role made first: its
/// functions and triggers would run with the migrating role's rights. The
/// schema is adopted when its owner is the migrating role, a role it is a
/// member of (not merely as a superuser), or a superuser.
async fn check_owner(tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
    let row = tx
        .query_one(
            "SELECT o.rolname::text,
                    o.rolname = current_user
                    OR o.rolsuper
                    OR (NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
                        AND pg_catalog.pg_has_role(current_user, o.oid, 'MEMBER'))
             FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner
             WHERE n.nspname = 'ringtrail'",
            &[],
        )
        .await?;
    let (owner, trusted): (String, bool) = (row.get(0), row.get(1));
    if trusted {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "schema ringtrail is owned by role {owner:?}, which the migrating role neither is \
             nor belongs to: migrate as that role (or ALTER SCHEMA ringtrail OWNER TO the \
             migrating role)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter_map(|name| name.strip_suffix(".sql").map(str::to_owned))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(files, listed);
    }
}
