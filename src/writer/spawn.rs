//! Starting the writer thread: it connects its sink first, so a wrong URL
//! or an unreachable server fails `build()`, and only then runs.

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::{Control, Writer, WriterConfig};
use crate::ring::Ring;
use crate::sink::Destination;
use crate::{Error, Result};

/// Starts `ringtrail-writer`, connected to `destination`. Returns once the
/// sink is connected (or failed to), with the thread's handle.
pub(crate) fn spawn(
    ring: Arc<Ring>,
    control: Arc<Control>,
    destination: Destination,
    config: WriterConfig,
) -> Result<JoinHandle<()>> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
    let thread = std::thread::Builder::new()
        .name("ringtrail-writer".into())
        .spawn(move || {
            // Connect on this thread: it owns the sink's runtime, so
            // `build` never nests a runtime inside the caller's.
            let sink = match destination.connect() {
                Ok(sink) => {
                    let _ = ready_tx.send(Ok(()));
                    sink
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    control.exited();
                    return;
                }
            };
            Writer::new(ring, control.clone(), sink, config).run();
            control.exited();
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
