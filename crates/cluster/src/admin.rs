//! Administrative helpers for a database server: `CREATE DATABASE`, one-off
//! administrative statements, and rewriting a connection URL for another
//! database.

use std::time::Duration;

use super::error::{ClusterError, Result};

/// Upper bound for connecting and running one administrative statement.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// `CREATE DATABASE "name"` on the server at `url`.
pub(super) fn create_database_at(url: &str, name: &str) -> Result<()> {
    simple_query(url, &format!("CREATE DATABASE {}", quote_ident(name))).map(drop)
}

/// Runs `sql` with the simple query protocol and returns its rows as text.
///
/// It runs on a private current-thread runtime on a helper thread, because
/// callers may already be inside a Tokio runtime (an async test), where
/// building and blocking on another runtime panics.
pub(super) fn simple_query(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| simple_query_blocking(url, sql))
            .join()
            .unwrap_or_else(|_| {
                Err(ClusterError::Setup(
                    "the database helper thread panicked".into(),
                ))
            })
    })
}

fn simple_query_blocking(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let work = async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            // The connection future does the actual I/O; it must be polled
            // while the client waits for its answer.
            let connection = tokio::spawn(connection);
            let messages = client.simple_query(sql).await;
            drop(client);
            let _ = connection.await;
            let rows = messages?
                .into_iter()
                .filter_map(|message| match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect();
            Ok(rows)
        };
        tokio::time::timeout(ADMIN_TIMEOUT, work)
            .await
            .unwrap_or(Err(ClusterError::Timeout(
                "administrative statement on the database server",
            )))
    })
}

/// `name` as an SQL identifier: double-quoted, inner quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `url` with its database replaced by `database`.
///
/// For `postgres://` and `postgresql://` URLs the path is replaced (or added)
/// and the query string kept, minus any `dbname` parameter that would
/// override the path. A `key=value` connection string gets a `dbname` at the
/// end, which overrides an earlier one.
pub(super) fn with_database(url: &str, database: &str) -> Result<String> {
    let url = url.trim();
    let scheme = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|scheme| url.starts_with(scheme));
    if let Some(scheme) = scheme {
        let rest = &url[scheme.len()..];
        // The authority (user:password@host:port, hosts, [::1]) ends at the
        // first '/', '?' or '#'; the path runs to the first '?' or '#'.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (query, fragment) = match tail.find('#') {
            Some(i) => (&tail[..i], &tail[i..]),
            None => (tail, ""),
        };
        let query = query.find('?').map_or("", |i| &query[i + 1..]);
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some("dbname"))
            .collect::<Vec<_>>()
            .join("&");
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        return Ok(format!(
            "{scheme}{authority}/{}{query}{fragment}",
            percent_encode(database)
        ));
    }
    if url.contains('=') && !url.contains("://") {
        let quoted = database.replace('\\', r"\\").replace('\'', r"\'");
        return Ok(format!("{url} dbname='{quoted}'"));
    }
    Err(ClusterError::BadUrl(url.to_owned()))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(super) fn percent_encode(s: &str) -> String {
    let mut encoded = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The single value of a one-row, one-column query.
#[cfg(test)]
pub(super) fn scalar(url: &str, sql: &str) -> Result<Option<String>> {
    let rows = simple_query(url, sql)?;
    assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
    Ok(rows[0][0].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_replacement_in_urls() {
        let cases = [
            (
                "postgres://u:p@db.example:5432/app",
                "postgres://u:p@db.example:5432/rt_1",
            ),
            (
                "postgresql://u@localhost/app",
                "postgresql://u@localhost/rt_1",
            ),
            ("postgres://localhost", "postgres://localhost/rt_1"),
            ("postgres://localhost/", "postgres://localhost/rt_1"),
            (
                "postgres://localhost:5433",
                "postgres://localhost:5433/rt_1",
            ),
            (
                "postgres://u@localhost/app?sslmode=disable&connect_timeout=5",
                "postgres://u@localhost/rt_1?sslmode=disable&connect_timeout=5",
            ),
            (
                "postgres://localhost?sslmode=disable",
                "postgres://localhost/rt_1?sslmode=disable",
            ),
            (
                "postgres://u@[::1]:5432/app",
                "postgres://u@[::1]:5432/rt_1",
            ),
            (
                "postgres://h1:5432,h2:5433/app",
                "postgres://h1:5432,h2:5433/rt_1",
            ),
            (
                "postgres://u@h/app?dbname=other&x=1",
                "postgres://u@h/rt_1?x=1",
            ),
            ("  postgres://h/app  ", "postgres://h/rt_1"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "rt_1").unwrap(), expected, "from {url}");
        }
        assert_eq!(
            with_database("postgres://h/app", "odd name/é").unwrap(),
            "postgres://h/odd%20name%2F%C3%A9"
        );
        assert_eq!(
            with_database("host=localhost user=me dbname=app", "rt_1").unwrap(),
            "host=localhost user=me dbname=app dbname='rt_1'"
        );
        assert!(matches!(
            with_database("mysql://h/app", "rt_1"),
            Err(ClusterError::BadUrl(url)) if url == "mysql://h/app"
        ));
        assert!(matches!(
            with_database("", "rt_1"),
            Err(ClusterError::BadUrl(_))
        ));
    }

    #[test]
    fn replaced_urls_parse_as_the_new_database() {
        for url in [
            "postgres://u:p@localhost:5432/app?sslmode=disable",
            "host=localhost user=me dbname=app",
        ] {
            let replaced = with_database(url, "it's \"odd\"").unwrap();
            let config: tokio_postgres::Config = replaced.parse().unwrap();
            assert_eq!(config.get_dbname(), Some("it's \"odd\""), "from {replaced}");
        }
    }

    #[test]
    fn identifier_quoting() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
    }
}
