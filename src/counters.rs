//! Sets of counters declared once: `counters!` turns
//! one field list into a plain struct of `u64` counts and its atomic
//! running total, so adding a counter is one line, not six.
//!
//! ```ignore
//! counters! {
//!     /// Where one commit's rows went.
//!     #[derive(Debug, Default, Clone)]
//!     pub(crate) struct Outcome {
//!         /// Rows committed.
//!         written,
//!         /// Rows spooled.
//!         spooled,
//!     }
//!     /// Every outcome so far.
//!     pub(crate) struct OutcomeTotals;
//! }
//! let mut a = Outcome { written: 2, spooled: 0 };
//! a.add_counts(&Outcome { written: 1, spooled: 5 });
//! let totals = OutcomeTotals::default();
//! totals.add(&a);
//! assert_eq!(totals.snapshot().written, 3);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

/// Adds `n` to a monotonic counter (relaxed: each counter is read alone).
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Reads a monotonic counter.
pub(crate) fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Declares a plain struct of `u64` counts (with optional extra fields after
/// a `+`) and an atomic running total of it, from one field list. The
/// plain struct gets `NAMES`, `add_counts` and `counts_are_zero`; the
/// atomic one (`Debug`, `Default`) gets `add` and `snapshot`, and its
/// fields are `AtomicU64`s for [`bump`] and [`read`].
macro_rules! counters {
    (
        $(#[$plain_meta:meta])*
        $plain_vis:vis struct $Plain:ident {
            $( $(#[$doc:meta])* $field:ident ),* $(,)?
        }
        $( + { $( $(#[$extra_doc:meta])* $extra:ident : $extra_ty:ty ),* $(,)? } )?
        $(#[$atomic_meta:meta])*
        $atomic_vis:vis struct $Atomic:ident;
    ) => {
        $(#[$plain_meta])*
        $plain_vis struct $Plain {
            $( $(#[$doc])* pub $field: u64, )*
            $($( $(#[$extra_doc])* pub $extra: $extra_ty, )*)?
        }

        #[allow(dead_code)]
        impl $Plain {
            /// The counters' names, in declaration order.
            pub(crate) const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Adds every count of `other` to this one's.
            pub(crate) fn add_counts(&mut self, other: &$Plain) {
                $( self.$field += other.$field; )*
            }

            /// Whether every count is zero.
            pub(crate) fn counts_are_zero(&self) -> bool {
                true $( && self.$field == 0 )*
            }
        }

        $(#[$atomic_meta])*
        #[derive(Debug, Default)]
        $atomic_vis struct $Atomic {
            $( $(#[$doc])* pub(crate) $field: ::std::sync::atomic::AtomicU64, )*
        }

        #[allow(dead_code)]
        impl $Atomic {
            /// Adds a set of counts.
            pub(crate) fn add(&self, counts: &$Plain) {
                $( $crate::counters::bump(&self.$field, counts.$field); )*
            }

            /// The totals now (each counter read alone).
            pub(crate) fn snapshot(&self) -> $Plain {
                $Plain {
                    $( $field: $crate::counters::read(&self.$field), )*
                    $($( $extra: ::std::default::Default::default(), )*)?
                }
            }
        }
    };
}

pub(crate) use counters;

#[cfg(test)]
mod tests {
    super::counters! {
        /// Test counts.
        #[derive(Debug, Default, Clone, PartialEq)]
        pub(crate) struct Counts {
            /// One.
            a,
            /// Two.
            b,
        }
        + {
            /// Not a count.
            note: Option<&'static str>,
        }
        /// Their totals.
        pub(crate) struct Totals;
    }

    #[test]
    fn one_list_gives_both_structs() {
        let mut counts = Counts {
            a: 1,
            b: 0,
            note: Some("x"),
        };
        assert!(!counts.counts_are_zero());
        counts.add_counts(&Counts {
            a: 2,
            b: 3,
            note: None,
        });
        assert_eq!((counts.a, counts.b, counts.note), (3, 3, Some("x")));
        let totals = Totals::default();
        totals.add(&counts);
        totals.add(&counts);
        assert_eq!(
            totals.snapshot(),
            Counts {
                a: 6,
                b: 6,
                note: None
            }
        );
        assert_eq!(Counts::NAMES, ["a", "b"]);
        assert!(Counts::default().counts_are_zero());
    }
}
