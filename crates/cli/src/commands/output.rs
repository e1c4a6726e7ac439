//! Everything the reading subcommands print goes through here: human
//! lines, JSON, status lines on stderr and progress bars. One place, so
//! `query`, `tail`, `trace`, `audit-gaps`, `usage`, `stats`, `verify`, `export`,
//! `migrate`, `retention` and `demo` agree, and so stored text cannot
//! attack the reader.
//!
//! # Output cannot attack the reader
//!
//! Stored text (messages, targets, field names and values, trace ids, a
//! tool name an LLM chose, a key name in a checkpoint row) may hold an
//! ESC or an 8-bit CSI (U+009B) that drives the terminal (OSC 52 writes
//! the clipboard, cursor movement erases lines), or a bidi override that
//! reorders what is shown ("Trojan Source"). So:
//!
//! - **Human output** is written only by a [`Printer`] (stdout, or any
//!   writer) and [`eprint_line`] (stderr), and every text they are given
//!   is escaped on the way in: the characters
//!   [`ringtrail::render::is_unsafe`] names (C0 and C1 controls, DEL,
//!   Unicode format characters such as U+202A–U+202E, U+2066–U+2069,
//!   U+200B–U+200F and U+FEFF, and U+2028/U+2029) are written in Rust's
//!   notation: `\n`, `\r`, `\t`, and `\u{hex}` for the others (`\u{1b}`,
//!   `\u{9b}`, `\u{202e}`). A backslash in the text is left as it is. The
//!   only raw control characters on the way out are the newline ending
//!   each line and the SGR color sequences the printer emits itself
//!   ([`Line::styled`]); nothing in this program writes a tab.
//! - **JSON** ([`Printer::json`], [`Printer::json_with`]) stays valid
//!   JSON, and the same characters come out as `\u0080`-style escapes
//!   ([`ringtrail::render::escape_unsafe_json`]); the value read back is
//!   unchanged.
//! - **Progress bars** ([`Progress`]) escape their messages too.
//!
//! No command module touches stdout, stderr, `indicatif` or ANSI styles
//! itself: a test (`only_the_output_layer_writes`) fails if one does, and
//! in debug builds the printer checks each chunk it writes.
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
//! message, then the fields and the context columns as `key=value` (a
//! string value in double quotes, `"` and `\` backslashed, when it is
//! empty or has whitespace, quotes, `=` or a character escaped above).
//! `--json` prints ringtrail's native JSON, one object per row (the
//! `export --format native` line); `--format ecs|ocsf|otlp|native` prints
//! a SIEM's schema through the same [`Renderer`]s. Nothing else goes to
//! stdout: status lines go to stderr.

use std::borrow::Cow;
use std::fmt::{self, Display, Write as _};
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use clap::ColorChoice;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use ringtrail::render::{escape_unsafe_json, is_unsafe, Format, Renderer};
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
        anstream::AutoStream::choice(&io::stdout()) != anstream::ColorChoice::Never
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
            None => RowWriter::Human,
        }
    }

    /// The [`Printer`] on stdout these flags ask for: colored as
    /// `--color` says, for human lines only.
    pub fn printer(&self) -> Printer<io::StdoutLock<'static>> {
        let json = self.json || self.format.is_some();
        Printer::stdout(!json && self.color.enabled())
    }
}

/// Writes rows as [`RowOutputArgs`] chose, through a [`Printer`].
pub enum RowWriter {
    /// One human line per row, colored when the printer is.
    Human,
    /// One JSON line per row.
    Json(Renderer),
}

impl RowWriter {
    /// Writes `row`'s line (with its newline) through `printer`.
    pub fn write<W: Write>(&mut self, row: &Row<'_>, printer: &mut Printer<W>) {
        match self {
            RowWriter::Json(renderer) => printer.json_with(|buf| renderer.render(row, buf)),
            RowWriter::Human => human_line(row, &mut printer.line()),
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

/// The human line of `row`.
fn human_line(row: &Row<'_>, line: &mut Line<'_>) {
    let level = ringtrail::level::name(row.level);
    line.put(rfc3339_micros(row.ts_unix_nanos.div_euclid(1_000)))
        .text("  ")
        .styled(format_args!("{level:<5}"), level_color(level))
        .text("  ")
        .styled(row.target, DIM)
        .text("  ")
        .text(row.message);
    let mut pair = |key: &str, value: &str| {
        line.text("  ")
            .styled(format_args!("{key}="), DIM)
            .text(value);
    };
    for field in row.fields {
        pair(field.name, &show(field.value));
    }
    for (key, value) in CONTEXT_KEYS.iter().zip(row.context) {
        if let Some(value) = value {
            pair(key, &show_str(value));
        }
    }
}

/// A value for people: a string as [`show_str`] shows it, numbers and
/// booleans as they are.
fn show(value: Value<'_>) -> Cow<'_, str> {
    match value {
        Value::Str(s) => show_str(s),
        Value::Json(s) => show_str(s),
        Value::Bool(b) => b.to_string().into(),
        Value::I64(n) => n.to_string().into(),
        Value::U64(n) => n.to_string().into(),
        Value::I128(n) => n.to_string().into(),
        Value::U128(n) => n.to_string().into(),
        Value::F64(n) => n.to_string().into(),
        // A kind of value this build does not know yet: its debug form.
        other => format!("{other:?}").into(),
    }
}

/// A string value for people: bare, unless it is empty or has
/// whitespace, quotes, `=` or a character the printer escapes; then in
/// double quotes with `"` and `\` backslashed (the printer escapes the
/// rest).
pub fn show_str(s: &str) -> Cow<'_, str> {
    let bare = !s.is_empty()
        && !s.contains(|c: char| c.is_whitespace() || is_unsafe(c) || "\"'=".contains(c));
    if bare {
        return s.into();
    }
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted.into()
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

/// Appends `text` to `buf` with every [unsafe](is_unsafe) character
/// escaped: `\n`, `\r`, `\t`, else `\u{hex}`.
fn push_escaped(buf: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        buf.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        match c {
            '\n' => buf.extend_from_slice(b"\\n"),
            '\r' => buf.extend_from_slice(b"\\r"),
            '\t' => buf.extend_from_slice(b"\\t"),
            c if is_unsafe(c) => {
                let _ = write!(buf, "\\u{{{:x}}}", u32::from(c));
            }
            c => buf.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

/// `text` as the printer shows it (see [`push_escaped`]).
pub fn escaped(text: impl Display) -> String {
    let mut line = Vec::new();
    Line {
        buf: &mut line,
        color: false,
        start: 0,
        open: false,
    }
    .put(text);
    String::from_utf8(line).unwrap_or_default()
}

/// How much a [`Printer`] gathers before it writes, unless told
/// otherwise ([`Printer::spill_at`]).
pub const SPILL_AT: usize = 64 * 1024;

/// The one writer of human lines and JSON: every text it is given is
/// escaped, and styles come from it only (see the [module
/// docs](self)). It gathers whole lines and writes them when more than
/// [`SPILL_AT`] bytes wait, on [`flush`](Printer::flush) and on
/// [`finish`](Printer::finish); the first write error stops all output
/// and comes back from the next `flush` or `finish`.
pub struct Printer<W: Write> {
    out: W,
    color: bool,
    buf: Vec<u8>,
    spill_at: Option<usize>,
    error: Option<io::Error>,
    failed: bool,
}

impl Printer<io::StdoutLock<'static>> {
    /// A printer owning stdout, colored when `color`.
    pub fn stdout(color: bool) -> Self {
        Printer::new(io::stdout().lock(), color)
    }
}

impl Printer<io::StderrLock<'static>> {
    /// A printer owning stderr, never colored (a report that goes there
    /// because stdout carries data).
    pub fn stderr() -> Self {
        Printer::new(io::stderr().lock(), false)
    }
}

impl Printer<Box<dyn Write>> {
    /// A printer owning stdout, boxed (beside printers to a file).
    pub fn stdout_boxed(color: bool) -> Self {
        Printer::new(Box::new(io::stdout().lock()), color)
    }

    /// A printer owning stderr, boxed and never colored (a report that
    /// goes there because stdout carries data).
    pub fn stderr_boxed() -> Self {
        Printer::new(Box::new(io::stderr().lock()), false)
    }
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`, colored when `color`.
    pub fn new(out: W, color: bool) -> Self {
        Printer {
            out,
            color,
            buf: Vec::with_capacity(1024),
            spill_at: Some(SPILL_AT),
            error: None,
            failed: false,
        }
    }

    /// Writes when more than `at` bytes wait (`None`: only on
    /// [`flush`](Printer::flush) and [`finish`](Printer::finish)).
    pub fn spill_at(mut self, at: Option<usize>) -> Self {
        self.spill_at = at;
        self
    }

    /// Starts a line: what is put into it is escaped; the line ends (its
    /// trailing whitespace cut, a newline added) when the [`Line`] is
    /// dropped or [ended](Line::end).
    pub fn line(&mut self) -> Line<'_> {
        self.spill();
        let start = self.buf.len();
        Line {
            buf: &mut self.buf,
            color: self.color,
            start,
            open: true,
        }
    }

    /// An empty line.
    pub fn blank(&mut self) {
        self.line().end();
    }

    /// One JSON text (a line of it, or a document) and a newline, the
    /// [unsafe](is_unsafe) characters in it escaped as `\u0080`.
    pub fn json(&mut self, json: &str) {
        self.json_with(|buf| buf.extend_from_slice(json.as_bytes()));
    }

    /// As [`json`](Printer::json), for JSON that `render` appends to the
    /// buffer (a [`Renderer`], say); a newline is added unless it ends
    /// with one.
    pub fn json_with(&mut self, render: impl FnOnce(&mut Vec<u8>)) {
        self.spill();
        let start = self.buf.len();
        render(&mut self.buf);
        escape_unsafe_json(&mut self.buf, start);
        if self.buf.len() == start || self.buf.last() != Some(&b'\n') {
            self.buf.push(b'\n');
        }
    }

    /// Bytes gathered and not written yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a write failed: nothing more is written.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Drops what was gathered and not written yet.
    pub fn discard(&mut self) {
        self.buf.clear();
    }

    /// Writes what was gathered and flushes the writer. The error is the
    /// first write error, once.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_out();
        if !self.failed {
            if let Err(e) = self.out.flush() {
                self.fail(e);
            }
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// [`flush`](Printer::flush), at the end of a command.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()
    }

    /// Writes what was gathered if more than the spill size waits.
    fn spill(&mut self) {
        if self.spill_at.is_some_and(|at| self.buf.len() >= at) {
            self.write_out();
        }
    }

    /// The only place bytes reach the writer.
    fn write_out(&mut self) {
        if !self.failed && !self.buf.is_empty() {
            debug_assert!(
                terminal_safe(&self.buf, self.color),
                "the printer let a control or format character through: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            if let Err(e) = self.out.write_all(&self.buf) {
                self.fail(e);
            }
        }
        self.buf.clear();
    }

    fn fail(&mut self, e: io::Error) {
        self.failed = true;
        self.error.get_or_insert(e);
    }
}

impl<W: Write> Drop for Printer<W> {
    /// Writes what is left, as a `BufWriter` would (a command that fails
    /// half way still shows what it printed); errors are ignored here.
    fn drop(&mut self) {
        self.write_out();
        if !self.failed {
            let _ = self.out.flush();
        }
    }
}

/// Whether `bytes` holds no [unsafe](is_unsafe) character but newlines
/// and, when `color`, the printer's own SGR sequences (`ESC [ 0-9; m`).
fn terminal_safe(bytes: &[u8], color: bool) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' && color {
            let rest = chars.as_str();
            let Some(end) = rest.find('m') else {
                return false;
            };
            let sgr = &rest[..end];
            if !sgr.starts_with('[') || !sgr[1..].bytes().all(|b| b.is_ascii_digit() || b == b';') {
                return false;
            }
            chars = rest[end + 1..].chars();
        } else if c != '\n' && is_unsafe(c) {
            return false;
        }
    }
    true
}

/// One line of a [`Printer`] being written. Text goes in escaped
/// ([`text`](Line::text), [`put`](Line::put), `write!`); a style only
/// through [`styled`](Line::styled).
pub struct Line<'p> {
    buf: &'p mut Vec<u8>,
    color: bool,
    start: usize,
    /// Whether the line gets its newline when dropped.
    open: bool,
}

impl Line<'_> {
    /// Appends `text`, escaped.
    pub fn text(&mut self, text: &str) -> &mut Self {
        push_escaped(self.buf, text);
        self
    }

    /// Appends `value`'s `Display` text, escaped.
    pub fn put(&mut self, value: impl Display) -> &mut Self {
        let _ = write!(self, "{value}");
        self
    }

    /// Appends `value`'s text, escaped, in `style` when the printer is
    /// colored: the only way a style gets into the output.
    pub fn styled(&mut self, value: impl Display, style: Style) -> &mut Self {
        if self.color {
            let _ = write!(self.buf, "{style}");
        }
        self.put(value);
        if self.color {
            let _ = write!(self.buf, "{style:#}");
        }
        self
    }

    /// Ends the line (as dropping it does).
    pub fn end(self) {}
}

impl fmt::Write for Line<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.buf, s);
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let line = &self.buf[self.start..];
        let kept = std::str::from_utf8(line).map_or(line.len(), |s| s.trim_end().len());
        self.buf.truncate(self.start + kept);
        self.buf.push(b'\n');
    }
}

/// Writes `text` as one line on stderr, escaped as a [`Printer`]
/// escapes it: errors, notes, status lines (`ringtrail: …`).
pub fn eprint_line(text: impl Display) {
    let mut err = Printer::stderr();
    err.line().put(text);
    let _ = err.finish();
}

/// Whether stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Whether stderr is a terminal.
pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

/// A progress bar or spinner on stderr (`indicatif`), its message and
/// prefix escaped as a [`Printer`] escapes text.
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar of `len` steps (a spinner without one) drawn on stderr with
    /// `template` (`indicatif`'s), ticking every `tick` if given.
    pub fn new(len: Option<u64>, template: &str, tick: Option<Duration>) -> Progress {
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        let fallback = || match len {
            Some(_) => ProgressStyle::default_bar(),
            None => ProgressStyle::default_spinner(),
        };
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| fallback()));
        if let Some(tick) = tick {
            bar.enable_steady_tick(tick);
        }
        Progress(bar)
    }

    /// Sets `{msg}`, escaped.
    pub fn set_message(&self, message: impl Display) {
        self.0.set_message(escaped(message));
    }

    /// Sets `{prefix}`, escaped.
    pub fn set_prefix(&self, prefix: impl Display) {
        self.0.set_prefix(escaped(prefix));
    }

    /// Sets the position.
    pub fn set_position(&self, position: u64) {
        self.0.set_position(position);
    }

    /// Sets the length.
    pub fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }

    /// Removes the bar from the terminal.
    pub fn finish_and_clear(&self) {
        self.0.finish_and_clear();
    }
}

/// `put_line!(printer, "format", args…)`: one line of `printer`, its text
/// escaped.
macro_rules! put_line {
    ($printer:expr, $($arg:tt)*) => {{
        $printer.line().put(format_args!($($arg)*));
    }};
}
pub(crate) use put_line;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ringtrail::row::Field;

    /// `row`'s human line through a printer.
    fn human(row: &Row<'_>, color: bool) -> String {
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, color);
        RowWriter::Human.write(row, &mut p);
        p.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn always_and_never_override_the_terminal() {
        // Tests run with stdout captured (not a terminal): auto is off.
        let enabled = |color| ColorArgs { color }.enabled();
        assert!(enabled(ColorChoice::Always));
        assert!(!enabled(ColorChoice::Never));
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, true);
        p.line().styled("ERROR", level_color("ERROR"));
        p.finish().unwrap();
        assert_eq!(out, b"\x1b[31mERROR\x1b[0m\n");
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, false);
        p.line().styled("x", DIM);
        p.finish().unwrap();
        assert_eq!(out, b"x\n");
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
        assert_eq!(
            human(&row, false),
            "2025-11-30T01:37:27.123456Z  WARN   my_app::db  retrying\\nnow  attempt=3  why=\"disk full\"  trace_id=t-1\n"
        );
        let text = human(&row, true);
        assert!(text.contains("\x1b[33mWARN \x1b[0m"), "{text:?}");
    }

    /// Code outside this module that would write around the printer:
    /// print macros, the standard streams, progress bars, raw styles and
    /// escapes.
    const AROUND_THE_PRINTER: &[&str] = &[
        "print!(",
        "println!(",
        "eprint!(",
        "eprintln!(",
        "dbg!(",
        "writeln!(",
        "write_all(",
        "stdout()",
        "stderr()",
        "io::stdout",
        "io::stderr",
        "indicatif",
        "anstream",
        "anstyle",
        "\\x1b",
        "\\u{1b}",
        "\\x07",
        "\\u{9b}",
    ];

    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The safety net for "no new command can forget it": only this
    /// module touches stdout, stderr, progress bars and styles; every
    /// other file prints through a [`Printer`], [`eprint_line`] or a
    /// [`Progress`]. Lines in comments and in test modules do not count.
    #[test]
    fn only_the_output_layer_writes() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(files.len() > 10, "{files:?}");
        let mut found = Vec::new();
        for file in files {
            if file.ends_with("commands/output.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for token in AROUND_THE_PRINTER {
                    if line.contains(token) {
                        found.push(format!("{}:{}: {token}: {line}", file.display(), n + 1));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "write through commands::output instead:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn the_printer_escapes_all_it_is_given() {
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, true);
        p.line()
            .text("a\tb\r\n")
            .styled(OSC52, RED)
            .put(format_args!(
                "{CSI8}{RLO}\u{7f}\u{85}\u{200b}\u{feff}\u{2028}\u{e0041}"
            ));
        write!(p.line(), "{OSC52}  ").unwrap();
        p.json(&serde_json::json!({ OSC52: [CSI8, RLO, "\u{7f}\u{2066}"] }).to_string());
        p.finish().unwrap();
        assert_terminal_safe(&out, true);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "a\\tb\\r\\n\x1b[31ma\\u{1b}]52;c;SGk=\\u{7}b\x1b[0m\
             x\\u{9b}2J\\u{202e}\\u{7f}\\u{85}\\u{200b}\\u{feff}\\u{2028}\\u{e0041}"
        );
        assert_eq!(lines[1], "a\\u{1b}]52;c;SGk=\\u{7}b");
        assert_eq!(
            lines[2],
            r#"{"a\u001b]52;c;SGk=\u0007b":["x\u009b2J","\u202e","\u007f\u2066"]}"#
        );
        let back: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(back[OSC52][0], CSI8);
        assert_eq!(escaped("x\u{9b}"), "x\\u{9b}");
        assert_eq!(show_str("a b\"\\"), "\"a b\\\"\\\\\"");
        assert_eq!(show_str("plain"), "plain");
        assert!(!terminal_safe(b"\x1b]0;x\x07", true));
        assert!(terminal_safe(b"\x1b[1;31mx\x1b[0m\n", true));
        assert!(!terminal_safe(b"\x1b[1mx\n", false));
    }

    #[test]
    fn a_failed_write_stops_the_output_and_is_reported_once() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut p = Printer::new(Closed, false).spill_at(Some(1));
        put_line!(p, "one");
        assert!(!p.failed());
        put_line!(p, "two");
        assert!(p.failed());
        assert_eq!(p.flush().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert!(p.flush().is_ok());
    }

    /// Text an attacker can store: an OSC 52 clipboard write ended by BEL.
    pub(crate) const OSC52: &str = "a\x1b]52;c;SGk=\x07b";
    /// An 8-bit CSI (U+009B) erasing the screen.
    pub(crate) const CSI8: &str = "x\u{9b}2J";
    /// A right-to-left override ("Trojan Source").
    pub(crate) const RLO: &str = "\u{202e}";

    /// Asserts `out` holds no raw control or format character: no ESC
    /// (unless `color`, and then only as an SGR color), no BEL, no C1 (C2
    /// 80 to C2 9F in UTF-8), no DEL, no U+202E; newlines end lines only.
    pub(crate) fn assert_terminal_safe(out: &[u8], color: bool) {
        let text = std::str::from_utf8(out).expect("UTF-8");
        let mut rest = text;
        while let Some(at) = rest.find('\x1b') {
            assert!(color, "ESC without colors: {text:?}");
            let sgr = &rest[at + 1..];
            let end = sgr.find('m').expect("an SGR ends in m");
            assert!(
                sgr.starts_with('[')
                    && sgr[1..end].bytes().all(|b| b.is_ascii_digit() || b == b';'),
                "only SGR escapes: {text:?}"
            );
            rest = &sgr[end + 1..];
        }
        for c in rest.chars().chain(text.chars().filter(|&c| c != '\x1b')) {
            let bad =
                (c < ' ' && c != '\n') || ('\u{7f}'..='\u{9f}').contains(&c) || c == '\u{202e}';
            assert!(!bad, "raw {c:?} in {text:?}");
        }
        assert!(!out
            .windows(2)
            .any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1])));
    }

    #[test]
    fn stored_text_cannot_attack_the_reader() {
        let fields = [
            Field {
                name: OSC52,
                value: Value::Str(CSI8),
            },
            Field {
                name: "dir",
                value: Value::Str(RLO),
            },
            Field {
                name: "plain",
                value: Value::Str(CSI8),
            },
        ];
        let mut context = [None; ringtrail::row::CONTEXT_LEN];
        context[0] = Some(OSC52);
        let row = Row {
            target: OSC52,
            message: CSI8,
            fields: &fields,
            context,
            ..Row::default()
        };
        for color in [false, true] {
            let text = human(&row, color);
            assert_terminal_safe(text.as_bytes(), color);
        }
        assert_eq!(
            human(&row, false),
            "1970-01-01T00:00:00.000000Z  INFO   a\\u{1b}]52;c;SGk=\\u{7}b  x\\u{9b}2J  \
             a\\u{1b}]52;c;SGk=\\u{7}b=\"x\\u{9b}2J\"  dir=\"\\u{202e}\"  \
             plain=\"x\\u{9b}2J\"  trace_id=\"a\\u{1b}]52;c;SGk=\\u{7}b\"\n"
        );
    }
}
