//! Level names for the `level` column's OpenTelemetry severity numbers:
//! the one definition the renderers and the read side use (the numbers
//! themselves are `row::LEVEL_*`).
//!
//! `tracing` levels are stored as 1, 5, 9, 13 and 17; a row made by hand
//! may hold any `i16`. OpenTelemetry groups 1..=24 in six ranges of four
//! (TRACE, DEBUG, INFO, WARN, ERROR, FATAL); anything else is unspecified.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{LEVEL_DEBUG, LEVEL_ERROR, LEVEL_INFO, LEVEL_TRACE, LEVEL_WARN};

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
}
