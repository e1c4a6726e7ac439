//! Capture: the stage that runs on the caller's thread.
//!
//! * [`Layer`](crate::Layer) receives `tracing` callbacks. Its `on_event` is the hot path.
//! * `record` defines the fixed-size byte layout an event is written into,
//!   and writes it; `reader` decodes it on the writer thread.
//! * `context` resolves span context (`trace_id`, `user_id`, …) once per
//!   span and keeps a thread-local stack of entered spans, so an event
//!   copies its context instead of walking the span tree.
//! * [`Ingest`] pushes [`Record`]s that are not `tracing` events (OTLP
//!   logs and spans) into the same ring; `external` writes their layout.
//!
//! What happens per event, in order: one `ArrayQueue` pop (claim a slot),
//! one clock read, a `memcpy` of the packed span context, field values and
//! the formatted message written straight into the slot, one `ArrayQueue`
//! push (publish), then a SeqCst fence and one relaxed load to see whether
//! the writer sleeps (the doorbell, `ring/doorbell.rs`). No allocation,
//! lock or await; no system call unless the writer sleeps and must be
//! woken (one `unpark`), or a full ring under `Block` yields.

mod context;
mod external;
mod ingest;
mod layer;
pub(crate) mod reader;
pub(crate) mod record;

pub use ingest::{Ingest, Record, Refused, MAX_JSON_DEPTH};
pub use layer::Layer;

pub(crate) use crate::thread::on_own_thread;
