//! The segment format, over bytes (no file system): what the spool
//! writes to and reads back from one segment file.
//!
//! ringtrail's own metadata rides in the COPY header's extension area,
//! which the server skips: a magic `RTSPOOL4`, the batch id (the ledger key,
//! so a replay is exactly-once), the row count and how many rows are drop
//! reports, the first and last event times, the batch's place on the hash
//! chain (so a replayed batch keeps its seq, digest and link) and the signed
//! checkpoint it carries, if any, then an HMAC-SHA256 of all of that and
//! everything after the header, keyed with the spool's own key
//! ([`SpoolKey`], `spool.key` in the directory), and a CRC-32 of all of
//! that (the MAC included) and the body.
//!
//! The CRC tells a torn or damaged segment (a crash, a bad disk) from one
//! that is whole but was not written with this spool's key: a planted
//! file, or one copied from another spool. Only the MAC makes a segment
//! trusted; a CRC anyone can compute.
//!
//! Segments of the older formats, without a MAC, are still read: they are
//! [`Trust::Legacy`], and the spool replays them only from a directory an
//! older version wrote (one without a key yet). `RTSPOOL3` carries the
//! chain and a checkpoint, `RTSPOOL2` the fixed fields only, `RTSPOOL1` as
//! the second with the CRC over the body only.

use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::encode::copy::{put_header, put_header_with_extension, HEADER_LEN, SIGNATURE};
use crate::sink::batch::{is_copy_stream, ChainEntry, CheckpointRow, SealedBatch};

/// The current format: the fixed fields, [`put_chain`], the MAC, the CRC.
const MAGIC: &[u8; 8] = b"RTSPOOL4";
/// The third format: as the current one without the MAC.
const MAGIC_V3: &[u8; 8] = b"RTSPOOL3";
/// The second format: the fixed fields only (no chain, no checkpoint).
const MAGIC_V2: &[u8; 8] = b"RTSPOOL2";
/// The first format: as the second, the CRC over the body only.
const MAGIC_V1: &[u8; 8] = b"RTSPOOL1";
/// magic, id, rows, reports, first ts, last ts: every format starts so.
const FIXED_LEN: usize = 8 + 16 + 4 + 4 + 8 + 8;
/// The extension of the two oldest formats: the fixed fields and the CRC.
pub(super) const EXTENSION_LEN: usize = FIXED_LEN + 4;
/// Where the CRC sits in an older extension.
#[cfg(test)]
const CRC_AT: usize = EXTENSION_LEN - 4;
/// The header of an oldest segment; a newer one is at least this long.
pub(super) const SEGMENT_HEADER_LEN: usize = HEADER_LEN + EXTENSION_LEN;
/// A chain entry: chain id, seq, sealed id, sealed rows, digest, prev, hash.
const CHAIN_LEN: usize = 16 + 8 + 16 + 4 + 32 + 32 + 32;
/// The MAC: HMAC-SHA256.
const MAC_LEN: usize = 32;
/// Bytes of a [`SpoolKey`].
pub(crate) const SPOOL_KEY_LEN: usize = 32;

/// The key a spool authenticates its segments with (kept in the spool's
/// directory, owner-only). Never printed.
#[derive(Clone)]
pub(crate) struct SpoolKey([u8; SPOOL_KEY_LEN]);

impl fmt::Debug for SpoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpoolKey(<hidden>)")
    }
}

impl SpoolKey {
    /// The key of these bytes.
    pub(crate) const fn new(bytes: [u8; SPOOL_KEY_LEN]) -> SpoolKey {
        SpoolKey(bytes)
    }

    /// The MAC of a segment: its extension up to the MAC, then its body.
    fn mac(&self, extension: &[u8], body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(&(extension.len() as u64).to_be_bytes());
        mac.update(extension);
        mac.update(body);
        mac
    }
}

/// The key the unit tests, the fuzz check (`crate::fuzz::spool_segment`)
/// and the fuzz seeds use.
#[cfg(any(test, fuzzing))]
pub(crate) const TEST_KEY: SpoolKey = SpoolKey([0x42; SPOOL_KEY_LEN]);

/// How far a segment that parsed is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// The current format, its MAC made with the spool's key.
    Authenticated,
    /// An older format, which has no MAC: only as trusted as its CRC.
    Legacy,
}

/// Why a segment was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Malformed, or the CRC does not match: torn or damaged.
    Corrupt,
    /// Whole (the CRC matches), but its MAC was not made with the spool's
    /// key.
    Unauthenticated,
}

/// The header of `batch`'s segment: the COPY header with an `RTSPOOL4`
/// extension (the fixed fields, [`put_chain`], the MAC of all of that and
/// of [`segment_body`] with `key`, and the CRC of all of that and of the
/// body).
pub(crate) fn segment_header(batch: &SealedBatch, key: &SpoolKey) -> BytesMut {
    let body = segment_body(batch);
    let mut extension = BytesMut::with_capacity(EXTENSION_LEN + 1 + CHAIN_LEN + MAC_LEN + 256);
    extension.put_slice(MAGIC);
    extension.put_slice(&batch.id);
    extension.put_u32(batch.rows);
    extension.put_u32(batch.reports);
    extension.put_i64(batch.first_ts);
    extension.put_i64(batch.last_ts);
    put_chain(&mut extension, batch);
    let mac = key.mac(&extension, body).finalize().into_bytes();
    extension.put_slice(&mac);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&extension);
    crc.update(body);
    extension.put_u32(crc.finalize());
    let mut header = BytesMut::with_capacity(SEGMENT_HEADER_LEN);
    put_header_with_extension(&mut header, &extension);
    header
}

/// What follows [`segment_header`] in `batch`'s segment: its COPY stream
/// after the standard header.
pub(crate) fn segment_body(batch: &SealedBatch) -> &[u8] {
    &batch.bytes[HEADER_LEN..]
}

/// The chain entry (a presence byte, then [`CHAIN_LEN`] bytes) and the
/// checkpoint (a presence byte, then the signing time and two
/// length-prefixed texts) of an `RTSPOOL4` (and `RTSPOOL3`) extension.
fn put_chain(out: &mut BytesMut, batch: &SealedBatch) {
    match &batch.chain {
        None => out.put_u8(0),
        Some(c) => {
            out.put_u8(1);
            out.put_slice(&c.chain_id);
            out.put_u64(c.seq);
            out.put_slice(&c.sealed_id);
            out.put_u32(c.sealed_rows);
            out.put_slice(&c.digest);
            out.put_slice(&c.prev_hash);
            out.put_slice(&c.hash);
        }
    }
    match &batch.checkpoint {
        None => out.put_u8(0),
        Some(c) => {
            out.put_u8(1);
            out.put_i64(c.signed_at);
            for text in [&c.note, &c.public_key] {
                out.put_u32(text.len() as u32);
                out.put_slice(text.as_bytes());
            }
        }
    }
}

/// Reads what [`put_chain`] wrote; `None` if it is malformed.
#[allow(clippy::type_complexity)]
fn take_chain(mut ext: &[u8]) -> Option<(Option<ChainEntry>, Option<Arc<CheckpointRow>>, &[u8])> {
    fn take<'a>(ext: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (ext.get(..n)?, ext.get(n..)?);
        *ext = rest;
        Some(head)
    }
    fn array<const N: usize>(ext: &mut &[u8]) -> Option<[u8; N]> {
        take(ext, N)?.try_into().ok()
    }
    let chain = match take(&mut ext, 1)?[0] {
        0 => None,
        1 => Some(ChainEntry {
            chain_id: array(&mut ext)?,
            seq: u64::from_be_bytes(array(&mut ext)?),
            sealed_id: array(&mut ext)?,
            sealed_rows: u32::from_be_bytes(array(&mut ext)?),
            digest: array(&mut ext)?,
            prev_hash: array(&mut ext)?,
            hash: array(&mut ext)?,
        }),
        _ => return None,
    };
    let checkpoint = match take(&mut ext, 1)?[0] {
        0 => None,
        1 => {
            let signed_at = i64::from_be_bytes(array(&mut ext)?);
            let mut text = || -> Option<String> {
                let len = u32::from_be_bytes(array(&mut ext)?) as usize;
                String::from_utf8(take(&mut ext, len)?.to_vec()).ok()
            };
            let (note, public_key) = (text()?, text()?);
            Some(Arc::new(CheckpointRow {
                note,
                public_key,
                signed_at,
            }))
        }
        _ => return None,
    };
    Some((chain, checkpoint, ext))
}

/// The event rows a segment's header claims, without checking it: for
/// counting what an unreadable segment held. `header` is the segment's
/// first [`SEGMENT_HEADER_LEN`] bytes.
pub(super) fn header_events(header: &[u8; SEGMENT_HEADER_LEN]) -> Option<u64> {
    let ext = &header[HEADER_LEN..];
    if ![MAGIC, MAGIC_V3, MAGIC_V2, MAGIC_V1].contains(&&ext[..8].try_into().ok()?) {
        return None;
    }
    let rows = u32::from_be_bytes(ext[24..28].try_into().ok()?);
    let reports = u32::from_be_bytes(ext[28..32].try_into().ok()?);
    Some(rows.saturating_sub(reports) as u64)
}

/// Parses and checks a segment: its CRC, and its MAC with `key` (the
/// older formats have none: they come back [`Trust::Legacy`]).
pub(crate) fn parse_segment(
    data: &[u8],
    key: &SpoolKey,
) -> Result<(SealedBatch, Trust), Unreadable> {
    use Unreadable::Corrupt;
    if data.len() < SEGMENT_HEADER_LEN + 2 || !data.starts_with(SIGNATURE) {
        return Err(Corrupt);
    }
    let ext_len = u32::from_be_bytes(data[15..19].try_into().map_err(|_| Corrupt)?) as usize;
    let ext = HEADER_LEN
        .checked_add(ext_len)
        .and_then(|end| data.get(HEADER_LEN..end))
        .ok_or(Corrupt)?;
    // A planted or cut file may declare an extension shorter than a magic.
    let magic = ext.get(..8).ok_or(Corrupt)?;
    let (chained, mac_len) = match magic {
        m if m == MAGIC && ext_len > EXTENSION_LEN + MAC_LEN => (true, MAC_LEN),
        m if m == MAGIC_V3 && ext_len > EXTENSION_LEN => (true, 0),
        m if (m == MAGIC_V2 || m == MAGIC_V1) && ext_len == EXTENSION_LEN => (false, 0),
        _ => return Err(Corrupt),
    };
    let fixed = |at: usize, n: usize| ext.get(at..at + n).ok_or(Corrupt);
    let id: [u8; 16] = fixed(8, 16)?.try_into().map_err(|_| Corrupt)?;
    let u32_at = |at| fixed(at, 4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")));
    let i64_at = |at| fixed(at, 8).map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")));
    let (rows, reports) = (u32_at(24)?, u32_at(28)?);
    let (first_ts, last_ts) = (i64_at(32)?, i64_at(40)?);
    let crc_at = ext_len - 4;
    let mac_at = crc_at - mac_len;
    let (chain, checkpoint) = if chained {
        let (chain, checkpoint, rest) = take_chain(&ext[FIXED_LEN..mac_at]).ok_or(Corrupt)?;
        if !rest.is_empty() {
            return Err(Corrupt);
        }
        (chain, checkpoint)
    } else {
        (None, None)
    };
    let crc = u32_at(crc_at)?;
    let body = &data[HEADER_LEN + ext_len..];
    let mut expected = crc32fast::Hasher::new();
    if magic != MAGIC_V1 {
        expected.update(&ext[..crc_at]);
    }
    expected.update(body);
    if expected.finalize() != crc || !body.ends_with(&[0xff, 0xff]) {
        return Err(Corrupt);
    }
    let trust = if mac_len > 0 {
        // Compared in constant time.
        key.mac(&ext[..mac_at], body)
            .verify_slice(&ext[mac_at..crc_at])
            .map_err(|_| Unreadable::Unauthenticated)?;
        Trust::Authenticated
    } else {
        Trust::Legacy
    };
    // Back to a plain stream: the standard 19-byte header, then the body.
    let mut bytes = BytesMut::with_capacity(HEADER_LEN + body.len());
    put_header(&mut bytes);
    bytes.put_slice(body);
    let bytes: Bytes = bytes.freeze();
    if !is_copy_stream(&bytes) {
        return Err(Corrupt);
    }
    let batch = SealedBatch {
        id,
        bytes,
        rows,
        reports,
        first_ts,
        last_ts,
        chain,
        checkpoint,
    };
    Ok((batch, trust))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use crate::sink::batch::tests::batch_of;

    fn batch(id: u8, rows: usize) -> SealedBatch {
        batch_of([id; 16], &vec!["spooled"; rows], 0)
    }

    /// `batch` as the spool writes it: [`segment_header`], then
    /// [`segment_body`].
    fn segment(batch: &SealedBatch) -> Vec<u8> {
        let mut out = segment_header(batch, &TEST_KEY).to_vec();
        out.extend_from_slice(segment_body(batch));
        out
    }

    fn parse(data: &[u8]) -> Result<(SealedBatch, Trust), Unreadable> {
        parse_segment(data, &TEST_KEY)
    }

    #[test]
    fn the_checksum_covers_the_header_extension() {
        let good = segment(&batch(1, 3));
        // The row count, inside the extension, off by one.
        let mut bad = good.clone();
        bad[HEADER_LEN + 27] ^= 1;
        assert_eq!(parse(&bad).err(), Some(Unreadable::Corrupt));
        // Segments of the older formats still load, as legacy: the third
        // (the chain, no MAC), the second (CRC over the fixed fields and
        // the body) and the first (the body only).
        for magic in [MAGIC_V3, MAGIC_V2, MAGIC_V1] {
            let (loaded, trust) = parse(&old_format(&batch(1, 3), magic)).unwrap();
            assert_eq!(trust, Trust::Legacy);
            assert_eq!(loaded.bytes, batch(1, 3).bytes);
            assert_eq!((loaded.rows, loaded.chain), (3, None));
        }
    }

    /// `batch` as a segment of an older format (`RTSPOOL3`, `RTSPOOL2` or
    /// `RTSPOOL1`).
    pub(crate) fn old_format(batch: &SealedBatch, magic: &[u8; 8]) -> Vec<u8> {
        let body = &batch.bytes[HEADER_LEN..];
        let mut ext = BytesMut::new();
        ext.put_slice(magic);
        ext.put_slice(&batch.id);
        ext.put_u32(batch.rows);
        ext.put_u32(batch.reports);
        ext.put_i64(batch.first_ts);
        ext.put_i64(batch.last_ts);
        if magic == MAGIC_V3 {
            put_chain(&mut ext, batch);
        }
        let mut crc = crc32fast::Hasher::new();
        if magic != MAGIC_V1 {
            crc.update(&ext);
        }
        crc.update(body);
        ext.put_u32(crc.finalize());
        if magic != MAGIC_V3 {
            assert_eq!(ext.len(), EXTENSION_LEN);
            assert_eq!(CRC_AT, EXTENSION_LEN - 4);
        }
        let mut out = BytesMut::new();
        put_header_with_extension(&mut out, &ext);
        out.put_slice(body);
        out.to_vec()
    }

    /// A batch with a chain entry and a checkpoint.
    fn chained() -> SealedBatch {
        let mut chained = batch(7, 4);
        chained.chain = Some(ChainEntry {
            chain_id: [1; 16],
            seq: 42,
            sealed_id: [7; 16],
            sealed_rows: 5,
            digest: [2; 32],
            prev_hash: [3; 32],
            hash: [4; 32],
        });
        chained.checkpoint = Some(Arc::new(CheckpointRow {
            note: "ringtrail/x\n42\nBAQ=\n\n\u{2014} ringtrail sig\n".to_owned(),
            public_key: "ringtrail+01020304+AQ==".to_owned(),
            signed_at: 1_764_000_000_000_000_000,
        }));
        chained
    }

    #[test]
    fn a_segment_keeps_the_batch_chain_entry_and_checkpoint() {
        let chained = chained();
        let good = segment(&chained);
        let (loaded, trust) = parse(&good).unwrap();
        assert_eq!(trust, Trust::Authenticated);
        assert_eq!(loaded.chain, chained.chain);
        assert_eq!(loaded.checkpoint, chained.checkpoint);
        assert_eq!(
            (loaded.id, loaded.rows, loaded.bytes),
            (chained.id, 4, chained.bytes.clone())
        );
        // Every byte of the extension is under the CRC.
        let ext_len = u32::from_be_bytes(good[15..19].try_into().unwrap()) as usize;
        for at in [FIXED_LEN + 10, ext_len - 10] {
            let mut bad = good.clone();
            bad[HEADER_LEN + at] ^= 1;
            assert!(parse(&bad).is_err(), "byte {at}");
        }
        // The third format keeps them too (as legacy).
        let (v3, trust) = parse(&old_format(&chained, MAGIC_V3)).unwrap();
        assert_eq!(trust, Trust::Legacy);
        assert_eq!(
            (v3.chain, v3.checkpoint),
            (chained.chain, chained.checkpoint)
        );
    }

    /// Anyone can compute a CRC: a segment whose CRC is right but whose
    /// MAC was made with another key, or changed, is not trusted.
    #[test]
    fn only_the_spool_key_makes_a_segment_authentic() {
        let chained = chained();
        let other = SpoolKey([0x43; SPOOL_KEY_LEN]);
        let mut foreign = segment_header(&chained, &other).to_vec();
        foreign.extend_from_slice(segment_body(&chained));
        assert!(parse_segment(&foreign, &other).is_ok());
        assert_eq!(parse(&foreign).err(), Some(Unreadable::Unauthenticated));
        // A body changed and the CRC recomputed: the MAC no longer matches.
        let mut forged = segment(&chained);
        let ext_len = u32::from_be_bytes(forged[15..19].try_into().unwrap()) as usize;
        let last = forged.len() - 3;
        forged[last] ^= 1;
        let crc_at = HEADER_LEN + ext_len - 4;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&forged[HEADER_LEN..crc_at]);
        crc.update(&forged[HEADER_LEN + ext_len..]);
        forged[crc_at..crc_at + 4].copy_from_slice(&crc.finalize().to_be_bytes());
        assert_eq!(parse(&forged).err(), Some(Unreadable::Unauthenticated));
        assert!(
            !format!("{TEST_KEY:?}").contains("42"),
            "the key is never printed"
        );
    }

    #[test]
    fn the_header_tells_the_event_rows_of_every_format() {
        let reported = batch_of([1; 16], &["a", "b", "c"], 1);
        for data in [
            segment(&reported),
            old_format(&reported, MAGIC_V3),
            old_format(&reported, MAGIC_V2),
            old_format(&reported, MAGIC_V1),
        ] {
            let header: &[u8; SEGMENT_HEADER_LEN] = data[..SEGMENT_HEADER_LEN].try_into().unwrap();
            assert_eq!(header_events(header), Some(2));
        }
        let mut other = segment(&reported);
        other[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(b"RTSPOOL9");
        let header: &[u8; SEGMENT_HEADER_LEN] = other[..SEGMENT_HEADER_LEN].try_into().unwrap();
        assert_eq!(header_events(header), None);
    }

    /// The seeds of the `spool_segment` fuzz target are segments of every
    /// format as the spool writes them, the current ones with
    /// [`TEST_KEY`], the key of the fuzz check (`RINGTRAIL_BLESS=1`
    /// rewrites them).
    #[test]
    fn the_fuzz_seeds_are_real_segments() {
        let chained = chained();
        let seeds = [
            ("seed-v4", segment(&batch(1, 3))),
            ("seed-v4-chained", segment(&chained)),
            ("seed-v3", old_format(&batch(1, 3), MAGIC_V3)),
            ("seed-v3-chained", old_format(&chained, MAGIC_V3)),
            ("seed-v2", old_format(&batch(2, 2), MAGIC_V2)),
            ("seed-v1", old_format(&batch(3, 1), MAGIC_V1)),
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz_corpus/spool_segment");
        for (name, bytes) in seeds {
            let path = dir.join(name);
            if std::env::var_os("RINGTRAIL_BLESS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            }
            assert!(parse(&bytes).is_ok(), "{name}");
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{name}: run with RINGTRAIL_BLESS=1"
            );
        }
    }
}
