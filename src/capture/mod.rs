//! Capture: the stage that runs on the caller's thread.
//!
//! * [`Layer`](crate::Layer) receives `tracing` callbacks. Its `on_event` is the hot path.
//! * `record` defines the fixed-size byte layout an event is written into,
//!   and writes it; `reader` decodes it on the writer thread.
//! * `context` resolves span context (`trace_id`, `user_id`, …) once per
//!   span and keeps a thread-local stack of entered spans, so an event
//!   copies its context instead of walking the span tree.
//!
//! What happens per event, in order: one `ArrayQueue` pop (claim a slot),
//! one clock read, a `memcpy` of the packed span context, field values and
//! the formatted message written straight into the slot, one `ArrayQueue`
//! push (publish), and one relaxed load to see whether the writer sleeps.
//! No allocation, lock, await or system call.

mod context;
mod layer;
pub(crate) mod reader;
pub(crate) mod record;

pub use layer::Layer;

use std::cell::Cell;

thread_local! {
    /// Set on ringtrail's own threads (writer, shippers, JSON-lines output).
    static OWN_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as one of ringtrail's own: the layer ignores
/// its events. Without this, an application that bridges `log` records
/// into `tracing` (`tracing_subscriber`'s `init()` does) would feed the
/// database driver's own trace logs, made while shipping a batch, back
/// into the ring: a loop that never settles.
pub(crate) fn mark_own_thread() {
    OWN_THREAD.with(|own| own.set(true));
}

/// Whether the calling thread is one of ringtrail's own.
#[inline]
pub(crate) fn on_own_thread() -> bool {
    OWN_THREAD.with(Cell::get)
}
