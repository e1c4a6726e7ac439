//! [`KeySet`]: the keys already written in one JSON object, so a repeated
//! name is written once.
//!
//! JSON allows repeated keys, but Elasticsearch rejects a document with
//! one (`Duplicate field`) and OTLP requires attribute keys to be unique.
//! A row can repeat a name (`tracing` allows it), and two names can map to
//! one key (`a.b` and `a_b` are both the label `a_b`). The renderers keep
//! the first and drop the rest.
//!
//! The set remembers where each key's escaped text lies in the output
//! buffer, so it stores no strings: comparing escaped texts is comparing
//! the keys, as escaping is one-to-one. A 64-bit hash of each key finds
//! repeats in constant time; only an equal hash costs a byte comparison.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// The keys of one object, as ranges of the output buffer.
#[derive(Debug, Clone, Default)]
pub(super) struct KeySet {
    hashes: HashSet<u64, BuildHasherDefault<PassThrough>>,
    ranges: Vec<(usize, usize)>,
}

impl KeySet {
    /// Forgets every key (a new object begins); keeps the capacity.
    pub(super) fn clear(&mut self) {
        self.hashes.clear();
        self.ranges.clear();
    }

    /// Records `out[start..end]` (a key's escaped text) and returns true,
    /// or returns false when an equal key was recorded before.
    pub(super) fn insert(&mut self, out: &[u8], start: usize, end: usize) -> bool {
        let key = &out[start..end];
        let hash = fnv1a(key);
        if !self.hashes.insert(hash)
            && self
                .ranges
                .iter()
                .any(|&(s, e)| out.get(s..e).is_some_and(|k| k == key))
        {
            return false;
        }
        self.ranges.push((start, end));
        true
    }
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A hasher for keys that are already hashes.
#[derive(Debug, Clone, Copy, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in anyway.
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b) ^ (self.0 >> 56);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_repeats_and_survives_clear() {
        let out = b"\"a\"\"b\"\"a\"\"ab\"";
        let mut keys = KeySet::default();
        assert!(keys.insert(out, 0, 3));
        assert!(keys.insert(out, 3, 6));
        assert!(!keys.insert(out, 6, 9));
        assert!(keys.insert(out, 9, 13));
        keys.clear();
        assert!(keys.insert(out, 6, 9));
    }

    #[test]
    fn an_equal_hash_is_not_a_repeat() {
        // Force a "collision": the same hash recorded for another key.
        let out = b"xy";
        let mut keys = KeySet::default();
        keys.hashes.insert(fnv1a(b"y"));
        assert!(keys.insert(out, 1, 2), "hash seen, key not: still new");
        assert!(!keys.insert(out, 1, 2));
    }
}
