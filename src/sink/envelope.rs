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
//! ```text
//! batch 018f…(3 MiB) ──► pieces 8c1e…(0.75 MiB) 4a07…(0.75 MiB) 91d2…(0.75 MiB) e630…(0.75 MiB)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::SealedBatch;
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

/// Why a message is not a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// The batch a message holds; [`Malformed`] when it is torn, damaged or
/// not a ringtrail message at all.
pub(crate) fn decode(message: &[u8]) -> Result<SealedBatch, Malformed> {
    match parse_segment(message, &TRANSPORT_KEY) {
        Ok((batch, Trust::Authenticated)) => Ok(batch),
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

    #[test]
    fn a_message_is_the_batch_whole() {
        let batch = big(3);
        let back = decode(&encode(&batch)).expect("round trip");
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
        assert_eq!(decode(&torn).err(), Some(Malformed));
        let mut flipped = message.to_vec();
        let at = flipped.len() - 10;
        flipped[at] ^= 1;
        assert_eq!(decode(&flipped).err(), Some(Malformed));
        assert_eq!(decode(b"hello").err(), Some(Malformed));
        assert_eq!(decode(b"").err(), Some(Malformed));
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
