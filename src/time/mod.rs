//! Time, in one place: the event clock read on the hot path
//! (`clock`, crate-internal), instants as Unix microseconds and as
//! RFC 3339 text, and durations as people type them ([`duration`]).
//!
//! ```
//! use ringtrail::time::{from_micros, micros, rfc3339_micros};
//! let t = from_micros(1_796_119_200_250_000);
//! assert_eq!(micros(t), 1_796_119_200_250_000);
//! assert_eq!(rfc3339_micros(micros(t)), "2026-12-01T10:00:00.250000Z");
//! ```

pub(crate) mod clock;
pub mod duration;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use duration::{format_duration, parse_duration, parse_rfc3339, DurationError, When};

/// Formats Unix nanoseconds as RFC 3339 UTC with microseconds, e.g.
/// `2026-11-30T01:37:27.123456Z`.
pub(crate) fn rfc3339(unix_nanos: i64) -> String {
    let mut out = String::with_capacity(27);
    write_rfc3339(&mut out, unix_nanos);
    out
}

/// Appends [`rfc3339`]'s text to `out` (no allocation when `out` has 27
/// bytes of room): for the writer thread, which formats into a reused
/// buffer.
pub(crate) fn write_rfc3339(out: &mut String, unix_nanos: i64) {
    write_rfc3339_micros(out, unix_nanos.div_euclid(1_000));
}

/// [`write_rfc3339`] from microseconds, whose range (±292,000 years) holds
/// every instant PostgreSQL stores; nanoseconds end in 2262.
fn write_rfc3339_micros(out: &mut String, micros: i64) {
    use std::fmt::Write;
    let secs = micros.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        micros.rem_euclid(1_000_000)
    );
}

/// Microseconds since the Unix epoch (negative before it), saturating.
pub fn micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// The instant `micros` microseconds after (or before) the Unix epoch.
pub fn from_micros(micros: i64) -> SystemTime {
    let d = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// Microseconds since the epoch as RFC 3339 UTC, e.g.
/// `2026-12-01T10:00:00.250000Z`.
pub fn rfc3339_micros(micros: i64) -> String {
    let mut out = String::with_capacity(27);
    write_rfc3339_micros(&mut out, micros);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip() {
        for m in [0, 1, -1, 1_764_466_647_123_456, -62_135_596_800_000_000] {
            assert_eq!(micros(from_micros(m)), m);
        }
        assert_eq!(
            rfc3339_micros(1_764_466_647_123_456),
            "2025-11-30T01:37:27.123456Z"
        );
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            rfc3339(1_764_466_647_123_456_789),
            "2025-11-30T01:37:27.123456Z"
        );
        assert_eq!(rfc3339(-1_000), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn instants_after_2262_keep_their_year() {
        // 4052-12-01T10:20:00Z: past i64 nanoseconds, not past microseconds.
        let t = parse_rfc3339("4052-12-01T10:20:00Z").unwrap();
        assert_eq!(rfc3339_micros(micros(t)), "4052-12-01T10:20:00.000000Z");
        assert_eq!(
            rfc3339_micros(micros(
                parse_rfc3339("9999-12-31T23:59:59.999999Z").unwrap()
            )),
            "9999-12-31T23:59:59.999999Z"
        );
    }
}
