//! The hash chain's write side, through the real pipeline into a real
//! PostgreSQL: every row names its batch, the ledger's links recompute
//! from its own columns, every batch digest recomputes from the stored
//! rows, and signed checkpoints land in the table, the checkpoint file and
//! the JSON-lines stream, all verifying with the key (kept in a directory
//! of its own, never beside the checkpoint file).

use ringtrail_testkit as common;

use std::time::Duration;

use ringtrail::chain::canonical::{StoredRow, STORED_COLUMNS};
use ringtrail::chain::checkpoint::{open, split_notes};
use ringtrail::chain::digest::BatchDigest;
use ringtrail::chain::key::VerifierKey;
use ringtrail::chain::link::{link_hash, BatchMeta, ChainId, GENESIS};
use ringtrail::{Checkpoints, Format, Jsonl, Spool};
use tracing::dispatcher;

fn bytes32(v: Vec<u8>) -> [u8; 32] {
    v.try_into().expect("32 bytes")
}

#[test]
fn batches_are_digested_linked_and_checkpointed_everywhere() {
    let url = common::database();
    let dir = std::env::temp_dir().join(format!("ringtrail-chain-write-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (file, lines) = (dir.join("checkpoints"), dir.join("lines.ndjson"));
    let (layer, guard) = common::builder(&url)
        .batch_rows(100)
        .checkpoints(
            Checkpoints::file(&file)
                .key(dir.join("keys/checkpoint.key"))
                .every(3, Duration::from_secs(3600)),
        )
        .jsonl(Jsonl::file(&lines, Format::Native))
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    dispatcher::with_default(&dispatch, || {
        for i in 0..1_000u64 {
            tracing::info!(i, big = u64::MAX, ratio = 0.1, "row {i}");
        }
    });
    guard.flush().unwrap();
    dispatcher::with_default(&dispatch, || tracing::warn!("last"));
    guard.shutdown(Duration::from_secs(10)).unwrap();

    let mut db = common::client(&url);
    // Every row names its batch, and every batch is on one chain.
    let unnamed: i64 = db
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE batch_id IS NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unnamed, 0);
    let ledger = db
        .query(
            "SELECT chain_id::text, seq, batch_id, sealed_id, sealed_rows, digest, prev_hash, hash, \
             (extract(epoch FROM first_ts - '2000-01-01 UTC'::timestamptz) * 1000000)::bigint, \
             (extract(epoch FROM last_ts - '2000-01-01 UTC'::timestamptz) * 1000000)::bigint, rows \
             FROM ringtrail.batches ORDER BY seq",
            &[],
        )
        .unwrap();
    assert!(ledger.len() >= 10, "{} batches", ledger.len());
    let chain: ChainId = ledger[0].get::<_, String>(0).parse().unwrap();
    let mut prev = GENESIS;
    for (n, row) in ledger.iter().enumerate() {
        assert_eq!(row.get::<_, String>(0), chain.to_string(), "one chain");
        let seq: i64 = row.get(1);
        assert_eq!(seq, n as i64 + 1, "seqs without gaps");
        let batch_id: uuid::Uuid = row.get(2);
        let sealed_id: uuid::Uuid = row.get(3);
        assert_eq!(batch_id, sealed_id, "nothing was split");
        let sealed_rows: i32 = row.get(4);
        assert_eq!(sealed_rows, row.get::<_, i32>(10));
        let digest = bytes32(row.get(5));
        assert_eq!(
            bytes32(row.get(6)),
            prev,
            "seq {seq} links to the one before"
        );
        let meta = BatchMeta {
            batch_id: *sealed_id.as_bytes(),
            rows: sealed_rows as u32,
            first_ts: row.get(8),
            last_ts: row.get(9),
        };
        let hash = link_hash(chain, &prev, &digest, seq as u64, &meta);
        assert_eq!(bytes32(row.get(7)), hash, "seq {seq}: the link recomputes");
        prev = hash;
        // The digest recomputes from the rows as stored.
        let rows = db
            .query(
                &format!("SELECT {STORED_COLUMNS} FROM ringtrail.logs WHERE batch_id = $1"),
                &[&batch_id],
            )
            .unwrap();
        assert_eq!(rows.len() as i32, sealed_rows);
        let mut recount = BatchDigest::new();
        for r in &rows {
            recount.push_stored(&StoredRow::from_pg(r).unwrap());
        }
        assert_eq!(recount.finish(), digest, "seq {seq}: the digest recomputes");
    }
    let head = prev;
    let last_seq = ledger.len() as u64;

    // The key was made in its own directory; its public key verifies
    // every copy.
    let public = std::fs::read_to_string(dir.join("keys/checkpoint.key.pub")).unwrap();
    let key: VerifierKey = public.trim().parse().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let from_file: Vec<_> = split_notes(&text)
        .into_iter()
        .map(|note| open(note, &key).expect("a valid signature"))
        .collect();
    assert!(from_file.len() >= 3, "{text}");
    let last = from_file.last().unwrap();
    assert_eq!(
        (last.seq, last.head, last.chain),
        (last_seq, head, chain),
        "shutdown signs the head"
    );
    let table = db
        .query(
            "SELECT seq, note, public_key FROM ringtrail.checkpoints ORDER BY seq",
            &[],
        )
        .unwrap();
    assert!(!table.is_empty());
    for row in &table {
        assert_eq!(row.get::<_, String>(2).trim(), public.trim());
        let cp = open(row.get::<_, &str>(1), &key).unwrap();
        assert_eq!(cp.seq, row.get::<_, i64>(0) as u64);
        assert!(
            from_file.contains(&cp),
            "the table's checkpoints are in the file too"
        );
    }
    let jsonl = std::fs::read_to_string(&lines).unwrap();
    let in_stream: Vec<_> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["target"] == "ringtrail::checkpoint")
        .map(|l| open(l["message"].as_str().unwrap(), &key).unwrap())
        .collect();
    assert_eq!(in_stream, from_file, "the SIEM holds every checkpoint");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A shutdown with nothing left to commit still leaves the head's signed
/// checkpoint in the table (stored on its own, after the head's batch),
/// not only in the file.
#[test]
fn a_shutdown_after_a_flush_stores_the_head_checkpoint_in_the_table() {
    let url = common::database();
    let dir = std::env::temp_dir().join(format!("ringtrail-chain-head-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("checkpoints");
    let (layer, guard) = common::builder(&url)
        .batch_rows(100)
        .checkpoints(
            Checkpoints::file(&file)
                .key(dir.join("keys/checkpoint.key"))
                .every(1_000, Duration::from_secs(3600)),
        )
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    dispatcher::with_default(&dispatch, || {
        for i in 0..450u64 {
            tracing::info!(i, "row {i}");
        }
    });
    guard.flush().unwrap();
    guard.shutdown(Duration::from_secs(10)).unwrap();

    let mut db = common::client(&url);
    let (chain, last_seq, head): (String, i64, Vec<u8>) = {
        let row = db
            .query_one(
                "SELECT chain_id::text, seq, hash FROM ringtrail.batches ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(last_seq, 5, "450 rows in batches of 100");
    let public = std::fs::read_to_string(dir.join("keys/checkpoint.key.pub")).unwrap();
    let key: VerifierKey = public.trim().parse().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let notes = split_notes(&text);
    assert_eq!(notes.len(), 1, "only the shutdown signed: {text}");
    let table = db
        .query(
            "SELECT chain_id::text, seq, head, note FROM ringtrail.checkpoints",
            &[],
        )
        .unwrap();
    assert_eq!(table.len(), 1, "the head checkpoint is in the table");
    let row = &table[0];
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, i64>(1),
            row.get::<_, Vec<u8>>(2)
        ),
        (chain, last_seq, head)
    );
    assert_eq!(
        open(row.get::<_, &str>(3), &key).unwrap(),
        open(notes[0], &key).unwrap(),
        "the same signed note as the file's"
    );
    let public_key = dir.join("keys/checkpoint.key.pub");
    let (code, out) = verify(
        &url,
        &[
            "--checkpoints",
            file.to_str().unwrap(),
            "--public-key",
            public_key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ringtrail verify` on `url`: its exit code and stdout.
fn verify(url: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringtrail"))
        .args(["verify", "--database-url", url])
        .args(extra)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn batches_spooled_while_the_server_was_down_keep_their_place_on_the_chain() {
    use ringtrail_cluster::{ClusterOptions, StopMode, TempCluster};
    let pg = TempCluster::start_with(&ClusterOptions {
        fsync: false,
        settings: Vec::new(),
    })
    .unwrap();
    let url = pg.create_database("spooled_chain").unwrap();
    let dir = std::env::temp_dir().join(format!("ringtrail-chain-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("checkpoints");
    let (layer, guard) = common::builder(&url)
        .batch_rows(200)
        .spool(Spool::dir(dir.join("spool")).after(Duration::ZERO))
        .max_retries(0)
        .checkpoints(
            Checkpoints::file(&file)
                .key(dir.join("keys/checkpoint.key"))
                .every(2, Duration::from_secs(3600)),
        )
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    dispatcher::with_default(&dispatch, || {
        for i in 0..600u64 {
            tracing::info!(i, "before");
        }
    });
    guard.flush().unwrap();
    pg.stop(StopMode::Fast).unwrap();
    dispatcher::with_default(&dispatch, || {
        for i in 0..1_000u64 {
            tracing::info!(i, "while down");
        }
    });
    assert!(guard.flush().is_err(), "spooled, not committed");
    assert!(guard.stats().spooled > 0);
    pg.start_again().unwrap();
    let stats = common::settle(&guard, Duration::from_secs(60));
    assert_eq!((stats.written, stats.spooled, stats.lost), (1_600, 0, 0));
    guard.shutdown(Duration::from_secs(10)).unwrap();
    // Replayed batches kept the seq, digest and link sealed before the
    // outage, and checkpoints signed meanwhile match them.
    let mut db = common::client(&url);
    let seqs: Vec<i64> = db
        .query("SELECT seq FROM ringtrail.batches ORDER BY seq", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let file = file.to_str().unwrap();
    let public_key = dir.join("keys/checkpoint.key.pub");
    let public_key = public_key.to_str().unwrap();
    let (code, text) = verify(&url, &["--checkpoints", file, "--public-key", public_key]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(": clean"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The signing key is never kept beside the checkpoints it signs: with
/// `--checkpoints FILE` alone the key is this user's default one
/// (`$XDG_DATA_HOME/ringtrail/checkpoint.key`, owner-only in an
/// owner-only directory), which `verify --checkpoints FILE` finds again;
/// a key named in the checkpoint file's directory is refused, and so is a
/// key left beside the file by an older version.
#[test]
fn the_key_lives_apart_from_the_checkpoint_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let url = common::database();
    let dir = std::env::temp_dir().join(format!("ringtrail-chain-keyhome-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (out, xdg) = (dir.join("out"), dir.join("xdg"));
    std::fs::create_dir_all(&out).unwrap();
    let file = out.join("checkpoints");
    let ringtrail = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ringtrail"))
            .args(args)
            .args(["--database-url", &url])
            .env_remove("DATABASE_URL")
            .env_remove("RINGTRAIL_CHECKPOINT_KEY")
            .env("XDG_DATA_HOME", &xdg)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let file_text = file.to_str().unwrap();
    let demo = [
        "demo",
        "--events",
        "2000",
        "--quiet",
        "--checkpoints",
        file_text,
    ];
    let run = ringtrail(&demo);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let key = xdg.join("ringtrail/checkpoint.key");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    let beside: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["checkpoints"], "nothing but the checkpoints there");
    let check = ringtrail(&["verify", "--checkpoints", file_text]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // A key in the checkpoint file's directory.
    let near = out.join("my.key");
    let mut args = demo.to_vec();
    args.extend(["--checkpoint-key", near.to_str().unwrap()]);
    let refused = ringtrail(&args);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("keep the key apart"), "{err}");
    assert!(!near.exists());
    // A key an older version left beside the file.
    std::fs::copy(&key, out.join("checkpoints.key")).unwrap();
    let refused = ringtrail(&demo);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("beside the checkpoint file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
