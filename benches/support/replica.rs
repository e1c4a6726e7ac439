//! A replica of the `DatabaseLayer` design that ringtrail replaces, built
//! from its description in `shared/reference/peers.md`, minus the database.
//!
//! * `on_new_span` / `on_record` store the six context ids (`user_id`,
//!   `session_id`, `trace_id`, `task_id`, `context_id`, `client_id`) as
//!   `String`s in the span's extensions.
//! * `on_event` builds an owned entry: the target as a `String`, the
//!   formatted message as a `String`, a `serde_json::Map` of the fields with
//!   owned keys (integers and bools typed; other values, f64 included, as
//!   their `Debug` text), the six ids cloned by walking up the span tree
//!   (innermost wins), and a UUID v4 id as a `String`. Events outside a span,
//!   or without user, session and trace ids, are skipped, as in the original.
//! * The entry is boxed and sent with `try_send` into a `tokio::sync::mpsc`
//!   channel of 8,192; failures are counted.
//! * A tokio task, on a one-worker runtime in a background thread, receives
//!   entries into a buffer of 100 and clears it when full, standing in for
//!   the batch INSERT.
//!
//! Left out, which makes the replica cheaper than the original, not dearer:
//! the original also strips ANSI escapes from the message (one more
//! `String`) and lower-cases every field name to check it against a
//! redaction list (one more `String` per field).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use super::Pipeline;

/// The original's channel bound.
pub const CHANNEL_CAPACITY: usize = 8_192;
/// Events per burst: half the channel.
pub const BURST: u64 = 4_096;
/// The original flushes every 100 entries.
const BUFFER_FLUSH_SIZE: usize = 100;

/// The context ids a span declares, kept in its extensions.
#[derive(Debug, Default, Clone)]
pub struct SpanIds {
    user_id: Option<String>,
    session_id: Option<String>,
    task_id: Option<String>,
    trace_id: Option<String>,
    context_id: Option<String>,
    client_id: Option<String>,
}

impl SpanIds {
    fn set(&mut self, name: &str, value: String) {
        match name {
            "user_id" => self.user_id = Some(value),
            "session_id" => self.session_id = Some(value),
            "trace_id" => self.trace_id = Some(value),
            "task_id" if !value.is_empty() => self.task_id = Some(value),
            "context_id" if !value.is_empty() => self.context_id = Some(value),
            "client_id" if !value.is_empty() => self.client_id = Some(value),
            _ => {}
        }
    }

    /// Fills each id still missing from `outer` (walking outwards, so the
    /// innermost value wins).
    fn inherit(&mut self, outer: &SpanIds) {
        let fill = |mine: &mut Option<String>, theirs: &Option<String>| {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        };
        fill(&mut self.user_id, &outer.user_id);
        fill(&mut self.session_id, &outer.session_id);
        fill(&mut self.task_id, &outer.task_id);
        fill(&mut self.trace_id, &outer.trace_id);
        fill(&mut self.context_id, &outer.context_id);
        fill(&mut self.client_id, &outer.client_id);
    }
}

struct SpanVisitor<'a>(&'a mut SpanIds);

impl Visit for SpanVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.set(field.name(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.set(field.name(), format!("{value:?}"));
    }
}

/// Collects the message and the fields of one event.
#[derive(Default)]
struct FieldVisitor {
    message: String,
    fields: Map<String, Value>,
}

impl Visit for FieldVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields
                .insert(field.name().to_owned(), Value::from(value.to_owned()));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields
            .insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields
            .insert(field.name().to_owned(), Value::from(value));
    }
}

/// One owned log entry, as the original builds it on the caller's thread.
#[derive(Debug)]
pub struct LogEntry {
    /// UUID v4, as text.
    pub id: String,
    /// When the event happened.
    pub timestamp: SystemTime,
    /// Event level.
    pub level: Level,
    /// The event's target.
    pub module: String,
    /// The formatted message.
    pub message: String,
    /// The event's fields as a JSON object.
    pub metadata: Option<Value>,
    /// Context ids, walked up the span tree.
    pub user_id: String,
    /// See `user_id`.
    pub session_id: String,
    /// See `user_id`.
    pub task_id: Option<String>,
    /// See `user_id`.
    pub trace_id: String,
    /// See `user_id`.
    pub context_id: Option<String>,
    /// See `user_id`.
    pub client_id: Option<String>,
}

enum LogCommand {
    Entry(Box<LogEntry>),
    FlushNow,
}

/// The layer.
pub struct DatabaseLayer {
    sender: mpsc::Sender<LogCommand>,
    dropped: Arc<AtomicU64>,
}

impl DatabaseLayer {
    fn send(&self, command: LogCommand) {
        if self.sender.try_send(command).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for DatabaseLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ids = SpanIds::default();
        attrs.record(&mut SpanVisitor(&mut ids));
        span.extensions_mut().insert(ids);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(ids) = extensions.get_mut::<SpanIds>() {
            values.record(&mut SpanVisitor(ids));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let level = *metadata.level();
        let module = metadata.target().to_owned();
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);

        let Some(current) = ctx.lookup_current() else {
            return;
        };
        let mut ids = SpanIds::default();
        for span in current.scope() {
            if let Some(own) = span.extensions().get::<SpanIds>() {
                ids.inherit(own);
            }
        }
        let (Some(user_id), Some(session_id), Some(trace_id)) =
            (ids.user_id, ids.session_id, ids.trace_id)
        else {
            return;
        };
        let entry = LogEntry {
            id: uuid::Uuid::new_v4().to_string(),
            timestamp: SystemTime::now(),
            level,
            module,
            message: visitor.message,
            metadata: (!visitor.fields.is_empty()).then_some(Value::Object(visitor.fields)),
            user_id,
            session_id,
            task_id: ids.task_id,
            trace_id,
            context_id: ids.context_id,
            client_id: ids.client_id,
        };
        self.send(LogCommand::Entry(Box::new(entry)));
        if level == Level::ERROR {
            self.send(LogCommand::FlushNow);
        }
    }
}

/// The background task: buffers entries and "flushes" every 100.
async fn batch_writer(
    mut receiver: mpsc::Receiver<LogCommand>,
    received: Arc<AtomicU64>,
    gate: Option<oneshot::Receiver<()>>,
) {
    if let Some(gate) = gate {
        let _ = gate.await;
    }
    let mut buffer: Vec<LogEntry> = Vec::with_capacity(BUFFER_FLUSH_SIZE);
    while let Some(command) = receiver.recv().await {
        match command {
            LogCommand::Entry(entry) => {
                buffer.push(*entry);
                received.fetch_add(1, Ordering::Release);
                if buffer.len() >= BUFFER_FLUSH_SIZE {
                    // Stands in for the batch INSERT.
                    buffer.clear();
                }
            }
            LogCommand::FlushNow => buffer.clear(),
        }
    }
}

/// The replica wired up as a [`Pipeline`].
pub struct Replica {
    dispatch: Dispatch,
    runtime: Option<tokio::runtime::Runtime>,
    received: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    emitted: AtomicU64,
    gate: Mutex<Option<oneshot::Sender<()>>>,
}

impl Replica {
    /// A running replica.
    pub fn new() -> Replica {
        Replica::build(false)
    }

    /// A replica whose task does not receive until
    /// [`resume`](Replica::resume), so its channel can be filled.
    pub fn paused() -> Replica {
        Replica::build(true)
    }

    fn build(paused: bool) -> Replica {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("replica-writer")
            .enable_time()
            .build()
            .expect("tokio runtime");
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let received = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (gate_tx, gate_rx) = if paused {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        runtime.spawn(batch_writer(receiver, received.clone(), gate_rx));
        let layer = DatabaseLayer {
            sender,
            dropped: dropped.clone(),
        };
        Replica {
            dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
            runtime: Some(runtime),
            received,
            dropped,
            emitted: AtomicU64::new(0),
            gate: Mutex::new(gate_tx),
        }
    }

    /// Lets a paused task receive.
    pub fn resume(&self) {
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(gate) = gate {
            let _ = gate.send(());
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.resume();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Pipeline for Replica {
    fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }
    fn burst(&self) -> u64 {
        BURST
    }
    fn settle(&self, emitted: u64) {
        let target = self.emitted.fetch_add(emitted, Ordering::Relaxed) + emitted;
        super::wait_until("the replica's tokio task", || {
            self.received.load(Ordering::Acquire) + self.dropped() >= target
        });
    }
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
