//! The row filters of `ringtrail query`, `tail` and `export`
//! ([`FilterArgs`]): one set of flags, turned into the read side's one
//! filter, [`ExportFilter`]. Which filters an index serves (only the time
//! window, today) is in `ringtrail::read::filter`.

use std::time::SystemTime;

use ringtrail::read::ExportFilter;
use ringtrail::time::When;
use ringtrail::time::{micros, rfc3339_micros};

use super::Failure;

/// The filters, all ANDed. Without any, every row.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Rows at this level or above: trace, debug, info, warn or error
    /// (any case). Not indexed: a filter.
    #[arg(long, value_parser = parse_level, value_name = "LEVEL")]
    pub level: Option<i16>,
    /// Rows whose target starts with this text (`my_app::` for a module
    /// tree). Not indexed: a filter.
    #[arg(long, value_name = "PREFIX")]
    pub target: Option<String>,
    /// Rows of this trace (the trace_id column). Not indexed for plain
    /// rows: a filter.
    #[arg(long, value_name = "ID")]
    pub trace_id: Option<String>,
    /// Rows of this user (the user_id column). Not indexed: a filter.
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Rows of this session (the session_id column). Not indexed: a
    /// filter.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Rows whose message contains this text (case-sensitive, no
    /// wildcards). Not indexed: a filter.
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Start of the window (inclusive): a duration back from now (15m,
    /// 2h, 7d) or an RFC 3339 timestamp. Uses the BRIN index on ts (and
    /// partition pruning).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<When>,
    /// End of the window (exclusive): a duration back from now or an RFC
    /// 3339 timestamp. Uses the BRIN index on ts (and partition pruning).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<When>,
    /// Rows whose fields have KEY with this VALUE, compared as text
    /// (`attempt=3`, `ok=true`); repeat for several. Not indexed (no GIN
    /// index on fields): a filter.
    #[arg(long = "field", value_parser = parse_field, value_name = "KEY=VALUE")]
    pub fields: Vec<(String, String)>,
}

impl FilterArgs {
    /// The filter, the relative times taken back from `now`; `--since`
    /// not before `--until` is a usage error.
    pub fn filter(&self, now: SystemTime) -> Result<ExportFilter, Failure> {
        let filter = ExportFilter {
            since: self.since.map(|w| w.at(now)),
            until: self.until.map(|w| w.at(now)),
            trace_id: self.trace_id.clone(),
            min_level: self.level,
            target: self.target.clone(),
            user_id: self.user.clone(),
            session_id: self.session.clone(),
            grep: self.grep.clone(),
            fields: self.fields.clone(),
        };
        if let (Some(since), Some(until)) = (filter.since, filter.until) {
            if since >= until {
                return Err(Failure::usage(format!(
                    "--since ({}) is not before --until ({})",
                    rfc3339_micros(micros(since)),
                    rfc3339_micros(micros(until)),
                )));
            }
        }
        Ok(filter)
    }
}

/// `--level`: a level name as its severity number.
pub fn parse_level(name: &str) -> Result<i16, String> {
    ringtrail::level::from_name(name).ok_or_else(|| {
        format!("{name:?}: unknown level (expected trace, debug, info, warn or error)")
    })
}

/// `--field`: `key=value`, the key not empty (the value may be).
fn parse_field(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?}: expected KEY=VALUE, like attempt=3")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_by_name_only() {
        assert_eq!(parse_level("WARN"), Ok(ringtrail::row::LEVEL_WARN));
        assert!(parse_level("4").unwrap_err().contains("unknown level"));
    }

    #[test]
    fn fields_are_key_equals_value() {
        assert_eq!(parse_field("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_field("ok="), Ok(("ok".into(), String::new())));
        assert!(parse_field("=3").is_err());
        assert!(parse_field("attempt").is_err());
    }
}
