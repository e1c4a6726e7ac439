//! The disk lane (`ringtrail-disk`): every disk write the PostgreSQL
//! sink's writer side would otherwise make itself, on a thread of its own,
//! so that the writer never waits on the disk and goes straight back to
//! the ring.
//!
//! Two kinds of job come down it, in the order the writer made them:
//!
//! - **Overload spills.** The queue to the lanes is full (the server is
//!   slower than the inflow) and there is a spool: the sealed batch is
//!   written to the spool here, and fsynced once the lane's queue runs dry
//!   (one fsync per burst, not per batch). A lane that spools a batch the
//!   server refused holds the spool's lock while it fsyncs; before this
//!   lane existed the writer waited on that lock while the ring filled.
//! - **Checkpoint notes** for the checkpoint file, appended and fsynced.
//!
//! The writer counts what it has handed over here (jobs and batch bytes)
//! as in flight, so `flush()` and shutdown wait for it like for any lane,
//! and it hands over no more than its byte bound: past that the writer
//! waits for room, the ring fills, and the overflow policy applies. What
//! each job did comes back as an [`Outcome`] through `report`.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use super::batch::SealedBatch;
use super::chained;
use super::shipper::Shared;
use super::{BatchFailure, Outcome};
use crate::Error;

/// A disk write the writer hands over.
// Nearly every job is a batch, moved in and out of the channel as is:
// boxing it would allocate per batch to shrink the rare note.
#[allow(clippy::large_enum_variant)]
pub(crate) enum DiskJob {
    /// An overload spill of `batch`; `queued` bytes of batches were
    /// waiting for the lanes when the writer spilled it.
    Spill { batch: SealedBatch, queued: usize },
    /// Checkpoint notes to append to the checkpoint file at `path`.
    Checkpoints { path: PathBuf, notes: Vec<String> },
}

impl DiskJob {
    /// The bytes the writer counts in flight for this job.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            DiskJob::Spill { batch, .. } => batch.bytes.len(),
            DiskJob::Checkpoints { .. } => 0,
        }
    }

    /// Counts this job's rows or notes as lost: it could not be handed
    /// over (the lane is gone).
    pub(crate) fn lost(self, out: &mut Outcome) {
        match self {
            DiskJob::Spill { batch, .. } => {
                out.lost += batch.events();
                out.failure = Some(BatchFailure::new(crate::Fate::Lost, Error::WriterGone));
            }
            DiskJob::Checkpoints { notes, .. } => {
                out.checkpoint_file_errors += notes.len() as u64;
            }
        }
    }
}

/// The disk lane's thread: runs `jobs` until the writer closes the queue
/// and it is empty, reporting each job's bytes and outcome through
/// `report` (which returns `false` once nobody listens).
pub(crate) fn run(
    shared: Arc<Shared>,
    jobs: Receiver<DiskJob>,
    mut report: impl FnMut(usize, Outcome) -> bool,
) {
    let mut unsynced = false;
    loop {
        let job = match jobs.try_recv() {
            Ok(job) => job,
            Err(_) => {
                // The queue ran dry: the burst's spills reach the disk
                // before this lane waits for more.
                if std::mem::take(&mut unsynced) {
                    shared.sync_spilled();
                }
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            }
        };
        let bytes = job.bytes();
        let mut out = Outcome::default();
        match job {
            DiskJob::Spill { batch, queued } => {
                let fate = shared.spill(&batch, &mut out);
                out.failure = Some(BatchFailure::new(fate, Error::Backlog { queued }));
                unsynced = true;
            }
            DiskJob::Checkpoints { path, notes } => {
                chained::append_to_file(&path, &notes, &mut out);
            }
        }
        if !report(bytes, out) {
            return;
        }
    }
}
