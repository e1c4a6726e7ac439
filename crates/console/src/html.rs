//! The console's one output-escaping layer: every page is built with
//! [`Html`], whose [`text`](Html::text) escapes whatever it is given, so
//! logged text (attacker-controlled: an LLM picks tool names, prompts and
//! arguments) reaches the page only as text. Markup comes only from
//! `&'static str` literals in this crate ([`Html::raw`]).
//!
//! ```
//! use ringtrail_console::html::Html;
//! let mut h = Html::new();
//! h.raw("<td title=\"").text("\" onmouseover=\"x").raw("\">");
//! h.text("<script>alert(1)</script>").raw("</td>");
//! assert_eq!(
//!     h.finish(),
//!     "<td title=\"&quot; onmouseover=&quot;x\">&lt;script&gt;alert(1)&lt;/script&gt;</td>"
//! );
//! ```
//!
//! Links are built from this crate's own paths with [`Html::link`], whose
//! query values are percent-encoded: a `javascript:` value can only ever
//! be a parameter, never a URL.

use std::fmt::Write;

/// An HTML document or fragment being built.
#[derive(Default)]
pub struct Html(String);

impl Html {
    /// An empty fragment.
    pub fn new() -> Html {
        Html(String::with_capacity(16 << 10))
    }

    /// Appends markup written in this crate. A `&'static str` only: text
    /// from anywhere else goes through [`text`](Self::text).
    pub fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    /// Appends `text` escaped for an element's content or a quoted
    /// attribute value: `& < > " '` become entities, and control
    /// characters (ESC, C1, …) their `U+` form, so nothing logged can
    /// open a tag, close an attribute or reach a terminal raw when the
    /// page is saved and `cat`.
    pub fn text(&mut self, text: &str) -> &mut Html {
        escape_into(&mut self.0, text);
        self
    }

    /// Appends a number (nothing to escape).
    pub fn num(&mut self, n: impl std::fmt::Display) -> &mut Html {
        let _ = write!(self.0, "{n}");
        self
    }

    /// Appends an integer with thousands separators (`1,234,567`): exact,
    /// never `1.2M`.
    pub fn int(&mut self, n: i64) -> &mut Html {
        self.0.push_str(&thousands(n));
        self
    }

    /// Appends `path` (one of this crate's own, a literal) with `params`
    /// percent-encoded as its query, as an attribute value.
    pub fn link(&mut self, path: &'static str, params: &[(&str, &str)]) -> &mut Html {
        let url = url(path, "", params);
        self.text(&url)
    }

    /// Appends `path` followed by `segment` percent-encoded (a trace id in
    /// `/traces/{id}`), as an attribute value.
    pub fn link_to(&mut self, path: &'static str, segment: &str) -> &mut Html {
        let url = url(path, segment, &[]);
        self.text(&url)
    }

    /// Appends a fragment built by another [`Html`] (escaped already).
    pub fn append(&mut self, fragment: Html) -> &mut Html {
        self.0.push_str(&fragment.0);
        self
    }

    /// The markup built.
    pub fn finish(self) -> String {
        self.0
    }
}

/// `path`, then `segment` and `params` percent-encoded.
pub fn url(path: &str, segment: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::from(path);
    // A path segment: everything but the unreserved characters
    // percent-encoded (a space as %20, not the query's `+`).
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in params {
        if !v.is_empty() {
            query.append_pair(k, v);
            any = true;
        }
    }
    if any {
        out.push('?');
        out.push_str(&query.finish());
    }
    out
}

/// Escapes `text` into `out` (see [`Html::text`]).
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() || ringtrail::render::is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `n` with a comma every three digits, as `ringtrail usage` prints it
/// ([`ringtrail::read::usage::thousands`]).
pub fn thousands(n: i64) -> String {
    ringtrail::read::usage::thousands(i128::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_stays_text() {
        let mut h = Html::new();
        h.text("<img src=x onerror=alert(1)>'\"&\u{1b}[31m\u{9b}");
        assert_eq!(
            h.finish(),
            "&lt;img src=x onerror=alert(1)&gt;&#39;&quot;&amp;\\u{1b}[31m\\u{9b}"
        );
    }

    #[test]
    fn links_encode_their_values() {
        assert_eq!(
            url(
                "/logs",
                "",
                &[("grep", "javascript:alert(1)"), ("level", "")]
            ),
            "/logs?grep=javascript%3Aalert%281%29"
        );
        assert_eq!(
            url("/traces/", "a/../b c", &[]),
            "/traces/a%2F%2E%2E%2Fb%20c"
        );
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(31_800), "31,800");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
    }
}
