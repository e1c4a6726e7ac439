//! UUIDv7 row ids (RFC 9562), made on the writer thread.
//!
//! Layout: 48 bits of Unix milliseconds, version 7, 12 bits of a counter
//! that keeps ids from one writer strictly increasing within a millisecond
//! (RFC 9562 §6.2, method 1), the variant, and 62 random bits.
//!
//! The random bits come from a xorshift generator seeded once from the
//! operating system (`getrandom`, with the clock and process id mixed in
//! as a fallback). A per-row `getrandom` system call would cost more than
//! encoding the row, and the `uuid` crate's own v7 generator makes one per
//! id (or needs the `rand` crate) and reads the clock again;
//! `benches/chain.rs` (`ids/*`) measures both. Text and parsing are the
//! `uuid` crate's.
//!
//! ```
//! use ringtrail::ids::Uuid7;
//! let mut ids = Uuid7::new();
//! let t = 1_796_119_200_000_000_000; // Unix nanoseconds
//! let (a, b) = (ids.next(t), ids.next(t));
//! assert!(a < b, "monotonic within a millisecond");
//! assert_eq!(uuid::Uuid::from_bytes(a).get_version_num(), 7);
//! ```

use crate::time::clock::unix_nanos_now;

/// xorshift64*: fast, and good enough for what it is used for here (the
/// non-secret random bits of an id, retry jitter). Not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct Xorshift {
    state: u64,
}

impl Xorshift {
    /// A generator from `seed` (any value; zero is avoided).
    pub(crate) fn new(seed: u64) -> Xorshift {
        Xorshift { state: seed | 1 }
    }

    /// A generator seeded from the operating system, or from the clock and
    /// the process id when that fails.
    pub(crate) fn from_entropy() -> Xorshift {
        let mut seed = [0u8; 8];
        let from_os = getrandom::fill(&mut seed).is_ok();
        let mut seed = u64::from_ne_bytes(seed);
        if !from_os {
            seed ^= unix_nanos_now() as u64 ^ ((std::process::id() as u64) << 32);
        }
        Xorshift::new(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform float in [0, 1).
    pub(crate) fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An id derived from `parent` and `salt`, always the same for the same
/// two: a UUIDv8 (RFC 9562's version for custom layouts) that keeps the
/// parent's 48 bits of milliseconds, so it sorts near it, and fills the
/// other 74 bits from a mix of the parent and the salt.
pub(crate) fn derive_id(parent: &[u8; 16], salt: u64) -> [u8; 16] {
    let hi = u64::from_be_bytes(parent[..8].try_into().expect("8 bytes"));
    let lo = u64::from_be_bytes(parent[8..].try_into().expect("8 bytes"));
    let a = mix64(hi ^ mix64(salt));
    let b = mix64(lo ^ a ^ 0x9e37_79b9_7f4a_7c15);
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&parent[..6]);
    id[6..8].copy_from_slice(&((a as u16 & 0x0fff) | 0x8000).to_be_bytes());
    id[8..].copy_from_slice(&((b >> 2) | 0x8000_0000_0000_0000).to_be_bytes());
    id
}

/// Generates UUIDv7 ids, monotonic for one generator: without a system
/// call per id ([`Uuid7::new`], for row ids), or with the random bits of
/// each id from the operating system ([`Uuid7::unpredictable`], for batch
/// ids).
#[derive(Debug)]
pub struct Uuid7 {
    last_ms: u64,
    counter: u16,
    rng: Xorshift,
    /// Each id's random bits from `getrandom`, not from `rng`.
    unpredictable: bool,
}

impl Uuid7 {
    /// A generator with a fresh random seed.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Uuid7 {
        Uuid7 {
            last_ms: 0,
            counter: 0,
            rng: Xorshift::from_entropy(),
            unpredictable: false,
        }
    }

    /// A generator whose ids cannot be predicted from earlier ones: the
    /// 62 random bits of each come from the operating system's CSPRNG
    /// (one `getrandom` call per id). Batch ids are made so: the ledger's
    /// key is a batch id, and an insert-only role that could predict the
    /// next one could take it first. xorshift64* ([`Uuid7::new`]) is
    /// invertible: one id gives its state away.
    pub fn unpredictable() -> Uuid7 {
        Uuid7 {
            unpredictable: true,
            ..Uuid7::new()
        }
    }

    /// The next id for an event at `unix_nanos` (Unix nanoseconds): its
    /// millisecond, a counter within it, and random bits.
    pub fn next(&mut self, unix_nanos: i64) -> [u8; 16] {
        let ms = (unix_nanos.max(0) as u64 / 1_000_000) & ((1 << 48) - 1);
        if ms > self.last_ms {
            self.last_ms = ms;
            // Start each millisecond at a random point of the lower half, so
            // the counter rarely overflows.
            self.counter = (self.rng.next_u64() & 0x7ff) as u16;
        } else if self.counter < 0xfff {
            self.counter += 1;
        } else {
            // Counter exhausted: borrow the next millisecond.
            self.last_ms += 1;
            self.counter = 0;
        }
        let random = if self.unpredictable {
            let mut bytes = [0u8; 8];
            match getrandom::fill(&mut bytes) {
                Ok(()) => u64::from_ne_bytes(bytes),
                // The OS never fails this on a supported system; should it,
                // the id is still unique, only no longer unpredictable.
                Err(_) => self.rng.next_u64(),
            }
        } else {
            self.rng.next_u64()
        };
        let hi = (self.last_ms << 16) | 0x7000 | self.counter as u64;
        let lo = (random >> 2) | 0x8000_0000_0000_0000;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&hi.to_be_bytes());
        id[8..].copy_from_slice(&lo.to_be_bytes());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The xorshift64* state behind an id, from its 62 random bits: the
    /// output is the state times an odd constant, so for each guess of
    /// the 2 bits the id drops, multiplying by the inverse gives a state;
    /// the one whose next output matches the next id is the generator's.
    fn predict_next(first: [u8; 16], second: [u8; 16]) -> Option<u64> {
        const C: u64 = 0x2545_F491_4F6C_DD1D;
        // The inverse of C modulo 2^64, by Newton's iteration.
        let mut inv: u64 = C;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(C.wrapping_mul(inv)));
        }
        let low62 = |id: [u8; 16]| u64::from_be_bytes(id[8..].try_into().unwrap()) & !(3 << 62);
        (0..4u64)
            .map(|guess| ((low62(first) << 2) | guess).wrapping_mul(inv))
            .find_map(|state| {
                let mut rng = Xorshift { state };
                let next = rng.next_u64();
                (next >> 2 == low62(second)).then(|| rng.next_u64() >> 2)
            })
    }

    #[test]
    fn fast_ids_give_their_generator_away_batch_ids_do_not() {
        let t = 1_796_119_200_000_000_000;
        let mut fast = Uuid7::new();
        let (a, b, c) = (fast.next(t), fast.next(t), fast.next(t));
        let low62 = |id: [u8; 16]| u64::from_be_bytes(id[8..].try_into().unwrap()) & !(3 << 62);
        assert_eq!(
            predict_next(a, b),
            Some(low62(c)),
            "xorshift ids are predictable"
        );
        let mut batch = Uuid7::unpredictable();
        let (a, b, c) = (batch.next(t), batch.next(t), batch.next(t));
        assert!(a < b && b < c, "still monotonic");
        assert_ne!(predict_next(a, b), Some(low62(c)));
    }

    #[test]
    fn derived_ids_are_stable_distinct_and_v8() {
        let parent = Uuid7::new().next(1_700_000_000_123_456_789);
        let a = derive_id(&parent, 1);
        assert_eq!(a, derive_id(&parent, 1), "deterministic");
        assert_ne!(a, derive_id(&parent, 2));
        assert_ne!(a, derive_id(&derive_id(&parent, 9), 1));
        assert_eq!(a[6] >> 4, 8, "version");
        assert_eq!(a[8] >> 6, 0b10, "variant");
        assert_eq!(a[..6], parent[..6], "same millisecond");
    }

    #[test]
    fn ids_are_v7_increasing_and_carry_the_time() {
        let mut g = Uuid7::new();
        let t = 1_700_000_000_123_456_789i64;
        let mut prev = [0u8; 16];
        for i in 0..10_000 {
            // Same millisecond for all, and one step back in time halfway.
            let id = g.next(if i == 5000 { t - 5_000_000 } else { t });
            assert_eq!(id[6] >> 4, 7, "version");
            assert_eq!(id[8] >> 6, 0b10, "variant");
            assert!(id > prev, "monotonic");
            prev = id;
        }
        let first = g.next(t + 10_000_000);
        let ms = u64::from_be_bytes([
            0, 0, first[0], first[1], first[2], first[3], first[4], first[5],
        ]);
        assert_eq!(ms, 1_700_000_000_133);
    }
}
