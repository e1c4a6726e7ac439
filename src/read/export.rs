//! Rows of a window, read back as [`Row`]s: [`export()`] streams every row
//! of `ringtrail.logs` that an [`ExportFilter`] keeps, ordered by `ts`
//! then `id`, to a callback, in constant memory. `ringtrail export`
//! renders each one with a [`Renderer`](crate::render::Renderer), the
//! same renderers the JSON-lines sink uses, so an export is the sink's
//! output for the rows as they were read back.
//!
//! # Streaming
//!
//! One statement ([`ExportFilter::sql`]), its rows taken from the
//! connection one at a time (`query_raw`): the driver hands on at most
//! one socket read's worth of messages before it waits for the consumer,
//! and the server then waits on TCP, so memory stays flat however many
//! rows match. Measured with `/usr/bin/time` on 1,000,000 rows (release
//! build, 2 cores, PostgreSQL on the same machine, `--output` a file):
//! peak RSS 5.6–5.9 MiB in every format, against 400 MiB (ECS) to
//! 856 MiB (OTLP) of output; 2.9 s for ECS (about 340,000 rows/s), 3.3 s
//! for OCSF and native, 4.2 s for OTLP. `tests/cli_export.rs` checks the
//! bound on 200,000 rows. Only the WHERE clauses of the filters given are
//! sent, so a window is a bitmap scan of the BRIN index on `ts`.
//!
//! # From a table row back to a [`Row`]
//!
//! | column | [`Row`] |
//! |---|---|
//! | `ts` (microseconds) | `ts_unix_nanos` (× 1,000) |
//! | `id` | `id`, the UUID's 16 bytes |
//! | `level`, `target`, `message` | the same |
//! | `fields` jsonb | `fields`, in `jsonb`'s key order (shorter keys first, then bytewise) |
//! | `trace_id` … `client_id` | `context`, in [`CONTEXT_KEYS`](crate::row::CONTEXT_KEYS) order |
//! | `span_name`, `file`, `line`, `truncated`, `kind` | the same |
//! | `redacted` | `redacted` |
//!
//! A `fields` value becomes a [`Value`]: a string [`Value::Str`] (the
//! strings `"NaN"`, `"Infinity"` and `"-Infinity"` the encoder writes for
//! non-finite floats stay strings); an integer [`Value::U64`] (or
//! [`Value::I64`] when negative); a number with a fraction or exponent
//! [`Value::F64`]; a boolean [`Value::Bool`]; an array or an object (an
//! OpenTelemetry attribute that was one, from `ringtrail serve`) its JSON
//! text as a [`Value::Json`]; `null` (which ringtrail never writes) the
//! string `null`.
//!
//! A row read back can differ from the event that was written in a few
//! corners, because `jsonb` stores numbers as `numeric` and the crate's
//! `serde_json` has no arbitrary precision:
//!
//! - an integer beyond the `i64`/`u64` range (an `i128`/`u128` field)
//!   reads back as the nearest [`Value::F64`];
//! - `-0.0` is stored as `0.0`, and a float written with an exponent is
//!   printed in full by `jsonb` (`1e15` as `1000000000000000`), so an
//!   integral one reads back as an integer;
//! - a non-finite float reads back as its string;
//! - a repeated field name keeps its last value only (`jsonb` keeps one),
//!   and the fields come in `jsonb`'s key order, not the call site's.
//!
//! So an export is byte-identical to rendering the rows [`export()`]
//! returns, which is what the sink would write for those rows; it equals
//! the sink's line for the original event except in these corners.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::ops::ControlFlow;
//! use ringtrail::read::{self, ExportFilter};
//! use ringtrail::render::{Format, Renderer};
//!
//! let url = ringtrail_cluster::fresh_database()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let config: ringtrail::tls::ConnectOptions = url.parse()?;
//!     let mut client = read::connect(&config).await?;
//!     ringtrail::schema::apply(&mut client).await?;
//!     client.batch_execute(r#"
//!         INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, trace_id, truncated)
//!         VALUES (now(), gen_random_uuid(), 17, 'my_app', 'boom', '{"attempt": 3, "ok": false}', 't-1', false),
//!                (now(), gen_random_uuid(), 5, 'my_app', 'quiet', '{}', NULL, false);
//!     "#).await?;
//!
//!     let filter = ExportFilter {
//!         min_level: ringtrail::level::from_name("warn"),
//!         ..ExportFilter::default()
//!     };
//!     let mut renderer = Renderer::new(Format::Otlp);
//!     let mut out = Vec::new();
//!     let done = read::export(&client, &filter, |row| {
//!         assert_eq!(row.context[0], Some("t-1"));
//!         renderer.render(row, &mut out);
//!         ControlFlow::Continue(())
//!     })
//!     .await?;
//!     assert_eq!((done.rows, done.stopped), (1, false));
//!     assert!(std::str::from_utf8(&out)?.contains(r#""body":{"stringValue":"boom"}"#));
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

use std::ops::ControlFlow;
use std::time::SystemTime;

use futures_util::{pin_mut, StreamExt};
use serde_json::Value as Json;
use tokio_postgres::{Client, GenericClient};

pub use super::filter::ExportFilter;
use super::filter::{as_refs, Param};
use crate::encode::copy::{col, WireUuid, SELECT_COLUMNS};
use crate::row::{jsonb_key_order, Field, Row, Value, CONTEXT_LEN};

/// The columns [`export()`] selects, in the order it reads them: every
/// column of the table ([`SELECT_COLUMNS`]), each at its position in
/// [`copy::COLUMNS`](crate::encode::copy::COLUMNS) ([`col`]).
pub(crate) const COLUMNS: &str = SELECT_COLUMNS;

/// [`COLUMNS`] with `seq` read as `0`: the table before migration
/// `0010_seq` has no `seq`, and rows from then have no place within
/// their microsecond.
static COLUMNS_BEFORE_SEQ: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| SELECT_COLUMNS.replace(", seq", ", 0::int8 AS seq"));

/// The select list for `ringtrail.logs` as it is: [`COLUMNS`], or on a
/// schema from before migration `0010_seq` the same with `seq` read as
/// 0, so `query`, `tail`, `export` and `trace` keep working on a
/// database not migrated yet (`ORDER BY … seq` names the output column).
pub(crate) async fn columns(
    client: &impl GenericClient,
) -> Result<&'static str, tokio_postgres::Error> {
    let has_seq: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute \
             WHERE attrelid = 'ringtrail.logs'::regclass AND attname = 'seq' AND NOT attisdropped)",
            &[],
        )
        .await?
        .get(0);
    Ok(if has_seq {
        COLUMNS
    } else {
        COLUMNS_BEFORE_SEQ.as_str()
    })
}

impl ExportFilter {
    /// The statement [`export()`] runs for this filter: only the given
    /// filters' conditions ([`conditions`](ExportFilter::conditions)),
    /// numbered `$1`, `$2`, … in the order `since`, `until`, `trace_id`,
    /// `min_level`, then the others; `ORDER BY ts, id`.
    ///
    /// ```
    /// use ringtrail::read::ExportFilter;
    /// let f = ExportFilter { trace_id: Some("t-1".into()), min_level: Some(13), ..Default::default() };
    /// assert!(f.sql().ends_with("WHERE trace_id = $1 AND level >= $2 ORDER BY ts, id"));
    /// ```
    pub fn sql(&self) -> String {
        format!("{} ORDER BY ts, id", select(COLUMNS, self, 1).0)
    }
}

/// `SELECT columns FROM ringtrail.logs` ([`COLUMNS`], or what
/// [`columns()`] says), with `filter`'s `WHERE` clause (parameters from
/// `$first`), and its parameters.
pub(crate) fn select(columns: &str, filter: &ExportFilter, first: usize) -> (String, Vec<Param>) {
    let (conditions, params) = filter.conditions(first);
    let mut sql = format!("SELECT {columns} FROM ringtrail.logs");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    (sql, params)
}

/// What one [`export()`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    /// Rows handed to the callback.
    pub rows: u64,
    /// Whether the callback stopped the export before the last row.
    pub stopped: bool,
}

/// Streams every row `filter` keeps, ordered by `ts` then `id`, to
/// `on_row` as a [`Row`] (see the [module docs](self) for how a table
/// row maps back), in constant memory. `on_row` returns
/// [`ControlFlow::Break`] to stop early (a closed output, say); the rest
/// of the result is then not read.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the query fails, at
/// the start or midway (rows already handed on stay handed on).
pub async fn export(
    client: &Client,
    filter: &ExportFilter,
    on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> crate::Result<Exported> {
    let (sql, params) = export_statement(client, filter).await?;
    stream(client, &sql, &params, on_row).await
}

/// The statement [`export()`] runs on `client` for `filter`, and its
/// parameters: its rows ordered by `ts`, then `id` (what
/// [`cluster::export`](super::cluster::export) merges by).
pub(crate) async fn export_statement(
    client: &impl GenericClient,
    filter: &ExportFilter,
) -> crate::Result<(String, Vec<Param>)> {
    let (sql, params) = select(columns(client).await?, filter, 1);
    Ok((format!("{sql} ORDER BY ts, id"), params))
}

/// Starts `sql` (which selects [`COLUMNS`]) with `params`: its rows, to
/// be pulled one at a time (`query_raw`), so memory stays flat however
/// many match. What [`stream`] reads, and what a
/// [`cluster`](super::cluster) merge pulls from each shard.
pub(crate) async fn open_rows(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param],
) -> crate::Result<tokio_postgres::RowStream> {
    Ok(client.query_raw(sql, as_refs(params)).await?)
}

/// Runs `sql` (which selects [`COLUMNS`]) with `params` and streams its
/// rows to `on_row` as [`Row`]s, in constant memory, until it returns
/// [`ControlFlow::Break`].
pub(crate) async fn stream(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param],
    mut on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> crate::Result<Exported> {
    let stream = open_rows(client, sql, params).await?;
    pin_mut!(stream);
    let mut done = Exported::default();
    while let Some(row) = stream.next().await {
        if with_row(&row?, &mut on_row).is_break() {
            done.stopped = true;
            break;
        }
        done.rows += 1;
    }
    Ok(done)
}

/// Hands a table row of [`COLUMNS`] to `on_row` as a [`Row`].
pub(crate) fn with_row(
    row: &tokio_postgres::Row,
    on_row: &mut impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let fields = ParsedFields::parse(row.get(col::FIELDS));
    let fields = fields.fields();
    on_row(&to_row(row, &fields))
}

/// A table row of [`COLUMNS`] as a [`Row`] whose fields are `fields`.
fn to_row<'a>(row: &'a tokio_postgres::Row, fields: &'a [Field<'a>]) -> Row<'a> {
    let ts: SystemTime = row.get(col::TS);
    let id: WireUuid = row.get(col::ID);
    let mut context = [None; CONTEXT_LEN];
    for (i, slot) in context.iter_mut().enumerate() {
        *slot = row.get(col::CONTEXT + i);
    }
    let line: Option<i32> = row.get(col::LINE);
    let redacted: i16 = row.get(col::REDACTED);
    Row {
        ts_unix_nanos: crate::time::micros(ts).saturating_mul(1_000),
        id: id.0,
        level: row.get(col::LEVEL),
        target: row.get(col::TARGET),
        message: row.get(col::MESSAGE),
        fields,
        context,
        span_name: row.get(col::SPAN_NAME),
        file: row.get(col::FILE),
        line: line.and_then(|l| u32::try_from(l).ok()),
        truncated: row.get(col::TRUNCATED),
        kind: row.get(col::KIND),
        redacted: u32::try_from(redacted).unwrap_or(0),
        seq: u64::try_from(row.get::<_, i64>(col::SEQ)).unwrap_or(0),
    }
}

/// A `fields` column, parsed, with the JSON text of its values that are
/// not scalars.
struct ParsedFields {
    /// The names and values, in `jsonb`'s key order.
    entries: Vec<(String, Json)>,
    /// The JSON text of each entry that is not a string, number or
    /// boolean, in entry order.
    texts: Vec<String>,
}

impl ParsedFields {
    /// Parses the column's text. Text that is not a JSON object (never
    /// written by ringtrail) becomes one field, `fields`, holding it.
    fn parse(text: &str) -> ParsedFields {
        let mut entries: Vec<(String, Json)> = match serde_json::from_str(text) {
            Ok(Json::Object(map)) => map.into_iter().collect(),
            _ => vec![("fields".to_owned(), Json::String(text.to_owned()))],
        };
        // jsonb's own order: shorter keys first, then bytewise.
        entries.sort_by(|(a, _), (b, _)| jsonb_key_order(a, b));
        let texts = entries
            .iter()
            .filter(|(_, v)| scalar(v).is_none())
            .map(|(_, v)| v.to_string())
            .collect();
        ParsedFields { entries, texts }
    }

    /// The entries as [`Field`]s.
    fn fields(&self) -> Vec<Field<'_>> {
        let mut texts = self.texts.iter();
        self.entries
            .iter()
            .map(|(name, v)| {
                let value = scalar(v).unwrap_or_else(|| {
                    let text = texts.next().map_or("", String::as_str);
                    match v {
                        Json::Array(_) | Json::Object(_) => Value::Json(text),
                        _ => Value::Str(text),
                    }
                });
                Field { name, value }
            })
            .collect()
    }
}

/// A JSON scalar as a [`Value`]; `None` for `null`, objects and arrays.
fn scalar(v: &Json) -> Option<Value<'_>> {
    match v {
        Json::Bool(b) => Some(Value::Bool(*b)),
        Json::String(s) => Some(Value::Str(s)),
        Json::Number(n) => Some(if let Some(u) = n.as_u64() {
            Value::U64(u)
        } else if let Some(i) = n.as_i64() {
            Value::I64(i)
        } else {
            Value::F64(n.as_f64().unwrap_or(f64::NAN))
        }),
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, String)> {
        let parsed = ParsedFields::parse(text);
        parsed
            .fields()
            .iter()
            .map(|f| (f.name.to_owned(), format!("{:?}", f.value)))
            .collect()
    }

    #[test]
    fn fields_map_back_to_values_in_jsonb_order() {
        let got = values(
            r#"{"b": "x", "aa": -3, "a": 18446744073709551615, "ok": true, "f": 1.5,
                "nan": "NaN", "big": 340282366920938463463374607431768211455,
                "obj": {"z": [1, null]}, "nul": null, "one": 3.0}"#,
        );
        let want: Vec<(String, String)> = [
            ("a", "U64(18446744073709551615)"),
            ("b", "Str(\"x\")"),
            ("f", "F64(1.5)"),
            ("aa", "I64(-3)"),
            ("ok", "Bool(true)"),
            ("big", "F64(3.402823669209385e38)"),
            ("nan", "Str(\"NaN\")"),
            ("nul", "Str(\"null\")"),
            // An object or an array comes back as its JSON text, typed as
            // JSON (so the OTLP renderer writes a kvlistValue back).
            ("obj", "Json(\"{\\\"z\\\":[1,null]}\")"),
            ("one", "F64(3.0)"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn text_that_is_not_an_object_is_one_field() {
        assert_eq!(values("[1]"), [("fields".into(), "Str(\"[1]\")".into())]);
        assert!(values("{}").is_empty());
    }

    #[test]
    fn only_the_given_filters_are_in_the_statement() {
        let all = ExportFilter::default();
        assert!(all.sql().ends_with("FROM ringtrail.logs ORDER BY ts, id"));
        assert!(all.conditions(1).1.is_empty());
        let window = ExportFilter {
            since: Some(SystemTime::UNIX_EPOCH),
            until: Some(SystemTime::now()),
            trace_id: Some("t".into()),
            min_level: Some(13),
            ..ExportFilter::default()
        };
        assert!(window.sql().ends_with(
            "WHERE ts >= $1 AND ts < $2 AND trace_id = $3 AND level >= $4 ORDER BY ts, id"
        ));
        assert_eq!(window.conditions(1).1.len(), 4);
        assert!(COLUMNS.contains("trace_id, user_id, session_id, task_id, context_id, client_id"));
        let names: Vec<&str> = COLUMNS.split(", ").map(str::trim).collect();
        assert_eq!(
            names[col::CONTEXT..col::CONTEXT + CONTEXT_LEN],
            crate::row::CONTEXT_KEYS
        );
    }
}
