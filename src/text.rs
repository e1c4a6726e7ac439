//! Text forms shared by the writer, the sinks and (soon) the renderers:
//! RFC 3339 instants and hyphenated UUIDs. Pure functions, no state.
//!
//! ```text
//! rfc3339(1_764_466_647_123_456_789)  →  2025-11-30T01:37:27.123456Z
//! uuid_text(&id)                      →  0190f5a2-7c1e-7a3b-8d4e-5f6a7b8c9d0e
//! ```

use std::fmt::Write as _;

/// The largest `n <= max` that is a character boundary of `s`: where a
/// text may be cut.
#[inline]
pub(crate) fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut n = max;
    // A UTF-8 character is at most 4 bytes, so this loops at most 3 times.
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

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
    use std::fmt::Write;
    let micros = unix_nanos.div_euclid(1_000);
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

/// Formats 16 bytes as a hyphenated lower-case UUID.
pub(crate) fn uuid_text(id: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in id.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn uuid_text_is_hyphenated() {
        let mut id = [0u8; 16];
        id[0] = 0xab;
        id[15] = 0x01;
        assert_eq!(uuid_text(&id), "ab000000-0000-0000-0000-000000000001");
    }
}
