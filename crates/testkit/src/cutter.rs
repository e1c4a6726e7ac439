//! A TCP proxy for fault tests: cuts a connection right after the server
//! has seen a `COMMIT`, so the client cannot know whether it committed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A TCP proxy in front of PostgreSQL that, once armed, lets one COMMIT
/// that follows a COPY reach the server, then cuts both sides before the
/// acknowledgement comes back: the client cannot know whether the batch
/// committed.
pub struct CommitCutter {
    /// The port to connect to instead of the server's.
    pub port: u16,
    /// Cut the next COMMIT after a COPY once set.
    pub armed: Arc<AtomicBool>,
    /// Set once a COMMIT was cut.
    pub fired: Arc<AtomicBool>,
}

impl CommitCutter {
    /// Listens on a free loopback port, relaying to `upstream`.
    pub fn start(upstream: u16) -> CommitCutter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (a, f) = (armed.clone(), fired.clone());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (a, f) = (a.clone(), f.clone());
                thread::spawn(move || Self::relay(client, server, a, f));
            }
        });
        CommitCutter { port, armed, fired }
    }

    fn relay(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>, fired: Arc<AtomicBool>) {
        let hold = Arc::new(AtomicBool::new(false));
        // Server to client: plain copy, unless holding (then swallow).
        {
            let (mut from, mut to, hold) = (
                server.try_clone().unwrap(),
                client.try_clone().unwrap(),
                hold.clone(),
            );
            thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || (!hold.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err())
                    {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Both);
            });
        }
        // Client to server: parse the frontend messages to spot
        // CopyDone ('c') and then a simple-query COMMIT ('Q').
        let (mut from, mut to) = (client, server);
        let mut read_exact = |buf: &mut [u8]| from.read_exact(buf).is_ok();
        let mut untyped = true;
        let mut copy_done = false;
        loop {
            let mut kind = [0u8; 1];
            if !untyped && !read_exact(&mut kind) {
                break;
            }
            let mut len = [0u8; 4];
            if !read_exact(&mut len) {
                break;
            }
            let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
            if !read_exact(&mut body) {
                break;
            }
            if untyped {
                // SSLRequest (80877103) is followed by another untyped
                // message; the startup message is the last untyped one.
                let code = body
                    .get(..4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                untyped = code == Some(80_877_103);
            }
            let cut = kind[0] == b'Q'
                && copy_done
                && body.windows(6).any(|w| w.eq_ignore_ascii_case(b"COMMIT"))
                && armed.load(Ordering::SeqCst)
                && !fired.swap(true, Ordering::SeqCst);
            copy_done |= kind[0] == b'c';
            if cut {
                hold.store(true, Ordering::SeqCst);
            }
            let mut message = Vec::with_capacity(5 + body.len());
            if kind[0] != 0 {
                message.push(kind[0]);
            }
            message.extend_from_slice(&len);
            message.extend_from_slice(&body);
            if to.write_all(&message).is_err() {
                break;
            }
            if cut {
                // Let the server commit, then cut both sides before the
                // client hears about it.
                thread::sleep(Duration::from_millis(500));
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                break;
            }
        }
    }
}
