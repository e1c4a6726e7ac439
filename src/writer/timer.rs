//! [`BatchTimer`]: when the batch in progress is due. One place computes
//! the deadline, so "is a commit due" and "when to wake up" never disagree.

use std::time::{Duration, Instant};

/// The time-based flush triggers of the batch in progress.
pub(crate) struct BatchTimer {
    flush_interval: Duration,
    urgent_interval: Duration,
    /// When the oldest row of the batch in progress was appended.
    started: Option<Instant>,
    /// The batch in progress holds an ERROR event.
    urgent: bool,
    last_commit: Instant,
}

impl BatchTimer {
    pub(crate) fn new(flush_interval: Duration, urgent_interval: Duration) -> BatchTimer {
        BatchTimer {
            flush_interval,
            urgent_interval,
            started: None,
            urgent: false,
            last_commit: Instant::now(),
        }
    }

    /// A row (or something due to be reported) joined the batch: starts
    /// the clock if it is the first.
    pub(crate) fn row_added(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    /// Whether the clock runs.
    pub(crate) fn is_running(&self) -> bool {
        self.started.is_some()
    }

    /// The batch holds an ERROR event.
    pub(crate) fn mark_urgent(&mut self) {
        self.urgent = true;
    }

    /// The batch was committed: the next one starts empty.
    pub(crate) fn committed(&mut self, now: Instant) {
        self.started = None;
        self.urgent = false;
        self.last_commit = now;
    }

    /// When the batch in progress is due: a flush interval after its first
    /// row, or for an urgent batch an urgent interval after the last
    /// commit, whichever is first. `None` while the batch is empty.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let started = self.started?;
        let mut due = started + self.flush_interval;
        if self.urgent {
            due = due.min(self.last_commit + self.urgent_interval);
        }
        Some(due)
    }

    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|due| now >= due)
    }

    /// When a writer with nothing to do should wake up at the latest.
    pub(crate) fn wake_at(&self, now: Instant) -> Instant {
        let idle = now + self.flush_interval;
        self.deadline().map_or(idle, |due| due.min(idle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_the_first_trigger() {
        let ms = Duration::from_millis;
        let mut t = BatchTimer::new(ms(100), ms(10));
        let now = Instant::now();
        assert_eq!(t.deadline(), None);
        assert_eq!(t.wake_at(now), now + ms(100));
        t.row_added(now);
        t.row_added(now + ms(50));
        assert_eq!(t.deadline(), Some(now + ms(100)));
        assert!(!t.is_due(now + ms(99)) && t.is_due(now + ms(100)));
        t.mark_urgent();
        assert!(t.deadline().unwrap() <= now + ms(10));
        t.committed(now + ms(5));
        assert_eq!(t.deadline(), None);
        t.row_added(now + ms(6));
        t.mark_urgent();
        assert_eq!(t.deadline(), Some(now + ms(15)));
    }
}
