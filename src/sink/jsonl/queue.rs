//! The hand-over between the writer thread and the `ringtrail-jsonl`
//! thread: sealed batches of lines, bounded by bytes.
//!
//! The writer never waits here. A batch that does not fit the budget is
//! missed (counted, and reported in band later) instead: a stalled reader
//! of standard output, or a stuck disk, must never hold up the ring or the
//! PostgreSQL sink beside it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::JsonlCounters;
use crate::counters::bump;
use crate::time::clock::unix_nanos_now;

/// Whole lines ready for the output, and how many events they hold (drop
/// reports are lines but not events).
#[derive(Debug)]
pub(super) struct Batch {
    pub(super) lines: Vec<u8>,
    pub(super) events: u64,
    /// The misses its in-band report line tells of; reported again if the
    /// batch does not make it out.
    pub(super) reports: Missed,
}

/// Events the sink missed and has not reported in band yet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Missed {
    pub(super) events: u64,
    /// When the first and the last of them were missed (unix nanos).
    pub(super) from: i64,
    pub(super) to: i64,
}

impl Missed {
    pub(super) fn add(&mut self, events: u64, at: i64) {
        if events == 0 {
            return;
        }
        if self.events == 0 {
            self.from = at;
        }
        self.events += events;
        self.to = at;
    }

    pub(super) fn merge(&mut self, other: Missed) {
        if other.events == 0 {
            return;
        }
        if self.events == 0 {
            *self = other;
        } else {
            self.events += other.events;
            self.from = self.from.min(other.from);
            self.to = self.to.max(other.to);
        }
    }
}

#[derive(Default)]
struct State {
    batches: VecDeque<Batch>,
    /// Bytes queued or being written.
    bytes: usize,
    /// Events of the batch the output thread holds, if it holds one.
    busy: Option<u64>,
    closed: bool,
    /// Shutdown gave up on a blocked write: nothing the output thread
    /// does counts any more.
    abandoned: bool,
    /// Batches finished (written or failed) so far: progress, for a wait
    /// that gives up on a stalled output.
    finished: u64,
    /// Misses of the output thread (write errors) not yet reported.
    missed: Missed,
    /// Emptied buffers, back for the writer to fill again.
    spare: Vec<Vec<u8>>,
}

/// A byte-bounded queue of batches with one producer (the writer) and one
/// consumer (the output thread).
pub(super) struct Queue {
    state: Mutex<State>,
    changed: Condvar,
    budget: usize,
    counters: Arc<JsonlCounters>,
}

impl Queue {
    pub(super) fn new(budget: usize, counters: Arc<JsonlCounters>) -> Queue {
        Queue {
            state: Mutex::default(),
            changed: Condvar::new(),
            budget,
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `batch`, or gives it back when it does not fit the budget
    /// (an empty queue takes any batch, however large).
    pub(super) fn push(&self, batch: Batch) -> Result<(), Batch> {
        let mut state = self.lock();
        let len = batch.lines.len();
        if state.closed || (state.bytes > 0 && state.bytes + len > self.budget) {
            return Err(batch);
        }
        state.bytes += len;
        state.batches.push_back(batch);
        self.changed.notify_all();
        Ok(())
    }

    /// The output thread: the next batch, once there is one; `None` once
    /// the queue is closed and empty.
    pub(super) fn take(&self) -> Option<Batch> {
        let mut state = self.lock();
        loop {
            if let Some(batch) = state.batches.pop_front() {
                state.busy = Some(batch.events);
                return Some(batch);
            }
            if state.closed {
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The output thread: `batch` is done with, written (with that many
    /// rotations) or not. Counts it, and gives its buffer back to the
    /// writer.
    pub(super) fn finished(&self, mut batch: Batch, result: Result<u64, ()>) {
        let mut state = self.lock();
        state.bytes -= batch.lines.len();
        state.busy = None;
        state.finished += 1;
        if !state.abandoned {
            let c = &self.counters;
            match result {
                Ok(rotations) => {
                    bump(&c.written, batch.events);
                    bump(&c.batches, 1);
                    bump(&c.bytes, batch.lines.len() as u64);
                    bump(&c.rotations, rotations);
                }
                Err(()) => {
                    bump(&c.write_errors, 1);
                    bump(&c.missed, batch.events);
                    state.missed.add(batch.events, unix_nanos_now());
                    state.missed.merge(batch.reports);
                }
            }
        }
        batch.lines.clear();
        if state.spare.len() < 2 {
            state.spare.push(batch.lines);
        }
        self.changed.notify_all();
    }

    /// An empty buffer, reused when one came back.
    pub(super) fn spare(&self) -> Vec<u8> {
        self.lock().spare.pop().unwrap_or_default()
    }

    /// Batches finished so far.
    pub(super) fn finished_count(&self) -> u64 {
        self.lock().finished
    }

    /// At shutdown, after the last wait: the events of a write still in
    /// progress, which from now on count as missed whatever happens to
    /// them (the output thread counts nothing more).
    pub(super) fn abandon(&self) -> u64 {
        let mut state = self.lock();
        state.abandoned = true;
        state.busy.unwrap_or(0)
    }

    /// The output thread's misses since the last call.
    pub(super) fn take_missed(&self) -> Missed {
        std::mem::take(&mut self.lock().missed)
    }

    /// Waits until every queued batch is finished. Gives up when the
    /// output finishes nothing for `stall` (a reader that stopped
    /// reading): then the queued batches, not the one being written, are
    /// dropped, and their events returned. `Ok` when everything finished.
    pub(super) fn drain(&self, stall: Duration) -> Result<(), u64> {
        let mut state = self.lock();
        let mut seen = state.finished;
        let mut since = Instant::now();
        while state.busy.is_some() || !state.batches.is_empty() {
            if state.finished != seen {
                seen = state.finished;
                since = Instant::now();
            }
            let left = stall.saturating_sub(since.elapsed());
            if left.is_zero() {
                let dropped: Vec<Batch> = state.batches.drain(..).collect();
                let mut events = 0;
                for batch in dropped {
                    state.bytes -= batch.lines.len();
                    events += batch.events;
                    // The reports they carried are still owed.
                    state.missed.merge(batch.reports);
                }
                return Err(events);
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }

    /// No more batches: the output thread ends once the queue is empty.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(len: usize, events: u64) -> Batch {
        Batch {
            lines: vec![b'\n'; len],
            events,
            reports: Missed::default(),
        }
    }

    fn queue(budget: usize) -> (Queue, Arc<JsonlCounters>) {
        let counters = Arc::new(JsonlCounters::default());
        (Queue::new(budget, counters.clone()), counters)
    }

    #[test]
    fn the_budget_bounds_the_queue_but_an_empty_queue_takes_any_batch() {
        let (q, counters) = queue(100);
        assert!(q.push(batch(500, 1)).is_ok());
        assert!(q.push(batch(1, 1)).is_err());
        let taken = q.take().unwrap();
        q.finished(taken, Ok(2));
        let stats = counters.snapshot();
        assert_eq!((stats.written, stats.bytes, stats.rotations), (1, 500, 2));
        assert!(q.push(batch(60, 1)).is_ok());
        assert!(q.push(batch(40, 1)).is_ok());
        assert!(q.push(batch(1, 1)).is_err());
    }

    #[test]
    fn a_drain_gives_up_on_a_stalled_output_and_drops_the_queued_batches() {
        let (q, counters) = queue(1000);
        q.push(batch(10, 3)).unwrap();
        q.push(batch(10, 4)).unwrap();
        q.push(batch(10, 5)).unwrap();
        // The output took one batch and never finished it.
        let stuck = q.take().unwrap();
        assert_eq!(q.drain(Duration::from_millis(50)), Err(9));
        assert!(q.push(batch(10, 1)).is_ok());
        // Shutdown gives the stuck write up; finishing it later counts
        // nothing.
        assert_eq!(q.abandon(), 3);
        q.finished(stuck, Ok(0));
        assert_eq!(counters.snapshot().written, 0);
    }

    #[test]
    fn a_failed_write_is_missed_and_its_report_comes_back() {
        let (q, counters) = queue(1000);
        let mut b = batch(10, 4);
        b.reports = Missed {
            events: 2,
            from: 1,
            to: 1,
        };
        q.push(b).unwrap();
        let b = q.take().unwrap();
        q.finished(b, Err(()));
        let stats = counters.snapshot();
        assert_eq!((stats.missed, stats.write_errors), (4, 1));
        assert_eq!(q.take_missed().events, 6);
        assert_eq!(q.take_missed().events, 0);
    }

    #[test]
    fn misses_merge_into_one_span() {
        let mut m = Missed::default();
        m.add(0, 5);
        assert_eq!(m, Missed::default());
        m.add(3, 10);
        m.add(2, 20);
        m.merge(Missed {
            events: 1,
            from: 1,
            to: 2,
        });
        assert_eq!(
            m,
            Missed {
                events: 6,
                from: 1,
                to: 20
            }
        );
    }
}
