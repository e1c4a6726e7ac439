//! The chained ledger: each committed batch's ledger row links to the one
//! before it on the same chain.
//!
//! ```text
//! hash = SHA-256( LINK_DOMAIN
//!               ‖ prev_hash    32 bytes (GENESIS, all zero, before seq 1)
//!               ‖ digest       32 bytes, the batch digest (digest.rs)
//!               ‖ seq          u64 BE, 1 for a chain's first batch
//!               ‖ chain id     16 bytes
//!               ‖ batch_id     16 bytes
//!               ‖ rows         u32 BE
//!               ‖ first_ts     i64 BE, microseconds since 2000-01-01 UTC
//!               ‖ last_ts      i64 BE, the same )
//! ```
//!
//! Every input has a fixed width, so no two inputs share bytes. The batch
//! metadata ([`BatchMeta`]) is what `ringtrail.batches` already holds
//! (`batch_id`, `rows`, `first_ts`, `last_ts`), so `verify` recomputes each
//! hash from the ledger row alone. Left out on purpose: `bytes` (the
//! encoded size, which a spool replay from an older tuple width may
//! change without changing a row) and `committed_at` (the server's
//! `now()`, unknown to the writer before the commit).
//!
//! One [`Chain`] per writer pipeline, owned by the one thread that seals
//! batches. It lives in memory; at start the writer resumes it from the
//! chain's highest ledger row, or from the highest link still in its spool
//! ([`Chain::resume`]).
//!
//! ```
//! use ringtrail::chain::link::{BatchMeta, Chain, ChainId, GENESIS};
//!
//! let id = ChainId([7; 16]);
//! let mut chain = Chain::new(id);
//! let meta = BatchMeta { batch_id: [1; 16], rows: 2, first_ts: 10, last_ts: 20 };
//! let first = chain.link(&[0xaa; 32], &meta);
//! assert_eq!((first.seq, first.prev_hash), (1, GENESIS));
//! let second = chain.link(&[0xbb; 32], &BatchMeta { batch_id: [2; 16], ..meta });
//! assert_eq!((second.seq, second.prev_hash), (2, first.hash));
//!
//! // After a restart, from the last ledger row:
//! let mut again = Chain::resume(id, second.seq, second.hash);
//! assert_eq!(again.link(&[0xcc; 32], &meta).prev_hash, second.hash);
//! ```

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Prefix of every link hash's input: the form and its version.
pub const LINK_DOMAIN: &[u8] = b"ringtrail/link/v1\n";

/// The `prev_hash` of a chain's first link: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];

/// A chain's id: 16 bytes, written as a hyphenated UUID
/// (`0190f5a2-7c1e-7a3b-8d4e-5f6a7b8c9d0e`). One per writer pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainId(pub [u8; 16]);

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text::uuid_text(&self.0))
    }
}

/// A text that is not a hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadChainId;

impl fmt::Display for BadChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chain id is a UUID: 8-4-4-4-12 hexadecimal digits")
    }
}

impl std::error::Error for BadChainId {}

impl FromStr for ChainId {
    type Err = BadChainId;

    /// Parses the hyphenated form [`Display`](fmt::Display) writes (either case).
    ///
    /// ```
    /// use ringtrail::chain::link::ChainId;
    /// let id: ChainId = "0190F5A2-7c1e-7a3b-8d4e-5f6a7b8c9d0e".parse().unwrap();
    /// assert_eq!(id.to_string(), "0190f5a2-7c1e-7a3b-8d4e-5f6a7b8c9d0e");
    /// assert!("0190f5a27c1e7a3b8d4e5f6a7b8c9d0e".parse::<ChainId>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, BadChainId> {
        // The hyphenated form only: `uuid` also reads the simple, braced
        // and URN forms, which are longer or shorter.
        if s.len() != 36 {
            return Err(BadChainId);
        }
        uuid::Uuid::try_parse(s)
            .map(|id| ChainId(id.into_bytes()))
            .map_err(|_| BadChainId)
    }
}

/// What the link hash covers of a batch's ledger row besides its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// `batch_id`.
    pub batch_id: [u8; 16],
    /// `rows`: how many rows the batch committed (drop reports included).
    pub rows: u32,
    /// `first_ts` as the column stores it: microseconds since 2000-01-01
    /// UTC ([`stored_micros`](super::canonical::stored_micros) of the
    /// nanoseconds, so the writer hashes exactly what the ledger holds).
    pub first_ts: i64,
    /// `last_ts`, the same way.
    pub last_ts: i64,
}

/// What the chain gives a committed batch, to store in its ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Position on the chain: 1 for its first batch.
    pub seq: u64,
    /// The previous link's `hash` ([`GENESIS`] for seq 1).
    pub prev_hash: [u8; 32],
    /// This link's hash (see the [module docs](self)).
    pub hash: [u8; 32],
}

/// The link hash (see the [module docs](self)).
pub fn link_hash(
    chain: ChainId,
    prev_hash: &[u8; 32],
    digest: &[u8; 32],
    seq: u64,
    meta: &BatchMeta,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(LINK_DOMAIN);
    h.update(prev_hash);
    h.update(digest);
    h.update(seq.to_be_bytes());
    h.update(chain.0);
    h.update(meta.batch_id);
    h.update(meta.rows.to_be_bytes());
    h.update(meta.first_ts.to_be_bytes());
    h.update(meta.last_ts.to_be_bytes());
    h.finalize().into()
}

/// One chain's state on the writer: its id, its last seq and head hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    id: ChainId,
    seq: u64,
    head: [u8; 32],
}

impl Chain {
    /// A new chain: no batch yet, head [`GENESIS`].
    pub fn new(id: ChainId) -> Chain {
        Chain {
            id,
            seq: 0,
            head: GENESIS,
        }
    }

    /// A chain that goes on after `seq`, whose link hash was `head` (the
    /// chain's last ledger row).
    pub fn resume(id: ChainId, seq: u64, head: [u8; 32]) -> Chain {
        Chain { id, seq, head }
    }

    /// The chain's id.
    pub fn id(&self) -> ChainId {
        self.id
    }

    /// The last seq linked (0 before the first batch).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The last link's hash ([`GENESIS`] before the first batch): what a
    /// checkpoint signs.
    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    /// Links the next batch, whose batch digest is `digest`, and moves the
    /// head. Call it once per batch, when its rows are final (sealed), and
    /// store the [`Link`] in the batch's ledger row, in the batch's own
    /// transaction, however much later that commits.
    pub fn link(&mut self, digest: &[u8; 32], meta: &BatchMeta) -> Link {
        let seq = self.seq + 1;
        let prev_hash = self.head;
        let hash = link_hash(self.id, &prev_hash, digest, seq, meta);
        self.seq = seq;
        self.head = hash;
        Link {
            seq,
            prev_hash,
            hash,
        }
    }
}
