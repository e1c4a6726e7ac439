//! `ringtrail verify`: the real binary against a real PostgreSQL.
//!
//! Two kinds of chained database: one written through the real pipeline
//! (the layer, the writer's chain, binary COPY, the ledger, a
//! dead-lettered row, signed checkpoints in the table and the file), and
//! one written here by hand exactly as the schema contract
//! says the writer writes it (each row's `batch_id`, here through the
//! column's default and `SET LOCAL ringtrail.batch_id` as versions before
//! the shipper sent the column did, binary COPY, a ledger row with `chain_id, seq, sealed_id, sealed_rows,
//! digest, prev_hash, hash`, signed checkpoints), which can also hold a
//! bisected batch and batches dated days ago for retention. Each
//! tampering is done on a copy of the database (`CREATE DATABASE …
//! TEMPLATE`) and must exit 3 with its finding code; the untouched
//! database verifies clean, also after retention dropped a partition.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringtrail::chain::canonical::{stored_micros, StoredRow, STORED_COLUMNS};
use ringtrail::chain::checkpoint::Checkpoint;
use ringtrail::chain::digest::BatchDigest;
use ringtrail::chain::key::{public_path, SigningKey};
use ringtrail::chain::link::{link_hash, BatchMeta, Chain, ChainId};
use ringtrail::encode::copy::{copy_statement, tuples, CopyEncoder};
use ringtrail::{Checkpoints, Field, Row, Value};
use serde_json::Value as Json;

const CHAIN: ChainId = ChainId([0x0c; 16]);
const DAY: Duration = Duration::from_secs(86_400);

fn verify(url: &str, extra: &[&str]) -> Output {
    verify_as(url, extra, test_user_data())
}

/// `ringtrail verify` for a user whose `XDG_DATA_HOME` is `data`: the
/// default public key `verify --checkpoints` reads is
/// `data/ringtrail/checkpoint.key.pub`.
fn verify_as(url: &str, extra: &[&str], data: &std::path::Path) -> Output {
    let mut args = vec!["verify", "--database-url", url];
    args.extend(extra);
    command(&args)
        .env("XDG_DATA_HOME", data)
        .output()
        .expect("the ringtrail binary runs")
}

/// The key [`Chained::new`] signs with.
fn test_key() -> SigningKey {
    SigningKey::from_seed("ringtrail-test", [7; 32]).unwrap()
}

/// This test process's `XDG_DATA_HOME` for `verify`: its default public
/// key is [`test_key`]'s (the writer's default key is never beside the
/// checkpoint file, so neither is the public key verify finds).
fn test_user_data() -> &'static std::path::Path {
    static DATA: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let data =
            std::env::temp_dir().join(format!("ringtrail-verify-data-{}", std::process::id()));
        let key_path = data.join("ringtrail/checkpoint.key");
        std::fs::create_dir_all(key_path.parent().unwrap()).unwrap();
        std::fs::write(
            public_path(&key_path),
            format!("{}\n", test_key().verifier()),
        )
        .unwrap();
        data
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// The finding codes of `verify --json`, asserting its shape.
fn codes(out: &Output) -> Vec<String> {
    text(&out.stdout)
        .lines()
        .map(|l| {
            let v: Json = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["batch_id", "chain", "code", "detail", "seq"], "{l}");
            v["code"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

fn uuid(b: [u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(b)
}

/// `timestamptz` from stored microseconds, exactly.
const AT: &str = "(timestamptz '2000-01-01 00:00:00+00' + {}::bigint * interval '1 microsecond')";

fn at(param: &str) -> String {
    AT.replace("{}", param)
}

/// A chained database written by hand, as the writer would.
struct Chained {
    url: String,
    dir: PathBuf,
    file: PathBuf,
    key: SigningKey,
    chain: Chain,
    /// The chain's id ([`CHAIN`] unless made with [`Chained::with_chain`]).
    chain_id: ChainId,
    next_id: u32,
}

/// One batch to write: its rows' times, which row (if any) is
/// dead-lettered, and whether it is committed as two bisected pieces.
struct Spec {
    times: Vec<i64>,
    poison: Option<usize>,
    bisect: bool,
}

impl Chained {
    fn new(url: String) -> Chained {
        Chained::with_chain(url, CHAIN, [7; 32])
    }

    /// A chain `chain_id` signed by the key of `seed`.
    fn with_chain(url: String, chain_id: ChainId, seed: [u8; 32]) -> Chained {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringtrail-verify-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("checkpoints");
        let key = SigningKey::from_seed("ringtrail-test", seed).unwrap();
        migrate(&url);
        Chained {
            url,
            dir,
            file,
            key,
            chain: Chain::new(chain_id),
            chain_id,
            next_id: 1,
        }
    }

    fn id(&mut self, tag: u8) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[0] = tag;
        id[12..].copy_from_slice(&self.next_id.to_be_bytes());
        // Increasing, like UUIDv7s from one generator.
        id[1..5].copy_from_slice(&self.next_id.to_be_bytes());
        self.next_id += 1;
        id
    }

    /// Writes one batch; returns its seq.
    fn batch(&mut self, spec: &Spec) -> u64 {
        let fields_a = [
            Field {
                name: "n",
                value: Value::U64(7),
            },
            Field {
                name: "who",
                value: Value::Str("a b"),
            },
        ];
        let sealed_id = self.id(0xb0);
        let ids: Vec<[u8; 16]> = spec.times.iter().map(|_| self.id(0x10)).collect();
        let messages: Vec<String> = (0..spec.times.len())
            .map(|i| format!("event {i}"))
            .collect();
        let rows: Vec<Row<'_>> = spec
            .times
            .iter()
            .enumerate()
            .map(|(i, &ts)| {
                let mut context = [None; ringtrail::row::CONTEXT_LEN];
                context[0] = Some("t-1");
                context[1] = Some("u-1");
                Row {
                    id: ids[i],
                    ts_unix_nanos: ts,
                    level: ringtrail::row::LEVEL_INFO,
                    target: "app::verify",
                    message: &messages[i],
                    fields: &fields_a,
                    context,
                    ..Row::default()
                }
            })
            .collect();
        let mut digest = BatchDigest::new();
        for r in &rows {
            digest.push(r);
        }
        let meta = BatchMeta {
            batch_id: sealed_id,
            rows: rows.len() as u32,
            first_ts: stored_micros(*spec.times.iter().min().unwrap()),
            last_ts: stored_micros(*spec.times.iter().max().unwrap()),
        };
        let digest = digest.finish();
        let link = self.chain.link(&digest, &meta);
        // The pieces: (batch id, rows).
        let mut pieces: Vec<([u8; 16], Vec<&Row<'_>>)> = Vec::new();
        let mut dead = None;
        let kept: Vec<&Row<'_>> = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                if Some(*i) == spec.poison {
                    dead = Some(*r);
                    false
                } else {
                    true
                }
            })
            .map(|(_, r)| r)
            .collect();
        if spec.bisect {
            let half = kept.len() / 2;
            pieces.push((self.id(0xb1), kept[..half].to_vec()));
            pieces.push((self.id(0xb2), kept[half..].to_vec()));
        } else {
            pieces.push((sealed_id, kept));
        }
        let mut db = common::client(&self.url);
        for (batch_id, rows) in &pieces {
            let mut tx = db.transaction().unwrap();
            tx.batch_execute(&format!(
                "SET LOCAL ringtrail.batch_id = '{}'",
                uuid(*batch_id)
            ))
            .unwrap();
            let mut enc = CopyEncoder::new();
            for r in rows {
                enc.push_row(r);
            }
            let bytes = enc.finish();
            let mut w = tx.copy_in(&copy_statement()).unwrap();
            w.write_all(&bytes).unwrap();
            w.finish().unwrap();
            tx.execute(
                &format!(
                    "INSERT INTO ringtrail.batches (batch_id, rows, bytes, first_ts, last_ts, \
                     chain_id, seq, sealed_id, sealed_rows, digest, prev_hash, hash) \
                     VALUES ($1, $2, 0, {}, {}, $5, $6, $7, $8, $9, $10, $11)",
                    at("$3"),
                    at("$4")
                ),
                &[
                    &uuid(*batch_id),
                    &(rows.len() as i32),
                    &meta.first_ts,
                    &meta.last_ts,
                    &uuid(self.chain_id.0),
                    &(link.seq as i64),
                    &uuid(sealed_id),
                    &(meta.rows as i32),
                    &digest.as_slice(),
                    &link.prev_hash.as_slice(),
                    &link.hash.as_slice(),
                ],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        if let Some(row) = dead {
            let mut enc = CopyEncoder::new();
            enc.push_row(row);
            let bytes = enc.finish();
            let tuple = &bytes[tuples(&bytes).next().unwrap()];
            db.execute(
                "INSERT INTO ringtrail.dead_letters (batch_id, line, sqlstate, message, tuple) \
                 VALUES ($1, 1, '23514', 'no_poison', $2)",
                &[&uuid(sealed_id), &tuple],
            )
            .unwrap();
        }
        link.seq
    }

    /// Signs the chain's head into the table and the file.
    fn checkpoint(&mut self) {
        let cp = Checkpoint {
            chain: self.chain_id,
            seq: self.chain.seq(),
            head: self.chain.head(),
            time_micros: unix_nanos(SystemTime::now()) / 1000,
        };
        let note = cp.sign(&self.key);
        common::client(&self.url)
            .execute(
                "INSERT INTO ringtrail.checkpoints (chain_id, seq, head, note, public_key, signed_at) \
                 VALUES ($1, $2, $3, $4, $5, now())",
                &[
                    &uuid(self.chain_id.0),
                    &(cp.seq as i64),
                    &cp.head.as_slice(),
                    &note,
                    &self.key.verifier().to_string(),
                ],
            )
            .unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .unwrap();
        f.write_all(note.as_bytes()).unwrap();
    }

    fn file(&self) -> &str {
        self.file.to_str().unwrap()
    }
}

/// Six batches of 20 rows over the last hour (seq 3 lost a row to the
/// dead letters, seq 4 was bisected), checkpoints at seqs 2, 4 and 6.
fn chained() -> Chained {
    let mut c = Chained::new(common::database());
    let start = unix_nanos(SystemTime::now()) - 3_600_000_000_000;
    for b in 0..6 {
        let times = (0..20)
            .map(|i| start + b * 60_000_000_000 + i * 1_000_000_007)
            .collect();
        c.batch(&Spec {
            times,
            poison: (b == 2).then_some(7),
            bisect: b == 3,
        });
        if b % 2 == 1 {
            c.checkpoint();
        }
    }
    c
}

/// A copy of the database at `url` (no connection to it may be open).
fn copy_of(url: &str, name: &str) -> String {
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let copy = format!("{db}_{name}");
    let admin = url.replacen(&format!("/{db}"), "/postgres", 1);
    let mut c = common::client(&admin);
    c.batch_execute(&format!("CREATE DATABASE {copy} TEMPLATE {db}"))
        .unwrap_or_else(|e| panic!("copy {db}: {e}"));
    url.replacen(&format!("/{db}"), &format!("/{copy}"), 1)
}

#[test]
fn an_untouched_chain_verifies_clean() {
    let c = chained();
    let out = verify(&c.url, &["--checkpoints", c.file()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "verified 6 batches, 120 rows in 1 chain: clean\n"
    );

    // The key as text, --json (no output at all), --since.
    let key = c.key.verifier().to_string();
    let out = verify(&c.url, &["--public-key", &key, "--json", "--since", "10m"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        (String::new(), String::new())
    );

    // Without a trusted key: the weaker check, said so.
    let out = verify(&c.url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .starts_with("note: checkpoint signatures were checked against the public_key stored"),
        "{stdout}"
    );
    assert!(stdout.ends_with(": clean\n"), "{stdout}");
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[test]
fn every_tampering_is_found() {
    let c = chained();
    let key = c.key.verifier().to_string();
    tampering_is_found(&c.url, c.file(), &key);

    // The human form of one.
    let one =
        "(SELECT id FROM ringtrail.logs WHERE message = 'event 5' ORDER BY ts LIMIT 1 OFFSET 1)";
    let url = copy_of(&c.url, "human");
    common::client(&url)
        .batch_execute(&format!("DELETE FROM ringtrail.logs WHERE id = {one}"))
        .unwrap();
    let out = verify(&url, &["--public-key", &key]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("row_missing chain={CHAIN} seq=")),
        "{stdout}"
    );
    assert!(lines[0].ends_with(": 1 of 20 rows are missing"), "{stdout}");
    assert_eq!(
        lines[1],
        "verified 6 batches, 119 rows in 1 chain: 1 finding"
    );
    // That batch ended before --since: its rows are not checked.
    let out = verify(&url, &["--public-key", &key, "--since", "10m"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stdout),
        "verified 6 batches, 0 rows in 1 chain \
         (6 batches not checked: 6 ended before --since): clean\n"
    );
    let _ = std::fs::remove_dir_all(&c.dir);
}

/// Each tampering, on its own copy of the chained database at `base`,
/// exits 3 with its finding code. The chain has six batches of rows
/// `event 0` … (seq 3 with a dead letter), checkpoints at least at seqs
/// 4 and 6 in the table and in `file`, signed by `key`.
fn tampering_is_found(base: &str, file: &str, key: &str) {
    let file = file.to_owned();
    let other_key = SigningKey::from_seed("ringtrail-test", [8; 32]).unwrap();
    let forged_note = Checkpoint {
        chain: CHAIN,
        seq: 4,
        head: [1; 32],
        time_micros: 0,
    }
    .sign(&other_key);
    // (name, SQL on the copy, extra flags, the codes expected among the findings, `+` between)
    let one =
        "(SELECT id FROM ringtrail.logs WHERE message = 'event 5' ORDER BY ts LIMIT 1 OFFSET 1)";
    let cases: Vec<(&str, String, Vec<&str>, &str)> = vec![
        ("message", format!("UPDATE ringtrail.logs SET message = 'nothing to see' WHERE id = {one}"), vec![], "row_changed"),
        ("fields", format!("UPDATE ringtrail.logs SET fields = fields || '{{\"n\": 8}}' WHERE id = {one}"), vec![], "row_changed"),
        ("level", format!("UPDATE ringtrail.logs SET level = 5 WHERE id = {one}"), vec![], "row_changed"),
        ("ts_inside", format!("UPDATE ringtrail.logs SET ts = ts + interval '1 microsecond' WHERE id = {one}"), vec![], "row_changed"),
        ("ts_outside", format!("UPDATE ringtrail.logs SET ts = ts - interval '1 day' WHERE id = {one}"), vec![], "row_changed"),
        ("user_id", format!("UPDATE ringtrail.logs SET user_id = 'u-2' WHERE id = {one}"), vec![], "row_changed"),
        ("delete_one", format!("DELETE FROM ringtrail.logs WHERE id = {one}"), vec![], "row_missing"),
        ("delete_50", "DELETE FROM ringtrail.logs WHERE id IN (SELECT id FROM ringtrail.logs ORDER BY ts LIMIT 50)".into(), vec![], "row_missing"),
        ("duplicate", format!("INSERT INTO ringtrail.logs SELECT * FROM ringtrail.logs WHERE id = {one}"), vec![], "row_added"),
        ("forged", "INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated) \
                    SELECT max(ts), gen_random_uuid(), 9, 'app::verify', 'forged', '{}', false FROM ringtrail.logs".into(), vec![], "row_added"),
        ("whole_batch", "DELETE FROM ringtrail.logs WHERE batch_id IN (SELECT batch_id FROM ringtrail.batches WHERE seq = 3); \
                         DELETE FROM ringtrail.dead_letters WHERE batch_id IN (SELECT batch_id FROM ringtrail.batches WHERE seq = 3); \
                         DELETE FROM ringtrail.batches WHERE seq = 3".into(), vec![], "batch_missing"),
        ("ledger_row_only", "DELETE FROM ringtrail.dead_letters WHERE batch_id IN (SELECT batch_id FROM ringtrail.batches WHERE seq = 2); \
                             DELETE FROM ringtrail.batches WHERE seq = 2".into(), vec![], "batch_missing+row_added"),
        ("dead_letter", "DELETE FROM ringtrail.dead_letters".into(), vec![], "row_missing"),
        ("ledger_edit", "UPDATE ringtrail.batches SET rows = rows, sealed_rows = sealed_rows - 1 WHERE seq = 2".into(), vec![], "broken_link"),
        ("truncated_tail", "DELETE FROM ringtrail.logs WHERE batch_id IN (SELECT batch_id FROM ringtrail.batches WHERE seq >= 5); \
                            DELETE FROM ringtrail.batches WHERE seq >= 5; DELETE FROM ringtrail.checkpoints WHERE seq >= 5".into(),
            vec!["--checkpoints", &file, "--public-key", key], "checkpoint_mismatch"),
        ("forged_checkpoint", format!("UPDATE ringtrail.checkpoints SET note = $${forged_note}$$ WHERE seq = 4"),
            vec!["--public-key", key], "bad_signature"),
    ];
    let mut failures = Vec::new();
    for (name, sql, flags, want) in &cases {
        let url = copy_of(base, name);
        common::client(&url)
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut args = flags.clone();
        args.push("--json");
        let out = verify(&url, &args);
        let got = codes(&out);
        if out.status.code() != Some(3) || !want.split('+').all(|w| got.iter().any(|c| c == w)) {
            failures.push(format!(
                "{name}: exit {:?}, findings {got:?}, want {want}; stderr {}",
                out.status.code(),
                text(&out.stderr)
            ));
        } else {
            assert_eq!(
                text(&out.stderr),
                format!(
                    "ringtrail: verification failed: {} finding{}\n",
                    got.len(),
                    if got.len() == 1 { "" } else { "s" }
                )
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The chain recomputed consistently without the key (a rewritten
/// message, its batch's digest and every later link recomputed, the
/// checkpoint rows deleted): only the external checkpoints catch it.
#[test]
fn a_recomputed_chain_is_caught_by_the_external_checkpoints() {
    let c = chained();
    let url = copy_of(&c.url, "recomputed");
    {
        let mut db = common::client(&url);
        db.batch_execute(
            "UPDATE ringtrail.logs SET message = 'rewritten' WHERE batch_id = \
             (SELECT batch_id FROM ringtrail.batches WHERE seq = 2) AND message = 'event 3';
             DELETE FROM ringtrail.checkpoints;",
        )
        .unwrap();
        let ledger = db
            .query(
                &format!(
                    "SELECT DISTINCT seq, sealed_id, sealed_rows, \
                     (EXTRACT(EPOCH FROM first_ts - {0}) * 1000000)::bigint, \
                     (EXTRACT(EPOCH FROM last_ts - {0}) * 1000000)::bigint, digest \
                     FROM ringtrail.batches ORDER BY seq",
                    at("0")
                ),
                &[],
            )
            .unwrap();
        let mut prev = [0u8; 32];
        for l in &ledger {
            let seq: i64 = l.get(0);
            let sealed: uuid::Uuid = l.get(1);
            let meta = BatchMeta {
                batch_id: *sealed.as_bytes(),
                rows: l.get::<_, i32>(2) as u32,
                first_ts: l.get(3),
                last_ts: l.get(4),
            };
            let mut digest: [u8; 32] = l.get::<_, &[u8]>(5).try_into().unwrap();
            if seq == 2 {
                let mut d = BatchDigest::new();
                for r in db
                    .query(
                        &format!("SELECT {STORED_COLUMNS} FROM ringtrail.logs WHERE batch_id = $1"),
                        &[&sealed],
                    )
                    .unwrap()
                {
                    d.push_stored(&StoredRow::from_pg(&r).unwrap());
                }
                digest = d.finish();
            }
            let hash = link_hash(CHAIN, &prev, &digest, seq as u64, &meta);
            db.execute(
                "UPDATE ringtrail.batches SET digest = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
                &[&seq, &digest.as_slice(), &prev.as_slice(), &hash.as_slice()],
            )
            .unwrap();
            prev = hash;
        }
    }
    let out = verify(&url, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without the file it passes: {:?}",
        codes(&out)
    );
    let out = verify(&url, &["--json", "--checkpoints", c.file()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let got = codes(&out);
    assert!(
        !got.is_empty() && got.iter().all(|c| c == "checkpoint_mismatch"),
        "{got:?}"
    );
    let _ = std::fs::remove_dir_all(&c.dir);
}

/// Retention drops a whole partition of old batches; their links are
/// still walked, their rows not counted as missing.
#[test]
fn a_chain_verifies_clean_after_retention() {
    let url = common::database();
    common::apply_schema(&url, Some((DAY, 14, SystemTime::now() - 12 * DAY)));
    let mut c = Chained::new(url);
    let now = unix_nanos(SystemTime::now());
    for days_ago in [10i64, 10, 5, 0] {
        let start = now - days_ago * 86_400_000_000_000 - 3_600_000_000_000;
        c.batch(&Spec {
            times: (0..10).map(|i| start + i * 1_000_000).collect(),
            poison: None,
            bisect: false,
        });
    }
    c.checkpoint();
    let out = command(&["retention", "--keep", "7d", "--database-url", &c.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        common::count(&c.url),
        20,
        "two batches dropped with their partition"
    );
    let out = verify(&c.url, &["--checkpoints", c.file()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "verified 4 batches, 20 rows in 1 chain \
         (2 batches not checked: 2 had rows dropped by retention): clean\n"
    );
    // A row deleted from a batch retention left is still found.
    common::client(&c.url)
        .batch_execute("DELETE FROM ringtrail.logs WHERE id = (SELECT id FROM ringtrail.logs ORDER BY ts DESC LIMIT 1)")
        .unwrap();
    let out = verify(&c.url, &["--checkpoints", c.file(), "--json"]);
    assert_eq!(
        (out.status.code(), codes(&out)),
        (Some(3), vec!["row_missing".to_owned()])
    );
    let _ = std::fs::remove_dir_all(&c.dir);
}

/// H1: one forged row in `ringtrail.retention_log` (no partition was
/// dropped) neither switches the row checks off nor passes itself.
#[test]
fn a_forged_retention_entry_hides_nothing_and_is_itself_found() {
    let c = chained();
    let url = copy_of(&c.url, "forged_retention");
    common::client(&url)
        .batch_execute(
            "INSERT INTO ringtrail.retention_log (partition, rows, range_to, dropped_by) \
             VALUES ('x', 0, 'infinity', 'x'); \
             UPDATE ringtrail.logs SET message = 'edited' \
             WHERE id = (SELECT id FROM ringtrail.logs ORDER BY ts LIMIT 1)",
        )
        .unwrap();
    let out = verify(&url, &["--checkpoints", c.file(), "--json"]);
    let got = codes(&out);
    assert_eq!(out.status.code(), Some(3), "{got:?}");
    assert!(got.contains(&"row_changed".to_owned()), "{got:?}");
    assert!(got.contains(&"retention_unproven".to_owned()), "{got:?}");
    // Alone, the forged entry is a finding too, in the human form.
    let url = copy_of(&c.url, "forged_retention_alone");
    common::client(&url)
        .batch_execute(
            "INSERT INTO ringtrail.retention_log (partition, rows, range_from, range_to, dropped_by) \
             VALUES ('ringtrail.logs_p1', 0, now() - interval '1 day', now() + interval '1 day', 'x')",
        )
        .unwrap();
    let out = verify(&url, &["--checkpoints", c.file()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("retention_unproven chain="), "{stdout}");
    let _ = std::fs::remove_dir_all(&c.dir);
}

/// H2: a row without a `batch_id` is found whatever its time, a chain no
/// checkpoint of the trusted key covers is found, and so is a tail of
/// batches after the last such checkpoint.
#[test]
fn unbatched_rows_and_unanchored_chains_are_found() {
    let c = chained();
    let key = c.key.verifier().to_string();
    // A backdated audit row, inserted by hand.
    let url = copy_of(&c.url, "backdated");
    common::client(&url)
        .batch_execute(
            "INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, trace_id, truncated, kind) \
             VALUES ('2000-01-01', gen_random_uuid(), 9, 'ringtrail::audit', '', \
                     '{\"audit.point\":\"permission\",\"decision\":\"allow\"}', 't-1', false, 3)",
        )
        .unwrap();
    for flags in [vec!["--json"], vec!["--json", "--public-key", &key]] {
        let out = verify(&url, &flags);
        assert_eq!(
            (out.status.code(), codes(&out)),
            (Some(3), vec!["row_added".to_owned()]),
            "{flags:?}"
        );
    }

    // A whole chain forged with the published algorithm, with checkpoints
    // signed by another key: clean without a trusted key (nothing can
    // tell), found with one.
    let url = copy_of(&c.url, "forged_chain");
    let mut forged = Chained::with_chain(url.clone(), ChainId([0x0f; 16]), [9; 32]);
    forged.next_id = 1_000;
    let start = unix_nanos(SystemTime::now()) - 1_800_000_000_000;
    forged.batch(&Spec {
        times: (0..5).map(|i| start + i * 1_000_000).collect(),
        poison: None,
        bisect: false,
    });
    forged.checkpoint();
    let out = verify(&url, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", codes(&out));
    for flags in [
        vec!["--json", "--public-key", &key],
        vec!["--json", "--checkpoints", c.file()],
    ] {
        let out = verify(&url, &flags);
        let got = codes(&out);
        assert_eq!(out.status.code(), Some(3), "{flags:?} {got:?}");
        assert!(got.contains(&"unanchored_chain".to_owned()), "{got:?}");
        assert!(
            got.contains(&"bad_signature".to_owned()) || flags.len() == 3,
            "{got:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&forged.dir);

    // Batches after the newest checkpoint: an unsigned tail.
    let url = copy_of(&c.url, "tail");
    let mut more = Chained::new(url.clone());
    more.chain = c.chain.clone();
    more.next_id = c.next_id;
    more.batch(&Spec {
        times: (0..3).map(|i| start + 3_000_000_000_000 + i).collect(),
        poison: None,
        bisect: false,
    });
    let out = verify(&url, &["--json", "--public-key", &key]);
    assert_eq!(
        (out.status.code(), codes(&out)),
        (Some(3), vec!["unsigned_tail".to_owned()])
    );
    let out = verify(&url, &["--public-key", &key]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("unsigned_tail chain={CHAIN} seq=7: ")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&more.dir);

    // Everything deleted: the checkpoint file says there was more.
    let url = copy_of(&c.url, "emptied");
    common::client(&url)
        .batch_execute(
            "TRUNCATE ringtrail.logs, ringtrail.batches, ringtrail.checkpoints, ringtrail.dead_letters",
        )
        .unwrap();
    let out = verify(&url, &["--json", "--checkpoints", c.file()]);
    assert_eq!(out.status.code(), Some(3), "{:?}", codes(&out));
    let _ = std::fs::remove_dir_all(&c.dir);
}

/// M5: a batch whose rows straddle the bound of a partition retention
/// dropped is not `row_missing`; the summary says what was skipped, and
/// why.
#[test]
fn retention_through_the_middle_of_a_batch_is_no_alarm() {
    let url = common::database();
    common::apply_schema(&url, Some((DAY, 14, SystemTime::now() - 12 * DAY)));
    let mut c = Chained::new(url);
    let now = unix_nanos(SystemTime::now());
    let day = 86_400_000_000_000i64;
    // Midnight (UTC) ten days ago: the bound between two partitions.
    let midnight = (now / day - 9) * day;
    c.batch(&Spec {
        times: (-5..5).map(|i| midnight + i * 200_000).collect(), // ±1 ms
        poison: None,
        bisect: false,
    });
    c.batch(&Spec {
        times: (0..10).map(|i| now - 3_600_000_000_000 + i).collect(),
        poison: None,
        bisect: false,
    });
    c.checkpoint();
    let out = command(&["retention", "--keep", "9d", "--database-url", &c.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(common::count(&c.url), 15, "half of the first batch is gone");
    let out = verify(&c.url, &["--checkpoints", c.file()]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (
            Some(0),
            "verified 2 batches, 10 rows in 1 chain \
             (1 batch not checked: its rows were dropped by retention): clean\n"
                .to_owned()
        ),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[test]
fn mistakes_are_one_line_with_their_exit_code() {
    let dir =
        std::env::temp_dir().join(format!("ringtrail-verify-mistakes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_key = dir.join("bad.pub");
    std::fs::write(&bad_key, "not a key\n").unwrap();
    let url = common::database();
    migrate(&url);
    let bad = bad_key.to_str().unwrap();
    assert_one_line_failure(&verify(&url, &["--public-key", bad]), 1, "--public-key");
    assert_one_line_failure(
        &verify(&url, &["--public-key", "/nonexistent/key.pub"]),
        1,
        "neither a key nor a readable file",
    );
    assert_one_line_failure(
        &verify(&url, &["--checkpoints", "/nonexistent/checkpoints"]),
        1,
        "cannot read the checkpoint file",
    );
    assert_one_line_failure(
        &verify("postgres://nobody@127.0.0.1:1/none?connect_timeout=2", &[]),
        1,
        "cannot connect",
    );
    assert_one_line_failure(
        &verify("postgres://u:secret@h:notaport/db", &[]),
        1,
        "invalid --database-url",
    );
    assert_one_line_failure(&verify(&url, &["--frobnicate"]), 2, "--frobnicate");
    assert_one_line_failure(&verify(&url, &["--since", "yesterday"]), 2, "--since");
    let lone = dir.join("checkpoints");
    std::fs::write(&lone, "").unwrap();
    assert_one_line_failure(
        &verify_as(&url, &["--checkpoints", lone.to_str().unwrap()], &dir),
        1,
        "--checkpoints needs --public-key",
    );
    // An empty database verifies; one without the schema is an error.
    let out = verify(&url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "verified 0 batches, 0 rows in 0 chains: clean\n"
    );
    assert_one_line_failure(&verify(&common::database(), &[]), 1, "cannot verify");
    let _ = std::fs::remove_dir_all(&dir);
}

fn migrate(url: &str) {
    common::apply_schema(url, None);
}

/// Through the real pipeline (the layer, the writer's chain, binary COPY,
/// the ledger, a dead-lettered row, signed checkpoints in the table and
/// the file): clean, and every tampering found.
#[test]
fn the_real_pipeline_verifies_and_tampering_shows() {
    let url = common::database();
    let dir =
        std::env::temp_dir().join(format!("ringtrail-verify-pipeline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("checkpoints");
    let key_path = dir.join("keys/checkpoint.key");
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .flush_interval(Duration::from_secs(3600))
            .checkpoints(
                Checkpoints::file(&file)
                    .key(&key_path)
                    .every(2, Duration::from_secs(3600)),
            ),
    );
    common::client(&url)
        .batch_execute(
            "ALTER TABLE ringtrail.logs ADD CONSTRAINT no_poison CHECK (message <> 'poison')",
        )
        .unwrap();
    for b in 0..6 {
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..20 {
                tracing::info!(user_id = "u-1", n = 7u64, who = "a b", "event {i}");
                if b == 2 && i == 10 {
                    tracing::info!("poison");
                }
            }
        });
        guard.flush().unwrap();
    }
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dead_lettered), (120, 1), "{stats:?}");
    drop(guard);
    drop(dispatch);

    let pub_key = std::fs::read_to_string(public_path(&key_path)).unwrap();
    let key = pub_key.trim().to_owned();
    let file = file.to_str().unwrap().to_owned();
    let out = verify(&url, &["--checkpoints", &file, "--public-key", &key]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "verified 6 batches, 121 rows in 1 chain: clean\n"
    );
    let out = verify(&url, &["--public-key", &key, "--json"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), String::new())
    );

    tampering_is_found(&url, &file, &key);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The speed quoted in `src/read/verify.rs`: 1,000,000 rows in 1,000
/// batches written as the writer does, then `verify --checkpoints` timed
/// (`RINGTRAIL_BIN` names a release binary to time instead of this
/// build's):
///
/// ```text
/// cargo build --release --bin ringtrail
/// RINGTRAIL_BIN=target/release/ringtrail cargo test --test verify -- --ignored --nocapture speed
/// ```
#[test]
#[ignore = "a measurement, not a check"]
fn speed_on_a_million_rows() {
    let mut c = Chained::new(common::database());
    let start = unix_nanos(SystemTime::now()) - 2 * 3_600_000_000_000;
    for b in 0..1000 {
        c.batch(&Spec {
            times: (0..1000)
                .map(|i| start + b * 5_000_000_000 + i * 5_000_000)
                .collect(),
            poison: None,
            bisect: false,
        });
    }
    c.checkpoint();
    let mut db = common::client(&c.url);
    for table in ["ringtrail.logs", "ringtrail.batches"] {
        db.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .unwrap();
    }
    drop(db);
    let bin =
        std::env::var("RINGTRAIL_BIN").unwrap_or_else(|_| bin().to_string_lossy().into_owned());
    let started = std::time::Instant::now();
    let out = Command::new("/usr/bin/time")
        .args([
            "-f",
            "peak RSS %M KiB",
            &bin,
            "verify",
            "--database-url",
            &c.url,
        ])
        .args(["--checkpoints", c.file()])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        text(&out.stdout),
        "verified 1000 batches, 1000000 rows in 1 chain: clean\n",
        "{}",
        text(&out.stderr)
    );
    eprintln!(
        "verify: 1,000,000 rows in {:.2} s ({:.0} rows/s), {}",
        took.as_secs_f64(),
        1e6 / took.as_secs_f64(),
        text(&out.stderr).trim()
    );
    let _ = std::fs::remove_dir_all(&c.dir);
}

/// A batch the shipper had to bisect (a deferred constraint fails at
/// COMMIT, naming no line) commits as several pieces under one seq, and
/// its poison row goes to the dead letters: the real pipeline's pieces
/// verify clean, and a row deleted from one piece is found.
#[test]
fn a_bisected_batch_from_the_real_pipeline_verifies() {
    let url = common::database();
    let (dispatch, guard) =
        common::start(common::builder(&url).flush_interval(Duration::from_secs(3600)));
    common::client(&url)
        .batch_execute(
            "CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.message = 'poison' THEN
                 RAISE EXCEPTION 'poison at commit' USING ERRCODE = '23514';
               END IF;
               RETURN NULL;
             END $$;
             CREATE CONSTRAINT TRIGGER reject_poison AFTER INSERT ON ringtrail.logs
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reject_poison();",
        )
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..37u64 {
            tracing::info!(i, "{}", if i == 23 { "poison" } else { "fine" });
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dead_lettered), (36, 1), "{stats:?}");
    drop(guard);
    drop(dispatch);
    let pieces: i64 = common::client(&url)
        .query_one("SELECT count(*) FROM ringtrail.batches WHERE seq = 1", &[])
        .unwrap()
        .get(0);
    assert!(pieces > 1, "bisected into pieces: {pieces}");
    let out = verify(&url, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).ends_with("verified 1 batch, 37 rows in 1 chain: clean\n"),
        "{}",
        text(&out.stdout)
    );
    // The isolated row's dead letter names a piece that never committed,
    // and the batch as sealed, which the ledger's pieces name too.
    let named: Vec<(bool, bool)> = common::client(&url)
        .query(
            "SELECT EXISTS (SELECT 1 FROM ringtrail.batches b WHERE b.batch_id = d.batch_id), \
                    d.sealed_id = (SELECT DISTINCT sealed_id FROM ringtrail.batches WHERE seq = 1) \
             FROM ringtrail.dead_letters d",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(named, vec![(false, true)]);
    // Written before migration 0008, without `sealed_id`, the dead letter
    // is still found by its piece id's prefix and its time.
    let old = copy_of(&url, "dead_unsealed");
    common::client(&old)
        .batch_execute("ALTER TABLE ringtrail.dead_letters DROP COLUMN sealed_id")
        .unwrap();
    let out = verify(&old, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    for (name, sql, want) in [
        (
            "dead_duplicated",
            "INSERT INTO ringtrail.dead_letters (batch_id, sqlstate, message, tuple, sealed_id) \
             SELECT batch_id, sqlstate, message, tuple, sealed_id FROM ringtrail.dead_letters",
            "row_added",
        ),
        ("dead_gone", "DELETE FROM ringtrail.dead_letters", "row_missing"),
        (
            "dead_forged",
            "INSERT INTO ringtrail.dead_letters (batch_id, sqlstate, message, tuple) \
             SELECT gen_random_uuid(), sqlstate, message, tuple FROM ringtrail.dead_letters",
            "row_added",
        ),
        (
            "row_gone",
            "DELETE FROM ringtrail.logs WHERE id = (SELECT id FROM ringtrail.logs ORDER BY ts LIMIT 1)",
            "row_missing",
        ),
    ] {
        let copy = copy_of(&url, name);
        common::client(&copy).batch_execute(sql).unwrap();
        let out = verify(&copy, &["--json"]);
        assert_eq!(
            (out.status.code(), codes(&out)),
            (Some(3), vec![want.to_owned()]),
            "{name}"
        );
    }
}
