//! Starting the writer thread: it connects its sink first, so a wrong URL
//! or an unreachable server fails `build()`, and only then runs.

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::{Control, Writer, WriterConfig};
use crate::ring::Ring;
use crate::sink::Destination;
use crate::thread::{spawn_own, OwnThread};
use crate::{Error, Result};

/// Tells the control the writer is gone when dropped: on return or unwind.
struct Exited(Arc<Control>);

impl Drop for Exited {
    fn drop(&mut self) {
        self.0.exited();
    }
}

/// Starts `ringtrail-writer`, connected to `destination`. Returns once the
/// sink is connected (or failed to), with the thread's handle.
pub(crate) fn spawn(
    ring: Arc<Ring>,
    control: Arc<Control>,
    destination: Destination,
    config: WriterConfig,
) -> Result<JoinHandle<()>> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
    let thread = spawn_own(OwnThread::Writer, move || {
        // However the thread ends, a panic included, waiting flushes
        // hear of it instead of hanging.
        let _exit = Exited(control.clone());
        // Connect on this thread: it owns the sink's runtime, so
        // `build` never nests a runtime inside the caller's.
        let sink = match destination.connect(&control.cutoff, &control.jsonl) {
            Ok(sink) => {
                let _ = ready_tx.send(Ok(()));
                sink
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        Writer::new(ring, control, sink, config).run();
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::WriterGone)
        }
    }
}
