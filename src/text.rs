//! Text forms shared by the writer, the sinks and the renderers: cutting
//! text at a character boundary and hyphenated UUIDs. Pure functions, no
//! state. (Instants as text are [`time`](crate::time)'s.)
//!
//! ```text
//! uuid_text(&id)  →  0190f5a2-7c1e-7a3b-8d4e-5f6a7b8c9d0e
//! ```

/// The largest `n <= max` that is a character boundary of `s`: where a
/// text may be cut.
#[inline]
pub(crate) fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut n = max;
    // A UTF-8 character is at most 4 bytes, so this loops at most 3 times.
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// Formats 16 bytes as a hyphenated lower-case UUID.
pub(crate) fn uuid_text(id: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*id).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_is_hyphenated() {
        let mut id = [0u8; 16];
        id[0] = 0xab;
        id[15] = 0x01;
        assert_eq!(uuid_text(&id), "ab000000-0000-0000-0000-000000000001");
    }
}
