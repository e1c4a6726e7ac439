//! ringtrail's own threads. Every thread ringtrail starts goes through
//! [`spawn_own`], which names it and marks it as ringtrail's, so the
//! invariant "ringtrail never logs into itself" holds by construction: the
//! layer ignores events made on a marked thread ([`on_own_thread`]).
//!
//! Without the mark, an application that bridges `log` records into
//! `tracing` (`tracing_subscriber`'s `init()` does) would feed the database
//! driver's own trace logs, made while shipping a batch, back into the
//! ring: a loop that never settles.

use std::cell::Cell;
use std::io;
use std::thread::JoinHandle;

/// The kinds of thread ringtrail starts; each is its thread's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnThread {
    /// `ringtrail-writer`: drains the ring, encodes, hands batches over.
    Writer,
    /// `ringtrail-shipper`: one per PostgreSQL lane.
    Shipper,
    /// `ringtrail-jsonl`: writes the JSON-lines sink's batches.
    Jsonl,
    /// `ringtrail-disk`: the PostgreSQL sink's disk lane (overload spills,
    /// the checkpoint file), so the writer never waits on the disk.
    Disk,
    /// `ringtrail-nats`: the NATS client's runtime (its connection's
    /// reader, pings and acknowledgements), under a publisher lane or a
    /// sink worker.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    Nats,
}

impl OwnThread {
    /// The thread's name.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            OwnThread::Writer => "ringtrail-writer",
            OwnThread::Shipper => "ringtrail-shipper",
            OwnThread::Jsonl => "ringtrail-jsonl",
            OwnThread::Disk => "ringtrail-disk",
            OwnThread::Nats => "ringtrail-nats",
        }
    }

    /// Whether the calling thread is this one.
    pub(crate) fn is_current(self) -> bool {
        std::thread::current().name() == Some(self.name())
    }
}

thread_local! {
    /// Set on ringtrail's own threads.
    static OWN_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Starts a ringtrail thread of kind `kind`: named, and marked before `f`
/// runs, so nothing it logs reaches the ring.
pub(crate) fn spawn_own<F, T>(kind: OwnThread, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name(kind.name().into())
        .spawn(move || {
            OWN_THREAD.with(|own| own.set(true));
            f()
        })
}

/// Marks the calling thread as ringtrail's: for threads that a library
/// starts on ringtrail's behalf (a tokio runtime's workers, through
/// `on_thread_start`), which [`spawn_own`] cannot start itself.
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
pub(crate) fn mark_own() {
    OWN_THREAD.with(|own| own.set(true));
}

/// Whether the calling thread is one of ringtrail's own.
#[inline]
pub(crate) fn on_own_thread() -> bool {
    OWN_THREAD.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_threads_are_named_and_marked() {
        assert!(!on_own_thread());
        let seen = spawn_own(OwnThread::Jsonl, || {
            (on_own_thread(), OwnThread::Jsonl.is_current())
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(seen, (true, true));
        assert!(!on_own_thread());
    }
}
