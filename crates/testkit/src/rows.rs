//! The one seeded pseudo-random generator of the tests: xorshift64*
//! seeded through splitmix64, so a failing seed reproduces exactly.
//!
//! Tests that need their own distribution of rows wrap [`Rng`] with
//! [`rng_wrapper!`](crate::rng_wrapper) and build on its primitives in an
//! `impl` of their own.
//!
//! ```
//! use ringtrail_testkit::rows::Rng;
//! let mut a = Rng::new(7);
//! let mut b = Rng::new(7);
//! assert_eq!(a.next(), b.next());
//! assert!(a.below(10) < 10);
//! let s = a.string(16);
//! assert!(s.chars().count() <= 16);
//! ```

/// xorshift64* seeded through splitmix64. Not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)).max(1))
    }

    /// The next 64 bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `p` times in 100.
    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    /// One of `items`, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// 128 random bits.
    pub fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }

    /// A string of up to `max` characters that stresses text handling:
    /// ASCII, NUL, other controls, any scalar value, multibyte and
    /// separator characters, and JSON's special characters.
    pub fn string(&mut self, max: u64) -> String {
        let len = self.below(max + 1);
        let mut s = String::new();
        for _ in 0..len {
            match self.below(100) {
                0..=44 => s.push(char::from(0x20 + self.below(0x5f) as u8)),
                45..=54 => s.push('\0'),
                55..=64 => s.push(char::from(self.below(0x20) as u8)),
                65..=79 => loop {
                    if let Some(c) = char::from_u32(self.below(0x11_0000) as u32) {
                        s.push(c);
                        break;
                    }
                },
                80..=89 => s.push(self.pick(&[
                    'é',
                    'ß',
                    '日',
                    '🦀',
                    '\u{FFFD}',
                    '\u{7f}',
                    '\u{85}',
                    '\u{2028}',
                    '\u{fb33}',
                    '\u{1F600}',
                    '\u{FEFF}',
                ])),
                _ => s.push(self.pick(&['"', '\\', '\'', '{', '}', ':', ',', '[', '/', 'u'])),
            }
        }
        s
    }
}

/// Declares `struct $name(Rng)`, which derefs to [`Rng`] and has
/// `$name::new(seed)`, so a test can add its own generators in an `impl
/// $name` block.
///
/// ```
/// ringtrail_testkit::rng_wrapper!(Gen);
/// impl Gen {
///     fn coin(&mut self) -> bool {
///         self.percent(50)
///     }
/// }
/// let mut g = Gen::new(1);
/// let _ = g.coin();
/// ```
#[macro_export]
macro_rules! rng_wrapper {
    ($name:ident) => {
        /// The shared seeded PRNG, with this test's own distributions.
        struct $name($crate::rows::Rng);

        impl ::std::ops::Deref for $name {
            type Target = $crate::rows::Rng;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl ::std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }

        impl $name {
            #[allow(dead_code)]
            fn new(seed: u64) -> $name {
                $name($crate::rows::Rng::new(seed))
            }
        }
    };
}
