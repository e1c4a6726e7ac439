//! The secrets found in one text, and writing the text with them
//! replaced.
//!
//! Every rule reports the byte ranges it wants replaced (a [`Span`]) into
//! one [`SpanBuf`]; the spans are then sorted, overlapping ones merged
//! (`password=ghp_…` is found both after its key and by its shape, and is
//! replaced once), and the text is written out with each merged span
//! replaced. The number of merged spans is the count the row records.
//!
//! A merged span is labelled by its first span in (start, rule order):
//! value patterns come before the free-text key rule, so
//! `token=ghp_…` becomes `token=[REDACTED:github-token]`.
//!
//! The buffer keeps 16 spans inline and only moves to the heap beyond
//! that, so redacting a text allocates nothing but what `out` needs.

use super::replace::Replacer;

/// The rule index of a span found by its key (the free-text rule); it
/// sorts after every value pattern.
pub(crate) const BY_KEY: u16 = u16::MAX;

/// One range of a text to replace, found by one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    /// First byte (a char boundary).
    pub(crate) start: usize,
    /// One past the last byte (a char boundary).
    pub(crate) end: usize,
    /// Index of the value pattern, or [`BY_KEY`].
    pub(crate) rule: u16,
}

const INLINE: usize = 16;

/// Spans of one text: inline up to 16, then on the heap.
#[derive(Debug)]
pub(crate) struct SpanBuf {
    inline: [Span; INLINE],
    len: usize,
    heap: Vec<Span>,
}

impl SpanBuf {
    /// An empty buffer (no allocation).
    pub(crate) fn new() -> SpanBuf {
        SpanBuf {
            inline: [Span::default(); INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }

    /// Adds `[start, end)` found by `rule`; an empty range is ignored.
    pub(crate) fn push(&mut self, start: usize, end: usize, rule: u16) {
        if start >= end {
            return;
        }
        let span = Span { start, end, rule };
        if !self.heap.is_empty() {
            self.heap.push(span);
        } else if self.len < INLINE {
            self.inline[self.len] = span;
            self.len += 1;
        } else {
            self.heap.reserve(INLINE * 2);
            self.heap.extend_from_slice(&self.inline);
            self.heap.push(span);
        }
    }

    /// Whether no span was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn as_mut_slice(&mut self) -> &mut [Span] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        }
    }

    /// Appends `text` to `out` with every merged span replaced; returns how
    /// many merged spans there were. `label` names a rule (`None` for
    /// [`BY_KEY`]).
    ///
    /// Fails closed: should a span not sit on char boundaries (a bug in a
    /// rule), the whole text is replaced as one secret.
    pub(crate) fn write<'r>(
        &mut self,
        text: &str,
        label: impl Fn(u16) -> Option<&'r str>,
        replacer: &Replacer,
        out: &mut String,
    ) -> u32 {
        let spans = self.as_mut_slice();
        if spans.is_empty() {
            return 0;
        }
        spans.sort_unstable_by_key(|s| (s.start, s.rule));
        let sound = spans.iter().all(|s| {
            s.end <= text.len() && text.is_char_boundary(s.start) && text.is_char_boundary(s.end)
        });
        if !sound {
            replacer.write(None, text, out);
            return 1;
        }
        out.reserve(text.len());
        let mut count = 0u32;
        let mut written = 0;
        let mut i = 0;
        while i < spans.len() {
            let first = spans[i];
            let mut end = first.end;
            i += 1;
            while i < spans.len() && spans[i].start < end {
                end = end.max(spans[i].end);
                i += 1;
            }
            out.push_str(&text[written..first.start]);
            replacer.write(label(first.rule), &text[first.start..end], out);
            written = end;
            count = count.saturating_add(1);
        }
        out.push_str(&text[written..]);
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(rule: u16) -> Option<&'static str> {
        (rule != BY_KEY).then(|| ["a", "b"][usize::from(rule)])
    }

    #[test]
    fn overlapping_spans_merge_and_count_once() {
        let text = "0123456789";
        let mut spans = SpanBuf::new();
        spans.push(6, 8, BY_KEY);
        spans.push(2, 4, 1);
        spans.push(3, 5, 0);
        spans.push(9, 9, 0); // empty: ignored
        let mut out = String::new();
        assert_eq!(spans.write(text, label, &Replacer::Mask, &mut out), 2);
        assert_eq!(out, "01[REDACTED:b]5[REDACTED]89");
    }

    #[test]
    fn ties_prefer_value_patterns() {
        let mut spans = SpanBuf::new();
        spans.push(0, 3, BY_KEY);
        spans.push(0, 3, 0);
        let mut out = String::new();
        spans.write("abc", label, &Replacer::Mask, &mut out);
        assert_eq!(out, "[REDACTED:a]");
    }

    #[test]
    fn many_spans_spill_to_the_heap() {
        let text = "x ".repeat(40);
        let mut spans = SpanBuf::new();
        for i in 0..40 {
            spans.push(2 * i, 2 * i + 1, BY_KEY);
        }
        let mut out = String::new();
        assert_eq!(spans.write(&text, label, &Replacer::Mask, &mut out), 40);
        assert_eq!(out, "[REDACTED] ".repeat(40));
    }

    #[test]
    fn a_span_off_a_char_boundary_replaces_everything() {
        let mut spans = SpanBuf::new();
        spans.push(1, 2, BY_KEY); // inside 'é'
        let mut out = String::new();
        assert_eq!(spans.write("éa", label, &Replacer::Mask, &mut out), 1);
        assert_eq!(out, "[REDACTED]");
    }
}
