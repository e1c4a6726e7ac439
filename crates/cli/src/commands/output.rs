//! How the reading subcommands print: colors, the human row line, and
//! JSON. One place, so `query`, `tail`, `stats` and `trace` agree.
//!
//! **Colors** (`--color auto|always|never`, [`ColorArgs`]): clap's
//! `ColorChoice`, decided by `anstream` as clap decides its own: `auto`
//! (the default) colors only a terminal that supports it, honouring
//! `NO_COLOR` (<https://no-color.org>), `CLICOLOR` and `CLICOLOR_FORCE`;
//! `always` and `never` override them. Styles are `anstyle`'s.
//!
//! **Rows** ([`RowOutputArgs`], [`RowWriter`]): by default one human line
//! per row,
//!
//! ```text
//! 2026-12-01T10:00:00.000350Z  WARN   my_app::db  retrying  attempt=3 trace_id=4bf92f35 user_id=u-1
//! ```
//!
//! the time (RFC 3339, UTC, microseconds), the level, the target, the
//! message (control characters escaped, so one row is one line), then
//! the fields and the context columns as `key=value` (a string value
//! quoted as JSON when it has spaces, quotes or `=`). `--json` prints
//! ringtrail's native JSON, one object per row (the `export --format
//! native` line); `--format ecs|ocsf|otlp|native` prints a SIEM's schema
//! through the same [`Renderer`]s. Nothing else goes to stdout: status
//! lines go to stderr.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use clap::ColorChoice;

use ringtrail::render::{Format, Renderer};
use ringtrail::row::{Row, Value, CONTEXT_KEYS};
use ringtrail::time::rfc3339_micros;

/// `--color`, for every subcommand that prints human text.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ColorArgs {
    /// Color the human output: auto (on a terminal, unless NO_COLOR is
    /// set), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

impl ColorArgs {
    /// Whether to color stdout.
    pub fn enabled(self) -> bool {
        let choice = match self.color {
            ColorChoice::Auto => anstream::ColorChoice::Auto,
            ColorChoice::Always => anstream::ColorChoice::Always,
            ColorChoice::Never => anstream::ColorChoice::Never,
        };
        choice.write_global();
        anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
    }
}

/// How rows are printed: `--json`, `--format`, `--color`.
#[derive(clap::Args, Debug, Clone)]
pub struct RowOutputArgs {
    /// One JSON object per row (ringtrail's native JSON), data only.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// One JSON object per row in a SIEM's schema: ecs, ocsf, otlp or
    /// native.
    #[arg(long)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub color: ColorArgs,
}

impl RowOutputArgs {
    /// The [`RowWriter`] these flags ask for.
    pub fn writer(&self) -> RowWriter {
        let format = if self.json {
            Some(Format::Native)
        } else {
            self.format
        };
        match format {
            Some(format) => RowWriter::Json(Renderer::new(format)),
            None => RowWriter::Human {
                color: self.color.enabled(),
            },
        }
    }
}

/// Writes rows as [`RowOutputArgs`] chose.
pub enum RowWriter {
    /// One human line per row, maybe colored.
    Human {
        /// Whether to use ANSI colors.
        color: bool,
    },
    /// One JSON line per row.
    Json(Renderer),
}

impl RowWriter {
    /// Appends `row`'s line (with its newline) to `out`.
    pub fn write(&mut self, row: &Row<'_>, out: &mut Vec<u8>) {
        match self {
            RowWriter::Json(renderer) => renderer.render(row, out),
            RowWriter::Human { color } => {
                human_line(row, *color, out);
                out.push(b'\n');
            }
        }
    }
}

/// Dim, for the target and the field names.
pub const DIM: Style = Style::new().dimmed();
/// Bold, for labels.
pub const BOLD: Style = Style::new().bold();
/// Red, for findings.
pub const RED: Style = AnsiColor::Red.on_default();

/// The color of a level (by its name).
pub fn level_color(name: &str) -> Style {
    match name {
        "ERROR" | "FATAL" => AnsiColor::Red,
        "WARN" => AnsiColor::Yellow,
        "INFO" => AnsiColor::Green,
        "DEBUG" => AnsiColor::Blue,
        _ => AnsiColor::Magenta,
    }
    .on_default()
}

/// `text` in `style` when `color`, else as it is.
pub fn paint(text: &str, style: Style, color: bool) -> String {
    if color {
        format!("{style}{text}{style:#}")
    } else {
        text.to_owned()
    }
}

/// The human line of `row`, without the newline.
fn human_line(row: &Row<'_>, color: bool, out: &mut Vec<u8>) {
    let level = ringtrail::level::name(row.level);
    let mut line = format!(
        "{}  {}  {}  {}",
        rfc3339_micros(row.ts_unix_nanos.div_euclid(1_000)),
        paint(&format!("{level:<5}"), level_color(level), color),
        paint(row.target, DIM, color),
        escaped(row.message),
    );
    let mut pair = |key: &str, value: String| {
        line.push_str("  ");
        line.push_str(&paint(&format!("{key}="), DIM, color));
        line.push_str(&value);
    };
    for field in row.fields {
        pair(field.name, show(field.value));
    }
    for (key, value) in CONTEXT_KEYS.iter().zip(row.context) {
        if let Some(value) = value {
            pair(key, show(Value::Str(value)));
        }
    }
    out.extend_from_slice(line.trim_end().as_bytes());
}

/// A value for the terminal: a string bare unless empty or with spaces,
/// quotes, `=` or control characters (then JSON-quoted), numbers and
/// booleans as they are.
fn show(value: Value<'_>) -> String {
    match value {
        Value::Str(s)
            if !s.is_empty()
                && !s.contains(|c: char| {
                    c.is_whitespace() || c.is_control() || "\"'=".contains(c)
                }) =>
        {
            s.to_owned()
        }
        Value::Str(s) => serde_json::Value::from(s).to_string(),
        Value::Bool(b) => b.to_string(),
        Value::I64(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::I128(n) => n.to_string(),
        Value::U128(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        // A kind of value this build does not know yet: its debug form.
        other => format!("{other:?}"),
    }
}

/// `text` with control characters escaped: one row, one line.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `buf` to stdout and empties it; the error is the write's.
pub fn flush_to(out: &mut impl Write, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let written = out.write_all(buf).and_then(|()| out.flush());
    buf.clear();
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringtrail::row::Field;

    #[test]
    fn always_and_never_override_the_terminal() {
        // Tests run with stdout captured (not a terminal): auto is off.
        let enabled = |color| ColorArgs { color }.enabled();
        assert!(enabled(ColorChoice::Always));
        assert!(!enabled(ColorChoice::Never));
        assert_eq!(
            paint("ERROR", level_color("ERROR"), true),
            "\x1b[31mERROR\x1b[0m"
        );
        assert_eq!(paint("x", DIM, false), "x");
    }

    #[test]
    fn the_human_line() {
        let fields = [
            Field {
                name: "attempt",
                value: Value::U64(3),
            },
            Field {
                name: "why",
                value: Value::Str("disk full"),
            },
        ];
        let mut context = [None; ringtrail::row::CONTEXT_LEN];
        context[0] = Some("t-1");
        let row = Row {
            ts_unix_nanos: 1_764_466_647_123_456_789,
            id: [0; 16],
            level: ringtrail::row::LEVEL_WARN,
            target: "my_app::db",
            message: "retrying\nnow",
            fields: &fields,
            context,
            span_name: None,
            file: None,
            line: None,
            truncated: false,
            kind: None,
            redacted: 0,
            seq: 0,
        };
        let mut out = Vec::new();
        RowWriter::Human { color: false }.write(&row, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-11-30T01:37:27.123456Z  WARN   my_app::db  retrying\\nnow  attempt=3  why=\"disk full\"  trace_id=t-1\n"
        );
        let mut out = Vec::new();
        RowWriter::Human { color: true }.write(&row, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\x1b[33mWARN \x1b[0m"), "{text:?}");
    }
}
