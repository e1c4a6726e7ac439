//! Characters that never reach a reader raw, and JSON text that keeps
//! them escaped.
//!
//! A log line is shown on terminals (`tail -f file.ndjson`, `ringtrail
//! query --json`) whose stored text an attacker may have chosen: an ESC
//! or an 8-bit CSI (U+009B) drives the terminal (OSC 52 writes the
//! clipboard, cursor movement erases lines), and a bidi override (U+202E)
//! reorders what is shown ("Trojan Source"). [`is_unsafe`] names them;
//! [`escape_unsafe_json`] rewrites any that a JSON text holds raw as
//! `\uXXXX` escapes, which every JSON reader decodes to the same string.
//! [`Renderer::render`](super::Renderer::render) runs it on each line it
//! writes. The `ringtrail` CLI's human output escapes the same set.

/// Whether `c` is never shown raw: a C0 control (U+0000–U+001F), DEL, a
/// C1 control (U+0080–U+009F), a Unicode format character (category
/// `Cf`: the bidi embeddings, overrides, isolates and marks, zero-width
/// spaces and joiners, the BOM, soft hyphen, invisible operators, tags,
/// …), or the line and paragraph separators (U+2028, U+2029).
///
/// ```
/// use ringtrail::render::is_unsafe;
/// assert!(is_unsafe('\x1b') && is_unsafe('\u{9b}') && is_unsafe('\u{7f}'));
/// assert!(is_unsafe('\u{202e}') && is_unsafe('\u{200b}') && is_unsafe('\u{feff}'));
/// assert!(!is_unsafe('a') && !is_unsafe('é') && !is_unsafe('日') && !is_unsafe('🦀'));
/// ```
pub fn is_unsafe(c: char) -> bool {
    let c = c as u32;
    if c < 0xa0 {
        return !(0x20..0x7f).contains(&c);
    }
    // Unicode 16's `Cf` characters, then U+2028 and U+2029 (`Zl`, `Zp`).
    matches!(
        c,
        0xad | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x890..=0x891
            | 0x8e2
            | 0x180e
            | 0x200b..=0x200f
            | 0x2028..=0x202e
            | 0x2060..=0x2064
            | 0x2066..=0x206f
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
    )
}

/// Whether `c` must be escaped inside JSON text: [`is_unsafe`], except
/// the whitespace JSON allows between tokens (tab, newline, carriage
/// return), which no JSON writer puts raw inside a string.
fn escapes_in_json(c: char) -> bool {
    is_unsafe(c) && !matches!(c, '\t' | '\n' | '\r')
}

/// Rewrites every [unsafe](is_unsafe) character of the JSON text in
/// `buf[from..]` as a `\uXXXX` escape (a surrogate pair above U+FFFF),
/// leaving tab, newline and carriage return (JSON whitespace) as they
/// are. Such characters can only be inside strings in valid JSON, where
/// the escape means the same character: the value read back is
/// unchanged, and the text is safe to show. Nothing is allocated unless
/// something is escaped and `buf` lacks the room. `buf[from..]` should be
/// UTF-8; if it is not, it is left as it is.
///
/// ```
/// let mut buf = br#"{"a":"x"}"#.to_vec();
/// buf.extend_from_slice("{\"m\":\"\u{9b}2J\u{202e}\"}".as_bytes());
/// ringtrail::render::escape_unsafe_json(&mut buf, 9);
/// assert_eq!(buf, br#"{"a":"x"}{"m":"\u009b2J\u202e"}"#);
/// ```
pub fn escape_unsafe_json(buf: &mut Vec<u8>, from: usize) {
    let Some(text) = buf.get(from..) else {
        return;
    };
    // The common case, one pass: printable ASCII and JSON whitespace.
    if text
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return;
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let extra: usize = text
        .chars()
        .filter(|&c| escapes_in_json(c))
        .map(|c| escape_len(c) - c.len_utf8())
        .sum();
    if extra == 0 {
        return;
    }
    // Back to front: each byte moves right by the escapes before it, so
    // writing at `w >= r` never overwrites a byte not yet read.
    let old_len = buf.len();
    buf.resize(old_len + extra, 0);
    let (mut r, mut w, mut kept_to) = (old_len, old_len + extra, old_len);
    while r > from {
        let mut start = r - 1;
        while start > from && buf[start] & 0xc0 == 0x80 {
            start -= 1;
        }
        let c = std::str::from_utf8(&buf[start..r])
            .ok()
            .and_then(|s| s.chars().next());
        if let Some(c) = c.filter(|&c| escapes_in_json(c)) {
            let kept = kept_to - r;
            buf.copy_within(r..kept_to, w - kept);
            w -= kept;
            let mut escape = [0u8; 12];
            let n = write_escape(c, &mut escape);
            w -= n;
            buf[w..w + n].copy_from_slice(&escape[..n]);
            kept_to = start;
        }
        r = start;
    }
    buf.copy_within(from..kept_to, w - (kept_to - from));
    debug_assert_eq!(w - (kept_to - from), from);
}

/// The length of `c`'s `\uXXXX` escape: 6, or 12 for a surrogate pair.
fn escape_len(c: char) -> usize {
    if c.len_utf16() == 1 {
        6
    } else {
        12
    }
}

/// Writes `c`'s `\uXXXX` escape (lower-case hex, as `serde_json` writes
/// the C0 ones) into `out`; returns its length.
fn write_escape(c: char, out: &mut [u8; 12]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut units = [0u16; 2];
    let units = c.encode_utf16(&mut units);
    for (i, unit) in units.iter().enumerate() {
        let e = &mut out[i * 6..i * 6 + 6];
        e[0] = b'\\';
        e[1] = b'u';
        for (k, shift) in [12, 8, 4, 0].into_iter().enumerate() {
            e[2 + k] = HEX[usize::from((unit >> shift) & 0xf)];
        }
    }
    units.len() * 6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(from: &str, text: &str) -> String {
        let mut buf = format!("{from}{text}").into_bytes();
        escape_unsafe_json(&mut buf, from.len());
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn only_the_unsafe_characters_change() {
        assert_eq!(escaped("", r#"{"a":"plain"}"#), r#"{"a":"plain"}"#);
        assert_eq!(escaped("", "{\"a\":\"é日🦀\"}\n"), "{\"a\":\"é日🦀\"}\n");
        assert_eq!(
            escaped(
                "",
                "\"\u{7f}\u{80}\u{9f}\u{202e}\u{2066}\u{200d}\u{feff}\u{2028}\""
            ),
            r#""\u007f\u0080\u009f\u202e\u2066\u200d\ufeff\u2028""#
        );
        // A tag character (U+E0041), as a surrogate pair.
        assert_eq!(escaped("", "\"\u{e0041}\""), r#""\udb40\udc41""#);
        // Raw C0 (invalid JSON, but never left raw), not JSON whitespace.
        assert_eq!(escaped("", "\"\x1b\"\t\r\n"), "\"\\u001b\"\t\r\n");
        // What is before `from` is left alone.
        assert_eq!(escaped("\u{85}", "\"\u{85}x\""), "\u{85}\"\\u0085x\"");
        // A backslash before is its own escape.
        assert_eq!(escaped("", "\"\\\\\u{9b}\""), r#""\\\u009b""#);
    }

    #[test]
    fn what_is_read_back_is_unchanged() {
        let nasty: String = (0u32..0x300)
            .chain(0x2000..0x2070)
            .chain([0xfeff, 0xe0001, 0xe0041, 0x1f980, 0x10ffff])
            .filter_map(char::from_u32)
            .collect();
        let json = serde_json::to_string(&serde_json::json!({ nasty.as_str(): [nasty.as_str()] }))
            .unwrap();
        let mut buf = json.into_bytes();
        escape_unsafe_json(&mut buf, 0);
        let text = std::str::from_utf8(&buf).unwrap();
        assert!(!text.chars().any(is_unsafe), "{text}");
        let back: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back[nasty.as_str()][0], nasty.as_str());
    }

    #[test]
    fn the_set() {
        for c in [
            '\0', '\t', '\n', '\x1b', '\x7f', '\u{80}', '\u{9b}', '\u{9f}',
        ] {
            assert!(is_unsafe(c), "{c:?}");
        }
        for c in [
            '\u{ad}', '\u{61c}', '\u{200b}', '\u{200e}', '\u{202a}', '\u{2069}',
        ] {
            assert!(is_unsafe(c), "{c:?}");
        }
        for c in [
            ' ', '~', '\u{a0}', '\u{a1}', '\u{2030}', '\u{2070}', '\u{fffd}',
        ] {
            assert!(!is_unsafe(c), "{c:?}");
        }
    }
}
