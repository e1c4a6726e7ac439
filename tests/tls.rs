//! TLS to PostgreSQL (`src/tls.rs`) against a real server with `ssl = on`
//! and a certificate for `localhost` from a test CA
//! (`ringtrail_testkit::tls`): the writer's pipeline and the read side
//! under each `sslmode`, checked encrypted in `pg_stat_ssl`; the wrong
//! CA, the wrong host name, and a server without TLS.

use ringtrail_testkit as common;

use std::sync::atomic::{AtomicUsize, Ordering};

use ringtrail_testkit::tls::{server, CLIENT_CERT_DB};
use tracing::dispatcher;

/// Runs a pipeline into `url`, emits `n` events and flushes; the rows
/// land in `plain` (the same database, for checking). Also checks, while
/// the writer's connections are open, that every session of its
/// `application_name` is (or is not) encrypted.
fn pipeline_lands_rows(url: &str, plain: &str, app: &str, encrypted: bool) {
    let url = format!("{url}&application_name={app}");
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        for i in 0..10u64 {
            tracing::info!(i, "over TLS");
        }
    });
    guard.flush().expect("the batch commits");
    assert_eq!(guard.stats().written, 10);
    let mut db = common::client(plain);
    let count: i64 = db
        .query_one("SELECT count(*) FROM ringtrail.logs", &[])
        .unwrap()
        .get(0);
    assert_eq!(count, 10);
    let row = db
        .query_one(
            "SELECT count(*), coalesce(bool_and(s.ssl), false), min(s.version)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name = $1",
            &[&app],
        )
        .unwrap();
    let (sessions, ssl): (i64, bool) = (row.get(0), row.get(1));
    assert!(sessions >= 1, "the writer holds a connection");
    assert_eq!(ssl, encrypted, "{app}: {:?}", row.get::<_, Option<&str>>(2));
    drop(guard);
}

/// Whether the session of a read-side connection to `url` is encrypted.
fn read_side_ssl(url: &str) -> Result<bool, ringtrail::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options = ringtrail::tls::ConnectOptions::parse(url)?;
        let client = ringtrail::read::connect(&options).await?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok(row.get(0))
    })
}

/// The chain of a failed `build()` into `url`.
fn build_error(url: &str) -> String {
    match common::builder(url).build() {
        Ok(_) => panic!("the pipeline started"),
        Err(e) => e.chain(),
    }
}

fn verify_full(ca: &std::path::Path) -> String {
    format!("sslmode=verify-full&sslrootcert={}", ca.display())
}

#[test]
fn require_encrypts_the_pipeline_and_the_read_side() {
    let s = server();
    let db = s.database();
    let url = s.url("127.0.0.1", &db, "sslmode=require");
    pipeline_lands_rows(&url, &s.plain_url(&db), "rt_tls_require", true);
    assert!(read_side_ssl(&url).unwrap());
    // `prefer` (the default) takes TLS when the server offers it.
    let prefer = s.url("127.0.0.1", &db, "application_name=x");
    assert!(read_side_ssl(&prefer).unwrap());
    // And `disable` does not.
    assert!(!read_side_ssl(&s.url("127.0.0.1", &db, "sslmode=disable")).unwrap());
}

#[test]
fn verify_full_with_the_right_ca_and_host_works() {
    let s = server();
    let db = s.database();
    let url = s.url("localhost", &db, &verify_full(&s.ca));
    pipeline_lands_rows(&url, &s.plain_url(&db), "rt_tls_verify_full", true);
    assert!(read_side_ssl(&url).unwrap());
    // A key=value connection string says the same.
    let kv = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname={db} \
         sslmode=verify-full sslrootcert='{}'",
        s.port(),
        s.ca.display()
    );
    assert!(read_side_ssl(&kv).unwrap());
}

#[test]
fn verify_full_refuses_the_wrong_ca() {
    let s = server();
    let db = s.database();
    let url = s.url("localhost", &db, &verify_full(&s.wrong_ca));
    let err = build_error(&url);
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    let err = read_side_ssl(&url).unwrap_err().chain();
    assert!(err.contains("UnknownIssuer"), "{err}");
    // So does `require` once a root certificate is named (libpq's rule),
    // and `verify-ca`.
    for mode in ["require", "verify-ca"] {
        let url = s.url(
            "localhost",
            &db,
            &format!("sslmode={mode}&sslrootcert={}", s.wrong_ca.display()),
        );
        let err = read_side_ssl(&url).unwrap_err().chain();
        assert!(err.contains("UnknownIssuer"), "{mode}: {err}");
    }
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let s = server();
    let db = s.database();
    // The certificate names `localhost`, not 127.0.0.1.
    let url = s.url("127.0.0.1", &db, &verify_full(&s.ca));
    let err = build_error(&url);
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(err.contains("not valid for name"), "{err}");
    let url = s.url(
        "127.0.0.1",
        &db,
        &format!("sslmode=verify-ca&sslrootcert={}", s.ca.display()),
    );
    assert!(read_side_ssl(&url).unwrap());
}

#[test]
fn client_certificates_are_shown_when_given() {
    let s = server();
    let cert = format!(
        "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        s.ca.display(),
        s.client_cert.display(),
        s.client_key.display()
    );
    assert!(read_side_ssl(&s.url("localhost", CLIENT_CERT_DB, &cert)).unwrap());
    // Without one, the server refuses.
    let url = s.url("localhost", CLIENT_CERT_DB, &verify_full(&s.ca));
    let err = read_side_ssl(&url).unwrap_err().chain();
    assert!(err.contains("certificate"), "{err}");
}

/// A new database on the shared cluster, which has no TLS (never
/// `DATABASE_URL`'s server, which might).
fn database_without_tls() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "rt_notls_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    ringtrail_cluster::TempCluster::shared()
        .unwrap()
        .create_database(&name)
        .unwrap()
}

#[test]
fn require_fails_clearly_without_tls_on_the_server_and_prefer_falls_back() {
    let plain = database_without_tls();
    let err = build_error(&format!("{plain}?sslmode=require"));
    assert!(err.contains("server does not support TLS"), "{err}");
    let err = read_side_ssl(&format!("{plain}?sslmode=verify-full"))
        .unwrap_err()
        .chain();
    assert!(err.contains("server does not support TLS"), "{err}");

    pipeline_lands_rows(
        &format!("{plain}?sslmode=prefer"),
        &plain,
        "rt_tls_prefer_plain",
        false,
    );
}
