//! Durations and instants as people type them on a command line: the
//! project's one parser for `30s`, `5m`, `1h30m` and for RFC 3339
//! timestamps.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use ringtrail::time::{format_duration, parse_duration, parse_rfc3339};
//!
//! assert_eq!(parse_duration("500ms")?, Duration::from_millis(500));
//! assert_eq!(parse_duration("1h30m")?, Duration::from_secs(5_400));
//! assert_eq!(format_duration(Duration::from_secs(5_400)), "1h30m");
//! assert!(parse_duration("5 minutes").is_err());
//!
//! let t = parse_rfc3339("2026-12-01T10:00:00.25+01:00")?;
//! assert_eq!(t.duration_since(UNIX_EPOCH)?, Duration::from_millis(1_796_115_600_250));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`parse_duration`] fits clap's `value_parser` as it is
//! (`value_parser = ringtrail::time::parse_duration`: the CLI's `--grace`,
//! `--keep` and `--ahead` take it), and its one-line [`DurationError`] is
//! what clap prints.
//!
//! The grammar is ringtrail's own and stricter than a general parser's: it
//! refuses a bare number, a fraction, a space, a sign, a local time
//! without an offset and a leap second, each with its own reason. The
//! calendar behind an RFC 3339 instant (which days exist, offsets, the
//! instant itself) is `jiff`'s.
//!
//! # Duration syntax
//!
//! One or more `<digits><unit>` parts, units in decreasing order, each at
//! most once, no spaces: `500ms`, `30s`, `5m`, `1h`, `2d`, `1h30m`,
//! `1d12h`, `0s`. Units: `d` (24 h), `h`, `m`, `s`, `ms`. A bare number is
//! refused (seconds or minutes?), and so are fractions (`1.5h`: write
//! `1h30m`), signs, and anything above
//! [`MAX_DURATION`] (100 years).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest duration [`parse_duration`] accepts: 100 years of 365.25
/// days. Longer is a typo, and would overflow time arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(36_525 * 86_400);

/// The units, longest first: suffix and length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Why a duration or a timestamp was refused. Its text is one line that
/// quotes the input and says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: String,
}

impl DurationError {
    fn new(input: &str, reason: impl Into<String>) -> DurationError {
        DurationError {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }

    /// The text that was refused.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for DurationError {}

const DURATION_SYNTAX: &str = "expected a duration like 500ms, 30s, 5m, 1h, 2d or 1h30m";

/// Parses a duration such as `500ms`, `30s`, `5m`, `1h`, `2d` or `1h30m`
/// (see the [module docs](self) for the syntax).
///
/// # Errors
///
/// A [`DurationError`] for empty input, a bare number, an unknown or
/// repeated unit, units out of order, fractions, signs, spaces, and values
/// above [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let text = s.trim();
    if text.is_empty() {
        return Err(DurationError::new(s, format!("empty; {DURATION_SYNTAX}")));
    }
    let mut rest = text;
    let mut total_ms: u128 = 0;
    // Index into UNITS of the last unit seen: the next must come after it.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            let reason = match c {
                '.' | ',' => {
                    format!("fractions are not accepted (write 1h30m, not 1.5h); {DURATION_SYNTAX}")
                }
                '-' | '+' => format!("a duration has no sign; {DURATION_SYNTAX}"),
                _ => format!("unexpected {c:?}; {DURATION_SYNTAX}"),
            };
            return Err(DurationError::new(s, reason));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            let reason = match after.chars().next() {
                None => format!("a number needs a unit (ms, s, m, h or d); {DURATION_SYNTAX}"),
                Some('.' | ',') => {
                    format!("fractions are not accepted (write 1h30m, not 1.5h); {DURATION_SYNTAX}")
                }
                Some(c) => format!("unexpected {c:?}; {DURATION_SYNTAX}"),
            };
            return Err(DurationError::new(s, reason));
        }
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(DurationError::new(
                s,
                format!("unknown unit {unit:?} (use ms, s, m, h or d)"),
            ));
        };
        if let Some(last) = last_unit {
            if index <= last {
                return Err(DurationError::new(
                    s,
                    format!(
                        "units must each appear once, longest first (like 1h30m); {unit:?} comes after {:?}",
                        UNITS[last].0
                    ),
                ));
            }
        }
        last_unit = Some(index);
        let too_long = || {
            DurationError::new(
                s,
                format!(
                    "too long (at most {} days, 100 years)",
                    MAX_DURATION.as_secs() / 86_400
                ),
            )
        };
        let n: u128 = number.parse::<u64>().map_err(|_| too_long())?.into();
        total_ms = n
            .checked_mul(UNITS[index].1.into())
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(too_long)?;
        if total_ms > MAX_DURATION.as_millis() {
            return Err(too_long());
        }
        rest = after;
    }
    // total_ms <= MAX_DURATION in milliseconds, which fits a u64.
    Ok(Duration::from_millis(total_ms as u64))
}

/// Formats a duration in the syntax [`parse_duration`] reads, largest
/// units first, e.g. `1h30m`, `2d`, `1m0s500ms` is written `1m500ms`.
/// Below a millisecond is dropped; zero (or less than 1 ms) is `0s`.
///
/// ```
/// use std::time::Duration;
/// use ringtrail::time::{format_duration, parse_duration};
///
/// for text in ["500ms", "1h30m", "2d", "1d1m1s1ms"] {
///     assert_eq!(format_duration(parse_duration(text)?), text);
/// }
/// assert_eq!(format_duration(Duration::from_micros(999)), "0s");
/// # Ok::<(), ringtrail::time::DurationError>(())
/// ```
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, unit) in UNITS {
        let unit = u128::from(unit);
        let n = ms / unit;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(name);
            ms -= n * unit;
        }
    }
    out
}

const TIMESTAMP_SYNTAX: &str =
    "expected an RFC 3339 timestamp like 2026-12-01T10:00:00Z or 2026-12-01T10:00:00.5+01:00";

/// Parses an RFC 3339 timestamp, e.g. `2026-12-01T10:00:00Z`,
/// `2026-12-01T10:00:00.123456+01:00` (`t`, `z` and a space instead of
/// `T` are accepted too), or a date alone, `2026-12-01`, meaning its
/// midnight UTC. An offset (`Z` or `±HH:MM`) is required on a time: no
/// local time zone is guessed. Fractions below a nanosecond are cut.
///
/// # Errors
///
/// A [`DurationError`] quoting the input when it is not such a timestamp,
/// or names a day or time that does not exist (`2026-02-30`, `25:00`).
/// Leap seconds (`:60`) are refused.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, DurationError> {
    let bad = |why: &str| DurationError::new(s, format!("{why}; {TIMESTAMP_SYNTAX}"));
    let text = s.trim();
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err(bad("not a date"));
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad("not a date"));
    }
    let Some(date) = i16::try_from(year)
        .ok()
        .and_then(|y| jiff::civil::Date::new(y, month as i8, day as i8).ok())
    else {
        return Err(bad("no such day"));
    };
    if b.len() == 10 {
        return instant(date, 0, 0, 0, 0, 0).ok_or_else(|| bad("out of range"));
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad("unexpected text after the date"));
    }
    let (Some(hour), Some(minute), Some(second)) = (num(11..13), num(14..16), num(17..19)) else {
        return Err(bad("not a time"));
    };
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return Err(bad("not a time"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("no such time"));
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad("a fraction needs digits"));
        }
        for (k, c) in b[i..i + digits].iter().enumerate() {
            if k < 9 {
                nanos = nanos * 10 + i64::from(c - b'0');
            }
        }
        for _ in digits..9 {
            nanos *= 10;
        }
        i += digits;
    }
    let offset_secs = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let (Some(h), Some(m)) = (num(i + 1..i + 3), num(i + 4..i + 6)) else {
                return Err(bad("not an offset"));
            };
            if h > 23 || m > 59 {
                return Err(bad("no such offset"));
            }
            let secs = h * 3_600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        [] => return Err(bad("the time needs an offset (Z or ±HH:MM)")),
        _ => return Err(bad("not an offset")),
    };
    instant(date, hour, minute, second, nanos, offset_secs).ok_or_else(|| bad("out of range"))
}

/// An instant as typed on a command line: a duration back from now
/// (`1h`, `30m`) or an RFC 3339 timestamp. What `--since` and `--until`
/// of `ringtrail audit-gaps` take.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use ringtrail::time::When;
///
/// let now = SystemTime::now();
/// assert_eq!("1h".parse::<When>()?.at(now), now - Duration::from_secs(3_600));
/// assert_eq!("1970-01-01T00:01:00Z".parse::<When>()?.at(now), UNIX_EPOCH + Duration::from_secs(60));
/// assert!("yesterday".parse::<When>().is_err());
/// # Ok::<(), ringtrail::time::DurationError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// That long before now.
    Ago(Duration),
    /// That instant.
    At(SystemTime),
}

impl When {
    /// Parses a duration ([`parse_duration`]) or, when the text starts
    /// like a date (`YYYY-`), an RFC 3339 timestamp ([`parse_rfc3339`]).
    ///
    /// # Errors
    ///
    /// A [`DurationError`] saying both forms are accepted.
    pub fn parse(s: &str) -> Result<When, DurationError> {
        let b = s.trim().as_bytes();
        if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
            return parse_rfc3339(s).map(When::At);
        }
        parse_duration(s).map(When::Ago).map_err(|e| {
            let reason = e
                .reason
                .strip_suffix(DURATION_SYNTAX)
                .unwrap_or(&e.reason)
                .trim_end_matches("; ");
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!("{reason}; ")
            };
            DurationError::new(
                s,
                format!(
                    "{reason}expected a duration back from now (like 30s, 5m, 1h or 1h30m) \
                     or an RFC 3339 timestamp (like 2026-12-01T10:00:00Z)"
                ),
            )
        })
    }

    /// The instant meant, `now` being now. A duration reaching before the
    /// Unix epoch gives the epoch.
    pub fn at(self, now: SystemTime) -> SystemTime {
        match self {
            When::Ago(d) => now.checked_sub(d).unwrap_or(UNIX_EPOCH).max(UNIX_EPOCH),
            When::At(t) => t,
        }
    }
}

impl std::str::FromStr for When {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<When, DurationError> {
        When::parse(s)
    }
}

/// The instant of `date` at `hour:minute:second.nanos`, `offset_secs`
/// east of UTC (all already checked to be in their ranges). The day count
/// is `jiff`'s; the arithmetic after it is plain, because `jiff`'s own
/// instants stop a day short of the year 9999's end, which RFC 3339 and
/// PostgreSQL both reach.
fn instant(
    date: jiff::civil::Date,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: i64,
    offset_secs: i64,
) -> Option<SystemTime> {
    let days = i64::from(date.since(jiff::civil::date(1970, 1, 1)).ok()?.get_days());
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_secs;
    let nanos = u32::try_from(nanos).ok()?;
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(nanos.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        match parse_duration(s) {
            Ok(d) => panic!("{s:?} parsed as {d:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_every_unit_and_combinations() {
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h"), Duration::from_secs(3_600));
        assert_eq!(ok("2d"), Duration::from_secs(172_800));
        assert_eq!(ok("1h30m"), Duration::from_secs(5_400));
        assert_eq!(ok("1d2h3m4s5ms"), Duration::from_millis(93_784_005));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok(" 90s\n"), Duration::from_secs(90));
        assert_eq!(ok("90m"), Duration::from_secs(5_400));
        assert_eq!(ok("007s"), Duration::from_secs(7));
    }

    #[test]
    fn refuses_with_a_reason() {
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err("30").contains("needs a unit"));
        assert!(err("1h30").contains("needs a unit"));
        assert!(err("1.5h").contains("fractions"));
        assert!(err("-5m").contains("sign"));
        assert!(err("5x").contains("unknown unit \"x\""));
        assert!(err("5min").contains("unknown unit"));
        assert!(err("5M").contains("unknown unit"));
        assert!(err("5 m").contains("unexpected ' '"));
        assert!(err("m").contains("unexpected 'm'"));
        assert!(err("30m1h").contains("longest first"));
        assert!(err("1m1m").contains("longest first"));
        assert!(err("1s500").contains("needs a unit"));
        assert!(err("1h!").contains("unexpected '!'"));
        assert!(err("5µs").contains("unexpected"));
        // Every message quotes the input and is one line.
        for bad in ["", "x", "1.5h", "99999999999999999999999d"] {
            let e = parse_duration(bad).unwrap_err();
            assert_eq!(e.input(), bad);
            assert!(e.to_string().starts_with(&format!("{bad:?}")));
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn refuses_overflow_and_more_than_a_century() {
        assert_eq!(ok("36525d"), MAX_DURATION);
        assert!(err("36526d").contains("too long"));
        assert!(err("36525d1ms").contains("too long"));
        assert!(err("876601h").contains("too long"));
        assert!(err("18446744073709551615d").contains("too long"));
        assert!(err("18446744073709551616ms").contains("too long"));
        assert!(err("99999999999999999999999999999999999s").contains("too long"));
    }

    #[test]
    fn formats_what_it_parses() {
        for text in [
            "0s",
            "1ms",
            "500ms",
            "1s",
            "59s",
            "5m",
            "1h30m",
            "2d",
            "1d1h1m1s1ms",
        ] {
            assert_eq!(format_duration(ok(text)), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_nanos(1_500_000)), "1ms");
        assert!(format_duration(Duration::MAX).ends_with("ms"));
    }

    fn at(s: &str) -> i128 {
        let t = parse_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        }
    }

    #[test]
    fn when_is_a_duration_ago_or_a_timestamp() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let w = |s: &str| When::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(w("1h"), When::Ago(Duration::from_secs(3_600)));
        assert_eq!(w("1h").at(now), UNIX_EPOCH + Duration::from_secs(6_400));
        assert_eq!(w("1d").at(now), UNIX_EPOCH);
        assert_eq!(
            w("1970-01-01T01:00:00Z").at(now),
            UNIX_EPOCH + Duration::from_secs(3_600)
        );
        assert_eq!(
            w("1970-01-02"),
            When::At(UNIX_EPOCH + Duration::from_secs(86_400))
        );
        for bad in [
            "",
            "abc",
            "1.5h",
            "90",
            "2026-13-01T00:00:00Z",
            "2026-12-01T10:00:00",
        ] {
            let e = When::parse(bad).expect_err(bad).to_string();
            assert!(!e.contains('\n'), "{e}");
            assert!(e.contains("duration") || e.contains("RFC 3339"), "{e}");
        }
        let e = When::parse("1.5h").unwrap_err().to_string();
        assert!(e.contains("fractions") && e.contains("RFC 3339"), "{e}");
        assert!(!e.contains("; ;"), "{e}");
        let e = When::parse("5x").unwrap_err().to_string();
        assert!(
            e.contains("unknown unit \"x\"") && e.contains("RFC 3339"),
            "{e}"
        );
        let e = When::parse("2026-12-01T10:00:00").unwrap_err().to_string();
        assert!(e.contains("offset"), "{e}");
        assert_eq!(
            "5m".parse::<When>(),
            Ok(When::Ago(Duration::from_secs(300)))
        );
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(at("1970-01-01T00:00:00Z"), 0);
        assert_eq!(at("1970-01-01"), 0);
        assert_eq!(at("2000-02-29T00:00:00Z"), 951_782_400_000_000_000);
        assert_eq!(
            at("2025-11-30T01:37:27.123456789Z"),
            1_764_466_647_123_456_789
        );
        assert_eq!(
            at("2025-11-30t02:37:27.123456789+01:00"),
            1_764_466_647_123_456_789
        );
        assert_eq!(at("2025-11-30 01:37:27.5z"), 1_764_466_647_500_000_000);
        assert_eq!(at("2025-11-29T20:37:27-05:00"), 1_764_466_647_000_000_000);
        // Digits past nanoseconds are cut.
        assert_eq!(at("1970-01-01T00:00:00.0000000019Z"), 1);
        assert_eq!(at("1969-12-31T23:59:59.999999Z"), -1_000);
        assert_eq!(at("0001-01-01T00:00:00Z"), -62_135_596_800_000_000_000);
    }

    #[test]
    fn refuses_bad_timestamps() {
        for bad in [
            "",
            "now",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:00:60Z",
            "2026-12-01T10:00:00",
            "2026-12-01T10:00:00+0100",
            "2026-12-01T10:00:00+24:00",
            "2026-12-01T10:00:00.Z",
            "2026-12-01T10:00Z",
            "2026-12-01X10:00:00Z",
            "2026-1-01",
            "1h",
            "2026-12-01T10:00:00Zjunk",
        ] {
            let e = parse_rfc3339(bad).expect_err(bad);
            assert!(e.to_string().contains("RFC 3339"), "{e}");
            assert!(!e.to_string().contains('\n'));
        }
    }
}
