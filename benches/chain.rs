//! What the tamper-evident chain costs the writer, beside what encoding
//! already costs it (the chain is budgeted at ≤ 5% of ingest).
//!
//! Run with `cargo bench --bench chain` (add e.g.
//! `-- --warm-up-time 0.5 --measurement-time 1` for a quick look).
//! `cargo test --benches` runs it once, as a smoke test.
//!
//! Every variant handles the same batch of 1,000 rows, each the decoded
//! form of the `hot_path` bench's event (a message, four fields of mixed
//! types, three context ids, file and line):
//!
//! | variant | per batch |
//! |---|---|
//! | `encode` | `CopyEncoder::push_row` for each row, then `finish`: the writer's work with the chain off |
//! | `encode_sorted` | `encode` with `fields` in JCS member order (`CopyEncoder::sort_fields`), as the writer encodes with the chain on |
//! | `encode_and_digest` | `encode_sorted` with each tuple hashed as it is written (`BatchDigest::push_canonical`, or `push_encoded` when the tuple's numbers are not canonical): the writer's work with the chain on |
//! | `digest_encoded` | `push_encoded` over an unsorted batch's tuples: the pass over each tuple's JSON (sort, deduplicate, canonical numbers) that sorted tuples skip, then the row digests |
//! | `digest` | `BatchDigest::push` of each `Row`, then `finish`: the digest from the rows alone (re-encodes every value), hashed one at a time |
//! | `canonical_only` | the canonical tuple of each `Row`, not hashed |
//! | `sha256_floor` | SHA-256 (`sha2`, SHA-NI here) of one row's digest input (294 bytes), 1,000 times |
//! | `digest_from_tuples` | `BatchDigest::push_tuple` over the encoded batch: verification's path for bytes (parses the JSON back) |
//!
//! And the row ids the writer makes, 1,000 at a time (group `ids`):
//!
//! | variant | per batch |
//! |---|---|
//! | `ringtrail` | `ids::Uuid7::next` with the row's time: the writer's generator |
//! | `uuid_now_v7` | the `uuid` crate's `Uuid::now_v7()` (its clock read and random bits per id) |
//!
//! The chain's cost on the writer is `encode_and_digest − encode`; of
//! ingest it is smaller still (the ingest bench's end-to-end rate also
//! counts the server).
//!
//! On a shared 2-core Xeon with SHA-NI and AVX-512 (December 2026,
//! `--measurement-time 2`), per 1,000 rows: `encode` 161 µs,
//! `encode_and_digest` 450 µs (so the chain adds 289 µs), `digest_encoded`
//! 296 µs, `digest` 474 µs, `sha256_floor` 198 µs (and a sixteen-lane AVX-512 SHA-256, since removed, 110 µs),
//! `canonical_only` 259 µs, `digest_from_tuples` 818 µs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringtrail::chain::canonical::RowHasher;
use ringtrail::chain::digest::BatchDigest;
use ringtrail::encode::copy::{tuples, CopyEncoder};
use ringtrail::{Field, Row, Value};

const ROWS: usize = 1_000;

fn bench(c: &mut Criterion) {
    let messages: Vec<String> = (0..ROWS).map(|i| format!("request {i} took 3ms")).collect();
    let fields = [
        Field {
            name: "user_id_hash",
            value: Value::U64(42),
        },
        Field {
            name: "latency",
            value: Value::F64(1.5),
        },
        Field {
            name: "ok",
            value: Value::Bool(true),
        },
        Field {
            name: "route",
            value: Value::Str("/v1/orders"),
        },
    ];
    let rows: Vec<Row<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let mut id = [0x01; 16];
            id[8..].copy_from_slice(&(i as u64).to_be_bytes());
            Row {
                ts_unix_nanos: 1_764_777_925_123_456_789 + i as i64 * 1_000,
                id,
                target: "ringtrail_bench::orders",
                message,
                fields: &fields,
                context: [
                    Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                    Some("u-42"),
                    Some("s-7f3a"),
                    None,
                    None,
                    None,
                ],
                span_name: Some("request"),
                file: Some("benches/chain.rs"),
                line: Some(42),
                ..Row::default()
            }
        })
        .collect();

    let mut group = c.benchmark_group("chain");
    group.throughput(Throughput::Elements(ROWS as u64));
    let mut encoder = CopyEncoder::new();
    let mut digest = BatchDigest::new();
    group.bench_function("encode", |b| {
        b.iter(|| {
            for row in &rows {
                encoder.push_row(row);
            }
            encoder.finish()
        })
    });
    group.bench_function("digest", |b| {
        b.iter(|| {
            for row in &rows {
                digest.push(row);
            }
            digest.finish()
        })
    });
    let mut sorted = CopyEncoder::new();
    sorted.sort_fields(true);
    group.bench_function("encode_sorted", |b| {
        b.iter(|| {
            for row in &rows {
                sorted.push_row(row);
            }
            sorted.finish()
        })
    });
    group.bench_function("encode_and_digest", |b| {
        b.iter(|| {
            for row in &rows {
                sorted.push_row(row);
                if sorted.last_tuple_canonical() {
                    digest.push_canonical(sorted.last_tuple(), row);
                } else {
                    digest.push_encoded(sorted.last_tuple(), row);
                }
            }
            (sorted.finish(), digest.finish())
        })
    });
    for row in &rows {
        encoder.push_row(row);
    }
    let batch = encoder.finish();
    group.bench_function("digest_encoded", |b| {
        b.iter(|| {
            for (range, row) in tuples(&batch).zip(&rows) {
                digest.push_encoded(&batch[range], row);
            }
            digest.finish()
        })
    });
    group.bench_function("digest_from_tuples", |b| {
        b.iter(|| {
            for range in tuples(&batch) {
                digest.push_tuple(&batch[range]);
            }
            digest.finish()
        })
    });
    let mut canon = Vec::new();
    RowHasher::new().canonical_row(&rows[0], &mut canon);
    group.bench_function("sha256_floor", |b| {
        use sha2::Digest;
        b.iter(|| {
            let mut x = 0u8;
            for _ in 0..ROWS {
                x ^= sha2::Sha256::digest(std::hint::black_box(&canon))[0];
            }
            x
        })
    });
    group.bench_function("canonical_only", |b| {
        let mut h = RowHasher::new();
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            for row in &rows {
                out.clear();
                h.canonical_row(row, &mut out);
            }
            out.len()
        })
    });
    group.finish();
}

/// The writer's id generator against the `uuid` crate's.
fn ids(c: &mut Criterion) {
    let mut group = c.benchmark_group("ids");
    group.throughput(Throughput::Elements(ROWS as u64));
    let mut ids = ringtrail::ids::Uuid7::new();
    let t = 1_796_119_200_000_000_000i64;
    group.bench_function("ringtrail", |b| {
        b.iter(|| {
            let mut last = [0u8; 16];
            for i in 0..ROWS as i64 {
                last = ids.next(std::hint::black_box(t + i * 1_000));
            }
            last
        })
    });
    group.bench_function("uuid_now_v7", |b| {
        b.iter(|| {
            let mut last = uuid::Uuid::nil();
            for _ in 0..ROWS {
                last = uuid::Uuid::now_v7();
            }
            last
        })
    });
    group.finish();
}

criterion_group!(benches, bench, ids);
criterion_main!(benches);
