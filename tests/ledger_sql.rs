//! The ledger row and the checkpoints go to PostgreSQL as bound
//! parameters, never spliced into SQL text: so they commit whatever the
//! session's `standard_conforming_strings`, and a checkpoint's text (a key
//! name may hold `\`, `'` and `;`) is stored as it is.

use ringtrail_testkit as common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use ringtrail::chain::key::SigningKey;
use ringtrail::Checkpoints;
use tracing::dispatcher;

fn scalar(url: &str, sql: &str) -> i64 {
    common::client(url).query_one(sql, &[]).unwrap().get(0)
}

/// A key file for `name` (the `PRIVATE+KEY+…` form), owner-only.
fn key_file(dir: &std::path::Path, name: &str, seed: [u8; 32]) -> (PathBuf, SigningKey) {
    let key = SigningKey::from_seed(name, seed).unwrap();
    let mut raw = vec![1u8];
    raw.extend_from_slice(&seed);
    let text = format!(
        "PRIVATE+KEY+{name}+{:08x}+{}\n",
        u32::from_be_bytes(key.key_id()),
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join("checkpoint.key");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, key)
}

#[test]
fn chained_batches_and_checkpoints_commit_with_standard_conforming_strings_off() {
    let url = common::database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    common::client(&url)
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" SET standard_conforming_strings = off"
        ))
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ringtrail-ledger-sql-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A key name with a backslash, quotes and a semicolon: legal in a key
    // name, and the text an injection through a string literal needs.
    let name = r"x\';DROP-TABLE-ringtrail.logs;--'";
    let (key_path, key) = key_file(&dir.join("keys"), name, [9; 32]);
    let public = key.verifier().to_string();
    let file = dir.join("out/checkpoints");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    for (run, every) in [(0, 1), (1, 1_000)] {
        let (dispatch, guard) = common::start(
            common::builder(&url)
                .flush_interval(Duration::from_secs(3600))
                .checkpoints(
                    Checkpoints::file(&file)
                        .key(&key_path)
                        .every(every, Duration::from_secs(3600)),
                ),
        );
        for b in 0..3 {
            dispatcher::with_default(&dispatch, || {
                for i in 0..10 {
                    tracing::info!(run, b, i, "under standard_conforming_strings=off");
                }
            });
            guard.flush().expect("committed");
        }
        // The second run's head is signed at shutdown and stored on its
        // own (`store_checkpoint`).
        let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!(
            (stats.written, stats.dead_lettered, stats.lost),
            (30, 0, 0),
            "{stats:?}"
        );
    }
    assert_eq!(common::event_rows(&url), (60, 60));
    let client_sees = |sql: &str| scalar(&url, sql);
    assert_eq!(
        client_sees(
            "SELECT count(*) FROM ringtrail.batches WHERE chain_id IS NOT NULL
               AND octet_length(digest) = 32 AND octet_length(prev_hash) = 32
               AND octet_length(hash) = 32"
        ),
        6,
        "every ledger row with its chain entry, 32-byte hashes"
    );
    // Three checkpoints carried by the first run's batches, one stored at
    // the second's shutdown; each names a head the ledger holds.
    assert_eq!(
        client_sees(
            "SELECT count(*) FROM ringtrail.checkpoints c JOIN ringtrail.batches b
               ON b.chain_id = c.chain_id AND b.seq = c.seq AND b.hash = c.head"
        ),
        4
    );
    let stored: Vec<String> = common::client(&url)
        .query("SELECT DISTINCT public_key FROM ringtrail.checkpoints", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, [public], "the key's text, stored as it is");
    assert_eq!(client_sees("SELECT count(*) FROM ringtrail.logs"), 60);
    let _ = std::fs::remove_dir_all(&dir);
}
