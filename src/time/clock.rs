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

    /// A raw reading: no system call, no conversion.
    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        self.inner.raw()
    }

    /// A converter from this clock's raw readings to wall time.
    pub(crate) fn wall_time(&self) -> WallTime {
        let mut wall = WallTime {
            clock: self.inner.clone(),
            anchor: self.inner.now(),
            anchor_unix_nanos: 0,
        };
        wall.reanchor();
        wall
    }
}

/// Converts raw readings to Unix nanoseconds. Lives on the writer thread.
pub(crate) struct WallTime {
    clock: quanta::Clock,
    anchor: quanta::Instant,
    anchor_unix_nanos: i64,
}

/// How often the writer re-pairs the counter with the wall clock.
const REANCHOR_EVERY: Duration = Duration::from_secs(1);

/// Wall-clock time now, in nanoseconds since the Unix epoch (0 before it).
pub(crate) fn unix_nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl WallTime {
    fn reanchor(&mut self) {
        self.anchor = self.clock.now();
        self.anchor_unix_nanos = unix_nanos_now();
    }

    /// Re-pairs the counter with the wall clock if the last pairing is
    /// older than a second. Call once per drain pass, not per row.
    pub(crate) fn refresh(&mut self) {
        if self.clock.now().saturating_duration_since(self.anchor) >= REANCHOR_EVERY {
            self.reanchor();
        }
    }

    /// Unix nanoseconds of a raw reading (which may predate the anchor).
    #[inline]
    pub(crate) fn unix_nanos(&self, raw: u64) -> i64 {
        let at = self.clock.scaled(raw);
        match at.checked_duration_since(self.anchor) {
            Some(after) => self
                .anchor_unix_nanos
                .saturating_add(after.as_nanos() as i64),
            None => self
                .anchor_unix_nanos
                .saturating_sub(self.anchor.saturating_duration_since(at).as_nanos() as i64),
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
}
