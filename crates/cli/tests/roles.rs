//! Least privilege (docs/roles.md): the migrations make the NOLOGIN roles
//! `ringtrail_writer` and `ringtrail_reader`; a login role in the writer
//! role runs the whole pipeline with `migrate(false)` (rows, the ledger,
//! a dead letter, checkpoints) yet cannot UPDATE, DELETE or TRUNCATE; a
//! login role in the reader role runs `query` and `verify` but cannot
//! INSERT. The real binary, a real PostgreSQL.

use std::time::Duration;

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

/// `url` with its user replaced by `user`.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

/// The database's name, to make role names unique per test database
/// (roles are cluster-wide, tests run in parallel).
fn db_name(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

/// The SQLSTATE of `sql` run as the role of `url`, or "ok".
fn sqlstate(url: &str, sql: &str) -> String {
    match common::client(url).batch_execute(sql) {
        Ok(()) => "ok".to_owned(),
        Err(e) => e
            .code()
            .map_or_else(|| e.to_string(), |c| c.code().to_owned()),
    }
}

#[test]
fn a_writer_role_runs_the_pipeline_and_cannot_rewrite_what_it_wrote() {
    let url = common::migrated_database();
    let db = db_name(&url);
    let (writer, reader) = (format!("app_{db}"), format!("people_{db}"));
    common::client(&url)
        .batch_execute(&format!(
            "CREATE ROLE {writer} LOGIN PASSWORD 'unused' IN ROLE ringtrail_writer;
             CREATE ROLE {reader} LOGIN IN ROLE ringtrail_reader;
             ALTER TABLE ringtrail.logs ADD CONSTRAINT no_poison CHECK (message <> 'poison');"
        ))
        .unwrap();
    let writer_url = as_user(&url, &writer);
    let reader_url = as_user(&url, &reader);

    // The whole pipeline as the writer: rows, the chain's ledger rows and
    // checkpoints, a dead letter.
    let (dispatch, guard) = common::start(common::builder(&writer_url).migrate(false));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..200 {
            tracing::info!(i, "as the writer");
        }
        tracing::warn!("poison");
    });
    let stats = guard.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert_eq!(
        (stats.written, stats.dead_lettered, stats.lost),
        (200, 1, 0),
        "{stats:?}"
    );
    let mut owner = common::client(&url);
    let counts: (i64, i64, i64) = {
        let r = owner
            .query_one(
                "SELECT (SELECT count(*) FROM ringtrail.logs), \
                        (SELECT count(*) FROM ringtrail.dead_letters), \
                        (SELECT count(*) FROM ringtrail.checkpoints)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!((counts.0, counts.1), (200, 1));
    assert!(counts.2 >= 1, "the shutdown checkpoint: {counts:?}");

    // What the writer cannot do: 42501, insufficient_privilege.
    for sql in [
        "UPDATE ringtrail.logs SET message = 'edited'",
        "DELETE FROM ringtrail.logs",
        "TRUNCATE ringtrail.logs",
        "UPDATE ringtrail.batches SET rows = 0",
        "DELETE FROM ringtrail.batches",
        "TRUNCATE ringtrail.batches",
        "DELETE FROM ringtrail.checkpoints",
        "UPDATE ringtrail.checkpoints SET note = ''",
        "TRUNCATE ringtrail.checkpoints",
        "DELETE FROM ringtrail.dead_letters",
        "TRUNCATE ringtrail.dead_letters",
        "INSERT INTO ringtrail.retention_log (partition, rows, range_to, dropped_by) \
         VALUES ('x', 0, now(), 'x')",
        "DROP TABLE ringtrail.logs",
    ] {
        assert_eq!(sqlstate(&writer_url, sql), "42501", "{sql}");
    }

    // The reader: query and verify work; writing does not.
    let out = run(&["query", "--database-url", &reader_url, "--limit", "3"]);
    assert_eq!(assert_success(&out).lines().count(), 3);
    let out = run(&["verify", "--database-url", &reader_url]);
    assert!(
        assert_success(&out).ends_with(": clean\n"),
        "{}",
        stdout(&out)
    );
    for sql in [
        "INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated) \
         VALUES (now(), gen_random_uuid(), 9, 'x', 'x', '{}', false)",
        "INSERT INTO ringtrail.batches (batch_id, rows, bytes, first_ts, last_ts) \
         VALUES (gen_random_uuid(), 0, 0, now(), now())",
        "DELETE FROM ringtrail.logs",
    ] {
        assert_eq!(sqlstate(&reader_url, sql), "42501", "{sql}");
    }
}

/// A schema `ringtrail` made first by another (non-superuser) role is not
/// adopted: its functions and triggers would run with the migrating
/// role's rights.
#[test]
fn a_schema_someone_else_made_first_is_refused() {
    let url = common::database();
    let squatter = format!("squatter_{}", db_name(&url));
    common::client(&url)
        .batch_execute(&format!(
            "CREATE ROLE {squatter} NOLOGIN; CREATE SCHEMA ringtrail AUTHORIZATION {squatter};"
        ))
        .unwrap();
    let out = run(&["migrate", "--database-url", &url]);
    assert_one_line_failure(&out, 1, "owned by role");
}
