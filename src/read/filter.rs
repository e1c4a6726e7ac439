//! [`ExportFilter`]: which rows of `ringtrail.logs` a reader keeps. The
//! one filter type of the read side: `ringtrail export`, `ringtrail
//! query` and `ringtrail tail [-f]` all read through it, and it turns
//! into SQL in one place ([`ExportFilter::conditions`]), with every value
//! a parameter (`$1`, `$2`, …): user input is never spliced into the
//! statement text.
//!
//! | filter | condition | index (migrations 0001–0006) |
//! |---|---|---|
//! | `since` | `ts >= $n` | BRIN `logs_ts_brin` (and partition pruning on a table partitioned by `ts`) |
//! | `until` | `ts < $n` | the same |
//! | `trace_id` | `trace_id = $n` | none for plain rows (`logs_audit_trace` covers audit points only) |
//! | `min_level` | `level >= $n` | none: a filter |
//! | `target` (a prefix) | `target LIKE $n` (`%` and `_` escaped) | none: a filter (a `text_pattern_ops` btree would serve it) |
//! | `user_id` | `user_id = $n` | none: a filter |
//! | `session_id` | `session_id = $n` | none: a filter |
//! | `grep` | `strpos(message, $n) > 0` (a plain substring, case-sensitive) | none: a filter |
//! | `fields` (`key=value`) | `fields ->> $k = $v` (the value's text: `3`, `true`, `abc`) | none: a filter (no GIN index on `fields`) |
//!
//! The conditions are ANDed. A filter without a time window reads the
//! whole table; give `since` for anything large.
//!
//! ```
//! use ringtrail::read::ExportFilter;
//! let f = ExportFilter {
//!     target: Some("my_app::db".into()),
//!     grep: Some("100%".into()),
//!     fields: vec![("attempt".into(), "3".into())],
//!     ..ExportFilter::default()
//! };
//! let (conditions, params) = f.conditions(1);
//! assert_eq!(
//!     conditions.join(" AND "),
//!     "target LIKE $1 AND strpos(message, $2) > 0 AND fields ->> $3::text = $4::text"
//! );
//! assert_eq!(params.len(), 4);
//! ```

use std::time::SystemTime;

use tokio_postgres::types::ToSql;

/// Which rows a reader ([`export()`](crate::read::export()),
/// [`query()`](crate::read::query()), [`last()`](crate::read::last()),
/// [`Follower`](crate::read::Follower)) keeps. Every filter left `None`
/// (or empty) keeps all rows. See the [module docs](self) for the SQL
/// and the indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Rows at or after this instant.
    pub since: Option<SystemTime>,
    /// Rows before this instant (exclusive).
    pub until: Option<SystemTime>,
    /// Rows with this `trace_id` only (audit points and plain rows).
    pub trace_id: Option<String>,
    /// Rows at this severity number or above (see
    /// [`level::from_name`](crate::level::from_name)).
    pub min_level: Option<i16>,
    /// Rows whose `target` starts with this text (`my_app` keeps
    /// `my_app::db` and `my_app_cli`; write `my_app::` for the module
    /// tree only).
    pub target: Option<String>,
    /// Rows with this `user_id` only.
    pub user_id: Option<String>,
    /// Rows with this `session_id` only.
    pub session_id: Option<String>,
    /// Rows whose message contains this text (case-sensitive, no
    /// wildcards).
    pub grep: Option<String>,
    /// Rows whose `fields` have each of these keys with this value, the
    /// value compared as text (`fields ->> key`).
    pub fields: Vec<(String, String)>,
}

/// An owned statement parameter.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

impl ExportFilter {
    /// The filter's SQL conditions (to be ANDed) over the columns of
    /// `ringtrail.logs`, their parameters numbered from `$first`, and the
    /// parameters in that order. Only the filters given have a
    /// condition.
    pub fn conditions(&self, first: usize) -> (Vec<String>, Vec<Param>) {
        let mut conditions = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let mut add = |template: &str, values: Vec<Param>| {
            let mut text = template.to_owned();
            for value in values {
                let n = first + params.len();
                text = text.replacen('?', &format!("${n}"), 1);
                params.push(value);
            }
            conditions.push(text);
        };
        if let Some(since) = self.since {
            add("ts >= ?", vec![Box::new(since)]);
        }
        if let Some(until) = self.until {
            add("ts < ?", vec![Box::new(until)]);
        }
        if let Some(prefix) = &self.target {
            add(
                "target LIKE ?",
                vec![Box::new(format!("{}%", escape_like(prefix)))],
            );
        }
        if let Some(trace_id) = &self.trace_id {
            add("trace_id = ?", vec![Box::new(trace_id.clone())]);
        }
        if let Some(level) = self.min_level {
            add("level >= ?", vec![Box::new(level)]);
        }
        if let Some(user) = &self.user_id {
            add("user_id = ?", vec![Box::new(user.clone())]);
        }
        if let Some(session) = &self.session_id {
            add("session_id = ?", vec![Box::new(session.clone())]);
        }
        if let Some(text) = &self.grep {
            add("strpos(message, ?) > 0", vec![Box::new(text.clone())]);
        }
        for (key, value) in &self.fields {
            add(
                "fields ->> ?::text = ?::text",
                vec![Box::new(key.clone()), Box::new(value.clone())],
            );
        }
        (conditions, params)
    }
}

/// `text` with LIKE's wildcards (`%`, `_`) and its escape character
/// (`\`) escaped, so it matches only itself.
///
/// ```
/// assert_eq!(ringtrail::read::filter::escape_like(r"50%_a\b"), r"50\%\_a\\b");
/// ```
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The parameters as the driver takes them.
pub(crate) fn as_refs(params: &[Param]) -> impl ExactSizeIterator<Item = &dyn ToSql> {
    params.iter().map(|p| &**p as &dyn ToSql)
}
