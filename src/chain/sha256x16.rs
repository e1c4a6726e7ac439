//! SHA-256 of many short messages at once: sixteen at a time, one per
//! 32-bit lane of AVX-512 registers ("multi-buffer", as in Intel's
//! ipsec-mb and minio's sha256-simd), with the `sha2` crate (SHA-NI where
//! the CPU has it) for everything else.
//!
//! The chain hashes every row it stores, each on its own: a few hundred
//! bytes, four or five blocks. SHA-NI runs one message's blocks one after
//! another, each round waiting on the last; sixteen independent messages
//! fill the vector units instead. The result is plain SHA-256, the same
//! bytes whichever path computes it (`tests` compare both on every length
//! up to several blocks and on random lengths).
//!
//! ```
//! use ringtrail::chain::sha256x16::digest_many;
//! use sha2::{Digest, Sha256};
//!
//! let messages: Vec<Vec<u8>> = (0..40).map(|i| vec![i as u8; i * 13]).collect();
//! let refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
//! let mut out = vec![[0u8; 32]; refs.len()];
//! digest_many(&refs, &mut out);
//! for (m, d) in messages.iter().zip(&out) {
//!     assert_eq!(d[..], Sha256::digest(m)[..]);
//! }
//! ```

use sha2::{Digest, Sha256};

/// How many messages one multi-buffer pass hashes.
pub const LANES: usize = 16;

/// Writes the SHA-256 of `messages[i]` to `out[i]` for every `i`.
///
/// # Panics
///
/// When `out` is shorter than `messages`.
pub fn digest_many(messages: &[&[u8]], out: &mut [[u8; 32]]) {
    assert!(out.len() >= messages.len(), "one digest per message");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if use_x16() {
        while messages.len() - done >= LANES / 2 {
            let n = (messages.len() - done).min(LANES);
            // SAFETY: the CPU has AVX-512F and AVX-512BW (checked just
            // above), the only requirements of `x16::digest`.
            unsafe { x16::digest(&messages[done..done + n], &mut out[done..done + n]) };
            done += n;
        }
    }
    for (m, d) in messages[done..].iter().zip(&mut out[done..]) {
        *d = Sha256::digest(m).into();
    }
}

/// Whether [`digest_many`] takes the sixteen-lane path: on a CPU with
/// AVX-512F and AVX-512BW (every AVX-512 server core since Skylake).
#[cfg(target_arch = "x86_64")]
fn use_x16() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

#[cfg(target_arch = "x86_64")]
mod x16 {
    use std::arch::x86_64::*;

    use super::LANES;

    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    const H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    /// Blocks of `m` once padded.
    #[inline]
    fn blocks(m: &[u8]) -> usize {
        (m.len() + 9).div_ceil(64)
    }

    /// The last blocks of `m`, of `blocks` blocks once padded (`m`,
    /// `0x80`, zeros, the bit length as a big-endian u64): block `b`, one
    /// that `m` does not fill, into `block`.
    #[inline]
    fn padded_block(m: &[u8], blocks: usize, b: usize, block: &mut [u8; 64]) {
        let at = b * 64;
        let rest = m.get(at..).unwrap_or(&[]);
        block.fill(0);
        block[..rest.len()].copy_from_slice(rest);
        if at <= m.len() {
            block[rest.len()] = 0x80;
        }
        if b + 1 == blocks {
            block[56..].copy_from_slice(&(m.len() as u64).wrapping_mul(8).to_be_bytes());
        }
    }

    /// Turns sixteen rows of sixteen words (`rows[lane]`: one lane's
    /// block) into sixteen columns (`w[t]`: word `t` of every lane), in
    /// registers: 32-bit, then 64-bit interleaves, then two rounds of
    /// 128-bit lane shuffles.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transpose(r: [__m512i; 16]) -> [__m512i; 16] {
        let mut t = [_mm512_setzero_si512(); 16];
        for i in (0..16).step_by(2) {
            t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
            t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
        }
        // u[4g + j], 128-bit lane k: word 4k + j of rows 4g..4g+3.
        let mut u = [_mm512_setzero_si512(); 16];
        for g in (0..16).step_by(4) {
            u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
            u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
            u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
            u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
        }
        let mut w = [_mm512_setzero_si512(); 16];
        for j in 0..4 {
            let v0 = _mm512_shuffle_i32x4::<0x44>(u[j], u[4 + j]);
            let v1 = _mm512_shuffle_i32x4::<0xEE>(u[j], u[4 + j]);
            let v2 = _mm512_shuffle_i32x4::<0x44>(u[8 + j], u[12 + j]);
            let v3 = _mm512_shuffle_i32x4::<0xEE>(u[8 + j], u[12 + j]);
            w[j] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
            w[4 + j] = _mm512_shuffle_i32x4::<0xDD>(v0, v2);
            w[8 + j] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
            w[12 + j] = _mm512_shuffle_i32x4::<0xDD>(v1, v3);
        }
        w
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn add(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(a, b)
    }

    /// `a ^ b ^ c` in one instruction.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn xor3(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0x96>(a, b, c)
    }

    /// Hashes `messages` (1 to 16 of them) into `out`, one lane each.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512F and AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn digest(messages: &[&[u8]], out: &mut [[u8; 32]]) {
        let n = messages.len();
        debug_assert!((1..=LANES).contains(&n) && out.len() >= n);
        let mut nblocks = [0usize; LANES];
        for (lane, m) in messages.iter().enumerate() {
            nblocks[lane] = blocks(m);
        }
        let most = nblocks[..n].iter().copied().max().unwrap_or(0);
        let mut state = [_mm512_setzero_si512(); 8];
        for (s, h) in state.iter_mut().zip(H0) {
            *s = _mm512_set1_epi32(h as i32);
        }
        // Big-endian words: each word's four bytes reversed.
        let bswap = _mm512_broadcast_i32x4(_mm_setr_epi8(
            3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
        ));
        // The blocks a message does not fill, padded.
        let mut tail = [0u8; 64];
        for b in 0..most {
            // Lanes still hashing: the others keep their state.
            let mut active: u16 = 0;
            let mut rows = [_mm512_setzero_si512(); 16];
            for (lane, m) in messages.iter().enumerate() {
                if b >= nblocks[lane] {
                    continue;
                }
                active |= 1 << lane;
                let block = match m.get(b * 64..b * 64 + 64) {
                    Some(full) => full.as_ptr(),
                    None => {
                        padded_block(m, nblocks[lane], b, &mut tail);
                        tail.as_ptr()
                    }
                };
                // SAFETY: `block` points at 64 readable bytes (a whole
                // block of `m`, or `tail`); the load has no alignment
                // requirement. `tail` is only reused after this load.
                let bytes = unsafe { _mm512_loadu_si512(block.cast()) };
                rows[lane] = _mm512_shuffle_epi8(bytes, bswap);
            }
            let next = compress(state, transpose(rows));
            for (s, x) in state.iter_mut().zip(next) {
                *s = _mm512_mask_mov_epi32(*s, active, x);
            }
        }
        let mut lanes = [[0u32; LANES]; 8];
        for (i, s) in state.iter().enumerate() {
            // SAFETY: writes exactly the 64 bytes of `lanes[i]`; the
            // unaligned store has no alignment requirement.
            unsafe { _mm512_storeu_si512(lanes[i].as_mut_ptr().cast(), *s) };
        }
        for (lane, digest) in out.iter_mut().enumerate().take(n) {
            for (i, chunk) in digest.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&lanes[i][lane].to_be_bytes());
            }
        }
    }

    /// One SHA-256 compression of sixteen blocks (`w`: word `t` of every
    /// lane's block) into sixteen states, fully unrolled so that the
    /// message schedule and the working variables stay in registers.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn compress(state: [__m512i; 8], mut w: [__m512i; 16]) -> [__m512i; 8] {
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
        // One round; the caller rotates the names instead of the values.
        macro_rules! round {
            ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $k:expr, $i:expr, $schedule:expr) => {{
                if $schedule {
                    let w15 = w[($i + 1) & 15];
                    let w2 = w[($i + 14) & 15];
                    let s0 = xor3(
                        _mm512_ror_epi32::<7>(w15),
                        _mm512_ror_epi32::<18>(w15),
                        _mm512_srli_epi32::<3>(w15),
                    );
                    let s1 = xor3(
                        _mm512_ror_epi32::<17>(w2),
                        _mm512_ror_epi32::<19>(w2),
                        _mm512_srli_epi32::<10>(w2),
                    );
                    w[$i] = add(add(w[$i], s0), add(w[($i + 9) & 15], s1));
                }
                let wk = add(w[$i], _mm512_set1_epi32(K[$k + $i] as i32));
                let s1 = xor3(
                    _mm512_ror_epi32::<6>($e),
                    _mm512_ror_epi32::<11>($e),
                    _mm512_ror_epi32::<25>($e),
                );
                // e ? f : g
                let ch = _mm512_ternarylogic_epi32::<0xCA>($e, $f, $g);
                let t1 = add(add($h, s1), add(ch, wk));
                let s0 = xor3(
                    _mm512_ror_epi32::<2>($a),
                    _mm512_ror_epi32::<13>($a),
                    _mm512_ror_epi32::<22>($a),
                );
                // the majority of a, b, c
                let maj = _mm512_ternarylogic_epi32::<0xE8>($a, $b, $c);
                $d = add($d, t1);
                $h = add(t1, add(s0, maj));
            }};
        }
        // Sixteen rounds from K[k]: the names turn full circle twice.
        macro_rules! sixteen {
            ($k:expr, $schedule:expr) => {
                round!(a, b, c, d, e, f, g, h, $k, 0, $schedule);
                round!(h, a, b, c, d, e, f, g, $k, 1, $schedule);
                round!(g, h, a, b, c, d, e, f, $k, 2, $schedule);
                round!(f, g, h, a, b, c, d, e, $k, 3, $schedule);
                round!(e, f, g, h, a, b, c, d, $k, 4, $schedule);
                round!(d, e, f, g, h, a, b, c, $k, 5, $schedule);
                round!(c, d, e, f, g, h, a, b, $k, 6, $schedule);
                round!(b, c, d, e, f, g, h, a, $k, 7, $schedule);
                round!(a, b, c, d, e, f, g, h, $k, 8, $schedule);
                round!(h, a, b, c, d, e, f, g, $k, 9, $schedule);
                round!(g, h, a, b, c, d, e, f, $k, 10, $schedule);
                round!(f, g, h, a, b, c, d, e, $k, 11, $schedule);
                round!(e, f, g, h, a, b, c, d, $k, 12, $schedule);
                round!(d, e, f, g, h, a, b, c, $k, 13, $schedule);
                round!(c, d, e, f, g, h, a, b, $k, 14, $schedule);
                round!(b, c, d, e, f, g, h, a, $k, 15, $schedule);
            };
        }
        sixteen!(0, false);
        sixteen!(16, true);
        sixteen!(32, true);
        sixteen!(48, true);
        let mut next = [a, b, c, d, e, f, g, h];
        for (n, s) in next.iter_mut().zip(state) {
            *n = add(s, *n);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Digests by [`digest_many`], and by the sixteen-lane code itself
    /// where the CPU has it (whatever the build), against `sha2`.
    fn check(messages: &[Vec<u8>]) {
        let refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
        let mut out = vec![[0u8; 32]; refs.len()];
        digest_many(&refs, &mut out);
        for (i, (m, d)) in messages.iter().zip(&out).enumerate() {
            assert_eq!(
                d[..],
                Sha256::digest(m)[..],
                "message {i}, {} bytes",
                m.len()
            );
        }
        #[cfg(target_arch = "x86_64")]
        if use_x16() {
            let mut lanes = vec![[0u8; 32]; refs.len()];
            for (group, digests) in refs.chunks(LANES).zip(lanes.chunks_mut(LANES)) {
                // SAFETY: the CPU has AVX-512F and BW (checked just above).
                unsafe { x16::digest(group, digests) };
            }
            assert_eq!(lanes, out, "sixteen lanes");
        }
    }

    #[test]
    fn every_length_across_block_boundaries() {
        // Lengths 0..=300 in every lane position, so each padding case
        // (0x80 and the length in the same block or the next) meets every
        // lane, mixed with lanes of other block counts.
        let messages: Vec<Vec<u8>> = (0..=300usize)
            .map(|len| (0..len).map(|i| (i * 31 + len) as u8).collect())
            .collect();
        check(&messages);
        let mut rotated = messages.clone();
        rotated.rotate_left(7);
        check(&rotated);
    }

    #[test]
    fn random_lengths_and_group_sizes() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for group in [1, 7, 8, 15, 16, 17, 33, 100] {
            let messages: Vec<Vec<u8>> = (0..group)
                .map(|_| {
                    let len = (next() % 2000) as usize;
                    (0..len).map(|_| next() as u8).collect()
                })
                .collect();
            check(&messages);
        }
    }

    #[test]
    fn known_answers() {
        let abc: Vec<Vec<u8>> = vec![b"abc".to_vec(); 16];
        check(&abc);
        let mut out = [[0u8; 32]; 16];
        let refs: Vec<&[u8]> = abc.iter().map(|m| &m[..]).collect();
        digest_many(&refs, &mut out);
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        for d in out {
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, want);
        }
    }
}
