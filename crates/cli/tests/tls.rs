//! The `ringtrail` commands over TLS (`--database-url` with `sslmode`,
//! `sslrootcert`): the real binary against a server with `ssl = on`
//! (`ringtrail_testkit::tls`), and against the shared cluster, which has
//! no TLS. A failure is one line on stderr, exit 1.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;
use ringtrail_testkit::tls::server;

/// `ringtrail <args> --database-url url`.
fn with_url(args: &[&str], url: &str) -> std::process::Output {
    let mut all = args.to_vec();
    all.extend(["--database-url", url]);
    run(&all)
}

/// A database on the TLS server, migrated by `ringtrail migrate` over
/// `verify-full`, holding one row; its name.
fn database_with_a_row() -> String {
    let s = server();
    let db = s.database();
    let url = s.url(
        "localhost",
        &db,
        &format!("sslmode=verify-full&sslrootcert={}", s.ca.display()),
    );
    assert_success(&with_url(&["migrate"], &url));
    common::client(&s.plain_url(&db))
        .batch_execute(
            "INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated)
             VALUES (now() - interval '1 minute', gen_random_uuid(), 9, 'app', 'over tls', '{}', false)",
        )
        .expect("insert");
    db
}

#[test]
fn query_works_under_require_and_verify_full() {
    let s = server();
    let db = database_with_a_row();
    for (host, params) in [
        ("127.0.0.1", "sslmode=require".to_owned()),
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={}", s.ca.display()),
        ),
    ] {
        let out = with_url(&["query", "--json"], &s.url(host, &db, &params));
        let text = assert_success(&out);
        assert!(text.contains("\"over tls\""), "{params}: {text}");
    }
}

#[test]
fn verify_full_with_the_wrong_ca_is_one_line_and_exit_1() {
    let s = server();
    let db = database_with_a_row();
    let url = s.url(
        "localhost",
        &db,
        &format!("sslmode=verify-full&sslrootcert={}", s.wrong_ca.display()),
    );
    for command in [&["query"][..], &["stats"], &["tail"], &["migrate"]] {
        let line = assert_one_line_failure(&with_url(command, &url), 1, "UnknownIssuer");
        assert!(line.contains("cannot connect to the database"), "{line}");
    }
    // The host name is checked too: the certificate names localhost.
    let url = s.url(
        "127.0.0.1",
        &db,
        &format!("sslmode=verify-full&sslrootcert={}", s.ca.display()),
    );
    assert_one_line_failure(&with_url(&["query"], &url), 1, "not valid for name");
}

#[test]
fn bad_tls_settings_are_invalid_urls() {
    let url = "postgres://u:secret@localhost/db?sslmode=verify-full&sslrootcert=/no/such/ca.pem";
    let line = assert_one_line_failure(&with_url(&["query"], url), 1, "invalid --database-url");
    assert!(line.contains("sslrootcert /no/such/ca.pem"), "{line}");
    assert!(!line.contains("secret"), "{line}");
    let url = "postgres://localhost/db?sslmode=verify";
    assert_one_line_failure(&with_url(&["stats"], url), 1, "unknown sslmode");
}

#[test]
fn require_against_a_server_without_tls_fails_and_prefer_falls_back() {
    // The shared cluster has no TLS.
    let url = common::database();
    let out = with_url(&["migrate"], &format!("{url}?sslmode=require"));
    assert_one_line_failure(&out, 1, "server does not support TLS");
    assert_success(&with_url(&["migrate"], &format!("{url}?sslmode=prefer")));
}

#[test]
fn plaintext_to_a_remote_host_is_warned_about() {
    let s = server();
    let db = database_with_a_row();
    // A host name that is not loopback (the TCP connection goes to
    // hostaddr, 127.0.0.1).
    let out = with_url(&["query"], &s.url("db.example", &db, "sslmode=disable"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "ringtrail: the connection to db.example is not encrypted (sslmode=disable): \
         use sslmode=verify-full (docs/tls.md)\n"
    );
    assert!(stdout(&out).contains("over tls"));
    // `prefer` to a server with TLS: encrypted, no warning.
    assert_success(&with_url(
        &["query"],
        &s.url("db.example", &db, "sslmode=prefer"),
    ));
    // Loopback: no warning.
    assert_success(&with_url(
        &["query"],
        &s.url("127.0.0.1", &db, "sslmode=disable"),
    ));
}
