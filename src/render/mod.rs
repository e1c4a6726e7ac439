//! Renderers: one [`Row`] in, one line of JSON out, in the schema a SIEM
//! or a collector reads.
//!
//! | [`Format`] | what | for |
//! |---|---|---|
//! | [`Format::Ecs`] | Elastic Common Schema 9.x, ecs-logging layout ([`ECS_VERSION`]) | Elasticsearch, Filebeat, Elastic Agent |
//! | [`Format::Ocsf`] | an OCSF 1.x event ([`OCSF_VERSION`]) of a class chosen per audit point | Security Lake, Splunk, Sentinel, Chronicle |
//! | [`Format::Otlp`] | one OTLP/JSON `ExportLogsServiceRequest` | the OpenTelemetry Collector's `otlpjsonfile` receiver |
//! | [`Format::Native`] | ringtrail's own flat JSON: the `ringtrail.logs` columns | `jq` |
//!
//! Each format's module docs give its mapping field by field: `ecs`
//! (`labels` for what ECS does not define), `ocsf` (the class mapping
//! table, `unmapped` for the rest), `otlp` and `native`. In short, OCSF
//! classes:
//!
//! | row | OCSF class | `activity_id` |
//! |---|---|---|
//! | identity point | Authentication (3002) | 1 Logon |
//! | agent, permission, tool, result points | API Activity (6003) | 99 Other (`activity_name` the point) |
//! | other row at ERROR or above | Application Error (6008) | 1 General Error |
//! | any other row | Base Event (0) | 99 Other (`activity_name` `log`) |
//!
//! # Contract
//!
//! - **Pure and infallible.** No I/O, no error, no panic, for any row: NUL
//!   becomes U+FFFD, control characters are escaped, NaN and the
//!   infinities are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`
//!   (through [`encode::json`](crate::encode::json)), `u128`/`i128` are
//!   written in full where the schema allows a number and as text where
//!   its type is narrower.
//! - **One line each.** [`Renderer::render`] *appends* one JSON object and
//!   a `\n` to the buffer, and nothing else: raw newlines never appear
//!   inside (JSON escapes them), so the buffer always holds whole lines
//!   and many rows can go into one buffer before one write.
//! - **Valid UTF-8**, as the row's texts are.
//! - **Safe to show on a terminal.** No character that drives a terminal
//!   or reorders text is written raw: C0 and C1 controls, DEL, Unicode
//!   format characters (the bidi overrides and isolates, zero-width
//!   characters, the BOM, …) and U+2028/U+2029 come out as `\u0080`-style
//!   escapes ([`is_unsafe`], [`escape_unsafe_json`]), so `tail -f` of a
//!   JSON-lines file cannot be attacked by what was logged. JSON readers
//!   read the same strings back.
//! - **Reused buffers.** A [`Renderer`] keeps its scratch space (which
//!   fields were placed, the keys of an object) from row to row; the
//!   output buffer is the caller's. (The timestamp and row id texts still
//!   cost a small allocation each.)
//! - **Unique keys.** A row may repeat a field name; each object is
//!   written with unique keys (Elasticsearch rejects repeats, OTLP forbids
//!   them), the first value kept. [`Format::Native`]'s `fields` object is
//!   the exception: it is the `jsonb` column's text, repeats and all.
//!
//! ```
//! use ringtrail::render::{Format, Renderer};
//! use ringtrail::{Field, Row, Value};
//!
//! let fields = [Field { name: "attempt", value: Value::U64(3) }];
//! let row = Row { message: "retrying", target: "app::net", fields: &fields, ..Row::default() };
//!
//! let mut renderer = Renderer::new(Format::Ecs).with_service_name("checkout");
//! let mut out = Vec::new();
//! renderer.render(&row, &mut out);
//! let line = std::str::from_utf8(&out).unwrap();
//! assert!(line.starts_with(
//!     r#"{"@timestamp":"1970-01-01T00:00:00.000000Z","log.level":"info","message":"retrying","ecs.version":"#
//! ));
//! assert!(line.ends_with("\"labels\":{\"attempt\":\"3\"}}\n"));
//!
//! // The same row in every format, appended to one buffer: four lines.
//! out.clear();
//! for format in Format::ALL {
//!     Renderer::new(format).render(&row, &mut out);
//! }
//! let text = String::from_utf8(out).unwrap();
//! assert_eq!(text.lines().count(), 4);
//! for line in text.lines() {
//!     let _: serde_json::Value = serde_json::from_str(line).unwrap();
//! }
//! ```

mod audit;
mod ecs;
mod keys;
mod line;
mod native;
mod ocsf;
mod otlp;
mod pick;
mod safe;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use crate::row::Row;

pub use ecs::ECS_VERSION;
pub use ocsf::OCSF_VERSION;
pub use safe::{escape_unsafe_json, is_unsafe};

/// The service name written where a schema needs one and none was given
/// ([`Renderer::with_service_name`]): OpenTelemetry's default.
pub const DEFAULT_SERVICE_NAME: &str = "unknown_service";

/// An output schema for [`Row`]s. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Elastic Common Schema 9.x under the ecs-logging rules.
    Ecs,
    /// An Open Cybersecurity Schema Framework 1.x event.
    Ocsf,
    /// An OpenTelemetry OTLP/JSON `ExportLogsServiceRequest`.
    Otlp,
    /// ringtrail's own flat JSON of the table's columns.
    Native,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 4] = [Format::Ecs, Format::Ocsf, Format::Otlp, Format::Native];

    /// The format's name: `ecs`, `ocsf`, `otlp` or `native`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Ecs => "ecs",
            Format::Ocsf => "ocsf",
            Format::Otlp => "otlp",
            Format::Native => "native",
        }
    }

    /// The format named `name` (exact, lower case), if any.
    ///
    /// ```
    /// use ringtrail::Format;
    /// assert_eq!(Format::from_name("ocsf"), Some(Format::Ocsf));
    /// assert_eq!("otlp".parse::<Format>(), Ok(Format::Otlp));
    /// assert!("json".parse::<Format>().is_err());
    /// ```
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Format`] from a name it does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown format {:?} (expected ecs, ocsf, otlp or native)",
            self.0
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::from_name(s).ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// The service the rows come from, as the renderer was told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Service {
    name: String,
    version: String,
}

impl Service {
    /// The configured name, if any.
    fn name(&self) -> Option<&str> {
        (!self.name.is_empty()).then_some(self.name.as_str())
    }

    /// The configured name, else [`DEFAULT_SERVICE_NAME`].
    fn name_or_default(&self) -> &str {
        self.name().unwrap_or(DEFAULT_SERVICE_NAME)
    }

    /// The configured version, if any.
    fn version(&self) -> Option<&str> {
        (!self.version.is_empty()).then_some(self.version.as_str())
    }
}

/// Space a renderer reuses from row to row.
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// Which of the row's fields were placed.
    used: Vec<bool>,
    /// The keys of the object being written.
    keys: keys::KeySet,
    /// A label key being sanitized.
    text: String,
}

/// Renders rows in one [`Format`], reusing its scratch space row after
/// row. Cheap to make; one per thread (rendering needs `&mut self`).
///
/// ```
/// use ringtrail::render::{Format, Renderer};
/// use ringtrail::Row;
///
/// let mut r = Renderer::new(Format::Otlp).with_service_name("checkout");
/// assert_eq!(r.format(), Format::Otlp);
/// let mut out = Vec::new();
/// r.render(&Row { message: "hi", ..Row::default() }, &mut out);
/// r.render(&Row { message: "again", ..Row::default() }, &mut out);
/// let text = std::str::from_utf8(&out).unwrap();
/// assert_eq!(text.lines().count(), 2);
/// assert!(text.contains(r#"{"key":"service.name","value":{"stringValue":"checkout"}}"#));
/// ```
#[derive(Debug, Clone)]
pub struct Renderer {
    format: Format,
    service: Service,
    scratch: Scratch,
}

impl Renderer {
    /// A renderer for `format`, with no service name (see
    /// [`with_service_name`](Renderer::with_service_name)).
    pub fn new(format: Format) -> Renderer {
        Renderer {
            format,
            service: Service::default(),
            scratch: Scratch::default(),
        }
    }

    /// Names the service the rows come from: ECS `service.name` and
    /// `event.dataset` (left out without one), the OTLP resource's
    /// `service.name` and, in OCSF, the service an identity point
    /// authenticates to and the actor or source endpoint when the row has
    /// no better one (both [`DEFAULT_SERVICE_NAME`] without one). An empty
    /// name is no name.
    pub fn with_service_name(mut self, name: impl Into<String>) -> Renderer {
        self.service.name = name.into();
        self
    }

    /// The service's version: ECS `service.version`, the OTLP resource's
    /// `service.version`. Left out when empty or not given.
    pub fn with_service_version(mut self, version: impl Into<String>) -> Renderer {
        self.service.version = version.into();
        self
    }

    /// The format this renderer writes.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Appends `row` to `out` as one JSON object and a `\n`. Never fails,
    /// never panics; what was in `out` before stays.
    pub fn render(&mut self, row: &Row<'_>, out: &mut Vec<u8>) {
        let s = &mut self.scratch;
        let start = out.len();
        match self.format {
            Format::Ecs => ecs::render(s, &self.service, row, out),
            Format::Ocsf => ocsf::render(s, &self.service, row, out),
            Format::Otlp => otlp::render(s, &self.service, row, out),
            Format::Native => native::render(row, out),
        }
        escape_unsafe_json(out, start);
    }
}

/// Appends `row` to `out` in `format`, as [`Renderer::render`] does, with
/// a renderer made for this one row (no service name). For many rows,
/// keep a [`Renderer`].
///
/// ```
/// let mut out = Vec::new();
/// ringtrail::render::render(ringtrail::Format::Native, &ringtrail::Row::default(), &mut out);
/// assert!(out.starts_with(br#"{"ts":"1970-01-01T00:00:00.000000Z","#));
/// assert!(out.ends_with(b"}\n"));
/// ```
pub fn render(format: Format, row: &Row<'_>, out: &mut Vec<u8>) {
    Renderer::new(format).render(row, out);
}
