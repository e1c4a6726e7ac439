//! Levels, in one place: the OpenTelemetry severity numbers the `level`
//! column stores (`LEVEL_*`, [`severity_number`]) and their names, for
//! the renderers, the read side and the CLI ([`name`], [`from_name`]).
//!
//! `tracing` levels are stored as 1, 5, 9, 13 and 17; a row made by hand
//! may hold any `i16`. OpenTelemetry groups 1..=24 in six ranges of four
//! (TRACE, DEBUG, INFO, WARN, ERROR, FATAL); anything else is unspecified.

/// OpenTelemetry severity number of `TRACE`.
pub const LEVEL_TRACE: i16 = 1;
/// OpenTelemetry severity number of `DEBUG`.
pub const LEVEL_DEBUG: i16 = 5;
/// OpenTelemetry severity number of `INFO`.
pub const LEVEL_INFO: i16 = 9;
/// OpenTelemetry severity number of `WARN`.
pub const LEVEL_WARN: i16 = 13;
/// OpenTelemetry severity number of `ERROR`.
pub const LEVEL_ERROR: i16 = 17;

/// Maps a `tracing` level to its OpenTelemetry severity number, the value
/// stored in the `level smallint` column.
pub fn severity_number(level: &tracing::Level) -> i16 {
    match *level {
        tracing::Level::TRACE => LEVEL_TRACE,
        tracing::Level::DEBUG => LEVEL_DEBUG,
        tracing::Level::INFO => LEVEL_INFO,
        tracing::Level::WARN => LEVEL_WARN,
        tracing::Level::ERROR => LEVEL_ERROR,
    }
}

/// TRACE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4.
#[inline]
pub(crate) fn index(level: &tracing::Level) -> usize {
    match *level {
        tracing::Level::TRACE => 0,
        tracing::Level::DEBUG => 1,
        tracing::Level::INFO => 2,
        tracing::Level::WARN => 3,
        tracing::Level::ERROR => 4,
    }
}

/// The six ranges' names, upper case.
const UPPER: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
/// The same, lower case (ECS `log.level`).
const LOWER: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

/// OpenTelemetry's short names, one per severity number 1..=24.
const SHORT: [&str; 24] = [
    "TRACE", "TRACE2", "TRACE3", "TRACE4", "DEBUG", "DEBUG2", "DEBUG3", "DEBUG4", "INFO", "INFO2",
    "INFO3", "INFO4", "WARN", "WARN2", "WARN3", "WARN4", "ERROR", "ERROR2", "ERROR3", "ERROR4",
    "FATAL", "FATAL2", "FATAL3", "FATAL4",
];

/// Which of the six ranges `level` is in (0 TRACE … 5 FATAL), if any.
pub(crate) fn range(level: i16) -> Option<usize> {
    (1..=24).contains(&level).then(|| (level as usize - 1) / 4)
}

/// `INFO` for 9..=12 and so on; `None` outside 1..=24.
pub(crate) fn upper(level: i16) -> Option<&'static str> {
    range(level).map(|r| UPPER[r])
}

/// `info` for 9..=12 and so on; `None` outside 1..=24.
pub(crate) fn lower(level: i16) -> Option<&'static str> {
    range(level).map(|r| LOWER[r])
}

/// OpenTelemetry's `SeverityText` short name: `INFO` for 9, `INFO2` for
/// 10 and so on; `None` outside 1..=24.
pub(crate) fn short(level: i16) -> Option<&'static str> {
    range(level).map(|_| SHORT[level as usize - 1])
}

/// The name `tracing` gives a severity number of the `level` column
/// (`"INFO"` for 9 to 12, and so on), derived from
/// [`severity_number`] like the SQL
/// function `ringtrail.level_name`.
///
/// ```
/// assert_eq!(ringtrail::level::name(ringtrail::level::LEVEL_WARN), "WARN");
/// assert_eq!(ringtrail::level::name(10), "INFO");
/// assert_eq!(ringtrail::level::name(0), "TRACE");
/// ```
pub fn name(severity: i16) -> &'static str {
    // The SQL `ringtrail.level_name()` thresholds: below 5 TRACE, 17 and
    // above ERROR.
    upper(severity.clamp(LEVEL_TRACE, LEVEL_ERROR)).unwrap_or("TRACE")
}

/// The severity number of a level name (`trace`, `debug`, `info`, `warn`
/// or `error`, any case), from [`severity_number`]; `None` for anything
/// else.
///
/// ```
/// use ringtrail::level::{from_name, LEVEL_ERROR, LEVEL_WARN};
/// assert_eq!(from_name("WARN"), Some(LEVEL_WARN));
/// assert_eq!(from_name("error"), Some(LEVEL_ERROR));
/// assert_eq!(from_name("3"), None);
/// assert_eq!(from_name("fatal"), None);
/// ```
pub fn from_name(name: &str) -> Option<i16> {
    if !name.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None; // tracing's parser also takes "1" … "5"
    }
    let level: tracing::Level = name.parse().ok()?;
    Some(severity_number(&level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_levels_have_their_names() {
        let levels = [
            LEVEL_TRACE,
            LEVEL_DEBUG,
            LEVEL_INFO,
            LEVEL_WARN,
            LEVEL_ERROR,
        ];
        let names: Vec<_> = levels.iter().map(|&l| upper(l).unwrap()).collect();
        assert_eq!(names, ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]);
        let short: Vec<_> = levels.iter().map(|&l| short(l).unwrap()).collect();
        assert_eq!(short, names);
        assert_eq!(lower(LEVEL_WARN), Some("warn"));
    }

    #[test]
    fn ranges_and_edges() {
        assert_eq!(short(10), Some("INFO2"));
        assert_eq!(upper(12), Some("INFO"));
        assert_eq!(short(24), Some("FATAL4"));
        for l in [0, -1, 25, i16::MIN, i16::MAX] {
            assert_eq!(range(l), None);
            assert_eq!(short(l), None);
        }
    }

    #[test]
    fn level_names_follow_the_severity_numbers() {
        let names: Vec<&str> = [
            LEVEL_TRACE,
            LEVEL_DEBUG,
            LEVEL_INFO,
            LEVEL_WARN,
            LEVEL_ERROR,
        ]
        .into_iter()
        .map(name)
        .collect();
        assert_eq!(names, ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]);
        assert_eq!(name(16), "WARN");
        assert_eq!(name(24), "ERROR");
        assert_eq!(name(i16::MIN), "TRACE");
    }

    #[test]
    fn level_names() {
        for (text, level) in [
            ("trace", LEVEL_TRACE),
            ("Debug", LEVEL_DEBUG),
            ("INFO", LEVEL_INFO),
            ("warn", LEVEL_WARN),
            ("eRRor", LEVEL_ERROR),
        ] {
            assert_eq!(from_name(text), Some(level));
            assert_eq!(name(level), text.to_uppercase());
        }
        for bad in ["", "1", "warning", "fatal", " warn"] {
            assert_eq!(from_name(bad), None, "{bad:?}");
        }
    }
}
