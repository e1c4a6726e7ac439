//! Spool segments are files anyone with access to the directory could
//! have written: a segment is trusted only when it is authenticated with
//! the spool's own key (`spool.key`, owner-only, in the directory). A
//! planted segment, however well-formed and whatever its CRC, injects
//! neither rows, nor a chain, nor a checkpoint: it is set aside as
//! `.refused`, counted in `Stats::spool_refused` and reported in band,
//! while a genuine segment of an earlier process on the same directory
//! still replays, exactly once, with its chain entry and checkpoint.

use ringtrail_testkit as common;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BufMut as _;
use ringtrail::chain::checkpoint::Checkpoint;
use ringtrail::chain::key::SigningKey;
use ringtrail::chain::link::ChainId;
use ringtrail::encode::CopyEncoder;
use ringtrail::{Checkpoints, Row, Spool};
use tracing::dispatcher;

/// A chain id no pipeline made: the planted segment's.
const PLANTED_CHAIN: [u8; 16] = [0x0b; 16];
const PLANTED_BATCH: [u8; 16] = [0x0c; 16];

fn uuid_text(b: [u8; 16]) -> String {
    uuid::Uuid::from_bytes(b).to_string()
}

/// A well-formed segment in the given format (`RTSPOOL3`, or `RTSPOOL4`
/// with a MAC made with a key the spool does not have): one row, a chain
/// entry for a chain of its own, a checkpoint signed by `key`. Its CRC is
/// right.
fn planted_segment(magic: &[u8; 8], key: &SigningKey) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut encoder = CopyEncoder::new();
    encoder.push_row(&Row {
        ts_unix_nanos: now,
        id: [0x0d; 16],
        level: 5,
        target: "planted",
        message: "planted row",
        ..Row::default()
    });
    let stream = encoder.finish();
    let body = &stream[19..];
    let head = [0x0e; 32];
    let note = Checkpoint {
        chain: ChainId(PLANTED_CHAIN),
        seq: 1,
        head,
        time_micros: now / 1_000,
    }
    .sign(key);
    let public_key = key.verifier().to_string();
    let mut ext = Vec::new();
    ext.put_slice(magic);
    ext.put_slice(&PLANTED_BATCH);
    ext.put_u32(1);
    ext.put_u32(0);
    ext.put_i64(now);
    ext.put_i64(now);
    ext.put_u8(1);
    ext.put_slice(&PLANTED_CHAIN);
    ext.put_u64(1);
    ext.put_slice(&PLANTED_BATCH);
    ext.put_u32(1);
    ext.put_slice(&[0x01; 32]); // digest
    ext.put_slice(&[0x00; 32]); // prev
    ext.put_slice(&head);
    ext.put_u8(1);
    ext.put_i64(now);
    for text in [&note, &public_key] {
        ext.put_u32(text.len() as u32);
        ext.put_slice(text.as_bytes());
    }
    if magic == b"RTSPOOL4" {
        // A MAC, made with some key: not the spool's.
        ext.put_slice(&[0x5a; 32]);
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&ext);
    crc.update(body);
    ext.put_u32(crc.finalize());
    let mut out = Vec::new();
    out.put_slice(b"PGCOPY\n\xff\r\n\0");
    out.put_u32(0);
    out.put_u32(ext.len() as u32);
    out.put_slice(&ext);
    out.put_slice(body);
    out
}

/// Spools `batches` chained batches of 5 events, each with a checkpoint,
/// into `spool` with the server unreachable.
fn spool_genuine(spool: &Path, batches: u64) {
    let (layer, guard) = ringtrail::Builder::new()
        .postgres("postgres://postgres@127.0.0.1:1/none")
        .spool(Spool::dir(spool).after(Duration::ZERO))
        .max_retries(0)
        .flush_interval(Duration::from_secs(3600))
        .checkpoints(Checkpoints::new().every(1, Duration::from_secs(3600)))
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    for b in 0..batches {
        dispatcher::with_default(&dispatch, || {
            for i in 0..5u64 {
                tracing::info!(b, i, "genuine");
            }
        });
        let _ = guard.flush();
    }
    assert_eq!(guard.stats().spooled, 5 * batches);
}

fn scalar(url: &str, sql: &str) -> i64 {
    common::client(url).query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn a_planted_segment_injects_no_rows_no_chain_and_no_checkpoint() {
    let url = common::database();
    let spool = common::spool_dir("planted");
    spool_genuine(&spool, 3);
    let attacker = SigningKey::from_seed("ringtrail", [0x66; 32]).unwrap();
    // Named to sort among the genuine ones.
    for (seq, magic) in [(1, b"RTSPOOL3"), (2, b"RTSPOOL4")] {
        let name = format!("{seq:016}-{}.pgcopy", uuid_text([0x0c + seq as u8; 16]));
        std::fs::write(spool.join(name), planted_segment(magic, &attacker)).unwrap();
    }

    let (_dispatch, guard) = common::start(common::builder(&url).spool(Spool::dir(&spool)));
    let start = Instant::now();
    while common::segments(&spool) > 0 || guard.stats().recovered < 15 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            guard.stats()
        );
        thread::sleep(Duration::from_millis(50));
    }
    guard.flush().unwrap();
    let stats = guard.stats();

    // Nothing of the planted ones.
    let planted = uuid_text(PLANTED_CHAIN);
    assert_eq!(
        scalar(
            &url,
            &format!("SELECT count(*) FROM ringtrail.batches WHERE chain_id = '{planted}'")
        ),
        0,
        "a forged chain entry landed"
    );
    assert_eq!(
        scalar(
            &url,
            &format!(
                "SELECT count(*) FROM ringtrail.checkpoints WHERE public_key = '{}'",
                attacker.verifier()
            )
        ),
        0,
        "a checkpoint signed by another key landed"
    );
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM ringtrail.logs WHERE target = 'planted'"
        ),
        0,
        "a planted row landed"
    );
    // The genuine batches replayed once, with their chain and checkpoints.
    assert_eq!(stats.recovered, 15, "{stats:?}");
    assert_eq!(common::event_rows(&url), (15, 15));
    // (This process has a chain of its own too: the batch of its in-band
    // report.)
    let genuine = "EXISTS (SELECT 1 FROM ringtrail.logs l
                           WHERE l.batch_id = b.batch_id AND l.message = 'genuine')";
    assert_eq!(
        scalar(
            &url,
            &format!(
                "SELECT count(*) FROM ringtrail.batches b WHERE chain_id IS NOT NULL AND {genuine}"
            )
        ),
        3
    );
    assert_eq!(
        scalar(
            &url,
            &format!(
                "SELECT count(*) FROM ringtrail.checkpoints c JOIN ringtrail.batches b
                   ON b.chain_id = c.chain_id AND b.seq = c.seq AND b.hash = c.head
                 WHERE {genuine}"
            )
        ),
        3,
        "each genuine batch's checkpoint, on its head"
    );
    // Set aside, counted, reported.
    let refused: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pgcopy.refused"))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(stats.spool_refused, 2, "{stats:?}");
    assert_eq!(stats.inherited_lost, 0, "a planted file is not our loss");
    assert_eq!(common::reported_drops(&url, "spool_refused"), 2);
    drop(guard);
    let _ = std::fs::remove_dir_all(&spool);
}
