//! Replaying the spool: one segment at a time, through the ledger, when
//! PostgreSQL may take it; corrupt or vanished segments set aside and
//! counted, untrusted ones (planted, foreign) set aside and counted in
//! `spool_refused`; partly replayed segments replaced by what is left of
//! them.

use std::time::Duration;

use super::health::PROBE_INTERVAL;
use super::{tally_spooled, Origin, Shared, Shipper};
use crate::sink::batch::SealedBatch;
use crate::sink::spool::{LoadError, Spool, CORRUPT, REFUSED};
use crate::sink::Outcome;

/// What [`take_oldest`] found at the head of the spool.
pub(crate) enum Oldest {
    /// Nothing to replay now (the spool is empty, or shutting down).
    Nothing,
    /// Try again after this long (a read error that is not the segment's
    /// fault).
    Later(Duration),
    /// The oldest segment could not be replayed and was set aside (or was
    /// gone), and counted: look at the next one now.
    Forgotten,
    /// The oldest segment's batch, to replay; `inherited` when an earlier
    /// process spooled it.
    Batch {
        batch: Box<SealedBatch>,
        inherited: bool,
    },
}

/// Reads the spool's oldest segment back for a replay, setting aside one
/// that is corrupt, refused or gone (counted in `out`). Every lane that
/// replays (a PostgreSQL shipper, a bus publisher) starts here.
pub(crate) fn take_oldest(shared: &Shared, out: &mut Outcome) -> Oldest {
    shared.sync_spilled();
    let oldest = shared
        .spool()
        .and_then(|s| Some((s.oldest().cloned()?, s.reader())));
    let Some((segment, reader)) = oldest else {
        return Oldest::Nothing;
    };
    if shared.cutoff.get().is_some() {
        return Oldest::Nothing;
    }
    match Spool::load(&segment, &reader) {
        Ok(batch) => Oldest::Batch {
            batch: Box::new(batch),
            inherited: segment.inherited,
        },
        Err(LoadError::Read(e)) if e.kind() != std::io::ErrorKind::NotFound => {
            // EMFILE, EIO…: not the segment's fault. Later.
            eprintln!(
                "ringtrail: cannot read spool segment {}: {e}",
                segment.path.display()
            );
            Oldest::Later(PROBE_INTERVAL)
        }
        Err(failure) => {
            let (what, forget) = match failure {
                LoadError::Corrupt => (
                    "is corrupt; renamed to .corrupt".to_owned(),
                    Forget::Corrupt,
                ),
                LoadError::Refused(why) => (
                    format!("is refused: it {why}; renamed to .refused, not replayed"),
                    Forget::Refused,
                ),
                LoadError::Read(_) => ("is gone".to_owned(), Forget::Gone),
            };
            eprintln!("ringtrail: spool segment {} {what}", segment.path.display());
            forget_oldest(shared, forget, out);
            Oldest::Forgotten
        }
    }
}

/// Deletes the oldest segment, replayed in full.
pub(crate) fn remove_oldest(shared: &Shared) {
    if let Some(Err(e)) = shared.spool().map(|mut s| s.remove_oldest()) {
        eprintln!("ringtrail: could not delete a replayed spool segment: {e}");
    }
}

impl Shipper {
    /// Replays the oldest spool segment if PostgreSQL may take it. Returns
    /// what it did and when it wants to run again (`None`: nothing to do,
    /// the spool is empty or the shutdown cutoff has passed).
    pub(crate) fn maintain(&mut self) -> (Outcome, Option<Duration>) {
        let mut out = Outcome::default();
        if self.shared.spool().is_none_or(|s| s.oldest().is_none()) {
            self.shared.sync_spilled();
            return (out, None);
        }
        if self.shared.cutoff.get().is_none() && !self.available(&mut out) {
            return (out, Some(self.until_probe()));
        }
        let (batch, inherited) = match take_oldest(&self.shared, &mut out) {
            Oldest::Nothing => return (out, None),
            Oldest::Later(after) => return (out, Some(after)),
            Oldest::Forgotten => return (out, Some(Duration::ZERO)),
            Oldest::Batch { batch, inherited } => (*batch, inherited),
        };
        let gave_up = match self.deliver(batch, Origin::Spool { inherited }) {
            Ok(delivered) => {
                out.add(delivered);
                remove_oldest(&self.shared);
                return (out, Some(Duration::ZERO));
            }
            Err(gave_up) => gave_up,
        };
        out.add(gave_up.delivered);
        if !gave_up.untouched {
            // Part of the segment is now committed under other batch ids:
            // store what is left as new segments, then drop the original.
            respool_oldest(&self.shared, &gave_up.remaining, inherited, &mut out);
        }
        (out, Some(self.until_probe()))
    }

    /// How long until PostgreSQL is worth trying again.
    fn until_probe(&self) -> Duration {
        self.shared.health().until_probe().unwrap_or(PROBE_INTERVAL)
    }
}

/// Drops the oldest segment from the spool (set aside as `.corrupt` or
/// `.refused`, or already gone) and counts it: a corrupt or vanished
/// one's rows lost; a refused one as refused, its rows lost only if
/// they were this process's (an inherited one's header is not to be
/// believed: it may be anyone's file).
fn forget_oldest(shared: &Shared, forget: Forget, out: &mut Outcome) {
    let Some(mut spool) = shared.spool() else {
        return;
    };
    let segment = spool.oldest().cloned();
    let forgotten = match forget {
        Forget::Corrupt => spool.set_aside_oldest(CORRUPT),
        Forget::Refused => spool.set_aside_oldest(REFUSED),
        Forget::Gone => spool.remove_oldest().map(|()| segment),
    };
    let segment = match forgotten {
        Ok(Some(segment)) => segment,
        Ok(None) => return,
        Err(e) => return eprintln!("ringtrail: spool segment: {e}"),
    };
    if forget == Forget::Refused {
        out.spool_refused += 1;
    }
    match (segment.inherited, forget) {
        (true, Forget::Refused) => {}
        (true, _) => out.inherited_lost += segment.events,
        (false, _) => {
            out.unspooled += segment.events;
            out.lost += segment.events;
        }
    }
}

/// Replaces the oldest segment by what is left of it.
pub(crate) fn respool_oldest(
    shared: &Shared,
    pieces: &[SealedBatch],
    inherited: bool,
    out: &mut Outcome,
) {
    let Some(mut spool) = shared.spool() else {
        return;
    };
    let written = spool.replace_oldest(pieces, inherited).unwrap_or_else(|e| {
        eprintln!("ringtrail: could not delete a partly replayed spool segment: {e}");
        vec![true; pieces.len()]
    });
    drop(spool);
    let mut moved = Outcome::default();
    tally_spooled(pieces, &written, inherited, &mut moved);
    // Rows moved between segments stay spooled; this process's rows
    // that could not be re-spooled left the spool, lost.
    out.unspooled += moved.lost;
    out.lost += moved.lost;
    out.inherited_lost += moved.inherited_lost;
}

/// What becomes of a segment that cannot be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forget {
    /// Torn or damaged: set aside as `.corrupt`.
    Corrupt,
    /// Not trusted: set aside as `.refused`.
    Refused,
    /// Already gone.
    Gone,
}
