//! Event time: read cheaply on the hot path, converted to wall time on the
//! writer.
//!
//! The hot path stores a raw counter reading ([`Clock::raw`]): the CPU's
//! time-stamp counter when it is invariant (through `quanta`, calibrated
//! once per process), else the monotonic clock. A raw TSC read costs about
//! a quarter of `SystemTime::now()` here. The writer turns raw readings
//! into Unix nanoseconds with [`WallTime`], which pairs a monotonic reading
//! with `SystemTime::now()` and re-anchors every second, so wall-clock
//! adjustments are followed within a second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The hot path's clock.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    inner: quanta::Clock,
}

impl Clock {
    /// Calibrates the counter (once per process, up to 200 ms).
    pub(crate) fn new() -> Clock {
        Clock {
            inner: quanta::Clock::new(),
        }
    }

    /// Tests: a clock that reads what `mock` says (every reading the same
    /// instant until it moves).
    #[cfg(test)]
    pub(crate) fn mock() -> (Clock, std::sync::Arc<quanta::Mock>) {
        let (inner, mock) = quanta::Clock::mock();
        (Clock { inner }, mock)
    }

    /// A raw reading: no system call, no conversion.
    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        self.inner.raw()
    }

    /// A converter from this clock's raw readings to wall time.
    pub(crate) fn wall_time(&self) -> WallTime {
        WallTime::paired(self.inner.clone(), unix_nanos_now())
    }
}

/// Converts raw readings to Unix nanoseconds. Lives on the writer thread.
///
/// # One thread's events never go back in time
///
/// Re-pairing the counter with the wall clock moves the mapping by
/// however far the two drifted apart. Two events of one thread read a
/// nanosecond apart could then convert the wrong way round: the earlier
/// one by the new pairing, the later one by the old. Two rules keep them
/// in order:
///
/// - **A reading converts by the pairing of its time, not of the
///   conversion's.** The pairing before the current one is kept, and a
///   reading taken before the current pairing converts by it. The writer
///   converts two records of one thread at most one re-pairing apart (it
///   pairs only at the start of a drain pass, and a pass takes every
///   record published before it began), so both convert by one pairing
///   or by two consecutive ones.
/// - **A pairing never starts before where the last one had got to**,
///   when the wall clock fell behind the counter by no more than drift
///   explains ([`MAX_DRIFT_PPM`] of the time between the pairings, at
///   least [`MIN_DRIFT`]): readings just after it convert to that time
///   (time stands still for as long as the wall clock fell behind), not
///   before it. A wall clock set back further is followed at once, and
///   events across that step are ordered by the clock, as it says.
///
/// Times are floored to microseconds when stored, so events of one
/// thread may still share a `ts`; the `seq` column orders those.
pub(crate) struct WallTime {
    clock: quanta::Clock,
    /// The pairing readings at or after its instant convert by.
    current: Anchor,
    /// The pairing before it, for readings taken before `current`'s.
    previous: Anchor,
}

/// One pairing of a counter reading with the wall clock.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    /// The counter then.
    at: quanta::Instant,
    /// The wall clock then, Unix nanoseconds.
    unix_nanos: i64,
    /// The least a reading at or after `at` converts to: where the pairing
    /// before put `at`, or `i64::MIN` (see [`WallTime`]).
    floor: i64,
}

impl Anchor {
    /// Unix nanoseconds of the counter reading `at`.
    #[inline]
    fn unix_nanos(&self, at: quanta::Instant) -> i64 {
        match at.checked_duration_since(self.at) {
            Some(after) => self
                .unix_nanos
                .saturating_add(after.as_nanos() as i64)
                .max(self.floor),
            None => self
                .unix_nanos
                .saturating_sub(self.at.saturating_duration_since(at).as_nanos() as i64),
        }
    }
}

/// How often the writer re-pairs the counter with the wall clock.
const REANCHOR_EVERY: Duration = Duration::from_secs(1);

/// How far, in millionths of the time between two pairings, the wall
/// clock may fall behind the counter and be taken for drift (NTP slews a
/// clock by at most 500 ppm) rather than for a clock set back.
pub(crate) const MAX_DRIFT_PPM: u128 = 1_000;

/// The least fall-back taken for drift: the jitter of pairing two clocks
/// that cannot be read at the same instant.
pub(crate) const MIN_DRIFT: Duration = Duration::from_micros(100);

/// Wall-clock time now, in nanoseconds since the Unix epoch (0 before it).
pub(crate) fn unix_nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl WallTime {
    /// A converter for `clock`'s readings, its first pairing the counter
    /// now with `unix_nanos`.
    fn paired(clock: quanta::Clock, unix_nanos: i64) -> WallTime {
        let anchor = Anchor {
            at: clock.now(),
            unix_nanos,
            floor: i64::MIN,
        };
        WallTime {
            clock,
            current: anchor,
            previous: anchor,
        }
    }

    fn reanchor(&mut self) {
        self.pair(self.clock.now(), unix_nanos_now());
    }

    /// Pairs the counter reading `at` with the wall clock's `unix_nanos`;
    /// the current pairing becomes the previous one.
    fn pair(&mut self, at: quanta::Instant, unix_nanos: i64) {
        let reached = self.current.unix_nanos(at);
        let fell_back = reached.saturating_sub(unix_nanos);
        let between = at.saturating_duration_since(self.current.at);
        let drift = (between.as_nanos() * MAX_DRIFT_PPM / 1_000_000).max(MIN_DRIFT.as_nanos());
        let floor = if i128::from(fell_back) <= drift as i128 {
            reached
        } else {
            i64::MIN
        };
        self.previous = self.current;
        self.current = Anchor {
            at,
            unix_nanos,
            floor,
        };
    }

    /// Re-pairs the counter with the wall clock if the last pairing is
    /// older than a second. Call once per drain pass, not per row.
    pub(crate) fn refresh(&mut self) {
        if self.clock.now().saturating_duration_since(self.current.at) >= REANCHOR_EVERY {
            self.reanchor();
        }
    }

    /// Unix nanoseconds of a raw reading (which may predate the pairings).
    #[inline]
    pub(crate) fn unix_nanos(&self, raw: u64) -> i64 {
        let at = self.clock.scaled(raw);
        if at >= self.current.at {
            self.current.unix_nanos(at)
        } else {
            self.previous.unix_nanos(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_readings_convert_to_wall_time() {
        let clock = Clock::new();
        let before = clock.raw();
        let wall_before = unix_nanos_now();
        std::thread::sleep(Duration::from_millis(20));
        let mut wall = clock.wall_time();
        let after = clock.raw();
        let converted_before = wall.unix_nanos(before);
        let converted_after = wall.unix_nanos(after);
        // Within a millisecond of the wall clock, and ordered.
        assert!(
            (converted_before - wall_before).abs() < 1_000_000,
            "{}",
            converted_before - wall_before
        );
        assert!((converted_after - unix_nanos_now()).abs() < 1_000_000);
        assert!(converted_after - converted_before >= 20_000_000);
        wall.refresh();
        assert!((wall.unix_nanos(clock.raw()) - unix_nanos_now()).abs() < 1_000_000);
    }

    const SECOND: u64 = 1_000_000_000;
    const T0: i64 = 1_796_119_200_000_000_000;

    /// A converter over a mock counter at 10 s, paired with `T0`.
    fn mocked() -> (WallTime, std::sync::Arc<quanta::Mock>) {
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(10 * SECOND);
        (WallTime::paired(clock, T0), mock)
    }

    /// Re-pairs one second later, the wall clock `step` nanoseconds off
    /// the counter (negative: behind); returns the counter then.
    fn one_second_later(wall: &mut WallTime, mock: &quanta::Mock, step: i64) -> u64 {
        mock.increment(SECOND);
        let now = wall.clock.now();
        wall.pair(now, T0 + SECOND as i64 + step);
        wall.clock.raw()
    }

    #[test]
    fn readings_before_a_pairing_convert_by_the_one_before() {
        for step in [-50_000, 0, 80_000, -3_600 * SECOND as i64] {
            let (mut wall, mock) = mocked();
            let before = wall.clock.raw() + SECOND - 300; // 300 ns before the new pairing
            let converted_then = wall.unix_nanos(before);
            let at = one_second_later(&mut wall, &mock, step);
            assert_eq!(wall.unix_nanos(before), converted_then, "step {step}");
            assert_eq!(converted_then, T0 + SECOND as i64 - 300);
            // A reading from before both pairings still converts.
            assert_eq!(wall.unix_nanos(at - 5 * SECOND), T0 - 4 * SECOND as i64);
        }
    }

    #[test]
    fn a_thread_never_goes_back_in_time_across_a_pairing() {
        // The wall clock fell 50 µs behind the counter in a second (drift,
        // within 1,000 ppm), or jumped 80 µs ahead.
        for step in [-50_000i64, -1_000, 80_000] {
            let (mut wall, mock) = mocked();
            let at = one_second_later(&mut wall, &mock, step);
            // One thread's readings around the pairing, 100 ns apart, some
            // converted before it and some after, in any order.
            let readings: Vec<u64> = (0..2_000).map(|i| at - 100_000 + i * 100).collect();
            let times: Vec<i64> = readings.iter().map(|&r| wall.unix_nanos(r)).collect();
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "step {step}: not monotonic"
            );
            // Time stood still for as long as the wall clock fell behind,
            // then follows it.
            let later = wall.unix_nanos(at + SECOND / 2);
            assert_eq!(later, T0 + SECOND as i64 + step + (SECOND / 2) as i64);
        }
    }

    #[test]
    fn a_clock_set_back_is_followed_at_once() {
        let (mut wall, mock) = mocked();
        let at = one_second_later(&mut wall, &mock, -10 * SECOND as i64);
        assert_eq!(wall.unix_nanos(at + 1), T0 - 9 * SECOND as i64 + 1);
        // More than 1,000 ppm of the second between the pairings: a step.
        let (mut wall, mock) = mocked();
        let at = one_second_later(&mut wall, &mock, -1_100_000);
        assert_eq!(wall.unix_nanos(at), T0 + SECOND as i64 - 1_100_000);
    }
}
