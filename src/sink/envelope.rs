//! A sealed batch as a bus message: the spool's segment format (one source
//! of truth for "a batch as bytes"), and the split of a batch too large
//! for one message into pieces that stay exactly once.
//!
//! A message is a segment: the binary COPY stream of the batch, with its
//! ledger identity (id, rows, drop reports, first and last event time),
//! its chain entry and the checkpoint it carries in the header's
//! extension area. Its MAC is keyed with a fixed [`TRANSPORT_KEY`], so
//! here it is an integrity check like the CRC, not an authentication:
//! who may publish to the stream is NATS's access control, and a forged
//! batch is not on any chain whose checkpoints the producer's key signed
//! (`ringtrail verify` finds it).
//!
//! **Pieces.** A batch whose message would exceed the bus's largest
//! payload is split in halves, again and again, with the same
//! [`halves`](SealedBatch::halves) that bisection uses: each piece's id is
//! derived from the batch's id and its row range, and it keeps the
//! batch's chain entry. So the same batch always splits into the same
//! pieces (a replay from the spool publishes the same message ids, which
//! the stream deduplicates), each piece commits once under its own ledger
//! row, and `verify` checks the pieces against the sealed batch as it
//! does a bisected one.
//!
//! **Checkpoints.** The checkpoint a producer signs at shutdown over a
//! head no batch is left to carry travels as a message of its own
//! ([`encode_checkpoint`]: a magic, its fields, a CRC-32), which the
//! worker stores once the head's batch is in the shard's ledger.
//!
//! ```text
//! batch 018f…(3 MiB) ──► pieces 8c1e…(0.75 MiB) 4a07…(0.75 MiB) 91d2…(0.75 MiB) e630…(0.75 MiB)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{CheckpointRow, HeadCheckpoint, SealedBatch};
use super::spool::segment::{parse_segment, segment_body, segment_header, SpoolKey, Trust};

/// The MAC key of messages: fixed, so the MAC is an integrity check (see
/// the module docs).
pub(crate) const TRANSPORT_KEY: SpoolKey = SpoolKey::new(*b"ringtrail bus envelope, v1......");

/// Room left in a message for its headers (`Nats-Msg-Id` and the
/// protocol's own).
pub(crate) const HEADER_ROOM: usize = 1024;

/// `batch` as one message.
pub(crate) fn encode(batch: &SealedBatch) -> Bytes {
    let header = segment_header(batch, &TRANSPORT_KEY);
    let body = segment_body(batch);
    let mut out = BytesMut::with_capacity(header.len() + body.len());
    out.put_slice(&header);
    out.put_slice(body);
    out.freeze()
}

/// The first bytes of a checkpoint message.
const CHECKPOINT_MAGIC: &[u8; 8] = b"RTCKPT01";

/// A shutdown checkpoint as one message: the magic, the chain id, seq and
/// head, the signing time, the note and the key (each length-prefixed),
/// and a CRC-32 of all of that.
pub(crate) fn encode_checkpoint(cp: &HeadCheckpoint) -> Bytes {
    let mut out = BytesMut::with_capacity(128 + cp.row.note.len() + cp.row.public_key.len());
    out.put_slice(CHECKPOINT_MAGIC);
    out.put_slice(&cp.chain_id);
    out.put_u64(cp.seq);
    out.put_slice(&cp.head);
    out.put_i64(cp.row.signed_at);
    for text in [&cp.row.note, &cp.row.public_key] {
        out.put_u32(text.len() as u32);
        out.put_slice(text.as_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out.freeze()
}

/// The message id of a checkpoint message: one per chain and seq.
pub(crate) fn checkpoint_id(cp: &HeadCheckpoint) -> String {
    format!(
        "checkpoint-{}-{}",
        crate::text::uuid_text(&cp.chain_id),
        cp.seq
    )
}

fn decode_checkpoint(message: &[u8]) -> Option<HeadCheckpoint> {
    let (body, crc) = message.split_at_checked(message.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_be_bytes() != crc {
        return None;
    }
    let mut rest = body.strip_prefix(CHECKPOINT_MAGIC.as_slice())?;
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        *rest = tail;
        Some(head)
    }
    let chain_id = take(&mut rest, 16)?.try_into().ok()?;
    let seq = u64::from_be_bytes(take(&mut rest, 8)?.try_into().ok()?);
    let head = take(&mut rest, 32)?.try_into().ok()?;
    let signed_at = i64::from_be_bytes(take(&mut rest, 8)?.try_into().ok()?);
    let mut text = || -> Option<String> {
        let len = u32::from_be_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
        String::from_utf8(take(&mut rest, len)?.to_vec()).ok()
    };
    let (note, public_key) = (text()?, text()?);
    rest.is_empty().then_some(HeadCheckpoint {
        chain_id,
        seq,
        head,
        row: CheckpointRow {
            note,
            public_key,
            signed_at,
        },
    })
}

/// What a message holds.
#[derive(Debug)]
pub(crate) enum Message {
    /// A batch (or a piece of one).
    Batch(SealedBatch),
    /// A checkpoint signed at a producer's shutdown that no batch carried.
    Checkpoint(HeadCheckpoint),
}

/// Why a message is not a ringtrail message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// What a message holds; [`Malformed`] when it is torn, damaged or not a
/// ringtrail message at all.
pub(crate) fn decode(message: &[u8]) -> Result<Message, Malformed> {
    if message.starts_with(CHECKPOINT_MAGIC) {
        return decode_checkpoint(message)
            .map(Message::Checkpoint)
            .ok_or(Malformed);
    }
    match parse_segment(message, &TRANSPORT_KEY) {
        Ok((batch, Trust::Authenticated)) => Ok(Message::Batch(batch)),
        _ => Err(Malformed),
    }
}

/// `batch` as messages of at most `max_payload` bytes (headers included),
/// each with its batch: one when it fits, else its pieces (see the module
/// docs). A single row too large for any message stays one piece over the
/// limit: the caller cannot send it.
pub(crate) fn pieces(batch: SealedBatch, max_payload: usize) -> Vec<(SealedBatch, Bytes)> {
    let limit = max_payload.saturating_sub(HEADER_ROOM).max(1);
    let mut out = Vec::new();
    let mut todo = vec![batch];
    while let Some(batch) = todo.pop() {
        let message = encode(&batch);
        if message.len() <= limit || batch.rows <= 1 {
            out.push((batch, message));
        } else {
            // Popped last first: pieces keep the batch's row order.
            let [first, second] = batch.halves();
            todo.push(second);
            todo.push(first);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::batch::tests::batch_of;
    use crate::sink::batch::ChainEntry;

    fn big(rows: usize) -> SealedBatch {
        let texts: Vec<String> = (0..rows)
            .map(|i| format!("{i:04} {}", "x".repeat(1000)))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut batch = batch_of([7; 16], &refs, 2);
        batch.chain = Some(ChainEntry {
            chain_id: [1; 16],
            seq: 9,
            sealed_id: [7; 16],
            sealed_rows: rows as u32,
            digest: [2; 32],
            prev_hash: [3; 32],
            hash: [4; 32],
        });
        batch
    }

    fn batch(message: &[u8]) -> Result<SealedBatch, Malformed> {
        match decode(message)? {
            Message::Batch(batch) => Ok(batch),
            Message::Checkpoint(_) => Err(Malformed),
        }
    }

    #[test]
    fn a_checkpoint_travels_alone_and_whole() {
        let cp = HeadCheckpoint {
            chain_id: [5; 16],
            seq: 42,
            head: [6; 32],
            row: CheckpointRow {
                note: "ringtrail/chain\n42\n…".to_owned(),
                public_key: "ringtrail+abcd".to_owned(),
                signed_at: 1_700_000_000_000_000_000,
            },
        };
        let message = encode_checkpoint(&cp);
        match decode(&message) {
            Ok(Message::Checkpoint(back)) => assert_eq!(back, cp),
            other => panic!("{other:?}"),
        }
        for cut in [1, 4, 10, message.len() - 8] {
            assert_eq!(
                decode(&message[..message.len() - cut]).err(),
                Some(Malformed)
            );
        }
        let mut flipped = message.to_vec();
        flipped[20] ^= 1;
        assert_eq!(decode(&flipped).err(), Some(Malformed));
        assert_ne!(
            checkpoint_id(&cp),
            checkpoint_id(&HeadCheckpoint {
                seq: 43,
                ..cp.clone()
            })
        );
    }

    #[test]
    fn a_message_is_the_batch_whole() {
        let batch = big(3);
        let back = super::tests::batch(&encode(&batch)).expect("round trip");
        assert_eq!(back.id, batch.id);
        assert_eq!(back.bytes, batch.bytes);
        assert_eq!((back.rows, back.reports), (3, 2));
        assert_eq!(
            (back.first_ts, back.last_ts),
            (batch.first_ts, batch.last_ts)
        );
        assert_eq!(back.chain, batch.chain);
    }

    #[test]
    fn a_damaged_or_foreign_message_is_malformed() {
        let message = encode(&big(2));
        let mut torn = message.to_vec();
        torn.truncate(torn.len() - 3);
        assert_eq!(batch(&torn).err(), Some(Malformed));
        let mut flipped = message.to_vec();
        let at = flipped.len() - 10;
        flipped[at] ^= 1;
        assert_eq!(batch(&flipped).err(), Some(Malformed));
        assert_eq!(batch(b"hello").err(), Some(Malformed));
        assert_eq!(batch(b"").err(), Some(Malformed));
        assert_eq!(decode(b"RTCKPT01").err(), Some(Malformed));
    }

    #[test]
    fn a_large_batch_splits_into_stable_pieces_in_order() {
        let batch = big(100);
        let whole = encode(&batch).len();
        let pieces = pieces(batch.clone(), whole / 3);
        assert!(pieces.len() >= 4, "{} pieces", pieces.len());
        for (piece, message) in &pieces {
            assert!(message.len() <= whole / 3 - HEADER_ROOM);
            assert_eq!(piece.chain, batch.chain, "each piece keeps the chain entry");
            assert_ne!(piece.id, batch.id);
        }
        let rows: u32 = pieces.iter().map(|(p, _)| p.rows).sum();
        let reports: u32 = pieces.iter().map(|(p, _)| p.reports).sum();
        assert_eq!((rows, reports), (100, 2));
        // The drop reports stay the last rows: in the last piece(s).
        assert_eq!(pieces.last().unwrap().0.reports, 2);
        // The same batch, the same pieces: a replay publishes the same ids.
        let again = super::pieces(batch.clone(), whole / 3);
        let ids = |p: &[(SealedBatch, Bytes)]| p.iter().map(|(b, _)| b.id).collect::<Vec<_>>();
        assert_eq!(ids(&pieces), ids(&again));
        // Row order is kept: the pieces' tuples, in order, are the batch's.
        let mut tuples = Vec::new();
        for (piece, _) in &pieces {
            let body = &piece.bytes[crate::encode::copy::HEADER_LEN..piece.bytes.len() - 2];
            tuples.extend_from_slice(body);
        }
        let body = &batch.bytes[crate::encode::copy::HEADER_LEN..batch.bytes.len() - 2];
        assert_eq!(tuples, body);
        // A batch that fits is one message under its own id.
        let one = super::pieces(batch.clone(), whole + HEADER_ROOM);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0.id, batch.id);
    }
}
