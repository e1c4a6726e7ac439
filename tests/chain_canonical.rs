//! The chain's canonical form, proved against a real PostgreSQL: random
//! hostile rows are encoded with the crate's binary COPY encoder, loaded
//! with COPY, read back with `chain::canonical::STORED_COLUMNS`, and every
//! row's digest from the stored row must equal its digest from the
//! writer-side `Row`; every batch's digest likewise. Then rows are edited,
//! deleted and duplicated in SQL, and the findings say so.
//!
//! Also: the writer's side of it (`BatchDigest::push`) allocates nothing
//! per row once its buffers have grown, counted by a global allocator.
//!
//! The seed is printed; rerun one with `RINGTRAIL_PROPTEST_SEED=<seed>`.
//! `RINGTRAIL_PROPTEST_ROWS` sets the number of rows (default 3000).

use ringtrail_testkit as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

use ringtrail::chain::canonical::{RowHasher, StoredRow, STORED_COLUMNS};
use ringtrail::chain::digest::BatchDigest;
use ringtrail::chain::finding::{check_rows, FindingCode, LedgerEntry, Recount};
use ringtrail::chain::link::{BatchMeta, Chain, ChainId};
use ringtrail::encode::copy::{tuples, CopyEncoder};
use ringtrail::{Field, Row, Value};

thread_local! {
    /// Allocations made by this thread while counting is on.
    static ALLOCATIONS: Cell<Option<u64>> = const { Cell::new(None) };
}

struct Counting;

// SAFETY: delegates every call to the system allocator unchanged; the
// counter is a const-initialised thread-local `Cell` with no destructor,
// so counting never allocates or re-enters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from `System.alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded; `ptr` came from `System.alloc` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count() {
    let _ = ALLOCATIONS.try_with(|n| {
        if let Some(c) = n.get() {
            n.set(Some(c + 1));
        }
    });
}

#[global_allocator]
static GLOBAL: Counting = Counting;

ringtrail_testkit::rng_wrapper!(Rng);

impl Rng {
    /// A context id: often short, sometimes long enough to be cut (with
    /// multibyte characters around the 255-byte cut).
    fn context(&mut self) -> Option<String> {
        match self.below(10) {
            0..=3 => None,
            4 => Some(String::new()),
            5 | 6 => Some(
                "é".repeat(self.below(140) as usize)
                    + &"🦀".repeat(self.below(3) as usize)
                    + &self.string(20),
            ),
            _ => Some(self.string(40)),
        }
    }
}

/// An owned field value, to borrow `Value`s from.
#[derive(Clone)]
enum Owned {
    Bool(bool),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Str(String),
}

const F64_EDGES: &[f64] = &[
    0.0,
    -0.0,
    f64::NAN,
    -f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    f64::MAX,
    f64::MIN,
    0.1,
    1e15,
    1e16,
    1e21,
    1e-7,
    1.5,
    -2.5e-300,
    9_007_199_254_740_993.0,
    123_456_789.123_456_79,
];

/// Names from a small pool, so names repeat within a row; `a\0` and
/// `a\u{FFFD}` are one name once stored.
const NAMES: &[&str] = &[
    "a",
    "b",
    "aa",
    "a\0",
    "a\u{FFFD}",
    "\u{20ac}",
    "\r",
    "\u{1F600}",
    "\u{fb33}",
    "count",
    "",
];

fn value(rng: &mut Rng) -> Owned {
    let (r1, r2) = (rng.next(), rng.next());
    match rng.below(9) {
        0 => Owned::Bool(rng.percent(50)),
        1 => Owned::I64(rng.pick(&[i64::MIN, i64::MAX, -1, 0, r1 as i64])),
        2 => Owned::U64(rng.pick(&[u64::MAX, 0, 1 << 53, (1 << 53) + 1, r1])),
        3 => Owned::I128(rng.pick(&[
            i128::MIN,
            i128::MAX,
            -(1i128 << 70) - 1,
            ((r1 as i128) << 64) | r2 as i128,
        ])),
        4 => Owned::U128(rng.pick(&[
            u128::MAX,
            1u128 << 100,
            (u128::from(r1) << 64) | u128::from(r2),
        ])),
        5 => Owned::F64(rng.pick(F64_EDGES)),
        6 => Owned::F64(f64::from_bits(rng.next())),
        7 => Owned::F64((rng.next() as i64 as f64) / 1024.0),
        _ => Owned::Str(rng.string(30)),
    }
}

struct OwnedRow {
    ts: i64,
    id: [u8; 16],
    level: i16,
    target: String,
    message: String,
    fields: Vec<(String, Owned)>,
    context: [Option<String>; 6],
    span_name: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    truncated: bool,
    kind: Option<i16>,
    redacted: u32,
    seq: u64,
}

fn owned_row(rng: &mut Rng, n: u64) -> OwnedRow {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&rng.next().to_be_bytes());
    id[8..].copy_from_slice(&n.to_be_bytes()); // unique
    let fields = (0..rng.below(9))
        .map(|_| {
            let name = if rng.percent(70) {
                rng.pick(NAMES).to_owned()
            } else {
                rng.string(12)
            };
            (name, value(rng))
        })
        .collect();
    let opt = |rng: &mut Rng, max| rng.percent(60).then(|| rng.string(max));
    let (r1, r2, r3, r4, r5) = (rng.next(), rng.next(), rng.next(), rng.next(), rng.next());
    let ts = rng.pick(&[
        i64::MIN,
        i64::MAX,
        -1,
        -999,
        0,
        r1 as i64,
        1_764_777_925_123_456_789 + (r2 >> 24) as i64,
    ]);
    let level = rng.pick(&[1, 5, 9, 13, 17, r3 as i16]);
    let line = rng.pick(&[0, 1, u32::MAX, r4 as u32]);
    let kind = rng.pick(&[1, 5, r5 as i16]);
    let redacted = rng.pick(&[0, 1, 40_000, u32::MAX, r5 as u32 % 100]);
    // 0 (a row hashed as the first version) and any other (the second).
    let seq = rng.pick(&[0, 0, 1, r2, i64::MAX as u64 + 1, u64::MAX]);
    OwnedRow {
        ts,
        id,
        level,
        target: rng.string(20),
        message: if rng.percent(5) {
            rng.string(2000)
        } else {
            rng.string(60)
        },
        fields,
        context: std::array::from_fn(|_| rng.context()),
        span_name: opt(rng, 15),
        file: opt(rng, 30),
        line: rng.percent(70).then_some(line),
        truncated: rng.percent(20),
        kind: rng.percent(30).then_some(kind),
        redacted,
        seq,
    }
}

fn fields_of(row: &OwnedRow) -> Vec<Field<'_>> {
    row.fields
        .iter()
        .map(|(name, v)| Field {
            name,
            value: match v {
                Owned::Bool(b) => Value::Bool(*b),
                Owned::I64(n) => Value::I64(*n),
                Owned::U64(n) => Value::U64(*n),
                Owned::I128(n) => Value::I128(*n),
                Owned::U128(n) => Value::U128(*n),
                Owned::F64(f) => Value::F64(*f),
                Owned::Str(s) => Value::Str(s),
            },
        })
        .collect()
}

fn row_of<'a>(row: &'a OwnedRow, fields: &'a [Field<'a>]) -> Row<'a> {
    Row {
        ts_unix_nanos: row.ts,
        id: row.id,
        level: row.level,
        target: &row.target,
        message: &row.message,
        fields,
        context: std::array::from_fn(|i| row.context[i].as_deref()),
        span_name: row.span_name.as_deref(),
        file: row.file.as_deref(),
        line: row.line,
        truncated: row.truncated,
        kind: row.kind,
        redacted: row.redacted,
        seq: row.seq,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_rows_digest_like_the_rows_the_writer_sent() {
    let seed = env_u64("RINGTRAIL_PROPTEST_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let total = env_u64("RINGTRAIL_PROPTEST_ROWS").unwrap_or(3000);
    eprintln!("chain_canonical: RINGTRAIL_PROPTEST_SEED={seed} rows={total}");
    let mut rng = Rng::new(seed);

    let url = common::database();
    let mut client = common::connect(&url).await;
    ringtrail::schema::apply(&mut client).await.unwrap();

    let owned: Vec<OwnedRow> = (0..total).map(|n| owned_row(&mut rng, n)).collect();
    let fields: Vec<Vec<Field<'_>>> = owned.iter().map(fields_of).collect();
    let rows: Vec<Row<'_>> = owned
        .iter()
        .zip(&fields)
        .map(|(o, f)| row_of(o, f))
        .collect();

    // Writer side: encode in random-sized batches, digesting each row as
    // it is encoded; load each batch with COPY.
    let mut hasher = RowHasher::new();
    let mut writer_row: HashMap<[u8; 16], [u8; 32]> = HashMap::new();
    let mut batch_of: HashMap<[u8; 16], usize> = HashMap::new();
    let mut writer_batches: Vec<(u32, [u8; 32])> = Vec::new();
    let mut encoder = CopyEncoder::new();
    let mut digest = BatchDigest::new();
    let mut encoded = BatchDigest::new();
    let mut fast = 0;
    let mut start = 0;
    while start < rows.len() {
        let end = (start + 1 + rng.below(400) as usize).min(rows.len());
        // Not in id order: the digest must not care.
        let mut batch: Vec<&Row<'_>> = rows[start..end].iter().collect();
        if rng.percent(50) {
            batch.reverse();
        }
        for row in &batch {
            encoder.push_row(row);
            digest.push(row);
            let row_digest = hasher.row_digest(row);
            // The writer's path: the digest from the bytes just encoded,
            // when they are on its fast path.
            if let Some(pair) = hasher.encoded_digest(encoder.last_tuple()) {
                assert_eq!(
                    pair,
                    (row.id, row_digest),
                    "seed {seed}: encoded digest of row {:?}",
                    row.message
                );
                fast += 1;
            }
            encoded.push_encoded(encoder.last_tuple(), row);
            writer_row.insert(row.id, row_digest);
            batch_of.insert(row.id, writer_batches.len());
        }
        let batch_digest = digest.finish();
        assert_eq!(encoded.finish(), batch_digest, "seed {seed}: encoded");
        writer_batches.push(((end - start) as u32, batch_digest));
        let bytes = encoder.finish();
        // The same digest from the batch's bytes alone (shipper, spool).
        for range in tuples(&bytes) {
            assert!(digest.push_tuple(&bytes[range]), "seed {seed}: a tuple");
        }
        assert_eq!(digest.finish(), batch_digest, "seed {seed}: from tuples");
        let loaded = common::copy_in(&mut client, bytes)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: COPY failed: {e}"));
        assert_eq!(loaded, (end - start) as u64);
        start = end;
    }
    eprintln!("seed {seed}: {fast} of {total} rows on the encoded fast path");
    // Most generated rows carry a hostile name (off the path on purpose);
    // the rest must take it.
    assert!(
        fast >= total / 10,
        "seed {seed}: only {fast} of {total} rows took the fast path"
    );

    // Read back, ordered by id as `verify` reads a batch.
    let recount = |stored: &[tokio_postgres::Row]| {
        let mut per_batch: Vec<BatchDigest> = (0..writer_batches.len())
            .map(|_| BatchDigest::new())
            .collect();
        let mut hasher = RowHasher::new();
        let mut mismatches = Vec::new();
        for pg in stored {
            let row = StoredRow::from_pg(pg).expect("STORED_COLUMNS");
            let d = hasher.stored_digest(&row);
            if writer_row.get(&row.id) != Some(&d) {
                mismatches.push(row.id);
            }
            per_batch[batch_of[&row.id]].push_digest(row.id, d);
        }
        let found: Vec<Recount> = per_batch
            .iter_mut()
            .map(|b| Recount {
                rows: b.rows(),
                digest: b.finish(),
            })
            .collect();
        (mismatches, found)
    };
    let select = format!("SELECT {STORED_COLUMNS} FROM ringtrail.logs ORDER BY id");
    let stored = client.query(&select, &[]).await.unwrap();
    assert_eq!(stored.len(), rows.len());
    let (mismatches, found) = recount(&stored);
    if let Some(id) = mismatches.first() {
        let owned_row = owned.iter().find(|o| o.id == *id).unwrap();
        let i = owned.iter().position(|o| o.id == *id).unwrap();
        let mut canonical = Vec::new();
        RowHasher::new().canonical_row(&rows[i], &mut canonical);
        let pg = stored
            .iter()
            .find(|r| StoredRow::from_pg(r).unwrap().id == *id)
            .unwrap();
        let mut from_table = Vec::new();
        RowHasher::new().canonical_stored(&StoredRow::from_pg(pg).unwrap(), &mut from_table);
        panic!(
            "seed {seed}: {} of {} rows digest differently; first: message {:?}\n\
             writer canonical: {:?}\nstored canonical: {:?}",
            mismatches.len(),
            rows.len(),
            owned_row.message,
            String::from_utf8_lossy(&canonical),
            String::from_utf8_lossy(&from_table),
        );
    }

    // The ledger as the writer would have written it, and the batches as
    // found: no findings.
    let chain_id = ChainId([0x5a; 16]);
    let mut chain = Chain::new(chain_id);
    let ledger: Vec<LedgerEntry> = writer_batches
        .iter()
        .enumerate()
        .map(|(i, &(n, digest))| {
            let meta = BatchMeta {
                batch_id: [i as u8; 16],
                rows: n,
                first_ts: 0,
                last_ts: 0,
            };
            let link = chain.link(&digest, &meta);
            LedgerEntry {
                seq: link.seq,
                prev_hash: link.prev_hash,
                hash: link.hash,
                digest,
                meta,
            }
        })
        .collect();
    for (entry, found) in ledger.iter().zip(&found) {
        assert_eq!(check_rows(chain_id, entry, found), None, "seed {seed}");
    }

    // Tamper in SQL: edit a row's fields, delete a row, duplicate a row,
    // in three different batches; each shows as its finding.
    let ids: Vec<[u8; 16]> = stored
        .iter()
        .map(|r| StoredRow::from_pg(r).unwrap().id)
        .collect();
    let batches_in_order: Vec<usize> = {
        let mut seen = Vec::new();
        for id in &ids {
            let b = batch_of[id];
            if !seen.contains(&b) {
                seen.push(b);
            }
        }
        seen
    };
    if batches_in_order.len() < 3 {
        return; // too few rows asked for to tamper with three batches
    }
    let first_id_of = |b: usize| *ids.iter().find(|id| batch_of[*id] == b).unwrap();
    let uuid = |id: [u8; 16]| ringtrail_uuid(&id);
    let (changed, missing, added) = (
        batches_in_order[0],
        batches_in_order[1],
        batches_in_order[2],
    );
    client
        .batch_execute(&format!(
            "UPDATE ringtrail.logs SET fields = fields || '{{\"tampered\": 1}}' WHERE id = '{}';
             DELETE FROM ringtrail.logs WHERE id = '{}';
             INSERT INTO ringtrail.logs SELECT * FROM ringtrail.logs WHERE id = '{}';",
            uuid(first_id_of(changed)),
            uuid(first_id_of(missing)),
            uuid(first_id_of(added)),
        ))
        .await
        .unwrap();
    let stored = client.query(&select, &[]).await.unwrap();
    let (mismatches, found) = recount(&stored);
    assert_eq!(mismatches, [first_id_of(changed)], "seed {seed}");
    let codes: Vec<(usize, FindingCode)> = ledger
        .iter()
        .zip(&found)
        .enumerate()
        .filter_map(|(i, (e, f))| check_rows(chain_id, e, f).map(|f| (i, f.code)))
        .collect();
    let mut want = vec![
        (changed, FindingCode::RowChanged),
        (missing, FindingCode::RowMissing),
        (added, FindingCode::RowAdded),
    ];
    want.sort();
    assert_eq!(codes, want, "seed {seed}");
}

/// The hyphenated text of a UUID.
fn ringtrail_uuid(id: &[u8; 16]) -> String {
    ChainId(*id).to_string()
}

#[test]
fn the_writer_side_allocates_nothing_per_row() {
    let mut rng = Rng::new(7);
    let owned: Vec<OwnedRow> = (0..2000).map(|n| owned_row(&mut rng, n)).collect();
    let fields: Vec<Vec<Field<'_>>> = owned.iter().map(fields_of).collect();
    let rows: Vec<Row<'_>> = owned
        .iter()
        .zip(&fields)
        .map(|(o, f)| row_of(o, f))
        .collect();
    let mut digest = BatchDigest::new();
    // Warm-up: the buffers grow to the widest row and the largest batch.
    for row in &rows {
        digest.push(row);
    }
    let warm = digest.finish();
    ALLOCATIONS.with(|n| n.set(Some(0)));
    for row in &rows {
        digest.push(row);
    }
    let again = digest.finish();
    let allocations = ALLOCATIONS.with(|n| n.replace(None));
    assert_eq!(again, warm);
    assert_eq!(
        allocations,
        Some(0),
        "allocations while digesting 2000 rows"
    );
    // The writer's own path, from the encoded tuples (the rows beside
    // them for what is off its fast path).
    let mut encoder = CopyEncoder::new();
    for row in &rows {
        encoder.push_row(row);
    }
    let bytes = encoder.finish();
    let ranges: Vec<_> = tuples(&bytes).collect();
    for (range, row) in ranges.iter().zip(&rows) {
        digest.push_encoded(&bytes[range.clone()], row);
    }
    assert_eq!(digest.finish(), warm);
    ALLOCATIONS.with(|n| n.set(Some(0)));
    for (range, row) in ranges.iter().zip(&rows) {
        digest.push_encoded(&bytes[range.clone()], row);
    }
    let from_tuples = digest.finish();
    let allocations = ALLOCATIONS.with(|n| n.replace(None));
    assert_eq!(from_tuples, warm);
    assert_eq!(allocations, Some(0), "allocations in push_encoded");
    // The counter does count.
    ALLOCATIONS.with(|n| n.set(Some(0)));
    drop(std::hint::black_box(Vec::<u8>::with_capacity(8)));
    assert_eq!(ALLOCATIONS.with(|n| n.replace(None)), Some(1));
}
