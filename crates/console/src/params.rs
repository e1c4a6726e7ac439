//! Query parameters: the CLI's filter names (`since`, `until`, `level`,
//! `target`, `trace_id`, `user`, `session`, `grep`, `field=key=value`,
//! repeated), read the way the CLI reads its flags, so a console URL and
//! a `ringtrail query` line mean the same rows.

use std::time::SystemTime;

use ringtrail::read::ExportFilter;
use ringtrail::time::{micros, rfc3339_micros, When};

/// A request's query string, parsed.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string (`None`: no query).
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The pairs, for rebuilding a URL.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// `since` (default `default_since` back from `now`) and `until`
    /// (default now), checked in order.
    pub fn window(
        &self,
        now: SystemTime,
        default_since: &str,
    ) -> Result<(SystemTime, SystemTime), String> {
        let since = when(self.get("since").unwrap_or(default_since), "since")?.at(now);
        let until = match self.get("until") {
            Some(u) => when(u, "until")?.at(now),
            None => now,
        };
        if since >= until {
            return Err(format!(
                "since ({}) is not before until ({})",
                rfc3339_micros(micros(since)),
                rfc3339_micros(micros(until))
            ));
        }
        Ok((since, until))
    }

    /// The row filter these parameters name, as `ringtrail query` builds
    /// it from the same flags. No `since` means no lower bound.
    pub fn filter(&self, now: SystemTime) -> Result<ExportFilter, String> {
        let level = match self.get("level") {
            Some(name) => Some(ringtrail::level::from_name(name).ok_or_else(|| {
                format!("level {name:?}: unknown (expected trace, debug, info, warn or error)")
            })?),
            None => None,
        };
        let mut fields = Vec::new();
        for f in self.all("field") {
            match f.split_once('=') {
                Some((k, v)) if !k.is_empty() => fields.push((k.to_owned(), v.to_owned())),
                _ => return Err(format!("field {f:?}: expected key=value, like attempt=3")),
            }
        }
        let filter = ExportFilter {
            since: self
                .get("since")
                .map(|s| when(s, "since"))
                .transpose()?
                .map(|w| w.at(now)),
            until: self
                .get("until")
                .map(|s| when(s, "until"))
                .transpose()?
                .map(|w| w.at(now)),
            trace_id: self.get("trace_id").map(str::to_owned),
            min_level: level,
            target: self.get("target").map(str::to_owned),
            user_id: self.get("user").map(str::to_owned),
            session_id: self.get("session").map(str::to_owned),
            grep: self.get("grep").map(str::to_owned),
            fields,
        };
        if let (Some(since), Some(until)) = (filter.since, filter.until) {
            if since >= until {
                return Err("since is not before until".into());
            }
        }
        Ok(filter)
    }
}

fn when(text: &str, name: &str) -> Result<When, String> {
    text.parse::<When>().map_err(|e| format!("{name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_filter_names() {
        let now = SystemTime::now();
        let p = Params::parse(Some(
            "since=1h&level=warn&target=app%3A%3A&user=u-1&grep=%3Cb%3E&field=a%3D1&field=b%3Dx%3Dy&trace_id=",
        ));
        let f = p.filter(now).unwrap();
        assert_eq!(f.min_level, Some(13));
        assert_eq!(f.target.as_deref(), Some("app::"));
        assert_eq!(f.user_id.as_deref(), Some("u-1"));
        assert_eq!(f.grep.as_deref(), Some("<b>"));
        assert_eq!(f.trace_id, None);
        assert_eq!(
            f.fields,
            [("a".into(), "1".into()), ("b".into(), "x=y".into())]
        );
        assert!(f.since.is_some() && f.until.is_none());
        assert!(Params::parse(Some("level=loud"))
            .filter(now)
            .unwrap_err()
            .contains("level"));
        assert!(Params::parse(Some("field=novalue")).filter(now).is_err());
        assert!(Params::parse(Some("since=tomorrow")).filter(now).is_err());
        assert!(Params::parse(Some("since=1h&until=2h"))
            .window(now, "1h")
            .is_err());
    }
}
