//! Span context: the six ids (`trace_id`, `user_id`, …) and the span name
//! that every event inherits from the spans around it.
//!
//! Context is resolved **once per span**, not per event:
//!
//! * `on_new_span` and `on_record` store the span's own id fields and build
//!   a [`SpanContext`]: the span's values merged over its parent's
//!   (innermost wins), already packed in the byte form that records carry.
//! * `on_enter` pushes that snapshot on a thread-local stack; `on_exit`
//!   pops it.
//! * `on_event` copies the packed bytes of the top of the stack into the
//!   record: one `memcpy` of typically under 150 bytes, no lock, no
//!   reference-count traffic.
//!
//! Copying beats sharing here. Holding an `Arc` in the record would make the
//! writer thread decrement a counter that every producer in the span also
//! increments, bouncing one cache line between cores on every event.
//!
//! A value recorded later with `span.record(..)` rebuilds that span's
//! snapshot, refreshes the entries of this thread's stack, and makes
//! descendants rebuild theirs when next entered (each snapshot remembers the
//! parent snapshot it was built on, and a pointer comparison detects a stale
//! one).
//!
//! ```
//! let span = tracing::info_span!("request", user_id = "u-42", trace_id = tracing::field::Empty);
//! span.record("trace_id", "4bf92f3577b34da6");
//! let _entered = span.enter();
//! // Rows of events emitted here get user_id = "u-42", trace_id = "4bf9…"
//! // and span_name = "request".
//! tracing::info!("handled");
//! ```

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::Id;
use tracing::Metadata;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::reader::unpack_context;
use super::record::pack_context;
use crate::row::{CONTEXT_KEYS, CONTEXT_LEN};

/// A span's resolved context, immutable once built and shared by every
/// event in the span.
pub(crate) struct SpanContext {
    /// The innermost span's metadata (its name goes in `span_name`).
    pub(crate) span: &'static Metadata<'static>,
    /// Values in the packed form `RecordWriter::put_context` copies.
    pub(crate) packed: Box<[u8]>,
    /// Whether a value was cut to fit the packed form.
    pub(crate) truncated: bool,
}

impl SpanContext {
    fn build(
        span: &'static Metadata<'static>,
        own: &OwnContext,
        parent: Option<&SpanContext>,
    ) -> SpanContext {
        let mut values = parent.map_or([None; CONTEXT_LEN], |p| unpack_context(&p.packed));
        for (value, own) in values.iter_mut().zip(&own.values) {
            if let Some(own) = own {
                *value = Some(own.as_str());
            }
        }
        let (packed, truncated) = pack_context(&values);
        SpanContext {
            span,
            packed: packed.into_boxed_slice(),
            truncated: truncated || parent.is_some_and(|p| p.truncated),
        }
    }
}

/// The context ids a span declares itself (not inherited).
#[derive(Default)]
pub(crate) struct OwnContext {
    values: [Option<String>; CONTEXT_LEN],
}

impl OwnContext {
    fn set(&mut self, field: &Field, value: impl fmt::Display) {
        if let Some(i) = CONTEXT_KEYS.iter().position(|k| *k == field.name()) {
            self.values[i] = Some(value.to_string());
        }
    }

    fn merge(&mut self, newer: OwnContext) {
        for (mine, newer) in self.values.iter_mut().zip(newer.values) {
            if newer.is_some() {
                *mine = newer;
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }
}

/// Ids may be recorded as strings, numbers or `Display`/`Debug` values
/// (a `Uuid` with `%`). All become text.
impl Visit for OwnContext {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.set(field, value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.set(field, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if CONTEXT_KEYS.contains(&field.name()) {
            self.set(field, format_args!("{value:?}"));
        }
    }
}

/// What the layer keeps in each span's extensions.
pub(crate) struct SpanState {
    own: OwnContext,
    resolved: Arc<SpanContext>,
    /// The parent snapshot `resolved` was built on; a different parent
    /// snapshot means ours is stale.
    built_on: Option<Arc<SpanContext>>,
}

fn same(a: &Option<Arc<SpanContext>>, b: &Option<Arc<SpanContext>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Creates the state of a new span from its attributes.
pub(crate) fn on_new_span<'a, R: LookupSpan<'a>>(
    span: &SpanRef<'a, R>,
    attrs: &tracing::span::Attributes<'_>,
) {
    let mut own = OwnContext::default();
    attrs.record(&mut own);
    let parent = span.parent().map(|p| resolve(&p));
    let resolved = Arc::new(SpanContext::build(span.metadata(), &own, parent.as_deref()));
    span.extensions_mut().insert(SpanState {
        own,
        resolved,
        built_on: parent,
    });
}

/// Applies values recorded later. Returns whether any context id changed.
pub(crate) fn on_record<'a, R: LookupSpan<'a>>(
    span: &SpanRef<'a, R>,
    values: &tracing::span::Record<'_>,
) -> bool {
    let mut newer = OwnContext::default();
    values.record(&mut newer);
    if newer.is_empty() {
        return false;
    }
    let parent = span.parent().map(|p| resolve(&p));
    let mut extensions = span.extensions_mut();
    let Some(state) = extensions.get_mut::<SpanState>() else {
        return false;
    };
    state.own.merge(newer);
    state.resolved = Arc::new(SpanContext::build(
        span.metadata(),
        &state.own,
        parent.as_deref(),
    ));
    state.built_on = parent;
    true
}

/// The span's current context snapshot, rebuilding it (and stale ancestors)
/// only when an ancestor recorded a new value since it was built.
pub(crate) fn resolve<'a, R: LookupSpan<'a>>(span: &SpanRef<'a, R>) -> Arc<SpanContext> {
    let parent = span.parent().map(|p| resolve(&p));
    if let Some(state) = span.extensions().get::<SpanState>() {
        if same(&state.built_on, &parent) {
            return state.resolved.clone();
        }
    }
    let mut extensions = span.extensions_mut();
    match extensions.get_mut::<SpanState>() {
        Some(state) => {
            state.resolved = Arc::new(SpanContext::build(
                span.metadata(),
                &state.own,
                parent.as_deref(),
            ));
            state.built_on = parent;
            state.resolved.clone()
        }
        // The span was created before this layer saw it: it only names itself.
        None => Arc::new(SpanContext::build(
            span.metadata(),
            &OwnContext::default(),
            parent.as_deref(),
        )),
    }
}

/// One entered span on this thread.
struct Entered {
    layer: usize,
    span: Id,
    context: Arc<SpanContext>,
}

/// The spans this thread is inside, innermost last, for every ringtrail
/// layer in the process (`layer` tells them apart). Spans may exit out of
/// order, so `pop` searches from the top.
struct EnteredStack {
    entries: Vec<Entered>,
}

impl EnteredStack {
    fn push(&mut self, entry: Entered) {
        self.entries.push(entry);
    }

    fn is(layer: usize, span: &Id) -> impl Fn(&Entered) -> bool + '_ {
        move |e| e.layer == layer && e.span == *span
    }

    fn pop(&mut self, layer: usize, span: &Id) {
        if let Some(at) = self.entries.iter().rposition(Self::is(layer, span)) {
            self.entries.remove(at);
        }
    }

    /// The entries of `layer` from the outermost entry of `span` inwards.
    fn inward_of(&mut self, layer: usize, span: &Id) -> impl Iterator<Item = &mut Entered> {
        let from = self
            .entries
            .iter()
            .position(Self::is(layer, span))
            .unwrap_or(self.entries.len());
        self.entries[from..]
            .iter_mut()
            .filter(move |e| e.layer == layer)
    }

    fn current(&self, layer: usize) -> Option<&SpanContext> {
        let top = self.entries.iter().rev().find(|e| e.layer == layer)?;
        Some(&top.context)
    }

    /// Runs `f` on this thread's stack. Does nothing during thread teardown
    /// or when re-entered (a `Debug` impl that logs), instead of panicking.
    fn with_mut(f: impl FnOnce(&mut EnteredStack)) {
        let _ = ENTERED.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                f(&mut stack);
            }
        });
    }
}

thread_local! {
    static ENTERED: RefCell<EnteredStack> = const {
        RefCell::new(EnteredStack { entries: Vec::new() })
    };
}

/// Records that this thread entered `span`.
pub(crate) fn push_entered(layer: usize, span: Id, context: Arc<SpanContext>) {
    EnteredStack::with_mut(|stack| {
        stack.push(Entered {
            layer,
            span,
            context,
        })
    });
}

/// Records that this thread left `span`.
pub(crate) fn pop_entered(layer: usize, span: &Id) {
    EnteredStack::with_mut(|stack| stack.pop(layer, span));
}

/// After `span` recorded new values: re-resolve this thread's entries from
/// `span` inwards, so the very next event sees the new values.
pub(crate) fn refresh_entered<'a, R: LookupSpan<'a> + 'a>(
    layer: usize,
    span: &Id,
    lookup: impl Fn(&Id) -> Option<SpanRef<'a, R>>,
) {
    EnteredStack::with_mut(|stack| {
        for entry in stack.inward_of(layer, span) {
            if let Some(span) = lookup(&entry.span) {
                entry.context = resolve(&span);
            }
        }
    });
}

/// Runs `f` with the innermost context this thread entered for `layer`.
/// Never panics, even during thread teardown or re-entrantly.
#[inline]
pub(crate) fn with_current<R>(layer: usize, f: impl FnOnce(&SpanContext) -> R) -> Option<R> {
    ENTERED
        .try_with(|stack| Some(f(stack.try_borrow().ok()?.current(layer)?)))
        .ok()
        .flatten()
}
