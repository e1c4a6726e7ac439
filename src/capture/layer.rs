//! [`Layer`]: the `tracing_subscriber::Layer` whose `on_event` is the hot
//! path. Everything an event costs the calling thread is in `on_event`
//! below and in `record.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::context;
use super::record::{next_seq, RecordWriter};
use crate::ring::{Ring, SlotPool};

/// The ringtrail `tracing` layer. Made by [`Builder::build`](crate::Builder::build).
///
/// Compose it with a registry, and with any per-layer filter:
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::filter::LevelFilter;
///
/// let (layer, guard) = ringtrail::Builder::new()
///     .postgres("postgres://postgres@127.0.0.1/app")
///     .build()?;
/// tracing_subscriber::registry()
///     .with(layer.with_filter(LevelFilter::INFO))
///     .init();
/// # Ok::<(), ringtrail::Error>(())
/// ```
pub struct Layer {
    ring: Arc<Ring>,
    /// Tells this layer's entries apart on the thread-local span stack,
    /// when a process runs several ringtrail layers.
    id: usize,
}

impl Layer {
    pub(crate) fn new(ring: Arc<Ring>) -> Layer {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        Layer {
            ring,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ringtrail::Layer")
            .field("capacity", &self.ring.slots.capacity())
            .field("record_size", &self.ring.slots.record_size())
            .field("audit_reserve", &self.ring.audit_slots())
            .finish()
    }
}

/// Returns a claimed slot to the pool if the event is abandoned half-way
/// (a user's `Debug` impl panicked), so a panic cannot leak ring capacity.
struct Claim<'a> {
    slots: &'a SlotPool,
    index: u32,
}

impl Claim<'_> {
    #[inline]
    fn publish(self) {
        self.slots.publish(self.index);
        std::mem::forget(self);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.slots.release(self.index);
    }
}

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            context::on_new_span(&span, attrs);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if context::on_record(&span, values) {
                context::refresh_entered(self.id, id, |id| ctx.span(id));
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            context::push_entered(self.id, id.clone(), context::resolve(&span));
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        context::pop_entered(self.id, id);
    }

    /// The hot path: claim a slot, write the record in place, publish.
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if super::on_own_thread() {
            return; // ringtrail's own threads never log into themselves
        }
        let ring = &*self.ring;
        let metadata = event.metadata();
        let Some((pool, index)) = ring.claim(metadata) else {
            return; // dropped and counted by the overflow policy
        };
        let claim = Claim { slots: pool, index };
        // SAFETY: `index` came from `pool`'s `claim()`, so this thread holds
        // the slot exclusively until `claim.publish()` or the claim's drop;
        // `buf` does not outlive either.
        let buf = unsafe { pool.slot_mut(index) };
        let ts = ring.clock.raw();
        let seq = next_seq();
        let cut = self.write_record(buf, ts, seq, event, &ctx);
        match ring.large() {
            Some(large) if cut => self.move_to_large(large, claim, ts, seq, event, &ctx),
            _ => claim.publish(),
        }
        ring.notify_writer(*metadata.level() == Level::ERROR);
    }
}

impl Layer {
    /// Writes `event` into `buf`; returns whether anything was cut.
    #[inline]
    fn write_record<S>(
        &self,
        buf: &mut [u8],
        ts: u64,
        seq: u64,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
    ) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut record = RecordWriter::begin(buf, ts, seq, event.metadata());
        if event.is_contextual() {
            context::with_current(self.id, |c| {
                record.put_context(c.span, &c.packed, c.truncated)
            });
        } else if let Some(span) = event.parent().and_then(|id| ctx.span(id)) {
            // Explicit `parent:` events are rare; they resolve through the
            // registry instead of the thread-local stack.
            let c = context::resolve(&span);
            record.put_context(c.span, &c.packed, c.truncated);
        }
        event.record(&mut record);
        record.finish()
    }

    /// The event did not fit its standard slot: writes it again into a
    /// slot of the large class, if one is free, and gives the standard slot
    /// back; otherwise publishes the cut record as it is. Never waits.
    #[cold]
    #[inline(never)]
    fn move_to_large<S>(
        &self,
        large: &SlotPool,
        standard: Claim<'_>,
        ts: u64,
        seq: u64,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(index) = large.claim() else {
            return standard.publish();
        };
        let claim = Claim {
            slots: large,
            index,
        };
        // SAFETY: `index` came from the large pool's `claim()`, so this
        // thread holds that slot exclusively until `claim.publish()` or the
        // claim's drop; `buf` does not outlive either.
        let buf = unsafe { large.slot_mut(index) };
        self.write_record(buf, ts, seq, event, ctx);
        drop(standard); // back to the free queue, unpublished
        claim.publish();
    }
}
